//! Incoming SIP MESSAGE (RFC 3428): what is accepted (UTF-8 plain text), and the SIP
//! answer for what is not. Accepted ones are stored before they are answered 200.

use crate::sip::message::{Name, Request, Response, SipHeaders, reason_phrase};
use crate::sip::uri::Uri;
use crate::store::Incoming;

/// Bigger than any text a person types; MESSAGE is not for files (RFC 3428 §8).
pub(super) const MAX_BODY: usize = 32 * 1024;

/// The message, or the response that refuses it.
pub(super) fn check(req: &Request, account: Option<String>) -> Result<Incoming, Response> {
    let refuse = |code: u16, why: &str| {
        let mut r = req.response(code, reason_phrase(code));
        if code == 415 {
            r.headers.push(Name::Accept, "text/plain;charset=UTF-8");
        }
        r.headers.push(
            Name::Other("Warning".into()),
            format!("399 voipd \"{why}\""),
        );
        r
    };
    let ct = req
        .headers
        .get(&Name::ContentType)
        .unwrap_or("text/plain")
        .to_ascii_lowercase();
    let mut parts = ct.split(';').map(str::trim);
    if parts.next() != Some("text/plain") {
        return Err(refuse(415, "only text/plain messages are taken"));
    }
    for p in parts {
        if let Some(cs) = p.strip_prefix("charset=")
            && !matches!(cs.trim_matches('"'), "utf-8" | "utf8" | "us-ascii")
        {
            return Err(refuse(415, "only UTF-8 text is taken"));
        }
    }
    if req.body.len() > MAX_BODY {
        return Err(refuse(413, "the text is longer than 32 KiB"));
    }
    let Ok(body) = String::from_utf8(req.body.clone()) else {
        return Err(refuse(400, "the text is not valid UTF-8"));
    };
    let (Some(from), Some(call_id), Some(cseq)) = (req.from(), req.call_id(), req.cseq()) else {
        return Err(refuse(400, "missing From, Call-ID or CSeq"));
    };
    Ok(Incoming {
        account,
        // Without parameters, so that one peer's messages are found together.
        peer: match from.uri {
            Uri::Sip(u) => u.bare().to_string(),
            other => other.to_string(),
        },
        peer_name: from.display,
        body,
        sip_call_id: call_id.to_string(),
        sip_cseq: cseq.seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Message, parse};

    fn request(content_type: Option<&str>, body: &[u8]) -> Request {
        let mut text = b"MESSAGE sip:alice@example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
            From: \"Bob\" <sip:bob@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n\
            Call-ID: c1\r\nCSeq: 7 MESSAGE\r\nMax-Forwards: 70\r\n"
            .to_vec();
        if let Some(ct) = content_type {
            text.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        text.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        text.extend_from_slice(body);
        match parse(&text) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_utf8_text_is_taken_and_the_rest_refused_with_a_reason() {
        let m = check(
            &request(Some("Text/Plain; charset=\"UTF-8\""), "hé 👋".as_bytes()),
            None,
        )
        .unwrap();
        assert_eq!((m.body.as_str(), m.sip_cseq), ("hé 👋", 7));
        assert_eq!(m.peer_name.as_deref(), Some("Bob"));
        // No Content-Type: text/plain by default (RFC 3428 §10).
        assert!(check(&request(None, b"hi"), None).is_ok());
        let code =
            |ct: Option<&str>, body: &[u8]| check(&request(ct, body), None).unwrap_err().code;
        assert_eq!(code(Some("text/plain;charset=iso-8859-1"), b"caf\xe9"), 415);
        assert_eq!(code(Some("application/im-iscomposing+xml"), b"<x/>"), 415);
        assert_eq!(code(Some("text/plain"), b"caf\xe9"), 400);
        assert_eq!(code(Some("text/plain"), &vec![b'a'; MAX_BODY + 1]), 413);
        let r = check(&request(Some("text/html"), b"<b>"), None).unwrap_err();
        assert_eq!(
            r.headers.get(&Name::Accept),
            Some("text/plain;charset=UTF-8")
        );
    }
}
