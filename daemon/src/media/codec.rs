//! The audio codecs: one table of what each is (its names, rates and payload type), and
//! one interface over them: G.711 µ/A-law, G.722 (ezk-g722's port of the ITU reference)
//! and Opus (libopus). 20 ms frames; each codec at its own sample rate.

use ezk_g722::libg722::{Bitrate, decoder::Decoder as G722Dec, encoder::Encoder as G722Enc};
use serde::Deserialize;

use super::g711;

/// An audio codec voipd speaks. The configuration names them in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Opus,
    G722,
    Pcmu,
    Pcma,
}

/// What one codec is, for SDP and for RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecInfo {
    pub codec: Codec,
    /// The rtpmap encoding name, as we write it (compared without case).
    pub encoding: &'static str,
    /// The RTP clock (and rtpmap rate): not always the sample rate; G.722 runs at 16 kHz
    /// with an 8 kHz clock, by an old mistake in RFC 1890.
    pub clock: u32,
    /// Audio samples per second the codec works at.
    pub sample_rate: u32,
    /// The payload type we offer: the static one (RFC 3551) where there is one.
    pub pt: u8,
    /// Whether the type is static, so that an SDP may list it without an rtpmap.
    pub static_pt: bool,
    /// The rtpmap's channel count, where it must be written (Opus is always "/2").
    pub channels: Option<u8>,
}

/// Every codec, in the order voipd prefers them by default.
pub const CODECS: [CodecInfo; 4] = [
    CodecInfo {
        codec: Codec::Opus,
        encoding: "opus",
        clock: 48_000,
        sample_rate: 48_000,
        pt: 111,
        static_pt: false,
        channels: Some(2),
    },
    CodecInfo {
        codec: Codec::G722,
        encoding: "G722",
        clock: 8000,
        sample_rate: 16_000,
        pt: 9,
        static_pt: true,
        channels: None,
    },
    CodecInfo {
        codec: Codec::Pcmu,
        encoding: "PCMU",
        clock: 8000,
        sample_rate: 8000,
        pt: 0,
        static_pt: true,
        channels: None,
    },
    CodecInfo {
        codec: Codec::Pcma,
        encoding: "PCMA",
        clock: 8000,
        sample_rate: 8000,
        pt: 8,
        static_pt: true,
        channels: None,
    },
];

impl Codec {
    /// This codec's line in the table.
    pub fn info(self) -> &'static CodecInfo {
        match self {
            Codec::Opus => &CODECS[0],
            Codec::G722 => &CODECS[1],
            Codec::Pcmu => &CODECS[2],
            Codec::Pcma => &CODECS[3],
        }
    }

    /// The codec an rtpmap names (encoding without case, and clock rate).
    pub fn from_rtpmap(encoding: &str, clock: u32) -> Option<Codec> {
        CODECS
            .iter()
            .find(|c| c.encoding.eq_ignore_ascii_case(encoding) && c.clock == clock)
            .map(|c| c.codec)
    }

    /// The codec a static payload type means without an rtpmap.
    pub fn from_static_pt(pt: u8) -> Option<Codec> {
        CODECS
            .iter()
            .find(|c| c.static_pt && c.pt == pt)
            .map(|c| c.codec)
    }

    /// Its name as people see it (the rtpmap encoding).
    pub fn name(self) -> &'static str {
        self.info().encoding
    }
}

/// Audio samples per second the codec works at.
pub fn sample_rate(c: Codec) -> u32 {
    c.info().sample_rate
}

/// The codec's RTP clock rate.
pub fn rtp_clock(c: Codec) -> u32 {
    c.info().clock
}

/// Samples in a 20 ms frame at the codec's sample rate.
pub fn frame_len(c: Codec) -> usize {
    (sample_rate(c) / 50) as usize
}

#[derive(Debug, thiserror::Error)]
#[error("{codec:?}: {message}")]
pub struct CodecError {
    codec: Codec,
    message: String,
}

enum State {
    Pcmu,
    Pcma,
    G722(Box<G722Enc>, Box<G722Dec>),
    Opus(opus::Encoder, opus::Decoder),
}

pub struct Transcoder {
    codec: Codec,
    state: State,
    /// The last decoded frame, for concealment when a packet is missing.
    last: Vec<i16>,
}

impl Transcoder {
    /// `fec` and `dtx`: what the far side's Opus fmtp asked for.
    pub fn new(codec: Codec, fec: bool, dtx: bool) -> Result<Transcoder, CodecError> {
        let err = |e: opus::Error| CodecError {
            codec,
            message: e.to_string(),
        };
        let state = match codec {
            Codec::Pcmu => State::Pcmu,
            Codec::Pcma => State::Pcma,
            Codec::G722 => State::G722(
                Box::new(G722Enc::new(Bitrate::Mode1_64000, false, false)),
                Box::new(G722Dec::new(Bitrate::Mode1_64000, false, false)),
            ),
            Codec::Opus => {
                let mut enc =
                    opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
                        .map_err(err)?;
                enc.set_inband_fec(fec).map_err(err)?;
                if fec {
                    enc.set_packet_loss_perc(10).map_err(err)?;
                }
                enc.set_dtx(dtx).map_err(err)?;
                let dec = opus::Decoder::new(48_000, opus::Channels::Mono).map_err(err)?;
                State::Opus(enc, dec)
            }
        };
        Ok(Transcoder {
            codec,
            state,
            last: vec![0; frame_len(codec)],
        })
    }

    /// Encodes one frame into `out` (cleared first).
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        out.clear();
        match &mut self.state {
            State::Pcmu => out.extend(pcm.iter().map(|s| g711::ulaw_encode(*s))),
            State::Pcma => out.extend(pcm.iter().map(|s| g711::alaw_encode(*s))),
            State::G722(enc, _) => out.extend(enc.encode(pcm)),
            State::Opus(enc, _) => {
                out.resize(1275, 0);
                let n = enc.encode(pcm, out).unwrap_or(0);
                out.truncate(n);
            }
        }
    }

    /// Decodes a payload, appending to `out`. Malformed payloads decode to nothing.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        let start = out.len();
        match &mut self.state {
            State::Pcmu => out.extend(payload.iter().map(|b| g711::ulaw_decode(*b))),
            State::Pcma => out.extend(payload.iter().map(|b| g711::alaw_decode(*b))),
            State::G722(_, dec) => out.extend(dec.decode(payload)),
            State::Opus(_, dec) => {
                let mut buf = [0i16; 5760];
                if let Ok(n) = dec.decode(payload, &mut buf, false) {
                    out.extend_from_slice(&buf[..n]);
                }
            }
        }
        if out.len() > start {
            self.last.clear();
            self.last.extend_from_slice(&out[start..]);
        }
    }

    /// A frame standing in for a lost packet: Opus's own concealment (or FEC from `next`,
    /// the packet after the gap, when it carries it); otherwise the last frame, fading.
    pub fn conceal(&mut self, next: Option<&[u8]>, out: &mut Vec<i16>) {
        let n = frame_len(self.codec);
        if let State::Opus(_, dec) = &mut self.state {
            let mut buf = vec![0i16; n];
            let got = match next {
                Some(p) => dec.decode(p, &mut buf, true),
                None => dec.decode(&[], &mut buf, false),
            };
            if let Ok(k) = got {
                out.extend_from_slice(&buf[..k]);
                return;
            }
        }
        for s in &mut self.last {
            *s /= 2;
        }
        out.extend_from_slice(&self.last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::Tone;

    fn goertzel(x: &[i16], f: f64, rate: u32) -> f64 {
        let k = 2.0 * (std::f64::consts::TAU * f / f64::from(rate)).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for v in x {
            let s0 = f64::from(*v) + k * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - k * s1 * s2
    }

    #[test]
    fn the_table_names_each_codec_once() {
        for c in CODECS {
            assert_eq!(c.codec.info(), &c);
            assert_eq!(Codec::from_rtpmap(c.encoding, c.clock), Some(c.codec));
        }
        assert_eq!(Codec::from_static_pt(9), Some(Codec::G722));
        assert_eq!(Codec::from_static_pt(111), None, "Opus has no static type");
    }

    #[test]
    fn every_codec_carries_a_tone() {
        for codec in [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus] {
            let rate = sample_rate(codec);
            let mut t = Transcoder::new(codec, true, false).unwrap();
            let mut tone = Tone::new(1000.0, rate);
            let (mut pcm, mut payload, mut out) =
                (vec![0i16; frame_len(codec)], Vec::new(), Vec::new());
            for _ in 0..50 {
                tone.fill(&mut pcm);
                t.encode(&pcm, &mut payload);
                assert!(!payload.is_empty(), "{codec:?} produced nothing");
                t.decode(&payload, &mut out);
            }
            // Skip the codecs' start-up, then compare 1000 Hz with a neighbour.
            let tail = &out[out.len() / 2..];
            let (on, off) = (goertzel(tail, 1000.0, rate), goertzel(tail, 1500.0, rate));
            assert!(
                on > 100.0 * off,
                "{codec:?}: 1000 Hz {on:e} vs 1500 Hz {off:e}"
            );
            assert_eq!(out.len(), 50 * frame_len(codec), "{codec:?}");
            let before = out.len();
            t.conceal(None, &mut out);
            assert_eq!(
                out.len() - before,
                frame_len(codec),
                "{codec:?}: one frame of concealment"
            );
        }
    }
}
