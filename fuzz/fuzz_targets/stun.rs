//! Fuzzes what a STUN server's answer may be at an RTP port (`voipd::media::stun`): the
//! input as a datagram is classified (`is_stun`) and read as a Binding answer; one that
//! gives an address, written again as our own answer, reads back the same; a mapping
//! watch fed the input from its server takes it or not, without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voipd::media::stun::{self, MappingWatch};

fuzz_target!(|data: &[u8]| {
    let looks = stun::is_stun(data);
    if let Some((id, answer)) = stun::read_answer(data) {
        assert!(looks, "read as STUN without looking like it");
        if let Ok(addr) = answer {
            let again = stun::success_answer(id, addr);
            match stun::read_answer(&again) {
                Some((id2, Ok(addr2))) => assert!(id2 == id && addr2 == addr),
                other => panic!("our answer for {addr} reads as {other:?}"),
            }
        }
    }
    let server = "203.0.113.1:3478".parse().expect("addr");
    let mapped = "203.0.113.10:20000".parse().expect("addr");
    let mut w = MappingWatch::new(server, mapped, std::time::Duration::ZERO);
    let _ = w.due(std::time::Instant::now());
    let _ = w.input(data, server);
});
