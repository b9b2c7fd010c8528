//! The audio codecs behind one interface: G.711 µ/A-law, G.722 (ezk-g722's port of the
//! ITU reference) and Opus (libopus). 20 ms frames; each codec at its own sample rate.

use ezk_g722::libg722::{Bitrate, decoder::Decoder as G722Dec, encoder::Encoder as G722Enc};

use super::g711;
use crate::config::Codec;

/// Audio samples per second the codec works at (not its RTP clock: G.722 runs at 16 kHz
/// with an 8 kHz clock, by an old mistake in RFC 1890).
pub fn sample_rate(c: Codec) -> u32 {
    match c {
        Codec::Pcmu | Codec::Pcma => 8000,
        Codec::G722 => 16_000,
        Codec::Opus => 48_000,
    }
}

pub fn rtp_clock(c: Codec) -> u32 {
    match c {
        Codec::Opus => 48_000,
        _ => 8000,
    }
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
