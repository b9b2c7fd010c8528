//! What the core answers to requests it does not (yet) take up: 481 for dialogs it does
//! not have, 405/501 for what it does not do.

use crate::sip::capabilities::{ALLOW, add_to_tag};
use crate::sip::message::{Method, Name, Response, SipHeaders, reason_phrase};
use crate::sip::transaction::TuRequest;
use crate::sip::uri::Uri;

pub(super) fn answer(req: &TuRequest) -> Option<Response> {
    let r = &req.request;
    if r.method == Method::Ack {
        return None;
    }
    let in_dialog = r.to().is_some_and(|t| t.tag().is_some());
    let code = if !matches!(r.uri, Uri::Sip(_)) {
        416
    } else if in_dialog {
        // A dialog we do not have (RFC 3261 §12.2.2), whatever the method.
        481
    } else {
        match r.method {
            // A user agent is not a registrar.
            Method::Register => 405,
            // New INVITEs become calls; a BYE here names a call we do not have.
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
