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
            let ext = b.get(len + 2..len + 4).ok_or(RtpError::Truncated)?;
            len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
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
