//! Fuzzes the video depacketizers (`voipd::media::video::{vp8_payload, h264_payload}`):
//! the input is a stream of packets, each a 4-byte record (sequence step, timestamp step,
//! marker, length) and that many payload bytes. Whatever comes out must be within the
//! bound given, and a frame cut by our own packetizer must come back whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voipd::media::video::h264_payload::{self, H264Depacketizer, PacketizationMode};
use voipd::media::video::vp8_payload::{self, Vp8Depacketizer};

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut vp8 = Vp8Depacketizer::new(MAX);
    let mut h264 = H264Depacketizer::new(MAX);
    let (mut seq, mut ts) = (0u16, 0u32);
    let mut rest = data;
    while let [dseq, dts, marker, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(n);
        seq = seq.wrapping_add(u16::from(*dseq & 3));
        ts = ts.wrapping_add(u32::from(*dts & 1) * 3000);
        let m = marker & 1 == 1;
        if let Ok(Some(f)) = vp8.push(seq, ts, m, payload) {
            assert!(f.data.len() <= MAX);
        }
        if let Ok(Some(f)) = h264.push(seq, ts, m, payload) {
            assert!(f.data.len() <= MAX);
        }
        rest = next;
    }

    // Round trips: the input as one VP8 frame, and as an Annex B access unit.
    if !data.is_empty() && data.len() <= MAX {
        let mut d = Vp8Depacketizer::new(MAX);
        let packets = vp8_payload::packetize(data, 7, 200);
        let n = packets.len();
        let mut out = None;
        for (i, p) in packets.iter().enumerate() {
            out = d.push(i as u16, 1, i + 1 == n, p).expect("our own packets");
        }
        assert_eq!(out.expect("a frame").data, data);

        let units = h264_payload::nal_units(data);
        // Units our packetizer is given: an encoder's, types 1 to 23.
        let ok_units = units
            .iter()
            .all(|u| u[0] & 0x80 == 0 && (1..=23).contains(&(u[0] & 0x1f)));
        if !units.is_empty() && ok_units {
            let mut d = H264Depacketizer::new(4 * MAX);
            for mode in [PacketizationMode::Single, PacketizationMode::NonInterleaved] {
                let packets = h264_payload::packetize(data, mode, 200);
                let n = packets.len();
                let mut out = None;
                for (i, p) in packets.iter().enumerate() {
                    out = d.push(i as u16, 1, i + 1 == n, p).ok().flatten();
                }
                let out = out.expect("an access unit");
                assert_eq!(h264_payload::nal_units(&out.data), units);
            }
        }
    }
});
