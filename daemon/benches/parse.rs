//! Parse + normalise throughput for a typical INVITE (with SDP, compact and folded headers
//! mixed in). `cargo bench -p voipd --bench parse`. Target: ≥ 200,000 messages/s on a core.

use std::hint::black_box;
use std::time::{Duration, Instant};

use voipd::sip::message::{Message, parse};

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/TCP proxy.atlanta.example.com;branch=z9hG4bK7a8e2, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKe1\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
m: <sip:alice@pc33.atlanta.example.com;transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n\
Record-Route: <sip:proxy.atlanta.example.com;lr>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
Supported: replaces, timer\r\n\
User-Agent: bench\r\n\
Subject: lunch\r\n\
\x20and more\r\n\
c: application/sdp\r\n\
l: LEN\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0 8 9 111 101\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn main() {
    let body_len = INVITE.split("\r\n\r\n").nth(1).map_or(0, str::len);
    let text = INVITE.replace("LEN", &body_len.to_string());
    let bytes = text.as_bytes();
    assert!(
        matches!(parse(bytes), Ok(Message::Request(_))),
        "the bench message must parse: {:?}",
        parse(bytes).err()
    );
    // Warm up, then run for a fixed time.
    for _ in 0..10_000 {
        black_box(parse(black_box(bytes)).ok());
    }
    let mut n = 0u64;
    let start = Instant::now();
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    while start.elapsed() < Duration::from_secs(secs) {
        for _ in 0..1000 {
            black_box(parse(black_box(bytes)).ok());
        }
        n += 1000;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "parse+normalise, {}-byte INVITE: {:.0} messages/s ({:.2} µs each, one core)",
        bytes.len(),
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}
