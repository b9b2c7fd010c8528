//! Audio for the answering machine: the prompt it plays (a greeting, then a beep) and the
//! recorder it takes the caller's message with, which the call watches for silence, the
//! length limit and a failed disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use super::tone::Tone;
use super::wav::WavWriter;

/// Audio held in memory and played once: a greeting read when the configuration is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub samples: Arc<[i16]>,
    pub rate: u32,
}

/// The beep after the greeting: 1 kHz for half a second, after a short pause, as
/// answering machines have always beeped.
const BEEP_HZ: f32 = 1000.0;
const BEEP_MS: u32 = 500;
const PAUSE_MS: u32 = 300;

impl Prompt {
    /// What the machine plays: `greeting` (or the built-in one), a pause, the beep.
    pub fn machine(greeting: Option<&Prompt>) -> Prompt {
        let default = Prompt::built_in();
        let g = greeting.unwrap_or(&default);
        let rate = g.rate.max(8000);
        let mut out: Vec<i16> = g.samples.to_vec();
        out.resize(out.len() + (rate * PAUSE_MS / 1000) as usize, 0);
        let mut beep = vec![0i16; (rate * BEEP_MS / 1000) as usize];
        Tone::new(BEEP_HZ, rate).fill(&mut beep);
        out.extend_from_slice(&beep);
        Prompt {
            samples: out.into(),
            rate,
        }
    }

    /// The built-in greeting, for a machine without one of the user's: three rising
    /// notes (no words: there is no language everyone reads), 1.2 s.
    fn built_in() -> Prompt {
        const RATE: u32 = 8000;
        let mut out = Vec::new();
        for hz in [523.0, 659.0, 784.0] {
            let mut note = vec![0i16; (RATE * 300 / 1000) as usize];
            Tone::new(hz, RATE).fill(&mut note);
            // Softer than a test tone, and faded so that the notes do not click.
            let n = note.len();
            for (i, s) in note.iter_mut().enumerate() {
                let fade = (i.min(n - i) as f64 / 200.0).min(1.0);
                *s = (f64::from(*s) * 0.5 * fade) as i16;
            }
            out.extend_from_slice(&note);
            out.resize(out.len() + (RATE / 10) as usize, 0);
        }
        Prompt {
            samples: out.into(),
            rate: RATE,
        }
    }

    /// How long it plays.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.samples.len() as u64 * 1000 / u64::from(self.rate.max(1)),
        )
    }
}

/// The highest rate a message is kept at.
const MESSAGE_RATE: u32 = 16_000;

/// A frame this loud (RMS) or louder is someone speaking, not line noise: about -36 dBFS.
const VOICE_RMS: f64 = 500.0;

/// The answering machine's recording of one call, shared between the media stream that
/// writes it and the call that decides when it is over.
#[derive(Debug, Clone)]
pub struct Recorder(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    /// The prompt's length: what arrives while it plays is not part of the message.
    skip: std::time::Duration,
    /// When the media started; `voice_at` counts from here.
    opened: std::sync::OnceLock<Instant>,
    /// Samples still to drop before the beep has played.
    to_skip: AtomicU64,
    /// Milliseconds after `started` when the last loud frame came.
    voice_at: AtomicU64,
    samples: AtomicU64,
    /// The file's rate, and how many of the call's samples make one of it.
    rate: AtomicU32,
    factor: AtomicU32,
    /// The disk refused a write: the recording was closed with what it had.
    failed: AtomicBool,
}

impl PartialEq for Recorder {
    fn eq(&self, other: &Recorder) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Recorder {
    /// A recording to be written at `path` once the call's media starts, from when a
    /// prompt of length `skip` has played.
    pub fn new(path: PathBuf, skip: std::time::Duration) -> Recorder {
        Recorder(Arc::new(Shared {
            path,
            skip,
            opened: std::sync::OnceLock::new(),
            to_skip: AtomicU64::new(0),
            voice_at: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            rate: AtomicU32::new(0),
            factor: AtomicU32::new(1),
            failed: AtomicBool::new(false),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    fn now_ms(&self) -> u64 {
        self.0
            .opened
            .get()
            .map_or(0, |t| t.elapsed().as_millis() as u64)
    }

    /// Whether the message itself is being recorded (the prompt has played).
    pub fn started(&self) -> bool {
        self.0.opened.get().is_some() && self.0.to_skip.load(Relaxed) == 0
    }

    /// How long since someone last spoke (since the beep, if no one has).
    pub fn silent_for(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.now_ms().saturating_sub(self.0.voice_at.load(Relaxed)),
        )
    }

    /// How much has been written.
    pub fn recorded(&self) -> std::time::Duration {
        let rate = u64::from(self.0.rate.load(Relaxed).max(1));
        std::time::Duration::from_millis(self.0.samples.load(Relaxed) * 1000 / rate)
    }

    /// The disk failed; what was written before is kept.
    pub fn failed(&self) -> bool {
        self.0.failed.load(Relaxed)
    }

    /// Starts writing the audio of a call at `rate`; returns the writer and the file's
    /// rate. Wideband is plenty for a voice message: Opus's 48 kHz is kept at 16 kHz, a
    /// third of the disk.
    pub(super) fn open(&self, rate: u32) -> std::io::Result<(WavWriter, u32)> {
        let factor = if rate > MESSAGE_RATE && rate.is_multiple_of(MESSAGE_RATE) {
            rate / MESSAGE_RATE
        } else {
            1
        };
        let file_rate = rate / factor;
        self.0.rate.store(file_rate, Relaxed);
        self.0.factor.store(factor, Relaxed);
        let _ = self.0.opened.set(Instant::now());
        self.0.to_skip.store(
            self.0.skip.as_millis() as u64 * u64::from(rate) / 1000,
            Relaxed,
        );
        self.0
            .voice_at
            .store(self.0.skip.as_millis() as u64, Relaxed);
        let w = WavWriter::create(&self.0.path, file_rate)?;
        // Messages are the callers' words: the service's group may read them, no one else.
        std::fs::set_permissions(
            &self.0.path,
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )?;
        Ok((w, file_rate))
    }

    /// A frame of the message at the file's rate: each group of the call's samples
    /// averaged (a plain low-pass before the rate falls). `out` is reused.
    pub(super) fn to_file_rate<'a>(&self, pcm: &'a [i16], out: &'a mut Vec<i16>) -> &'a [i16] {
        let factor = self.0.factor.load(Relaxed) as usize;
        if factor <= 1 {
            return pcm;
        }
        out.clear();
        out.extend(
            pcm.chunks(factor)
                .map(|g| (g.iter().map(|s| i32::from(*s)).sum::<i32>() / g.len() as i32) as i16),
        );
        out
    }

    /// The part of a frame that belongs to the message: none while the prompt plays.
    pub(super) fn admit<'a>(&self, pcm: &'a [i16]) -> &'a [i16] {
        let skip = self.0.to_skip.load(Relaxed);
        if skip == 0 {
            return pcm;
        }
        let n = (skip as usize).min(pcm.len());
        self.0.to_skip.store(skip - n as u64, Relaxed);
        &pcm[n..]
    }

    /// Notes one frame that was written.
    pub(super) fn wrote(&self, pcm: &[i16]) {
        self.0.samples.fetch_add(pcm.len() as u64, Relaxed);
        let energy: f64 = pcm.iter().map(|s| f64::from(*s).powi(2)).sum();
        if !pcm.is_empty() && (energy / pcm.len() as f64).sqrt() >= VOICE_RMS {
            self.0.voice_at.store(self.now_ms(), Relaxed);
        }
    }

    pub(super) fn fail(&self) {
        self.0.failed.store(true, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_is_the_greeting_a_pause_and_the_beep() {
        let g = Prompt {
            samples: vec![7i16; 800].into(),
            rate: 8000,
        };
        let p = Prompt::machine(Some(&g));
        assert_eq!(p.samples.len(), 800 + 2400 + 4000);
        assert_eq!(p.duration().as_millis(), 900);
        assert!(Prompt::machine(None).duration().as_millis() > 1500);
    }

    #[test]
    fn silence_and_length_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new(
            dir.path().join("m.wav"),
            std::time::Duration::from_millis(20),
        );
        let (w, rate) = r.open(8000).unwrap();
        assert_eq!(rate, 8000);
        assert!(!r.started());
        assert_eq!(r.admit(&[9; 100]).len(), 0);
        assert_eq!(r.admit(&[9; 100]).len(), 40);
        assert!(r.started());
        r.wrote(&[0; 160]);
        // Silence counts from the end of the prompt, 20 ms in.
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert!(r.silent_for().as_millis() >= 35);
        r.wrote(&[3000; 160]);
        assert!(r.silent_for().as_millis() < 30);
        assert_eq!(r.recorded().as_millis(), 40);
        w.finish(8000).unwrap();
    }

    #[test]
    fn opus_calls_are_kept_at_16_khz() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new(dir.path().join("m.wav"), std::time::Duration::ZERO);
        let (w, rate) = r.open(48_000).unwrap();
        assert_eq!(rate, 16_000);
        let mut out = Vec::new();
        assert_eq!(r.to_file_rate(&[3, 6, 9, -3, -6, -9], &mut out), [6, -6]);
        w.finish(rate).unwrap();
        let (_, rate) = r.open(8000).unwrap();
        assert_eq!(rate, 8000);
    }
}
