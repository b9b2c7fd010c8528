//! Cutting a byte stream (TCP, later TLS) into SIP messages by Content-Length (RFC 3261
//! §18.3), and recognising RFC 5626 keepalives (CRLF CRLF ping, CRLF pong) between them.

use crate::sip::message::MAX_MESSAGE;
use crate::sip::message::split_head;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    /// CRLF CRLF: answer with a pong.
    Ping,
    /// A lone CRLF: the answer to our ping.
    Pong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("bad Content-Length")]
    BadContentLength,
}

#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
}

/// Content-Length from a head, long or compact name; absent means 0.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    let head = String::from_utf8_lossy(head);
    let mut found = None;
    for line in head.split('\n') {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let v = value.trim();
            let n = (!v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse::<usize>().ok())
                .flatten()
                .ok_or(FrameError::BadContentLength)?;
            if found.is_some_and(|f| f != n) {
                return Err(FrameError::BadContentLength);
            }
            found = Some(n);
        }
    }
    Ok(found.unwrap_or(0))
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `None` until more bytes arrive. After an error the stream
    /// cannot be resynchronised and must be closed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(Frame::Ping));
        }
        if self.buf.starts_with(b"\r\n") {
            match self.buf.get(2) {
                // Could still become a ping.
                Some(b'\r') if self.buf.len() < 4 => return Ok(None),
                _ => {
                    self.buf.drain(..2);
                    return Ok(Some(Frame::Pong));
                }
            }
        }
        if self.buf.first() == Some(&b'\r') && self.buf.len() < 2 {
            return Ok(None);
        }
        let Some(measured) = self.measure() else {
            return if self.buf.len() > MAX_MESSAGE {
                Err(FrameError::TooLarge)
            } else {
                Ok(None)
            };
        };
        let (_, total) = measured?;
        if total > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Message(msg)))
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next message's head and the bytes the whole message takes, once its head is in.
    fn measure(&self) -> Option<Result<(&[u8], usize), FrameError>> {
        let (head, _) = split_head(&self.buf)?;
        // split_head leaves out the blank line: "\n\n" or "\n\r\n" after the head.
        let terminator = if self.buf[head.len()..].starts_with(b"\n\n") {
            2
        } else {
            3
        };
        Some(content_length(head).map(|body| (head, head.len() + terminator + body)))
    }

    /// After `TooLarge`: the head of the message that is too large, and how many bytes the
    /// whole message would take, when the head itself arrived and is sound.
    pub fn oversized(&self) -> Option<(&[u8], usize)> {
        let (head, total) = self.measure()?.ok()?;
        (total > MAX_MESSAGE).then_some((head, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 5\r\n\r\nhello";

    #[test]
    fn an_oversized_message_shows_its_head_and_size() {
        let mut f = Framer::default();
        f.push(b"MESSAGE sip:b@x SIP/2.0\r\nl: 1000000\r\n\r\nabc");
        assert_eq!(f.next_frame(), Err(FrameError::TooLarge));
        let (head, total) = f.oversized().unwrap();
        assert!(head.starts_with(b"MESSAGE sip:b@x SIP/2.0\r\nl: 1000000"));
        let blank_line_end = b"MESSAGE sip:b@x SIP/2.0\r\nl: 1000000\r\n\r\n".len();
        assert_eq!(total, blank_line_end + 1_000_000);
        let mut small = Framer::default();
        small.push(MSG);
        assert_eq!(small.oversized(), None);
    }

    #[test]
    fn splits_two_messages_in_one_read_and_one_over_many() {
        let mut f = Framer::default();
        let mut two = MSG.to_vec();
        two.extend_from_slice(MSG);
        f.push(&two);
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(MSG.to_vec()))));
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(MSG.to_vec()))));
        assert_eq!(f.next_frame(), Ok(None));
        for b in MSG {
            assert_eq!(f.next_frame(), Ok(None));
            f.push(&[*b]);
        }
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(MSG.to_vec()))));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn keepalives() {
        let mut f = Framer::default();
        f.push(b"\r\n\r\n");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Ping)));
        f.push(b"\r\n");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Pong)));
        f.push(b"\r\n\r");
        assert_eq!(f.next_frame(), Ok(None), "may still become a ping");
        f.push(b"\n");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Ping)));
        f.push(b"\r\n");
        f.push(MSG);
        assert_eq!(f.next_frame(), Ok(Some(Frame::Pong)));
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(MSG.to_vec()))));
    }

    #[test]
    fn limits() {
        let mut f = Framer::default();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FrameError::TooLarge));
        let mut f = Framer::default();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FrameError::BadContentLength));
        let mut f = Framer::default();
        f.push(&vec![b'x'; MAX_MESSAGE + 1]);
        assert_eq!(
            f.next_frame(),
            Err(FrameError::TooLarge),
            "an endless head is cut off"
        );
        let mut f = Framer::default();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 65000\r\n\r\n");
        assert_eq!(
            f.next_frame(),
            Ok(None),
            "a lie within the bound just waits (idle timeout closes)"
        );
    }
}
