//! RTP packets (RFC 3550 §5.1): header parsing that refuses malformed packets instead of
//! trusting their fields, and writing.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than an RTP header")]
    Short,
    #[error("RTP version {0}, not 2")]
    Version(u8),
    #[error("CSRC list, extension or padding runs past the packet")]
    Truncated,
}

/// Whether the elements of an RFC 8285 header extension (one-byte or two-byte form) each
/// end inside their block. A reader that trusts an element's length would read past it
/// (webrtc-srtp's does, and panics at the packet's end); such a packet is malformed.
fn elements_fit(profile: u16, block: &[u8]) -> bool {
    let mut pos = 0;
    while pos < block.len() {
        let b = block[pos];
        pos += 1;
        if b == 0 {
            continue; // padding
        }
        let len = match profile {
            0xBEDE if b >> 4 == 15 => return true, // the rest is to be ignored
            0xBEDE => usize::from(b & 0x0f) + 1,
            0x1000 => match block.get(pos) {
                Some(l) => {
                    pos += 1;
                    usize::from(*l)
                }
                None => return false,
            },
            // Other profiles are one opaque block.
            _ => return true,
        };
        pos += len;
        if pos > block.len() {
            return false;
        }
    }
    true
}

impl<'a> RtpPacket<'a> {
    pub fn parse(b: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        let start = RtpPacket::header_len(b)?;
        let padding = b[0] & 0x20 != 0;
        let mut end = b.len();
        if padding {
            let pad = usize::from(*b.last().ok_or(RtpError::Truncated)?);
            end = end.checked_sub(pad).ok_or(RtpError::Truncated)?;
        }
        if start > end {
            return Err(RtpError::Truncated);
        }
        Ok(RtpPacket {
            marker: b[1] & 0x80 != 0,
            pt: b[1] & 0x7f,
            seq: u16::from_be_bytes([b[2], b[3]]),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            payload: &b[start..end],
        })
    }

    /// The length of the header (with CSRCs and extension) that `b` begins with: what SRTP
    /// leaves in clear, and all of an SRTP packet that can be read before it is decrypted.
    pub fn header_len(b: &[u8]) -> Result<usize, RtpError> {
        if b.len() < 12 {
            return Err(RtpError::Short);
        }
        let version = b[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let csrc = usize::from(b[0] & 0x0f);
        let mut len = 12 + 4 * csrc;
        if b[0] & 0x10 != 0 {
            let ext = b.get(len..len + 4).ok_or(RtpError::Truncated)?;
            let profile = u16::from_be_bytes([ext[0], ext[1]]);
            let start = len + 4;
            len = start + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            let block = b.get(start..len).ok_or(RtpError::Truncated)?;
            if !elements_fit(profile, block) {
                return Err(RtpError::Truncated);
            }
        }
        if len > b.len() {
            return Err(RtpError::Truncated);
        }
        Ok(len)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80);
        out.push(u8::from(self.marker) << 7 | (self.pt & 0x7f));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_elements_must_end_inside_their_block() {
        // A two-byte-header element claiming 255 bytes in a one-word block.
        let mut p = vec![
            0x90, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 0x10, 0x00, 0, 1, 1, 255, 0, 0,
        ];
        p.extend([0u8; 16]);
        assert_eq!(RtpPacket::header_len(&p), Err(RtpError::Truncated));
        // One-byte form: an element of 16 bytes in a one-word block; then a good one.
        let bad = [
            0x90, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 0xBE, 0xDE, 0, 1, 0x1F, 0, 0, 0,
        ];
        assert_eq!(RtpPacket::header_len(&bad), Err(RtpError::Truncated));
        let good = [
            0x90, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 0xBE, 0xDE, 0, 1, 0x12, 7, 7, 7,
        ];
        assert_eq!(RtpPacket::header_len(&good), Ok(20));
    }

    #[test]
    fn round_trip_and_malformed_packets() {
        let p = RtpPacket {
            marker: true,
            pt: 8,
            seq: 65535,
            timestamp: 160,
            ssrc: 0xdead_beef,
            payload: &[1, 2, 3],
        };
        let mut buf = Vec::new();
        p.write(&mut buf);
        assert_eq!(RtpPacket::parse(&buf), Ok(p));
        assert_eq!(RtpPacket::parse(&buf[..11]), Err(RtpError::Short));
        let mut v1 = buf.clone();
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::Version(1)));
        let mut many_csrc = buf.clone();
        many_csrc[0] = 0x8f; // 15 CSRCs claimed, none there
        assert_eq!(RtpPacket::parse(&many_csrc), Err(RtpError::Truncated));
        let mut ext = buf.clone();
        ext[0] = 0x90;
        assert_eq!(RtpPacket::parse(&ext), Err(RtpError::Truncated));
        let mut pad = buf.clone();
        pad[0] = 0xa0;
        *pad.last_mut().unwrap() = 200;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Truncated));
    }
}
