//! DTMF as RFC 4733 telephone events: the digits, a sender that spreads one event over
//! 20 ms packets, and a receiver that reports each event once.

const DIGITS: &str = "0123456789*#ABCD";
/// Packets of tone per digit (100 ms), then the end packet sent three times.
const TONE_PACKETS: u16 = 5;
const END_REPEATS: u16 = 3;

pub fn event_code(d: char) -> Option<u8> {
    DIGITS.find(d.to_ascii_uppercase()).map(|i| i as u8)
}

pub fn digit(code: u8) -> Option<char> {
    DIGITS.chars().nth(usize::from(code))
}

pub struct DtmfSender {
    code: u8,
    timestamp: u32,
    sent: u16,
}

impl DtmfSender {
    pub fn new(d: char, timestamp: u32) -> Option<DtmfSender> {
        Some(DtmfSender {
            code: event_code(d)?,
            timestamp,
            sent: 0,
        })
    }

    /// Whether the next packet is the event's first (it carries the marker bit).
    pub fn first(&self) -> bool {
        self.sent == 0
    }

    /// Every packet of an event has its start timestamp.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The next payload, and whether the event is over after it.
    pub fn next_packet(&mut self) -> ([u8; 4], bool) {
        self.sent += 1;
        let end = self.sent > TONE_PACKETS;
        let duration = 160 * self.sent.min(TONE_PACKETS);
        // Volume 10 (-10 dBm0), as phones commonly send.
        let flags = if end { 0x80 } else { 0 } | 10;
        let d = duration.to_be_bytes();
        (
            [self.code, flags, d[0], d[1]],
            self.sent >= TONE_PACKETS + END_REPEATS,
        )
    }
}

/// Reports an event on its first packet; retransmissions and continuation packets carry
/// the same timestamp and are not reported again.
#[derive(Default)]
pub struct Receiver {
    last: Option<u32>,
}

impl Receiver {
    pub fn packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let code = *payload.first()?;
        if payload.len() < 4 || self.last == Some(timestamp) {
            return None;
        }
        self.last = Some(timestamp);
        digit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digit_is_sent_as_one_event_and_received_once() {
        let mut s = DtmfSender::new('#', 1000).unwrap();
        let mut r = Receiver::default();
        let mut got = Vec::new();
        loop {
            let first = s.first();
            let (p, done) = s.next_packet();
            assert_eq!(p[0], 11);
            if first {
                assert_eq!(p[1] & 0x80, 0, "not the end yet");
            }
            got.extend(r.packet(s.timestamp(), &p));
            if done {
                assert_ne!(p[1] & 0x80, 0, "the last packets carry the E bit");
                break;
            }
        }
        assert_eq!(got, vec!['#']);
        assert_eq!(r.packet(1160, &[5, 0, 0, 160]), Some('5'), "a new event");
        assert_eq!(r.packet(1160, &[5, 0x80, 0, 160]), None);
        assert_eq!(
            r.packet(2000, &[99, 0, 0, 160]),
            None,
            "unknown events are ignored"
        );
        assert_eq!(event_code('a'), Some(12));
        assert!(DtmfSender::new('x', 0).is_none());
    }
}
