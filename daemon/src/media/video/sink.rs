//! Where a call's received video goes besides the snapshot: a file of the frames as they
//! came (IVF for VP8, an Annex B stream for H.264: what ffmpeg, mpv and libvpx's tools
//! read without a muxer), or the decoded pictures as Y4M into a file or a FIFO that a
//! player reads (`mpv /run/door.y4m`).
//!
//! Writing runs on a thread of the sink's own, behind a short queue: a FIFO with no reader
//! (its open blocks), a full pipe or a slow disk must not stall the media engine's tick.
//! What does not fit in the queue is dropped and counted.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use super::ivf::IvfWriter;
use super::y4m::Y4mWriter;
use super::{Depacketized, Frame, VideoCodec};

/// Frames queued for the writer: about half a second at 15 fps.
const QUEUE: usize = 8;

/// What a sink's file holds, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// VP8 frames as they came, in IVF (`.ivf`).
    Ivf,
    /// H.264 access units as they came, Annex B (`.h264`, `.264`).
    AnnexB,
    /// Decoded pictures, YUV4MPEG2 (`.y4m`): a file or a FIFO.
    Y4m,
}

impl SinkFormat {
    /// The format `path`'s extension names, if any.
    pub fn of(path: &Path) -> Option<SinkFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "ivf" => Some(SinkFormat::Ivf),
            "h264" | "264" => Some(SinkFormat::AnnexB),
            "y4m" => Some(SinkFormat::Y4m),
            _ => None,
        }
    }

    /// Whether a stream of `codec` can be written in this format.
    pub fn takes(self, codec: VideoCodec) -> bool {
        match self {
            SinkFormat::Ivf => codec == VideoCodec::Vp8,
            SinkFormat::AnnexB => codec == VideoCodec::H264,
            SinkFormat::Y4m => true,
        }
    }
}

/// Where a new stream's sink writes: `path`, or, when a file is there already (video
/// removed and added again, a codec changed), `NAME-2.EXT` and so on. A FIFO is written
/// into as it is.
pub fn free_path(path: PathBuf) -> PathBuf {
    use std::os::unix::fs::FileTypeExt;
    let taken = |p: &Path| std::fs::metadata(p).is_ok_and(|m| !m.file_type().is_fifo());
    if !taken(&path) {
        return path;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    (2..1000)
        .map(|n| path.with_file_name(format!("{stem}-{n}.{ext}")))
        .find(|p| !taken(p))
        .unwrap_or(path)
}

enum Item {
    Encoded(Depacketized),
    Picture(Arc<Frame>),
}

/// A running sink. Dropped or finished, its writer ends the file and stops.
pub struct VideoSink {
    path: PathBuf,
    format: SinkFormat,
    queue: SyncSender<Item>,
    writer: std::thread::JoinHandle<Result<(), String>>,
    /// Frames the writer could not take in time.
    pub dropped: u64,
}

impl VideoSink {
    /// Starts writing `codec`'s stream into `path` in the format its name says.
    pub fn open(path: &Path, codec: VideoCodec, fps: u32) -> Result<VideoSink, String> {
        let format = SinkFormat::of(path)
            .ok_or_else(|| format!("{}: not .ivf, .h264 or .y4m", path.display()))?;
        if !format.takes(codec) {
            return Err(format!(
                "{}: a {codec:?} stream cannot be written as {format:?}",
                path.display()
            ));
        }
        let (queue, rx) = sync_channel(QUEUE);
        let at = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("video-sink".into())
            .spawn(move || write_all(&at, format, fps, rx))
            .map_err(|e| e.to_string())?;
        Ok(VideoSink {
            path: path.to_path_buf(),
            format,
            queue,
            writer,
            dropped: 0,
        })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it takes encoded frames (else decoded pictures).
    pub fn wants_encoded(&self) -> bool {
        self.format != SinkFormat::Y4m
    }

    /// A frame as it came.
    pub fn encoded(&mut self, f: Depacketized) {
        self.send(Item::Encoded(f));
    }

    /// A decoded picture.
    pub fn picture(&mut self, f: Arc<Frame>) {
        self.send(Item::Picture(f));
    }

    fn send(&mut self, item: Item) {
        match self.queue.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.dropped == 1 {
                    tracing::info!(
                        "video sink {} is not keeping up; frames are dropped",
                        self.path.display()
                    );
                }
            }
            // The writer stopped on an error, which it logged.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Ends the file and waits for the writer (it blocks: call off the media tick).
    pub fn finish(self) {
        drop(self.queue);
        match self.writer.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("video sink {}: {e}", self.path.display()),
            Err(_) => tracing::error!("video sink {}: its writer panicked", self.path.display()),
        }
    }
}

fn write_all(path: &Path, format: SinkFormat, fps: u32, rx: Receiver<Item>) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    if format == SinkFormat::Y4m && std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
        return fifo::serve(path, fps, &rx);
    }
    // Opened here, not on the media tick: a slow disk waits only this thread.
    let file = File::create(path).map_err(|e| e.to_string())?;
    let out = BufWriter::new(file);
    let io = |e: std::io::Error| e.to_string();
    match format {
        SinkFormat::Ivf => {
            let mut w: Option<IvfWriter<BufWriter<File>>> = None;
            let mut out = Some(out);
            let mut first_ts = None;
            for item in rx {
                let Item::Encoded(f) = item else { continue };
                if w.is_none() {
                    // The header wants the size: a VP8 key frame says it (RFC 6386 §9.1).
                    let Some((width, height)) = vp8_size(&f.data) else {
                        continue;
                    };
                    let Some(o) = out.take() else { break };
                    w = Some(IvfWriter::new(o, width, height).map_err(io)?);
                }
                let base = *first_ts.get_or_insert(f.timestamp);
                let pts = u64::from(f.timestamp.wrapping_sub(base));
                if let Some(w) = &mut w {
                    w.write(&f.data, pts).map_err(io)?;
                }
            }
            if let Some(w) = w {
                w.finish().map_err(io)?;
            }
        }
        SinkFormat::AnnexB => {
            let mut out = out;
            let mut started = false;
            for item in rx {
                let Item::Encoded(f) = item else { continue };
                // From a key frame on: what comes before cannot be decoded.
                started |= f.key;
                if started {
                    out.write_all(&f.data).map_err(io)?;
                }
            }
            out.flush().map_err(io)?;
        }
        SinkFormat::Y4m => {
            let mut w = Y4mWriter::new(out, (fps.max(1), 1));
            for item in rx {
                let Item::Picture(f) = item else { continue };
                w.write(&f).map_err(io)?;
            }
            w.into_inner().flush().map_err(io)?;
        }
    }
    Ok(())
}

/// A Y4M stream into a FIFO for a player (`mpv /run/door.y4m`). No player yet: the
/// pictures are dropped until one opens it (an open would block). A player that goes:
/// the next one gets a stream from a new header. A player that stops reading: writes
/// wait at most a few seconds, then the stream to it ends. So the thread always ends
/// soon after the call's video does, whatever the player does.
mod fifo {
    use std::fs::{File, OpenOptions};
    use std::io::{self, Write};
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::Path;
    use std::sync::mpsc::{Receiver, TryRecvError};
    use std::time::Duration;

    use super::super::y4m::Y4mWriter;
    use super::Item;

    /// How often an open FIFO is tried for a reader.
    const RETRY: Duration = Duration::from_millis(200);
    /// How long one write may wait for the reader.
    const STALL: Duration = Duration::from_secs(3);

    pub(super) fn serve(path: &Path, fps: u32, rx: &Receiver<Item>) -> Result<(), String> {
        loop {
            let Some(pipe) = open(path, rx)? else {
                return Ok(());
            };
            let mut w = Y4mWriter::new(Paced(pipe), (fps.max(1), 1));
            loop {
                let f = match rx.recv() {
                    Ok(Item::Picture(f)) => f,
                    Ok(Item::Encoded(_)) => continue,
                    Err(_) => return Ok(()),
                };
                if let Err(e) = w.write(&f) {
                    tracing::info!("video sink {}: {e}; waiting for a player", path.display());
                    break;
                }
            }
        }
    }

    /// The FIFO opened for writing once a reader has it; None when the stream ended first.
    fn open(path: &Path, rx: &Receiver<Item>) -> Result<Option<File>, String> {
        loop {
            match OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(path)
            {
                Ok(f) => return Ok(Some(f)),
                // ENXIO: nobody reads it yet.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
            std::thread::sleep(RETRY);
            // Pictures meanwhile are not kept: a player starts from the one that comes.
            loop {
                match rx.try_recv() {
                    Ok(_) => {}
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(None),
                }
            }
        }
    }

    /// A non-blocking pipe written whole, waiting (up to STALL each time) for room.
    struct Paced(File);

    impl Write for Paced {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            loop {
                match self.0.write(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let mut fds = [nix::poll::PollFd::new(
                            self.0.as_fd(),
                            nix::poll::PollFlags::POLLOUT,
                        )];
                        let ms = u16::try_from(STALL.as_millis()).unwrap_or(u16::MAX);
                        if nix::poll::poll(&mut fds, ms).map_err(io::Error::from)? == 0 {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "the player stopped reading",
                            ));
                        }
                    }
                    r => return r,
                }
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}

/// The size a VP8 key frame gives (its 3-byte tag, start code, then 14-bit sizes).
fn vp8_size(frame: &[u8]) -> Option<(u16, u16)> {
    let key = frame.first()? & 1 == 0;
    let b = frame.get(3..10)?;
    if !key || b[..3] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([b[3], b[4]]) & 0x3fff;
    let h = u16::from_le_bytes([b[5], b[6]]) & 0x3fff;
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::pattern::TestPattern;
    use crate::media::video::vp8::Vp8Encoder;
    use crate::media::video::y4m::Y4mReader;

    #[test]
    fn a_vp8_stream_is_kept_as_ivf_and_pictures_as_y4m() {
        let dir = tempfile::tempdir().unwrap();
        let pattern = TestPattern::new(160, 120);
        let mut enc = Vp8Encoder::new(160, 120, 300, 30).unwrap();
        let ivf = dir.path().join("door.ivf");
        let y4m = dir.path().join("door.y4m");
        let mut a = VideoSink::open(&ivf, VideoCodec::Vp8, 15).unwrap();
        let mut b = VideoSink::open(&y4m, VideoCodec::Vp8, 15).unwrap();
        assert!(a.wants_encoded() && !b.wants_encoded());
        for i in 0..5u32 {
            let pic = pattern.picture(std::time::Duration::from_millis(u64::from(i) * 66));
            let e = enc
                .encode(&pic, i64::from(i) * 6000, 6000)
                .unwrap()
                .unwrap();
            a.encoded(Depacketized {
                data: e.data,
                timestamp: 1000 + i * 6000,
                key: e.key,
                after_loss: false,
            });
            b.picture(Arc::new(pic));
            // The queue is short; the test must not drop.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        a.finish();
        b.finish();
        let bytes = std::fs::read(&ivf).unwrap();
        assert_eq!(&bytes[..4], b"DKIF");
        assert_eq!(u16::from_le_bytes([bytes[12], bytes[13]]), 160);
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 5);
        let mut r = Y4mReader::open(&y4m).unwrap();
        assert_eq!(r.size(), (160, 120));
        let first = r.next_frame().unwrap();
        assert_eq!(first, pattern.picture(std::time::Duration::ZERO));
    }

    #[test]
    fn a_fifo_waits_for_its_player_serves_it_and_lets_the_stream_end_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("door.y4m");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let pic = Arc::new(TestPattern::new(64, 48).picture(std::time::Duration::ZERO));
        // No player at all: the stream ends at once all the same.
        let mut s = VideoSink::open(&fifo, VideoCodec::Vp8, 15).unwrap();
        s.picture(pic.clone());
        let t = std::time::Instant::now();
        s.finish();
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        // A player: it gets a stream from a header, pictures whole.
        let mut s = VideoSink::open(&fifo, VideoCodec::Vp8, 15).unwrap();
        let path = fifo.clone();
        let player = std::thread::spawn(move || std::fs::read(path).unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            s.picture(pic.clone());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        s.finish();
        let got = player.join().unwrap();
        assert!(
            got.starts_with(b"YUV4MPEG2 W64 H48"),
            "{:?}",
            &got[..got.len().min(40)]
        );
        let frames = got.windows(6).filter(|w| w == b"FRAME\n").count();
        assert!(frames >= 5, "{frames} pictures");
        assert_eq!(
            (got.len() - got.iter().position(|b| *b == b'\n').unwrap() - 1) % (6 + 64 * 48 * 3 / 2),
            0
        );
    }

    #[test]
    fn a_format_that_cannot_hold_the_codec_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = VideoSink::open(&dir.path().join("a.ivf"), VideoCodec::H264, 15)
            .err()
            .unwrap();
        assert!(e.contains("cannot be written"), "{e}");
        assert!(VideoSink::open(&dir.path().join("a.mkv"), VideoCodec::Vp8, 15).is_err());
        assert!(!dir.path().join("a.ivf").exists());
    }
}
