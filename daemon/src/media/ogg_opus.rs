//! Ogg/Opus files (RFC 7845) for call recordings: an eighth of a WAV's size. A page is
//! closed every second, so a file cut short by a crash plays up to its last page.

use std::fs::File;
use std::io::{BufWriter, Write};

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// Frames (20 ms) per page.
const FRAMES_PER_PAGE: u32 = 50;

/// An Opus stream in an Ogg file, fed 20 ms frames of interleaved 16-bit audio.
pub(super) struct OggOpusWriter {
    out: PacketWriter<'static, BufWriter<File>>,
    enc: opus::Encoder,
    serial: u32,
    /// The samples decoded so far, at 48 kHz (the pre-skip's among them): the granule
    /// position (RFC 7845 §4).
    granule: u64,
    frames: u32,
    /// The last packet and its granule position, held back so that the stream's end can
    /// be marked on it.
    pending: Option<(Vec<u8>, u64)>,
    packet: Vec<u8>,
}

fn io(e: opus::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl OggOpusWriter {
    /// Writes the headers to `file` (empty) for audio at `rate` (8, 12, 16, 24 or 48 kHz)
    /// with `channels` (1 or 2).
    pub(super) fn new(file: File, rate: u32, channels: u8) -> std::io::Result<OggOpusWriter> {
        let ch = if channels == 2 {
            opus::Channels::Stereo
        } else {
            opus::Channels::Mono
        };
        let mut enc = opus::Encoder::new(rate, ch, opus::Application::Voip).map_err(io)?;
        // Speech: 24 kb/s a channel is transparent enough for a record of a call.
        enc.set_bitrate(opus::Bitrate::Bits(24_000 * i32::from(channels)))
            .map_err(io)?;
        let lookahead = u64::try_from(enc.get_lookahead().map_err(io)?).unwrap_or(0);
        let pre_skip = (lookahead * 48_000 / u64::from(rate.max(1))) as u16;
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1);
        head.push(channels);
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes());
        head.push(0);
        let vendor = concat!("voipd ", env!("CARGO_PKG_VERSION")).as_bytes();
        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        let serial = fastrand::u32(..);
        let mut out = PacketWriter::new(BufWriter::new(file));
        // Each header on a page of its own (RFC 7845 §3).
        out.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)?;
        out.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)?;
        out.inner_mut().flush()?;
        Ok(OggOpusWriter {
            out,
            enc,
            serial,
            granule: 0,
            frames: 0,
            pending: None,
            packet: vec![0; 4000],
        })
    }

    /// One 20 ms frame, interleaved.
    pub(super) fn write(&mut self, pcm: &[i16]) -> std::io::Result<()> {
        let n = self.enc.encode(pcm, &mut self.packet).map_err(io)?;
        // 20 ms is 960 samples at 48 kHz, whatever the rate encoded.
        self.granule += 960;
        let packet = (self.packet[..n].to_vec(), self.granule);
        if let Some((p, granule)) = self.pending.replace(packet) {
            self.frames += 1;
            let end = if self.frames.is_multiple_of(FRAMES_PER_PAGE) {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.out.write_packet(p, self.serial, end, granule)?;
            if end == PacketWriteEndInfo::EndPage {
                self.out.inner_mut().flush()?;
            }
        }
        Ok(())
    }

    /// Closes the stream on its last packet. Blocking.
    pub(super) fn finish(mut self) -> std::io::Result<()> {
        if let Some((p, granule)) = self.pending.take() {
            self.out
                .write_packet(p, self.serial, PacketWriteEndInfo::EndStream, granule)?;
        }
        self.out.inner_mut().flush()
    }
}
