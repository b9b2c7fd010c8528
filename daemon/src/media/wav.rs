//! WAV files (PCM 16-bit, mono or stereo): a writer that fixes up its sizes when finished, and a
//! reader for playing a file into a call.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The most audio a WAV header can count: its RIFF size is 36 bytes more, in 32 bits.
const MAX_DATA: u64 = (u32::MAX - 36) as u64;

/// A WAV file being written.
pub struct WavWriter {
    out: BufWriter<File>,
    samples: u32,
    channels: u16,
}

fn header(rate: u32, channels: u16, data_bytes: u32) -> [u8; 44] {
    let block = 2 * channels;
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&36u32.saturating_add(data_bytes).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * u32::from(block)).to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

impl WavWriter {
    /// A mono file at `path`, replacing what is there.
    pub fn create(path: &Path, rate: u32) -> std::io::Result<WavWriter> {
        WavWriter::new(File::create(path)?, rate, 1)
    }

    /// A file of `channels` (interleaved in `write`) over `file`, which is empty.
    pub fn new(file: File, rate: u32, channels: u16) -> std::io::Result<WavWriter> {
        let mut out = BufWriter::new(file);
        out.write_all(&header(rate, channels, 0))?;
        Ok(WavWriter {
            out,
            samples: 0,
            channels,
        })
    }

    /// Writes what is buffered and the sizes so far into the header, in place: a file cut
    /// off after this (the daemon killed) plays up to here.
    pub fn checkpoint(&mut self, rate: u32) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.out.flush()?;
        let h = header(rate, self.channels, self.samples.saturating_mul(2));
        self.out.get_ref().write_all_at(&h, 0)
    }

    /// Appends interleaved samples. Past what a WAV header can count (4 GiB, hours of a
    /// call recorded), it refuses with `FileTooLarge` and the file stays whole.
    pub fn write(&mut self, samples: &[i16]) -> std::io::Result<()> {
        if (u64::from(self.samples) + samples.len() as u64) * 2 > MAX_DATA {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        for s in samples {
            self.out.write_all(&s.to_le_bytes())?;
        }
        self.samples = self.samples.saturating_add(samples.len() as u32);
        Ok(())
    }

    /// Writes the final sizes; without this the file still plays, as a stream of unknown
    /// length.
    pub fn finish(mut self, rate: u32) -> std::io::Result<()> {
        let bytes = self.samples.saturating_mul(2);
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header(rate, self.channels, bytes))?;
        self.out.flush()
    }
}

impl WavWriter {
    /// Closes a recording whose write failed (a full disk): what reached the file is kept
    /// and the header is fixed in place, which needs no more room. What was still
    /// buffered is dropped.
    pub fn salvage(self) -> std::io::Result<u64> {
        let (file, _unwritten) = self.out.into_parts();
        repair(&file)
    }
}

/// Fixes the sizes in the header of a WAV file this writer began (a recording cut short
/// by a crash or a full disk) from the file's length; returns the bytes of audio in it.
pub fn repair(file: &File) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut fmt = [0u8; 6];
    file.read_exact_at(&mut fmt, 22)?;
    let channels = u16::from_le_bytes([fmt[0], fmt[1]]).max(1);
    let rate = u32::from_le_bytes([fmt[2], fmt[3], fmt[4], fmt[5]]);
    // A frame cut short is left out; sizes past 4 GiB do not fit a WAV header.
    let block = 2 * u64::from(channels);
    let data = (len.saturating_sub(44) / block * block).min(MAX_DATA / block * block);
    file.write_all_at(&header(rate, channels, data as u32), 0)?;
    file.set_len(44 + data)?;
    file.sync_all()?;
    Ok(data)
}

/// Reads a PCM 16-bit WAV file into mono samples and its rate (stereo is mixed down).
pub fn read(path: &Path) -> Result<(Vec<i16>, u32), String> {
    let mut b = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut b))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(format!("{}: not a WAV file", path.display()));
    }
    let (mut pos, mut fmt, mut data) = (12, None, None);
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
        let body = b
            .get(pos + 8..(pos + 8 + len).min(b.len()))
            .unwrap_or_default();
        match id {
            b"fmt " if body.len() >= 16 => fmt = Some(body),
            b"data" => data = Some(body),
            _ => {}
        }
        pos += 8 + len + (len & 1);
    }
    let fmt = fmt.ok_or_else(|| format!("{}: no fmt chunk", path.display()))?;
    let data = data.ok_or_else(|| format!("{}: no data chunk", path.display()))?;
    let (format, channels) = (
        u16::from_le_bytes([fmt[0], fmt[1]]),
        u16::from_le_bytes([fmt[2], fmt[3]]),
    );
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
    if format != 1 || bits != 16 || channels == 0 {
        return Err(format!(
            "{}: only 16-bit PCM WAV is supported",
            path.display()
        ));
    }
    let frame = usize::from(channels) * 2;
    let samples = data
        .chunks_exact(frame)
        .map(|f| {
            let sum: i32 = f
                .chunks_exact(2)
                .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
                .sum();
            (sum / i32::from(channels)) as i16
        })
        .collect();
    Ok((samples, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.wav");
        let mut w = WavWriter::create(&p, 8000).unwrap();
        w.write(&[1, -2, 300, i16::MIN]).unwrap();
        w.finish(8000).unwrap();
        assert_eq!(read(&p).unwrap(), (vec![1, -2, 300, i16::MIN], 8000));
        // Cut short (a crash): repaired from the file's length, half a sample left out.
        let mut w = WavWriter::create(&p, 16000).unwrap();
        w.write(&[5, 6, 7]).unwrap();
        drop(w);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        f.set_len(44 + 5).unwrap();
        assert_eq!(repair(&f).unwrap(), 4);
        assert_eq!(read(&p).unwrap(), (vec![5, 6], 16000));
        std::fs::write(&p, b"RIFF....WAVEjunk").unwrap();
        assert!(read(&p).unwrap_err().contains("no fmt chunk"));
    }

    #[test]
    fn a_recording_stops_where_a_header_can_no_longer_count_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WavWriter::create(&dir.path().join("long.wav"), 8000).unwrap();
        // Hours in: one sample short of the limit, as if written.
        w.samples = (MAX_DATA / 2) as u32 - 1;
        let e = w.write(&[1, 2]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        w.write(&[1]).unwrap();
        assert!(w.write(&[1]).is_err());
        let h = header(8000, 1, w.samples * 2);
        assert_eq!(
            u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
            36 + w.samples * 2
        );
        assert_eq!(header(8000, 1, u32::MAX)[4..8], u32::MAX.to_le_bytes());
    }
}
