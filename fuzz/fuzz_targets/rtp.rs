//! Fuzzes RTP header parsing (`voipd::media::rtp::RtpPacket::parse`) with the input as one
//! datagram (a parsed packet, written again, must parse to the same fields and payload),
//! and the reception statistics (`voipd::media::rtcp::Reception`) with the input read as a
//! stream of 12-byte records: SSRC choice and report flag, sequence number, RTP timestamp,
//! arrival time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voipd::media::rtcp::Reception;
use voipd::media::rtp::RtpPacket;

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(data) {
        let mut out = Vec::new();
        p.write(&mut out);
        assert_eq!(RtpPacket::parse(&out), Ok(p), "written: {out:02x?}");
    }

    let mut r = Reception::default();
    for rec in data.chunks_exact(12) {
        let ssrc = u32::from(rec[0] & 1);
        let seq = u16::from_be_bytes([rec[2], rec[3]]);
        r.packet(ssrc, seq, be32(&rec[4..8]), be32(&rec[8..12]));
        if rec[1] & 1 == 1 {
            let _ = r.report();
        }
        let _ = (r.lost(), r.jitter());
    }
    let _ = r.report();
});
