//! Cases written from the descriptions of RFC 4475 (SIP torture test messages), one or more
//! per category: valid messages that must parse, invalid ones that must be refused with
//! the right error, never a panic.

use super::*;
use crate::sip::message::SipHeaders;

fn req(text: &str) -> Request {
    match parse(text.replace('\n', "\r\n").as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("expected a request, got {other:?}\n{text}"),
    }
}

fn bad(text: &str) -> ParseError {
    match parse(text.replace('\n', "\r\n").as_bytes()) {
        Err(e) => e,
        Ok(m) => panic!("expected an error, parsed {m:?}"),
    }
}

const BASE: &str = "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:b@example.com>\nCall-ID: c1@192.0.2.1\n";

fn with_base(start: &str, cseq: &str, extra: &str) -> String {
    format!("{start}\n{BASE}CSeq: {cseq}\n{extra}Content-Length: 0\n\n")
}

// RFC 4475 §3.1.1.1 "wsinv": compact forms, folding, odd whitespace and case.
#[test]
fn valid_tortuous_invite() {
    let text = "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n\
TO :\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\n  ;\n  tag = 98asjd8\n\
MaX-fOrWaRdS: 0068\n\
Call-ID: wsinv.ndaksdj@192.0.2.1\n\
Content-Length   : 150\n\
cseq: 0009\n  INVITE\n\
Via  : SIP  /   2.0\n /UDP\n    192.0.2.2;branch=390skdjuw\n\
s :\n\
NewFangledHeader:   newfangled value\n continued newfangled value\n\
UnknownHeaderWithUnusualValue: ;;,,;;,;\n\
Content-Type: application/sdp\n\
Route:\n     <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n\
v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n  branch  =   z9hG4bK9ikj8  ,\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n z9hG4bK30239\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\n      newvalue ;\n  secondparam ; q = 0.33\n\n";
    let body = "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n";
    let mut bytes = text.replace('\n', "\r\n").into_bytes();
    let padded = format!("{body:<150}");
    bytes.extend_from_slice(padded.as_bytes());
    let Ok(Message::Request(r)) = parse(&bytes) else {
        panic!("wsinv must parse: {:?}", parse(&bytes));
    };
    assert_eq!(r.method, Method::Invite);
    assert_eq!(
        r.cseq().unwrap(),
        CSeq {
            seq: 9,
            method: Method::Invite
        }
    );
    assert_eq!(r.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(r.from().unwrap().tag(), Some("98asjd8"));
    let vias: Vec<_> = r
        .headers
        .all(&Name::Via)
        .map(|v| Via::parse(v).unwrap())
        .collect();
    assert_eq!(
        vias.len(),
        3,
        "one Via header plus a compact one with two values"
    );
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].host, "192.168.255.111");
    assert_eq!(r.headers.get(&Name::Subject), Some(""));
    assert_eq!(r.headers.all(&Name::Contact).count(), 1);
    assert_eq!(r.body.len(), 150);
    assert_eq!(
        r.headers.get(&Name::Other("NewFangledHeader".into())),
        Some("newfangled value continued newfangled value")
    );
}

// §3.1.1.2 "intmeth": an unknown method made of every token character.
#[test]
fn valid_unknown_method() {
    let m = "!interesting-Method0123456789_*+`.%indeed'~";
    let r = req(&with_base(
        &format!(
            "{m} sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0"
        ),
        &format!("139122385 {m}"),
        "",
    ));
    assert_eq!(r.method, Method::Other(m.into()));
}

// §3.1.1.3 "esc01" and §3.1.1.4 "escnull": escapes in the user part.
#[test]
fn valid_escapes() {
    let r = req(&with_base(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0",
        "1 INVITE",
        "",
    ));
    let Uri::Sip(u) = &r.uri else { panic!() };
    assert_eq!(u.user.as_deref(), Some("sips%3Auser%40example.com"));
    req(&with_base(
        "REGISTER sip:example.com SIP/2.0",
        "1 REGISTER",
        "Contact: <sip:%00@host1.example.com>\n",
    ));
}

// §3.1.1.6 "lwsdisp": no space between display name and <.
#[test]
fn valid_display_without_space() {
    let text = with_base("OPTIONS sip:user@example.com SIP/2.0", "1 OPTIONS", "").replace(
        "To: <sip:b@example.com>",
        "To: caller<sip:caller@example.com>",
    );
    assert_eq!(req(&text).to().unwrap().display.as_deref(), Some("caller"));
}

// §3.1.1.7 "longreq": long values are fine within the size bound.
#[test]
fn valid_long_headers() {
    let long = "x".repeat(4000);
    let r = req(&with_base(
        "INVITE sip:user@example.com SIP/2.0",
        "1 INVITE",
        &format!("X-Long: {long}\nSubject: {long}\n"),
    ));
    assert_eq!(r.headers.get(&Name::Subject).map(str::len), Some(4000));
}

// §3.1.1.8 "dblreq": two requests in one datagram; only the first counts.
#[test]
fn valid_datagram_with_extra_bytes() {
    let one = with_base("REGISTER sip:example.com SIP/2.0", "1 REGISTER", "");
    let two = with_base("INVITE sip:joe@example.com SIP/2.0", "2 INVITE", "");
    let r = req(&format!("{one}{two}"));
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
}

// §3.1.1.9 "semiuri": ';' in the user part.
#[test]
fn valid_semicolon_in_user() {
    let r = req(&with_base(
        "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0",
        "1 OPTIONS",
        "",
    ));
    let Uri::Sip(u) = &r.uri else { panic!() };
    assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
}

// §3.1.1.10 "transports": unknown transports in Via.
#[test]
fn valid_unknown_transports() {
    let text = with_base(
        "OPTIONS sip:user@example.com SIP/2.0",
        "1 OPTIONS",
        "Via: SIP/2.0/SCTP t1.example.com;branch=z9hG4bKkdjuw\nVia: SIP/2.0/UNKNOWN t2.example.com;branch=z9hG4bKkdjuw2\n",
    );
    let r = req(&text);
    assert_eq!(r.headers.all(&Name::Via).count(), 3);
}

// §3.1.1.11 "mpart01": a multipart body is carried as is.
#[test]
fn valid_multipart_body() {
    let body = "--boundary42\r\nContent-Type: text/plain\r\n\r\nhi\r\n--boundary42--\r\n";
    let text = format!(
        "MESSAGE sip:b@example.com SIP/2.0\r\n{}CSeq: 1 MESSAGE\r\nContent-Type: multipart/mixed;boundary=boundary42\r\nContent-Length: {}\r\n\r\n{body}",
        BASE.replace('\n', "\r\n"),
        body.len()
    );
    let Ok(Message::Request(r)) = parse(text.as_bytes()) else {
        panic!()
    };
    assert_eq!(r.body, body.as_bytes());
}

// §3.1.1.12 "unreason" and §3.1.1.13 "noreason": any reason phrase, or none.
#[test]
fn valid_response_reasons() {
    let text = format!(
        "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое\n{BASE}CSeq: 1 INVITE\nContent-Length: 0\n\n"
    );
    let Ok(Message::Response(r)) = parse(text.replace('\n', "\r\n").as_bytes()) else {
        panic!()
    };
    assert_eq!(r.code, 200);
    assert!(r.reason.contains("простое"));
    let text = format!("SIP/2.0 100\n{BASE}CSeq: 1 INVITE\nContent-Length: 0\n\n");
    let Ok(Message::Response(r)) = parse(text.replace('\n', "\r\n").as_bytes()) else {
        panic!()
    };
    assert_eq!((r.code, r.reason.as_str()), (100, ""));
}

// IPv6 (RFC 5118), tel: URIs, +sip.instance and bare LF line ends.
#[test]
fn valid_ipv6_tel_outbound_and_lf() {
    let text = "REGISTER sip:[2001:db8::10] SIP/2.0\nVia: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3;rport\nFrom: <tel:+1-201-555-0123>;tag=a\nTo: <tel:+1-201-555-0123>\nCall-ID: v6@x\nCSeq: 1 REGISTER\nContact: <sip:[2001:db8::9:1]:5070>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1\nl: 0\n\n";
    // Bare LF: not CRLF, tolerated.
    let Ok(Message::Request(r)) = parse(text.as_bytes()) else {
        panic!("{:?}", parse(text.as_bytes()))
    };
    assert_eq!(r.top_via().unwrap().host, "[2001:db8::9:1]");
    assert!(matches!(r.from().unwrap().uri, Uri::Tel(_)));
}

#[test]
fn leading_crlf_is_skipped_and_keepalive_is_empty() {
    let text = format!(
        "\r\n\r\n{}",
        with_base("OPTIONS sip:a@b.c SIP/2.0", "1 OPTIONS", "").replace('\n', "\r\n")
    );
    assert!(parse(text.as_bytes()).is_ok());
    assert_eq!(parse(b"\r\n\r\n").unwrap_err().kind, ParseErrorKind::Empty);
}

// §3.1.2.x: invalid messages, each with the error that names it.
#[test]
fn invalid_messages_are_refused_with_a_reason() {
    let ok = with_base("INVITE sip:user@example.com SIP/2.0", "1 INVITE", "");
    let cases: Vec<(&str, String, ParseErrorKind, bool)> = vec![
        // clerr: Content-Length larger than the body.
        (
            "clerr",
            ok.replace("Content-Length: 0", "Content-Length: 9999"),
            ParseErrorKind::Truncated,
            true,
        ),
        // scalar02: negative Content-Length.
        (
            "scalar02",
            ok.replace("Content-Length: 0", "Content-Length: -999"),
            ParseErrorKind::BadContentLength,
            true,
        ),
        // scalarlg: overlarge scalars.
        (
            "scalarlg-cseq",
            ok.replace("CSeq: 1 INVITE", "CSeq: 36893488147419103232 INVITE"),
            ParseErrorKind::BadHeader(Name::CSeq, "CSeq number"),
            true,
        ),
        (
            "scalarlg-mf",
            ok.replace(
                "Content-Length",
                "Max-Forwards: 300000000000000000000\nContent-Length",
            ),
            ParseErrorKind::BadHeader(Name::MaxForwards, "not a number"),
            true,
        ),
        (
            "scalarlg-expires",
            ok.replace(
                "Content-Length",
                "Expires: 1000000000000000000000\nContent-Length",
            ),
            ParseErrorKind::BadHeader(Name::Expires, "not a number"),
            true,
        ),
        // quotbal: unbalanced quotes in a display name.
        (
            "quotbal",
            ok.replace(
                "To: <sip:b@example.com>",
                "To: \"Mr. J. User <sip:j.user@example.com>",
            ),
            ParseErrorKind::BadHeader(Name::To, "display name without <uri>"),
            true,
        ),
        // ltgtruri: Request-URI in angle brackets.
        (
            "ltgtruri",
            ok.replace(
                "INVITE sip:user@example.com SIP/2.0",
                "INVITE <sip:user@example.com> SIP/2.0",
            ),
            ParseErrorKind::BadRequestLine("bad Request-URI"),
            true,
        ),
        // lwsruri: whitespace in the Request-URI.
        (
            "lwsruri",
            ok.replace(
                "sip:user@example.com SIP",
                "sip:user@example.com;lr=yes x SIP",
            ),
            ParseErrorKind::BadRequestLine("extra whitespace"),
            true,
        ),
        // lwsstart: more than one SP between elements.
        (
            "lwsstart",
            ok.replace("INVITE sip", "INVITE  sip"),
            ParseErrorKind::BadRequestLine("extra whitespace"),
            true,
        ),
        // trws: trailing whitespace after the version.
        (
            "trws",
            ok.replace("SIP/2.0\n", "SIP/2.0 \n"),
            ParseErrorKind::BadRequestLine("extra whitespace"),
            true,
        ),
        // regbadct: a URI with '?' outside <> in Contact.
        (
            "regbadct",
            ok.replace(
                "Content-Length",
                "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\nContent-Length",
            ),
            ParseErrorKind::BadHeader(Name::Contact, "URI with '?' must be in <>"),
            true,
        ),
        // baddn: an unquoted display name with a comma.
        (
            "baddn",
            ok.replace(
                "From: <sip:a@example.com>;tag=1",
                "From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            ),
            ParseErrorKind::BadHeader(Name::From, "display name must be quoted"),
            true,
        ),
        // badaspec: text after the URI.
        (
            "badaspec",
            ok.replace("To: <sip:b@example.com>", "To: <sip:b@example.com> x"),
            ParseErrorKind::BadHeader(Name::To, "text after URI"),
            true,
        ),
        // badvers: another SIP version; 505.
        (
            "badvers",
            ok.replace("SIP/2.0\n", "SIP/7.0\n"),
            ParseErrorKind::BadVersion,
            true,
        ),
        // mismatch01: CSeq method differs from the request method.
        (
            "mismatch01",
            ok.replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS"),
            ParseErrorKind::CSeqMethodMismatch,
            true,
        ),
        // mismatch02: unknown method, and CSeq names another.
        (
            "mismatch02",
            ok.replace("INVITE sip", "NEWMETHOD sip"),
            ParseErrorKind::CSeqMethodMismatch,
            true,
        ),
        // insuf: missing headers; too little to answer.
        (
            "insuf",
            ok.replace("Call-ID: c1@192.0.2.1\n", ""),
            ParseErrorKind::MissingHeader(Name::CallId),
            false,
        ),
        (
            "dup-callid",
            ok.replace("Content-Length", "i: other@x\nContent-Length"),
            ParseErrorKind::DuplicateHeader(Name::CallId),
            true,
        ),
        (
            "bad-via",
            ok.replace(
                "Via: SIP/2.0/UDP 192.0.2.1:5060",
                "Via: SIP/2.0/UDP 192.0.2.1:port",
            ),
            ParseErrorKind::BadHeader(Name::Via, "Via port"),
            true,
        ),
        (
            "no-colon",
            ok.replace("Content-Length", "Garbage line\nContent-Length"),
            ParseErrorKind::BadHeaderLine,
            true,
        ),
        (
            "empty-list-item",
            ok.replace(
                "Content-Length",
                "Route: <sip:a@b>,,<sip:c@d>\nContent-Length",
            ),
            ParseErrorKind::BadHeaderLine,
            true,
        ),
        (
            "no-blank-line",
            ok.trim_end().to_string(),
            ParseErrorKind::Truncated,
            true,
        ),
    ];
    for (name, text, kind, can_answer) in cases {
        let e = bad(&text);
        assert_eq!(e.kind, kind, "{name}");
        assert_eq!(e.answerable.is_some(), can_answer, "{name}: answerable");
        if can_answer {
            let resp = e.response().unwrap();
            assert!(resp.code == 400 || resp.code == 505, "{name}");
            let wire = resp.encode();
            assert!(
                wire.starts_with(format!("SIP/2.0 {} {}\r\n", resp.code, e).as_bytes()),
                "{name}"
            );
            // The dialog headers are echoed as received, so the sender can match the answer.
            assert!(
                String::from_utf8_lossy(&wire).contains("Call-ID: "),
                "{name}"
            );
        }
    }
}

// §3.1.2.x "bigcode" and other broken status lines.
#[test]
fn invalid_responses() {
    for line in [
        "SIP/2.0 4294967301 better not break the receiver",
        "SIP/2.0 99 Too small",
        "SIP/2.0 2000 x",
        "SIP/2.0 abc x",
    ] {
        let text = format!("{line}\n{BASE}CSeq: 1 INVITE\nContent-Length: 0\n\n");
        let e = bad(&text);
        assert!(
            matches!(e.kind, ParseErrorKind::BadStatusLine(_)),
            "{line}: {e:?}"
        );
        assert!(e.answerable.is_none(), "responses are never answered");
    }
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = with_base("INVITE sip:user@example.com SIP/2.0", "1 INVITE", "")
        .replace('\n', "\r\n")
        .into_bytes();
    for _ in 0..20_000 {
        let mut msg = valid.clone();
        // Flip, cut or insert a few bytes of a valid message, or send pure noise.
        match next() % 4 {
            0 => msg.truncate((next() as usize) % msg.len()),
            1 => {
                for _ in 0..(next() % 8) {
                    let i = (next() as usize) % msg.len();
                    msg[i] = next() as u8;
                }
            }
            2 => {
                let i = (next() as usize) % msg.len();
                msg.splice(i..i, (0..next() % 64).map(|_| next() as u8));
            }
            _ => msg = (0..next() % 600).map(|_| next() as u8).collect(),
        }
        let _ = parse(&msg);
    }
    assert_eq!(
        parse(&vec![b'A'; MAX_MESSAGE + 1]).unwrap_err().kind,
        ParseErrorKind::TooLarge
    );
    let many_vias = format!(
        "{}{}",
        "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n".repeat(1000),
        "x"
    );
    assert!(parse(many_vias.as_bytes()).is_err());
}

#[test]
fn encode_round_trips() {
    let r = req(&with_base(
        "INVITE sip:user@[2001:db8::1]:5060 SIP/2.0",
        "1 INVITE",
        "Contact: <sip:a@192.0.2.1>\nv: SIP/2.0/TCP h2;branch=z9hG4bK2\n",
    ));
    let again = match parse(&r.encode()) {
        Ok(Message::Request(x)) => x,
        other => panic!("{other:?}"),
    };
    assert_eq!(again.headers.all(&Name::Via).count(), 2);
    assert_eq!(again.uri, r.uri);
    assert_eq!(
        again.headers.get(&Name::Contact),
        r.headers.get(&Name::Contact)
    );
}

#[test]
fn a_dialog_making_response_keeps_the_record_route() {
    let rr = "Record-Route: <sip:p1.example;lr>\nRecord-Route: <sip:p2.example;lr>\n";
    let sub = req(&with_base("SUBSCRIBE sip:a@b SIP/2.0", "1 SUBSCRIBE", rr));
    let ok = sub.response(200, "OK");
    assert_eq!(
        ok.headers.all(&Name::RecordRoute).collect::<Vec<_>>(),
        ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    );
    assert_eq!(
        sub.response(403, "Forbidden")
            .headers
            .get(&Name::RecordRoute),
        None
    );
    let msg = req(&with_base("MESSAGE sip:a@b SIP/2.0", "1 MESSAGE", rr));
    assert_eq!(
        msg.response(200, "OK").headers.get(&Name::RecordRoute),
        None
    );
}
