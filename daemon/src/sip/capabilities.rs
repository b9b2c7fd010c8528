//! What this user agent supports, as it tells peers in Allow, Accept and Supported, and the
//! answer to an out-of-dialog OPTIONS (RFC 3261 §11.2).

use crate::sip::message::{Name, Request, Response};
use crate::sip::transaction::random_token;

pub const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, MESSAGE, SUBSCRIBE, NOTIFY, REFER";
pub const ACCEPT: &str = "application/sdp, text/plain, application/pidf+xml";
pub const ALLOW_EVENTS: &str = "presence";
/// RFC 5626 outbound and RFC 3327 Path.
pub const SUPPORTED: &str = "outbound, path";
/// In calls also RFC 4028 session timers; RFC 3262 `100rel` is added per account.
pub const SUPPORTED_CALL: &str = "timer, outbound, path, replaces";

/// Whether a message's Supported or Require headers name the option `tag` (RFC 3261 §20.37).
pub fn lists_option(headers: &crate::sip::message::Headers, name: &Name, tag: &str) -> bool {
    headers
        .all(name)
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

pub fn options_response(req: &Request, server: &str) -> Response {
    let mut resp = req.response(200, "OK");
    add_to_tag(&mut resp);
    resp.headers.push(Name::Allow, ALLOW);
    resp.headers.push(Name::Accept, ACCEPT);
    resp.headers.push(Name::Supported, SUPPORTED_CALL);
    resp.headers.push(Name::AllowEvents, ALLOW_EVENTS);
    resp.headers.push(Name::Server, server);
    resp
}

/// Responses outside a dialog carry a To tag of ours (RFC 3261 §8.2.6.2).
pub fn add_to_tag(resp: &mut Response) {
    let Some(to) = resp.headers.get(&Name::To).map(str::to_string) else {
        return;
    };
    if !to.contains(";tag=") && !to.contains(";TAG=") {
        resp.headers
            .set_first(Name::To, format!("{to};tag={}", random_token(10)));
    }
}
