//! The H.264 RTP payload format (RFC 6184), non-interleaved: an access unit (Annex B, as
//! encoders write it) cut into single NAL unit packets, STAP-A aggregates and FU-A
//! fragments, and packets put back together into Annex B access units for the decoder.
//!
//! packetization-mode 0 allows single NAL units only; an encoder told to keep its slices
//! under the MTU needs no more. A NAL unit too large anyway goes as FU-A, as baresip and
//! Linphone do, rather than not at all.

use super::{Depacketized, PacketLoss};

const STAP_A: u8 = 24;
const FU_A: u8 = 28;
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The packetization modes of RFC 6184 §6 we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketizationMode {
    /// Single NAL units only.
    Single,
    /// Non-interleaved: single NAL units, STAP-A, FU-A.
    NonInterleaved,
}

/// The NAL units of an Annex B byte stream, without start codes (and without the zero
/// bytes that may trail a unit before the next four-byte start code).
pub fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(stream.len(), |n| n - 3);
        let mut unit = &stream[s..end.max(s)];
        while let [rest @ .., 0] = unit {
            unit = rest;
        }
        if !unit.is_empty() {
            units.push(unit);
        }
    }
    units
}

/// The NAL unit type (RFC 6184 §1.3).
pub fn nal_type(header: u8) -> u8 {
    header & 0x1f
}

/// Cuts an access unit (Annex B) into RTP payloads of at most `mtu` bytes; the last one
/// carries the marker. In non-interleaved mode, small units going out together (SPS, PPS)
/// share a STAP-A.
pub fn packetize(access_unit: &[u8], mode: PacketizationMode, mtu: usize) -> Vec<Vec<u8>> {
    let mtu = mtu.max(3);
    let mut out = Vec::new();
    let mut stap: Vec<&[u8]> = Vec::new();
    let flush = |stap: &mut Vec<&[u8]>, out: &mut Vec<Vec<u8>>| match stap.as_slice() {
        [] => {}
        [one] => {
            out.push(one.to_vec());
            stap.clear();
        }
        units => {
            let f = units.iter().fold(0, |a, u| a | (u[0] & 0x80));
            let nri = units.iter().map(|u| u[0] & 0x60).max().unwrap_or(0);
            let mut p = vec![f | nri | STAP_A];
            for u in units {
                p.extend_from_slice(&(u.len() as u16).to_be_bytes());
                p.extend_from_slice(u);
            }
            out.push(p);
            stap.clear();
        }
    };
    for unit in nal_units(access_unit) {
        if unit.len() > mtu {
            flush(&mut stap, &mut out);
            fragment(unit, mtu, &mut out);
            continue;
        }
        if mode == PacketizationMode::Single {
            out.push(unit.to_vec());
            continue;
        }
        let size_with = 1 + stap.iter().map(|u| 2 + u.len()).sum::<usize>() + 2 + unit.len();
        if size_with > mtu {
            flush(&mut stap, &mut out);
        }
        stap.push(unit);
    }
    flush(&mut stap, &mut out);
    out
}

/// FU-A fragments of a NAL unit, each at most `mtu` bytes.
fn fragment(unit: &[u8], mtu: usize, out: &mut Vec<Vec<u8>>) {
    let header = unit[0];
    let indicator = (header & 0xe0) | FU_A;
    let body = &unit[1..];
    let room = mtu - 2;
    let n = body.len().div_ceil(room);
    for (i, chunk) in body.chunks(room).enumerate() {
        let mut fu = nal_type(header);
        if i == 0 {
            fu |= 0x80;
        }
        if i + 1 == n {
            fu |= 0x40;
        }
        let mut p = Vec::with_capacity(2 + chunk.len());
        p.extend_from_slice(&[indicator, fu]);
        p.extend_from_slice(chunk);
        out.push(p);
    }
}

/// Puts access units back together from RTP packets, in order (after the jitter buffer),
/// as Annex B. An access unit with a packet missing is dropped whole, and the loss
/// reported so that its owner asks for a key frame.
#[derive(Debug)]
pub struct H264Depacketizer {
    unit: Vec<u8>,
    /// The access unit's timestamp and the sequence number expected next.
    at: Option<(u32, u16)>,
    /// Packets of this access unit were lost: the rest of it is dropped.
    broken: bool,
    /// Inside a FU-A (its start seen, its end not yet).
    in_fu: bool,
    key: bool,
    max_frame: usize,
}

impl H264Depacketizer {
    /// Access units larger than `max_frame` bytes are dropped.
    pub fn new(max_frame: usize) -> H264Depacketizer {
        H264Depacketizer {
            unit: Vec::new(),
            at: None,
            broken: false,
            in_fu: false,
            key: false,
            max_frame,
        }
    }

    /// One packet: its sequence number, timestamp, marker and payload. A complete access
    /// unit comes out at its marker.
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<Depacketized>, PacketLoss> {
        let mut loss = None;
        match self.at {
            Some((ts, next)) if ts == timestamp && next != seq => {
                self.broken = true;
                loss = Some(PacketLoss::Gap);
            }
            Some((ts, _)) if ts == timestamp => {}
            Some(_) => {
                // A new access unit before the marker of the last: its end was lost.
                self.restart();
                loss = Some(PacketLoss::Gap);
            }
            None => {}
        }
        self.at = Some((timestamp, seq.wrapping_add(1)));
        if !self.broken
            && let Err(e) = self.take(payload)
        {
            self.broken = true;
            loss = Some(e);
        }
        if !marker {
            return loss.map_or(Ok(None), Err);
        }
        let complete = !self.broken && !self.in_fu && !self.unit.is_empty();
        let out = complete.then(|| Depacketized {
            data: std::mem::take(&mut self.unit),
            timestamp,
            key: self.key,
            after_loss: false,
        });
        self.restart();
        self.at = None;
        match (out, loss) {
            (Some(f), None) => Ok(Some(f)),
            (_, Some(e)) => Err(e),
            (None, None) => Err(PacketLoss::Gap),
        }
    }

    fn restart(&mut self) {
        self.unit.clear();
        self.broken = false;
        self.in_fu = false;
        self.key = false;
    }

    fn take(&mut self, p: &[u8]) -> Result<(), PacketLoss> {
        let header = *p.first().ok_or(PacketLoss::Malformed)?;
        if header & 0x80 != 0 {
            return Err(PacketLoss::Malformed);
        }
        match nal_type(header) {
            1..=23 => {
                if self.in_fu {
                    return Err(PacketLoss::Gap);
                }
                self.nal(p)
            }
            STAP_A => {
                if self.in_fu {
                    return Err(PacketLoss::Gap);
                }
                let mut rest = &p[1..];
                if rest.is_empty() {
                    return Err(PacketLoss::Malformed);
                }
                while !rest.is_empty() {
                    let [a, b, tail @ ..] = rest else {
                        return Err(PacketLoss::Malformed);
                    };
                    let n = usize::from(u16::from_be_bytes([*a, *b]));
                    if n == 0 || tail.len() < n {
                        return Err(PacketLoss::Malformed);
                    }
                    self.nal(&tail[..n])?;
                    rest = &tail[n..];
                }
                Ok(())
            }
            FU_A => {
                let [indicator, fu, body @ ..] = p else {
                    return Err(PacketLoss::Malformed);
                };
                let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                if start && end {
                    return Err(PacketLoss::Malformed);
                }
                if start {
                    if self.in_fu {
                        return Err(PacketLoss::Gap);
                    }
                    let header = (indicator & 0xe0) | nal_type(*fu);
                    self.nal(&[header])?;
                    self.in_fu = true;
                } else if !self.in_fu {
                    return Err(PacketLoss::Gap);
                }
                self.append(body)?;
                if end {
                    self.in_fu = false;
                }
                Ok(())
            }
            // STAP-B, MTAP, FU-B: interleaved mode, which we do not offer; 0, 30, 31:
            // reserved.
            _ => Err(PacketLoss::Unsupported),
        }
    }

    /// A NAL unit (its first bytes, for a FU-A) with its start code.
    fn nal(&mut self, unit: &[u8]) -> Result<(), PacketLoss> {
        if unit[0] & 0x80 != 0 {
            return Err(PacketLoss::Malformed);
        }
        if nal_type(unit[0]) == 5 {
            self.key = true;
        }
        self.append(&START_CODE)?;
        self.append(unit)
    }

    fn append(&mut self, b: &[u8]) -> Result<(), PacketLoss> {
        if self.unit.len() + b.len() > self.max_frame {
            return Err(PacketLoss::TooLarge);
        }
        self.unit.extend_from_slice(b);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An access unit as an encoder writes it: SPS, PPS, an IDR slice of `idr` bytes.
    fn key_unit(idr: usize) -> Vec<u8> {
        let mut au = vec![0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0x8c];
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
        au.extend_from_slice(&[0, 0, 1, 0x65]);
        au.extend((0..idr).map(|i| (i % 251) as u8 | 1));
        au
    }

    fn all(
        d: &mut H264Depacketizer,
        packets: &[Vec<u8>],
        seq0: u16,
        ts: u32,
    ) -> Result<Option<Depacketized>, PacketLoss> {
        let n = packets.len();
        let mut last = Ok(None);
        for (i, p) in packets.iter().enumerate() {
            last = d.push(seq0.wrapping_add(i as u16), ts, i + 1 == n, p);
        }
        last
    }

    #[test]
    fn annex_b_units_are_found_with_either_start_code() {
        let au = key_unit(3);
        let units = nal_units(&au);
        assert_eq!(units.len(), 3);
        assert_eq!(units[0][0], 0x67);
        assert_eq!(units[1], &[0x68, 0xce, 0x3c, 0x80]);
        assert_eq!(nal_type(units[2][0]), 5);
        assert!(nal_units(&[0, 0, 0, 0]).is_empty());
    }

    #[test]
    fn small_units_share_a_stap_a_and_a_large_one_is_fragmented() {
        let au = key_unit(3000);
        let p = packetize(&au, PacketizationMode::NonInterleaved, 1200);
        assert_eq!(nal_type(p[0][0]), STAP_A, "SPS and PPS together");
        assert!(p[1..].iter().all(|x| nal_type(x[0]) == FU_A));
        assert!(p.iter().all(|x| x.len() <= 1200));
        assert_eq!(p[1][1] & 0xc0, 0x80, "S on the first fragment");
        assert_eq!(p.last().unwrap()[1] & 0xc0, 0x40, "E on the last");

        let mut d = H264Depacketizer::new(1 << 20);
        let f = all(&mut d, &p, 65530, 90_000).unwrap().unwrap();
        assert!(f.key);
        assert_eq!(nal_units(&f.data), nal_units(&au));

        // Mode 0: each unit alone.
        let p = packetize(&key_unit(100), PacketizationMode::Single, 1200);
        assert_eq!(p.len(), 3);
        let f = all(&mut d, &p, 1, 180_000).unwrap().unwrap();
        assert_eq!(nal_units(&f.data), nal_units(&key_unit(100)));
    }

    #[test]
    fn a_lost_fragment_drops_the_unit_and_the_next_comes_whole() {
        let p = packetize(&key_unit(3000), PacketizationMode::NonInterleaved, 1200);
        let mut d = H264Depacketizer::new(1 << 20);
        let n = p.len() as u16;
        let mut results = Vec::new();
        for (i, x) in p.iter().enumerate() {
            if i == 2 {
                continue;
            }
            results.push(d.push(i as u16, 1, i as u16 + 1 == n, x));
        }
        assert!(results.contains(&Err(PacketLoss::Gap)), "{results:?}");
        assert!(results.iter().all(|r| !matches!(r, Ok(Some(_)))));
        let next = packetize(
            &[0, 0, 1, 0x41, 0x9a, 0x10],
            PacketizationMode::Single,
            1200,
        );
        let f = all(&mut d, &next, n + 5, 2).unwrap().unwrap();
        assert!(!f.key);
        assert_eq!(f.data, [0, 0, 0, 1, 0x41, 0x9a, 0x10]);
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let mut d = H264Depacketizer::new(1 << 20);
        for bad in [
            &[][..],
            &[0x80 | 1, 0],        // forbidden bit
            &[STAP_A],             // empty aggregate
            &[STAP_A, 0, 5, 0x67], // size past the end
            &[STAP_A, 0, 0],       // zero size
            &[FU_A],               // no FU header
            &[FU_A, 0xc5, 1],      // start and end at once
            &[25, 0, 0],           // STAP-B: interleaved mode
        ] {
            assert!(d.push(1, 1, true, bad).is_err(), "{bad:02x?}");
        }
        // A fragment's middle without its start.
        assert_eq!(d.push(1, 1, true, &[FU_A, 0x05, 1]), Err(PacketLoss::Gap));
        let mut small = H264Depacketizer::new(100);
        let p = packetize(&key_unit(300), PacketizationMode::NonInterleaved, 1200);
        assert_eq!(all(&mut small, &p, 1, 1), Err(PacketLoss::TooLarge));
    }
}
