//! H.264 (Constrained Baseline) through Cisco's OpenH264, built from the source the
//! `openh264` crate bundles (Debian's libopenh264 2.3 is older than the ABI the crate's
//! bindings describe). One thread per coder: the media engine's tick is the thread.
//!
//! Unsafe code only where the crate leaves OpenH264's C API bare (a new bitrate).
#![allow(unsafe_code)]

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::{YUVSlices, YUVSource};

use super::frame::{Frame, chroma_size};
use super::{Encoded, VideoError};

/// Slices at most this long fit one RTP packet: packetization-mode 0 needs no FU-A.
pub const MAX_SLICE: u32 = 1200;

/// An H.264 encoder at one size.
pub struct H264Encoder {
    enc: Encoder,
    width: usize,
    height: usize,
}

impl H264Encoder {
    /// An encoder for `width`×`height` pictures at `fps`, about `kbps`, with an IDR at
    /// least every `key_interval` frames and slices that fit a packet.
    pub fn new(
        width: usize,
        height: usize,
        fps: f32,
        kbps: u32,
        key_interval: u32,
    ) -> Result<H264Encoder, VideoError> {
        let bad = |why: String| VideoError::Encoder {
            codec: "H.264",
            why,
        };
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(bad(format!("size {width}x{height}")));
        }
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(kbps.max(30) * 1000))
            .max_frame_rate(FrameRate::from_hz(fps))
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .profile(Profile::Baseline)
            .complexity(Complexity::Low)
            .intra_frame_period(IntraFramePeriod::from_num_frames(key_interval.max(1)))
            .max_slice_len(MAX_SLICE)
            // Rate control needs leave to skip a frame (it then returns none).
            .skip_frames(true)
            .num_threads(1);
        let enc = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| bad(e.to_string()))?;
        Ok(H264Encoder { enc, width, height })
    }

    /// The next frame is an IDR.
    pub fn request_key_frame(&mut self) {
        self.enc.force_intra_frame();
    }

    /// A new target rate, from the next frame on.
    pub fn set_kbps(&mut self, kbps: u32) -> Result<(), VideoError> {
        let mut info = openh264_sys2::SBitrateInfo {
            iLayer: openh264_sys2::SPATIAL_LAYER_ALL,
            iBitrate: i32::try_from(kbps.max(30).saturating_mul(1000)).unwrap_or(i32::MAX),
        };
        // SAFETY: the encoder object exists from `new` (before its first picture OpenH264
        // refuses options it cannot apply yet: an error, not a fault); `info` outlives the
        // call, which copies it; ENCODER_OPTION_BITRATE reads an SBitrateInfo.
        let rc = unsafe {
            self.enc.raw_api().set_option(
                openh264_sys2::ENCODER_OPTION_BITRATE,
                std::ptr::addr_of_mut!(info).cast(),
            )
        };
        match rc {
            0 => Ok(()),
            rc => Err(VideoError::Encoder {
                codec: "H.264",
                why: format!("bitrate {kbps} kbit/s refused ({rc})"),
            }),
        }
    }

    /// Encodes a picture of the encoder's size: an access unit in Annex B. None: the
    /// encoder skipped it.
    pub fn encode(&mut self, f: &Frame) -> Result<Option<Encoded>, VideoError> {
        let bad = |why: String| VideoError::Encoder {
            codec: "H.264",
            why,
        };
        if (f.width, f.height) != (self.width, self.height)
            || f.data.len() != Frame::len_for(f.width, f.height)
        {
            return Err(bad(format!(
                "a {}x{} picture for a {}x{} encoder",
                f.width, f.height, self.width, self.height
            )));
        }
        let (y, u, v) = f.planes();
        let (cw, _) = chroma_size(f.width, f.height);
        let src = YUVSlices::new((y, u, v), (f.width, f.height), (f.width, cw, cw));
        let bits = self.enc.encode(&src).map_err(|e| bad(e.to_string()))?;
        let key = matches!(bits.frame_type(), FrameType::IDR | FrameType::I);
        if matches!(bits.frame_type(), FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        let data = bits.to_vec();
        Ok((!data.is_empty()).then_some(Encoded { data, key }))
    }
}

/// An H.264 decoder.
pub struct H264Decoder {
    dec: Decoder,
}

impl H264Decoder {
    /// A decoder on the caller's thread, without error concealment: a broken picture is
    /// an error (a key frame is asked for) rather than a smeared one.
    pub fn new() -> Result<H264Decoder, VideoError> {
        let config = DecoderConfig::new();
        let dec = Decoder::with_api_config(OpenH264API::from_source(), config).map_err(|e| {
            VideoError::Decoder {
                codec: "H.264",
                why: e.to_string(),
            }
        })?;
        Ok(H264Decoder { dec })
    }

    /// Decodes one access unit (Annex B). Err: broken, a key frame is needed; None:
    /// nothing to show yet.
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<Frame>, VideoError> {
        let bad = |why: String| VideoError::Decoder {
            codec: "H.264",
            why,
        };
        let Some(pic) = self
            .dec
            .decode(access_unit)
            .map_err(|e| bad(e.to_string()))?
        else {
            return Ok(None);
        };
        let (w, h) = pic.dimensions();
        let (ys, us, vs) = pic.strides();
        Frame::from_strided(w, h, [(pic.y(), ys), (pic.u(), us), (pic.v(), vs)])
            .map(Some)
            .ok_or_else(|| bad("a picture smaller than its size".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::h264_payload::{H264Depacketizer, PacketizationMode, packetize};
    use crate::media::video::pattern::TestPattern;
    use std::time::Duration;

    #[test]
    fn pictures_survive_encoding_packets_and_decoding_in_both_modes() {
        let (w, h) = (320, 240);
        let p = TestPattern::new(w, h);
        for mode in [PacketizationMode::Single, PacketizationMode::NonInterleaved] {
            let mut enc = H264Encoder::new(w, h, 15.0, 600, 30).unwrap();
            let mut dec = H264Decoder::new().unwrap();
            let mut depack = H264Depacketizer::new(1 << 20);
            let mut seq = 0u16;
            let mut decoded = 0;
            for i in 0..20u32 {
                if i == 10 {
                    enc.request_key_frame();
                }
                let pic = p.picture(Duration::from_millis(u64::from(i) * 66));
                let Some(e) = enc.encode(&pic).unwrap() else {
                    continue;
                };
                assert_eq!(e.key, i == 0 || i == 10, "frame {i}");
                let packets = packetize(&e.data, mode, 1200);
                if mode == PacketizationMode::Single {
                    assert!(packets.iter().all(|p| (1..=23).contains(&(p[0] & 0x1f))));
                }
                let n = packets.len();
                let mut whole = None;
                for (k, pk) in packets.iter().enumerate() {
                    whole = depack.push(seq, i * 6000, k + 1 == n, pk).unwrap();
                    seq = seq.wrapping_add(1);
                }
                let whole = whole.unwrap();
                assert_eq!(whole.key, e.key, "frame {i}");
                if let Some(out) = dec.decode(&whole.data).unwrap() {
                    let psnr = pic.psnr(&out).unwrap();
                    assert!(psnr > 30.0, "frame {i}: {psnr:.1} dB");
                    decoded += 1;
                }
            }
            assert!(decoded >= 18, "{mode:?}: {decoded}");
        }
    }

    #[test]
    fn garbage_is_refused_not_crashed_on() {
        let mut dec = H264Decoder::new().unwrap();
        let mut state = 7u32;
        for len in [1usize, 4, 10, 100, 1000, 5000] {
            let mut junk = vec![0, 0, 0, 1];
            junk.extend((0..len).map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (state >> 16) as u8
            }));
            let _ = dec.decode(&junk);
        }
        let p = TestPattern::new(64, 64);
        let mut enc = H264Encoder::new(64, 64, 15.0, 200, 10).unwrap();
        let e = enc.encode(&p.picture(Duration::ZERO)).unwrap().unwrap();
        enc.set_kbps(100).unwrap();
        assert!(enc.encode(&p.picture(Duration::from_millis(66))).is_ok());
        let mut fresh = H264Decoder::new().unwrap();
        assert!(fresh.decode(&e.data).unwrap().is_some());
        assert!(enc.encode(&Frame::black(16, 16)).is_err());
    }
}
