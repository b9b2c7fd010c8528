//! Where a stream's outgoing audio comes from: silence, a tone, a WAV file (looped or
//! once) or a sound device's capture, one 20 ms frame at a time at the codec's rate.

use std::sync::Arc;

use super::device;
use super::tone::Tone;
use super::wav;
use crate::config::AudioEndpoint;

/// A stream's audio source.
pub(super) enum Source {
    Silence,
    Tone(Tone),
    File {
        /// As read, and at the rate being sent: shared, not copied, where they are the
        /// same (a prompt made at the codec's rate starts without a copy on the tick).
        original: Arc<[i16]>,
        original_rate: u32,
        samples: Arc<[i16]>,
        pos: usize,
        looping: bool,
    },
    Device {
        capture: rtrb::Consumer<i16>,
        scratch: Vec<i16>,
    },
}

impl Source {
    pub(super) fn open(ep: &AudioEndpoint, rate: u32) -> Source {
        match ep {
            AudioEndpoint::Tone(f) => Source::Tone(Tone::new(*f, rate)),
            AudioEndpoint::File(p) | AudioEndpoint::FileOnce(p) => match wav::read(p) {
                Ok((samples, r)) if !samples.is_empty() => {
                    let original: Arc<[i16]> = samples.into();
                    Source::File {
                        samples: at_rate(&original, r, rate),
                        original,
                        original_rate: r,
                        pos: 0,
                        looping: matches!(ep, AudioEndpoint::File(_)),
                    }
                }
                Ok(_) => Source::Silence,
                Err(e) => {
                    tracing::warn!("audio input {e}; sending silence");
                    Source::Silence
                }
            },
            AudioEndpoint::Prompt(p) => Source::File {
                samples: at_rate(&p.samples, p.rate, rate),
                original: p.samples.clone(),
                original_rate: p.rate,
                pos: 0,
                looping: false,
            },
            // A device that could not be opened, or none wanted; a recorder is output only.
            AudioEndpoint::Default
            | AudioEndpoint::Device(_)
            | AudioEndpoint::Null
            | AudioEndpoint::Record(_) => Source::Silence,
        }
    }

    /// Goes on at another codec rate (a re-INVITE changed the codec), without going back
    /// to the disk: this runs on the engine's shared tick.
    pub(super) fn retarget(&mut self, rate: u32) {
        match self {
            Source::Tone(t) => t.set_rate(rate),
            Source::File {
                original,
                original_rate,
                samples,
                pos,
                ..
            } => {
                let done = *pos as f64 / samples.len().max(1) as f64;
                *samples = at_rate(original, *original_rate, rate);
                *pos = (done * samples.len() as f64) as usize;
            }
            // The device runs at its own rate, converted per frame.
            Source::Silence | Source::Device { .. } => {}
        }
    }

    /// A file played once has played to its end.
    pub(super) fn finished(&self) -> bool {
        match self {
            Source::File {
                samples,
                pos,
                looping,
                ..
            } => !looping && *pos >= samples.len(),
            Source::Silence | Source::Tone(_) | Source::Device { .. } => false,
        }
    }

    pub(super) fn fill(&mut self, out: &mut [i16]) {
        match self {
            Source::Silence => out.fill(0),
            Source::Tone(t) => t.fill(out),
            // Loops, or plays once and then stays silent; the call goes on either way.
            Source::File {
                samples,
                pos,
                looping,
                ..
            } => {
                for s in out {
                    *s = samples.get(*pos).copied().unwrap_or(0);
                    *pos += 1;
                    if *pos >= samples.len() && *looping {
                        *pos = 0;
                    }
                }
            }
            Source::Device { capture, scratch } => {
                // This frame's worth at the device rate; a backlog beyond two frames is
                // dropped so that delay cannot build up, a shortfall is padded.
                let want = device::DEVICE_RATE as usize / 50;
                let backlog = capture.slots().saturating_sub(2 * want);
                if backlog > 0
                    && let Ok(chunk) = capture.read_chunk(backlog)
                {
                    chunk.commit_all();
                }
                scratch.clear();
                while scratch.len() < want {
                    match capture.pop() {
                        Ok(s) => scratch.push(s),
                        Err(_) => break,
                    }
                }
                scratch.resize(want, 0);
                device::convert_into(scratch, out);
            }
        }
    }
}

/// `samples` at `to`: the same ones when the rate is already right.
fn at_rate(samples: &Arc<[i16]>, from: u32, to: u32) -> Arc<[i16]> {
    if from == to {
        samples.clone()
    } else {
        resample(samples, from, to).into()
    }
}

/// Linear interpolation between rates; good enough for prompts and test tones.
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    let mut out = Vec::new();
    resample_into(samples, from, to, &mut out);
    out
}

/// [`resample`] into `out` (cleared first), which keeps its room from frame to frame.
pub fn resample_into(samples: &[i16], from: u32, to: u32, out: &mut Vec<i16>) {
    out.clear();
    if from == to || from == 0 || samples.is_empty() {
        out.extend_from_slice(samples);
        return;
    }
    let n = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    out.extend((0..n).map(|i| {
        let pos = i as f64 * f64::from(from) / f64::from(to);
        let (a, frac) = (pos.floor() as usize, pos.fract());
        let x = f64::from(samples[a.min(samples.len() - 1)]);
        let y = f64::from(samples[(a + 1).min(samples.len() - 1)]);
        (x + (y - x) * frac) as i16
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::wav::WavWriter;

    #[test]
    fn a_file_plays_in_a_loop_or_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        let mut w = WavWriter::create(&p, 8000).unwrap();
        w.write(&[1, 2, 3]).unwrap();
        w.finish(8000).unwrap();
        let mut out = [0i16; 7];
        Source::open(&AudioEndpoint::File(p.clone()), 8000).fill(&mut out);
        assert_eq!(out, [1, 2, 3, 1, 2, 3, 1]);
        let mut once = Source::open(&AudioEndpoint::FileOnce(p), 8000);
        once.fill(&mut out);
        assert_eq!(out, [1, 2, 3, 0, 0, 0, 0]);
        once.fill(&mut out);
        assert_eq!(out, [0; 7], "then silence, for as long as the call lasts");
    }
}
