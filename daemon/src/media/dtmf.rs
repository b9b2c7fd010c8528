//! DTMF as RFC 4733 telephone events: the digits, a sender that spreads one event over
//! 20 ms packets, and a receiver that reports each event once.

const DIGITS: &str = "0123456789*#ABCD";
/// The end packet is sent three times (RFC 4733 §2.5.1.4), one per 20 ms packet.
pub const END_REPEATS: u16 = 3;

/// How digits are sent and heard: `[audio] dtmf_duration_ms`, `dtmf_gap_ms` and
/// `inband_dtmf`. Some door stations take `#1` only with long digits or long pauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfSettings {
    /// 20 ms packets of tone per digit.
    pub tone_packets: u16,
    /// 20 ms packets from a digit's end to the next digit's start, its end packets among
    /// them.
    pub gap_packets: u16,
    /// Also listen for digits in the audio (Goertzel), for far sides without events.
    pub inband: bool,
}

impl DtmfSettings {
    /// From milliseconds, rounded up to whole packets.
    pub fn new(duration_ms: u32, gap_ms: u32, inband: bool) -> DtmfSettings {
        let packets = |ms: u32| u16::try_from(ms.div_ceil(20)).unwrap_or(u16::MAX);
        DtmfSettings {
            tone_packets: packets(duration_ms).max(2),
            gap_packets: packets(gap_ms).max(END_REPEATS),
            inband,
        }
    }
}

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
    tone_packets: u16,
}

impl DtmfSender {
    pub fn new(d: char, timestamp: u32, tone_packets: u16) -> Option<DtmfSender> {
        Some(DtmfSender {
            code: event_code(d)?,
            timestamp,
            sent: 0,
            tone_packets: tone_packets.max(1),
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
        let end = self.sent > self.tone_packets;
        // In 8 kHz units (telephone-event/8000); the field saturates on very long digits.
        let duration = 160u16.saturating_mul(self.sent.min(self.tone_packets));
        // Volume 10 (-10 dBm0), as phones commonly send.
        let flags = if end { 0x80 } else { 0 } | 10;
        let d = duration.to_be_bytes();
        (
            [self.code, flags, d[0], d[1]],
            self.sent >= self.tone_packets + END_REPEATS,
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
        let mut s = DtmfSender::new('#', 1000, 5).unwrap();
        let mut packets = 0;
        let mut r = Receiver::default();
        let mut got = Vec::new();
        loop {
            let first = s.first();
            let (p, done) = s.next_packet();
            packets += 1;
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
        assert_eq!(
            packets,
            5 + END_REPEATS,
            "100 ms of tone, then the end three times"
        );
        assert_eq!(r.packet(1160, &[5, 0, 0, 160]), Some('5'), "a new event");
        assert_eq!(r.packet(1160, &[5, 0x80, 0, 160]), None);
        assert_eq!(
            r.packet(2000, &[99, 0, 0, 160]),
            None,
            "unknown events are ignored"
        );
        assert_eq!(event_code('a'), Some(12));
        assert!(DtmfSender::new('x', 0, 5).is_none());
    }

    #[test]
    fn timing_is_rounded_up_to_packets_and_the_gap_holds_the_end_packets() {
        let s = DtmfSettings::new(250, 500, false);
        assert_eq!((s.tone_packets, s.gap_packets), (13, 25));
        let s = DtmfSettings::new(40, 60, true);
        assert_eq!((s.tone_packets, s.gap_packets), (2, END_REPEATS));
    }
}
