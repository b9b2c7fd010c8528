//! Fuzzes a video stream's receiving half (`voipd::media::video::pipeline::VideoReceiver`)
//! down into the C decoders: the depacketizer, then libvpx (VP8) and OpenH264 (H.264) on
//! whatever frames it puts together. The input is a stream of packets as for
//! `video_payload`: a 4-byte record (sequence step, timestamp step, marker, length) and that
//! many payload bytes. Nothing may crash; what comes out is a picture of a sane size.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use voipd::media::rtp::RtpPacket;
use voipd::media::video::VideoCodec;
use voipd::media::video::pipeline::VideoReceiver;

fuzz_target!(|data: &[u8]| {
    for codec in [VideoCodec::Vp8, VideoCodec::H264] {
        let Ok(mut rx) = VideoReceiver::new(codec, true) else {
            return;
        };
        let (mut seq, mut ts) = (0u16, 0u32);
        let mut now = Instant::now();
        let mut rest = data;
        while let [dseq, dts, marker, len, tail @ ..] = rest {
            let n = usize::from(*len).min(tail.len());
            let (payload, next) = tail.split_at(n);
            seq = seq.wrapping_add(u16::from(*dseq & 3));
            ts = ts.wrapping_add(u32::from(*dts & 1) * 3000);
            now += Duration::from_millis(10);
            let p = RtpPacket {
                marker: marker & 1 == 1,
                pt: 96,
                seq,
                timestamp: ts,
                ssrc: 1,
                payload,
            };
            let (picture, _) = rx.packet(&p, now);
            if let Some(f) = picture {
                assert!(f.width > 0 && f.height > 0 && f.width <= 16384 && f.height <= 16384);
                assert_eq!(f.data.len(), voipd::media::video::Frame::len_for(f.width, f.height));
            }
            rest = next;
        }
    }
});
