//! Fuzzes digest challenge parsing (`voipd::sip::auth::Challenge::parse`, over
//! `voipd::sip::message::DigestParams::parse`) with the input as a WWW-Authenticate /
//! Proxy-Authenticate value (lossy UTF-8), alone and in a 401. The Authorization value we
//! answer with must parse back to the same realm, nonce, opaque, algorithm and qop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voipd::sip::auth::Challenge;
use voipd::sip::message::{DigestParams, Headers, Name, Response};

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let _ = DigestParams::parse(&value);
    if let Ok(ch) = Challenge::parse(&value) {
        let answer = ch.answer(
            "alice",
            "alicepw",
            "REGISTER",
            "sip:voipd.test",
            1,
            "0a4f113b",
        );
        let back = Challenge::parse(&answer)
            .unwrap_or_else(|e| panic!("our answer does not parse: {e}\n{answer}"));
        // The answer carries no stale flag.
        let want = Challenge {
            stale: false,
            ..ch
        };
        assert_eq!(back, want, "answer: {answer}");
    }

    let mut headers = Headers::default();
    headers.push(Name::WwwAuthenticate, &*value);
    let resp = Response {
        code: 401,
        reason: "Unauthorized".into(),
        headers,
        body: Vec::new(),
    };
    let _ = Challenge::of_response(&resp, None);
    let _ = Challenge::of_response(&resp, Some("voipd.test"));
});
