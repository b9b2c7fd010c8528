//! The VP8 RTP payload format (RFC 7741): a frame cut into packets behind a payload
//! descriptor, and packets put back together into frames.
//!
//! We send the descriptor baresip, browsers and Jami send: X and I set, a 15-bit picture
//! ID, no TL0PICIDX/TID/KEYIDX, S on the first packet, partition 0 (no partition mode).
//! What we read may carry any of the optional fields and partitions; a frame starts at
//! S=1 with PID=0 (baresip sends S=1 at each partition's start).

use super::{Depacketized, PacketLoss};

/// The descriptor we write: X, I with M (15-bit picture ID).
const OUR_DESCRIPTOR: usize = 4;

/// Cuts an encoded frame into RTP payloads of at most `mtu` bytes (descriptor included);
/// the last one carries the marker. `picture_id` counts frames (15 bits).
pub fn packetize(frame: &[u8], picture_id: u16, mtu: usize) -> Vec<Vec<u8>> {
    let room = mtu.saturating_sub(OUR_DESCRIPTOR).max(1);
    let pid = picture_id & 0x7fff;
    frame
        .chunks(room)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = Vec::with_capacity(OUR_DESCRIPTOR + chunk.len());
            // X=1, N=0, S on the first, PID 0.
            p.push(0x80 | if i == 0 { 0x10 } else { 0 });
            p.push(0x80); // I
            p.push(0x80 | (pid >> 8) as u8); // M, high bits
            p.push(pid as u8);
            p.extend_from_slice(chunk);
            p
        })
        .collect()
}

/// A payload descriptor as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// The first packet of a partition.
    pub start: bool,
    /// The partition index.
    pub partition: u8,
    /// The picture ID, when present.
    pub picture_id: Option<u16>,
    /// Its length: the VP8 data starts after it.
    pub len: usize,
}

/// Why a payload is not VP8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Vp8PayloadError {
    #[error("VP8 payload shorter than its descriptor")]
    Truncated,
    #[error("VP8 payload with a descriptor and no data")]
    Empty,
}

impl Descriptor {
    /// Reads the descriptor at the start of `p`.
    pub fn parse(p: &[u8]) -> Result<Descriptor, Vp8PayloadError> {
        let first = *p.first().ok_or(Vp8PayloadError::Truncated)?;
        let mut len = 1;
        let mut picture_id = None;
        if first & 0x80 != 0 {
            let x = *p.get(1).ok_or(Vp8PayloadError::Truncated)?;
            len = 2;
            if x & 0x80 != 0 {
                let m = *p.get(2).ok_or(Vp8PayloadError::Truncated)?;
                if m & 0x80 != 0 {
                    let low = *p.get(3).ok_or(Vp8PayloadError::Truncated)?;
                    picture_id = Some(u16::from(m & 0x7f) << 8 | u16::from(low));
                    len += 2;
                } else {
                    picture_id = Some(u16::from(m));
                    len += 1;
                }
            }
            if x & 0x40 != 0 {
                len += 1; // TL0PICIDX
            }
            if x & 0x30 != 0 {
                len += 1; // TID/Y/KEYIDX
            }
        }
        if p.len() < len {
            return Err(Vp8PayloadError::Truncated);
        }
        if p.len() == len {
            return Err(Vp8PayloadError::Empty);
        }
        Ok(Descriptor {
            start: first & 0x10 != 0,
            partition: first & 0x07,
            picture_id,
            len,
        })
    }
}

/// Whether an assembled VP8 frame is a key frame (RFC 6386 §9.1: the P bit of its first
/// byte is 0).
pub fn is_key_frame(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

/// Puts VP8 frames back together from RTP packets, in order (the jitter buffer's job is
/// done before). A frame with a packet missing is dropped whole, and the loss reported,
/// so that its owner asks for a key frame.
#[derive(Debug)]
pub struct Vp8Depacketizer {
    frame: Vec<u8>,
    /// The timestamp of the frame being put together, and the sequence number expected
    /// next; None between frames (or after a loss, until a frame's start).
    at: Option<(u32, u16)>,
    max_frame: usize,
}

impl Vp8Depacketizer {
    /// Frames larger than `max_frame` bytes are dropped (no VP8 frame of a call is that
    /// large; a stream claiming so is broken or hostile).
    pub fn new(max_frame: usize) -> Vp8Depacketizer {
        Vp8Depacketizer {
            frame: Vec::new(),
            at: None,
            max_frame,
        }
    }

    /// One packet: its sequence number, timestamp, marker and payload. A complete frame
    /// comes out at its marker.
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<Depacketized>, PacketLoss> {
        let d = Descriptor::parse(payload).map_err(|_| PacketLoss::Malformed)?;
        let data = &payload[d.len..];
        let frame_start = d.start && d.partition == 0;
        let mut lost = None;
        match self.at {
            Some((ts, next)) if ts == timestamp && next == seq && !frame_start => {}
            Some(_) if !frame_start => {
                // A gap, or a new frame whose start is missing.
                self.reset();
                return Err(PacketLoss::Gap);
            }
            Some(_) => {
                // A new frame before the last one's marker: that one lost its end.
                lost = Some(PacketLoss::Gap);
                self.frame.clear();
            }
            None if !frame_start => return Err(PacketLoss::Gap),
            None => {}
        }
        if self.frame.len() + data.len() > self.max_frame {
            self.reset();
            return Err(PacketLoss::TooLarge);
        }
        self.frame.extend_from_slice(data);
        self.at = Some((timestamp, seq.wrapping_add(1)));
        if !marker {
            return lost.map_or(Ok(None), Err);
        }
        self.at = None;
        let frame = std::mem::take(&mut self.frame);
        Ok(Some(Depacketized {
            key: is_key_frame(&frame),
            data: frame,
            timestamp,
            after_loss: lost.is_some(),
        }))
    }

    fn reset(&mut self) {
        self.frame.clear();
        self.at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_all(
        d: &mut Vp8Depacketizer,
        packets: &[Vec<u8>],
        seq0: u16,
        ts: u32,
    ) -> Vec<Result<Option<Depacketized>, PacketLoss>> {
        let n = packets.len();
        packets
            .iter()
            .enumerate()
            .map(|(i, p)| d.push(seq0.wrapping_add(i as u16), ts, i + 1 == n, p))
            .collect()
    }

    #[test]
    fn a_frame_cut_into_packets_comes_back_whole() {
        let frame: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8 & 0xfe).collect();
        let packets = packetize(&frame, 0x1234, 1000);
        assert_eq!(packets.len(), 4);
        assert!(packets.iter().all(|p| p.len() <= 1000));
        let d0 = Descriptor::parse(&packets[0]).unwrap();
        assert_eq!(
            d0,
            Descriptor {
                start: true,
                partition: 0,
                picture_id: Some(0x1234),
                len: 4
            }
        );
        assert!(!Descriptor::parse(&packets[1]).unwrap().start);

        let mut d = Vp8Depacketizer::new(1 << 20);
        // Across the sequence number's wrap.
        let out = push_all(&mut d, &packets, 65534, 9000);
        let f = out.last().unwrap().clone().unwrap().unwrap();
        assert_eq!(f.data, frame);
        assert!(f.key && !f.after_loss);
        assert!(out[..3].iter().all(|o| o == &Ok(None)));
    }

    #[test]
    fn a_lost_packet_drops_its_frame_and_the_next_start_recovers() {
        let frame = vec![0u8; 2500];
        let packets = packetize(&frame, 1, 1000);
        let mut d = Vp8Depacketizer::new(1 << 20);
        assert_eq!(d.push(10, 100, false, &packets[0]), Ok(None));
        // packets[1] lost.
        assert_eq!(d.push(12, 100, true, &packets[2]), Err(PacketLoss::Gap));
        // The next frame's middle without its start: still lost.
        let next = packetize(&[1u8; 2500], 2, 1000);
        assert_eq!(d.push(14, 200, false, &next[1]), Err(PacketLoss::Gap));
        // A whole frame after: fine (an inter frame, P=1).
        let out = push_all(&mut d, &packetize(&[1u8; 1500], 3, 1000), 20, 300);
        let f = out.last().unwrap().clone().unwrap().unwrap();
        assert!(!f.key && f.data.len() == 1500);
    }

    #[test]
    fn a_frame_without_its_end_is_reported_when_the_next_begins() {
        let mut d = Vp8Depacketizer::new(1 << 20);
        let a = packetize(&[0u8; 1500], 1, 1000);
        assert_eq!(d.push(1, 100, false, &a[0]), Ok(None));
        // a[1], with the marker, lost; the next frame starts.
        let b = packetize(&[0u8; 10], 2, 1000);
        let f = d.push(3, 200, true, &b[0]).unwrap().unwrap();
        assert!(f.after_loss && f.key && f.data.len() == 10);
        // The next frame is whole again.
        let f = d.push(4, 300, true, &b[0]).unwrap().unwrap();
        assert!(!f.after_loss && f.data.len() == 10);
    }

    #[test]
    fn descriptors_with_every_optional_field_and_bad_ones() {
        // X, I with 7-bit ID, L, T|K: five bytes, then data.
        let p = [0x90, 0xf0, 0x05, 0x11, 0x22, 0xaa];
        let d = Descriptor::parse(&p).unwrap();
        assert_eq!((d.len, d.picture_id, d.start), (5, Some(5), true));
        // No X: one byte.
        assert_eq!(Descriptor::parse(&[0x10, 0xaa]).unwrap().len, 1);
        for bad in [
            &[][..],
            &[0x80],
            &[0x80, 0x80],
            &[0x80, 0x80, 0x80],
            &[0x10],
        ] {
            assert!(Descriptor::parse(bad).is_err(), "{bad:02x?}");
        }
        let mut d = Vp8Depacketizer::new(1 << 20);
        assert_eq!(d.push(1, 1, true, &[0x80]), Err(PacketLoss::Malformed));
    }

    #[test]
    fn a_frame_larger_than_allowed_is_dropped() {
        let mut d = Vp8Depacketizer::new(1500);
        let out = push_all(&mut d, &packetize(&[0u8; 3000], 1, 1000), 1, 1);
        assert!(out.contains(&Err(PacketLoss::TooLarge)), "{out:?}");
        assert!(out.iter().all(|o| !matches!(o, Ok(Some(_)))));
    }
}
