//! YUV4MPEG2 (Y4M): the raw video stream ffmpeg, mpv and x264 read and write. A file
//! played into a call (looped), and a stream of what a call shows, e.g. into a FIFO a
//! player reads.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::frame::Frame;

/// Larger pictures than this are refused (8K).
const MAX_SIDE: usize = 8192;

/// What is wrong with a Y4M file.
#[derive(Debug, thiserror::Error)]
pub enum Y4mError {
    /// Reading it failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Its stream header does not say YUV4MPEG2, or lacks a size.
    #[error("not a Y4M stream: {0}")]
    Header(String),
    /// A colour space other than 8-bit 4:2:0.
    #[error("colour space {0} (only 4:2:0, 8-bit, is read)")]
    Colour(String),
    /// It has no picture.
    #[error("no frame in the file")]
    Empty,
}

/// A Y4M file read picture by picture, from its start again at its end.
pub struct Y4mReader {
    input: BufReader<File>,
    first_frame: u64,
    width: usize,
    height: usize,
    fps: (u32, u32),
    line: String,
}

impl Y4mReader {
    /// Opens `path` and reads its stream header.
    pub fn open(path: &Path) -> Result<Y4mReader, Y4mError> {
        let mut input = BufReader::new(File::open(path)?);
        let mut header = String::new();
        (&mut input).take(4096).read_line(&mut header)?;
        let mut words = header.trim_end().split(' ');
        if words.next() != Some("YUV4MPEG2") {
            return Err(Y4mError::Header("it does not begin with YUV4MPEG2".into()));
        }
        let (mut width, mut height, mut fps) = (0, 0, (25, 1));
        for w in words {
            let (tag, value) = w.split_at(w.len().min(1));
            match tag {
                "W" => width = value.parse().unwrap_or(0),
                "H" => height = value.parse().unwrap_or(0),
                "F" => {
                    if let Some((n, d)) = value.split_once(':')
                        && let (Ok(n), Ok(d)) = (n.parse::<u32>(), d.parse::<u32>())
                        && n > 0
                        && d > 0
                    {
                        fps = (n, d);
                    }
                }
                "C" if !["420", "420jpeg", "420paldv", "420mpeg2"].contains(&value) => {
                    return Err(Y4mError::Colour(value.to_string()));
                }
                _ => {}
            }
        }
        if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
            return Err(Y4mError::Header(format!("size {width}x{height}")));
        }
        let first_frame = input.stream_position()?;
        let mut r = Y4mReader {
            input,
            first_frame,
            width,
            height,
            fps,
            line: String::new(),
        };
        r.read_frame()?.ok_or(Y4mError::Empty)?;
        r.input.seek(SeekFrom::Start(first_frame))?;
        Ok(r)
    }

    /// Its pictures' size.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Its frame rate, as a fraction.
    pub fn fps(&self) -> (u32, u32) {
        self.fps
    }

    /// The next picture; after the last, the first again.
    pub fn next_frame(&mut self) -> Result<Frame, Y4mError> {
        if let Some(f) = self.read_frame()? {
            return Ok(f);
        }
        self.input.seek(SeekFrom::Start(self.first_frame))?;
        self.read_frame()?.ok_or(Y4mError::Empty)
    }

    fn read_frame(&mut self) -> Result<Option<Frame>, Y4mError> {
        self.line.clear();
        if (&mut self.input).take(1024).read_line(&mut self.line)? == 0 {
            return Ok(None);
        }
        if !self.line.starts_with("FRAME") {
            return Err(Y4mError::Header(format!(
                "{:?} where a FRAME was due",
                self.line.trim_end()
            )));
        }
        let mut data = vec![0; Frame::len_for(self.width, self.height)];
        match self.input.read_exact(&mut data) {
            Ok(()) => Ok(Some(Frame {
                width: self.width,
                height: self.height,
                data,
            })),
            // A last frame cut short: the file ends before it.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Writes pictures as a Y4M stream; the header goes out with the first.
pub struct Y4mWriter<W: Write> {
    out: W,
    fps: (u32, u32),
    size: Option<(usize, usize)>,
}

impl<W: Write> Y4mWriter<W> {
    /// A stream at `fps` (a fraction) into `out`.
    pub fn new(out: W, fps: (u32, u32)) -> Y4mWriter<W> {
        Y4mWriter {
            out,
            fps,
            size: None,
        }
    }

    /// One picture. A stream keeps its first picture's size: a picture of another size
    /// is refused (`InvalidInput`), as Y4M cannot change size midway.
    pub fn write(&mut self, f: &Frame) -> std::io::Result<()> {
        match self.size {
            None => {
                writeln!(
                    self.out,
                    "YUV4MPEG2 W{} H{} F{}:{} Ip A1:1 C420jpeg",
                    f.width, f.height, self.fps.0, self.fps.1
                )?;
                self.size = Some((f.width, f.height));
            }
            Some(s) if s != (f.width, f.height) => {
                return Err(std::io::ErrorKind::InvalidInput.into());
            }
            Some(_) => {}
        }
        self.out.write_all(b"FRAME\n")?;
        self.out.write_all(&f.data)
    }

    /// What it writes into.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::pattern::TestPattern;
    use std::time::Duration;

    #[test]
    fn written_then_read_in_a_loop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.y4m");
        let p = TestPattern::new(64, 48);
        let frames: Vec<Frame> = (0..3)
            .map(|i| p.picture(Duration::from_millis(i * 500)))
            .collect();
        let mut w = Y4mWriter::new(Vec::new(), (15, 1));
        for f in &frames {
            w.write(f).unwrap();
        }
        assert_eq!(
            w.write(&Frame::black(32, 32)).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        std::fs::write(&path, w.into_inner()).unwrap();
        let mut r = Y4mReader::open(&path).unwrap();
        assert_eq!((r.size(), r.fps()), ((64, 48), (15, 1)));
        for i in 0..7 {
            assert_eq!(r.next_frame().unwrap(), frames[i % 3], "frame {i}");
        }
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.y4m");
        for (content, why) in [
            (&b"RIFF"[..], "YUV4MPEG2"),
            (b"YUV4MPEG2 W0 H10\n", "size"),
            (b"YUV4MPEG2 W99999 H10\n", "size"),
            (b"YUV4MPEG2 W4 H4 C444\n", "444"),
            (b"YUV4MPEG2 W4 H4 C420p10\n", "420p10"),
            (b"YUV4MPEG2 W4 H4\n", "no frame"),
            (b"YUV4MPEG2 W4 H4\nFRAME\n\x10\x10", "no frame"),
            (b"YUV4MPEG2 W4 H4\nJUNK\n", "FRAME"),
        ] {
            std::fs::write(&path, content).unwrap();
            let e = Y4mReader::open(&path).err().unwrap().to_string();
            assert!(e.contains(why), "{content:?}: {e}");
        }
    }
}
