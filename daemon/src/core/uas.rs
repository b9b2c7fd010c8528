//! What the core answers to requests it does not (yet) take up.

use crate::sip::capabilities::{ALLOW, add_to_tag};
use crate::sip::message::{Method, Name, Response, reason_phrase};
use crate::sip::transaction::TuRequest;
use crate::sip::uri::Uri;

pub(super) fn answer(req: &TuRequest) -> Option<Response> {
    let r = &req.request;
    if r.method == Method::Ack {
        return None;
    }
    let code = if !matches!(r.uri, Uri::Sip(_)) {
        416
    } else {
        match r.method {
            // A user agent is not a registrar.
            Method::Register => 405,
            // New INVITEs become calls; one that reaches here names a dialog we do not have.
            Method::Invite | Method::Bye => 481,
            _ => 501,
        }
    };
    let mut resp = r.response(code, reason_phrase(code));
    add_to_tag(&mut resp);
    if matches!(code, 405 | 501) {
        resp.headers.push(Name::Allow, ALLOW);
    }
    Some(resp)
}
