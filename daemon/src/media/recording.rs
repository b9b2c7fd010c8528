//! A call's recording (`voipctl record`, `record = "always"`): what we send and what we
//! receive, side by side in stereo (ours left, theirs right) or mixed to mono, in a WAV
//! file or in Ogg/Opus (`.opus`, `.ogg`). Either way a daemon killed mid-call leaves a file
//! that plays up to the last second: a WAV's header sizes are brought up to date every
//! second, and an Ogg page is closed as often.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::ogg_opus::OggOpusWriter;
use super::source::resample_into;
use super::wav::WavWriter;

/// How the two directions are laid out in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// Ours on the left, theirs on the right: each side can be heard (and checked) alone.
    #[default]
    Stereo,
    /// Both mixed into one channel, half the size.
    Mono,
}

/// Frames (20 ms) between header updates.
const CHECKPOINT_FRAMES: u32 = 50;

/// The file's format.
enum Writer {
    Wav(WavWriter),
    Opus(OggOpusWriter),
}

/// Whether `path` names an Ogg/Opus file (else it is WAV).
pub fn is_opus(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("opus") || e.eq_ignore_ascii_case("ogg"))
}

/// A recording being written, from the stream's tick.
pub struct CallRecording {
    writer: Writer,
    path: PathBuf,
    layout: Layout,
    rate: u32,
    frames: u32,
    ours: Vec<i16>,
    theirs: Vec<i16>,
    out: Vec<i16>,
}

impl CallRecording {
    /// A new file at `path` (never one that exists: a recording does not overwrite), at
    /// `rate` (a codec's: 8, 16 or 48 kHz), readable by the service's group only: it holds
    /// people's words. Ogg/Opus when the name ends in `.opus` or `.ogg`, else WAV.
    pub fn create(path: &Path, rate: u32, layout: Layout) -> std::io::Result<CallRecording> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o640)
            .open(path)?;
        let channels = match layout {
            Layout::Stereo => 2,
            Layout::Mono => 1,
        };
        let writer = if is_opus(path) {
            Writer::Opus(OggOpusWriter::new(file, rate, channels)?)
        } else {
            Writer::Wav(WavWriter::new(file, rate, u16::from(channels))?)
        };
        Ok(CallRecording {
            writer,
            path: path.to_path_buf(),
            layout,
            rate,
            frames: 0,
            ours: Vec::new(),
            theirs: Vec::new(),
            out: Vec::new(),
        })
    }

    /// The file it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One frame each way, each at its rate (the call's codec may change mid-call; the
    /// file keeps the rate it began with). A side with nothing this frame is silence.
    pub(super) fn frame(
        &mut self,
        ours: &[i16],
        theirs: &[i16],
        at_rate: u32,
    ) -> std::io::Result<()> {
        let n = (self.rate / 50) as usize;
        resample_into(ours, at_rate, self.rate, &mut self.ours);
        resample_into(theirs, at_rate, self.rate, &mut self.theirs);
        self.ours.resize(n, 0);
        self.theirs.resize(n, 0);
        self.out.clear();
        match self.layout {
            Layout::Stereo => {
                for (a, b) in self.ours.iter().zip(&self.theirs) {
                    self.out.extend([*a, *b]);
                }
            }
            Layout::Mono => self.out.extend(
                self.ours
                    .iter()
                    .zip(&self.theirs)
                    .map(|(a, b)| (i32::from(*a) + i32::from(*b)).clamp(-32768, 32767) as i16),
            ),
        }
        match &mut self.writer {
            Writer::Opus(w) => w.write(&self.out),
            Writer::Wav(w) => {
                w.write(&self.out)?;
                self.frames += 1;
                if self.frames >= CHECKPOINT_FRAMES {
                    self.frames = 0;
                    w.checkpoint(self.rate)?;
                }
                Ok(())
            }
        }
    }

    /// Closes the file with its final sizes. Blocking.
    pub fn finish(self) {
        let done = match self.writer {
            Writer::Wav(w) => w.finish(self.rate),
            Writer::Opus(w) => w.finish(),
        };
        if let Err(e) = done {
            tracing::warn!("finishing recording {}: {e}", self.path.display());
        }
    }
}

impl std::fmt::Debug for CallRecording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecording")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// A recording on its way from whoever opened it to the stream that writes it: taken
/// once. Compared by identity.
#[derive(Debug, Clone)]
pub struct Handover(Arc<Mutex<Option<CallRecording>>>, Arc<Path>);

impl Handover {
    /// Wraps a recording opened for a call, for its stream to take.
    pub fn new(r: CallRecording) -> Handover {
        let path = r.path().into();
        Handover(Arc::new(Mutex::new(Some(r))), path)
    }

    /// Where it records.
    pub fn path(&self) -> &Path {
        &self.1
    }

    /// The recording, the first time.
    pub fn take(&self) -> Option<CallRecording> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl PartialEq for Handover {
    fn eq(&self, other: &Handover) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A recording's path that is free: `dir/call-ID.wav`, or `-2`, `-3`… after it for a
/// call recorded more than once.
pub fn free_path(dir: &Path, call: u64) -> PathBuf {
    let mut n = 1;
    loop {
        let name = match n {
            1 => format!("call-{call}.wav"),
            _ => format!("call-{call}-{n}.wav"),
        };
        let p = dir.join(name);
        if !p.exists() || n >= 1000 {
            return p;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_left_theirs_right_and_a_kill_leaves_a_playable_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.wav");
        let mut r = CallRecording::create(&p, 8000, Layout::Stereo).unwrap();
        assert!(
            CallRecording::create(&p, 8000, Layout::Stereo).is_err(),
            "an existing file is not overwritten"
        );
        for _ in 0..CHECKPOINT_FRAMES {
            r.frame(&[100; 160], &[-7; 160], 8000).unwrap();
        }
        // A frame at another rate (the codec changed) lands at the file's.
        r.frame(&[100; 320], &[], 16000).unwrap();
        // Killed here: no finish. The header says what was written up to the checkpoint.
        drop(r);
        let b = std::fs::read(&p).unwrap();
        assert_eq!(u16::from_le_bytes([b[22], b[23]]), 2, "stereo");
        let data = u32::from_le_bytes([b[40], b[41], b[42], b[43]]);
        assert_eq!(data, 160 * 2 * 2 * CHECKPOINT_FRAMES);
        assert_eq!(i16::from_le_bytes([b[44], b[45]]), 100, "ours left");
        assert_eq!(i16::from_le_bytes([b[46], b[47]]), -7, "theirs right");
        let last = b.len() - 4;
        assert_eq!(i16::from_le_bytes([b[last + 2], b[last + 3]]), 0, "silence");
    }

    #[test]
    fn ogg_opus_keeps_whole_pages_and_decodes_to_what_was_said() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.opus");
        let mut r = CallRecording::create(&p, 8000, Layout::Stereo).unwrap();
        let mut tone = crate::media::tone::Tone::new(440.0, 8000);
        let mut ours = [0i16; 160];
        for _ in 0..60 {
            tone.fill(&mut ours);
            r.frame(&ours, &[], 8000).unwrap();
        }
        // Killed: the second page was never closed; the first second is there.
        drop(r);
        let mut reader = ogg::reading::PacketReader::new(std::fs::File::open(&p).unwrap());
        let head = reader.read_packet().unwrap().unwrap();
        assert_eq!(&head.data[..8], b"OpusHead");
        assert_eq!(head.data[9], 2, "stereo");
        let tags = reader.read_packet().unwrap().unwrap();
        assert_eq!(&tags.data[..8], b"OpusTags");
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Stereo).unwrap();
        let (mut left, mut right, mut packets) = (0f64, 0f64, 0);
        let mut pcm = vec![0i16; 5760 * 2];
        while let Ok(Some(packet)) = reader.read_packet() {
            let n = dec.decode(&packet.data, &mut pcm, false).unwrap();
            for f in pcm[..n * 2].chunks_exact(2) {
                left += f64::from(f[0]).abs();
                right += f64::from(f[1]).abs();
            }
            packets += 1;
        }
        assert_eq!(packets, CHECKPOINT_FRAMES, "one whole page");
        assert!(
            left > 1000.0 * right.max(1.0),
            "ours left {left}, nothing right {right}"
        );
    }

    #[test]
    fn mono_mixes_both_sides() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.wav");
        let mut r = CallRecording::create(&p, 8000, Layout::Mono).unwrap();
        r.frame(&[30_000; 160], &[10_000; 160], 8000).unwrap();
        r.finish();
        let (s, rate) = crate::media::wav::read(&p).unwrap();
        assert_eq!((s.len(), rate, s[0]), (160, 8000, 32767));
        assert_eq!(free_path(dir.path(), 7), dir.path().join("call-7.wav"));
        std::fs::write(dir.path().join("call-7.wav"), b"").unwrap();
        assert_eq!(free_path(dir.path(), 7), dir.path().join("call-7-2.wav"));
    }
}
