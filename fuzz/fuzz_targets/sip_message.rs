//! Fuzzes the SIP message parser (`voipd::sip::message::parse`) with whole datagrams: a
//! parsed message's accessors, the error response a refused request gets, the challenge a
//! 401/407 carries, an SDP body, and the round trip: what `encode` writes must parse again
//! and encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voipd::sdp::Sdp;
use voipd::sip::auth::Challenge;
use voipd::sip::message::{MAX_MESSAGE, Message, SipHeaders, parse};

fn encode(m: &Message) -> Vec<u8> {
    match m {
        Message::Request(r) => r.encode(),
        Message::Response(r) => r.encode(),
    }
}

fn accessors(h: &impl SipHeaders) {
    let _ = (h.call_id(), h.cseq(), h.top_via(), h.from(), h.to());
}

fuzz_target!(|data: &[u8]| {
    let msg = match parse(data) {
        Ok(m) => m,
        Err(e) => {
            // A refused request is answered with a 400/505/513 built from its headers.
            if let Some(r) = e.response() {
                let _ = r.encode();
            }
            return;
        }
    };
    match &msg {
        Message::Request(r) => {
            accessors(r);
            let _ = r.response(200, "OK").encode();
        }
        Message::Response(r) => {
            accessors(r);
            let _ = Challenge::of_response(r, None);
        }
    }
    let body = match &msg {
        Message::Request(r) => &r.body,
        Message::Response(r) => &r.body,
    };
    let _ = Sdp::parse(body);

    // Round trip. Expanded compact names and split list headers can make the encoding
    // longer than the input, past what parse() accepts at all.
    let wire = encode(&msg);
    if wire.len() > MAX_MESSAGE {
        return;
    }
    let again = parse(&wire).unwrap_or_else(|e| {
        panic!(
            "an encoded message does not parse again: {e}\n{}",
            String::from_utf8_lossy(&wire)
        )
    });
    let rewire = encode(&again);
    assert!(
        rewire == wire,
        "encode(parse(encode(m))) != encode(m):\n{}\n----\n{}",
        String::from_utf8_lossy(&wire),
        String::from_utf8_lossy(&rewire)
    );
});
