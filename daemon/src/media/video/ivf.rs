//! IVF: the plain container libvpx's tools, ffmpeg and mpv read VP8 from. A recording of a
//! call's video keeps the frames as they came, without decoding them again.

use std::io::{Seek, SeekFrom, Write};

/// Writes VP8 frames into an IVF file; the header's frame count is fixed at the end (a
/// file cut short by a crash still plays: players read up to its end).
pub struct IvfWriter<W: Write + Seek> {
    out: W,
    frames: u32,
}

impl<W: Write + Seek> IvfWriter<W> {
    /// Starts a file of `width`×`height` VP8 with timestamps in 1/90000 s (RTP's clock).
    pub fn new(mut out: W, width: u16, height: u16) -> std::io::Result<IvfWriter<W>> {
        out.write_all(&header(width, height, 0))?;
        Ok(IvfWriter { out, frames: 0 })
    }

    /// One frame at `pts` (90 kHz).
    pub fn write(&mut self, frame: &[u8], pts: u64) -> std::io::Result<()> {
        let len = u32::try_from(frame.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&pts.to_le_bytes())?;
        self.out.write_all(frame)?;
        self.frames = self.frames.saturating_add(1);
        Ok(())
    }

    /// Writes the frame count into the header and gives the output back.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.seek(SeekFrom::Start(24))?;
        self.out.write_all(&self.frames.to_le_bytes())?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn header(width: u16, height: u16, frames: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[0..4].copy_from_slice(b"DKIF");
    h[6..8].copy_from_slice(&32u16.to_le_bytes());
    h[8..12].copy_from_slice(b"VP80");
    h[12..14].copy_from_slice(&width.to_le_bytes());
    h[14..16].copy_from_slice(&height.to_le_bytes());
    h[16..20].copy_from_slice(&90_000u32.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[24..28].copy_from_slice(&frames.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_with_their_times_and_the_count_in_the_header() {
        let mut w = IvfWriter::new(std::io::Cursor::new(Vec::new()), 640, 480).unwrap();
        w.write(&[1, 2, 3], 0).unwrap();
        w.write(&[4], 6000).unwrap();
        let b = w.finish().unwrap().into_inner();
        assert_eq!(&b[..4], b"DKIF");
        assert_eq!(&b[8..12], b"VP80");
        assert_eq!(u16::from_le_bytes([b[12], b[13]]), 640);
        assert_eq!(u32::from_le_bytes([b[24], b[25], b[26], b[27]]), 2);
        assert_eq!(&b[32..36], &3u32.to_le_bytes());
        assert_eq!(&b[44..47], &[1, 2, 3]);
        assert_eq!(&b[51..59], &6000u64.to_le_bytes());
        assert_eq!(b.len(), 32 + 12 + 3 + 12 + 1);
    }
}
