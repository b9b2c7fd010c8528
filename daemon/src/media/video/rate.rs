//! How fast we send video: a rate that follows the loss the far side reports (RTCP
//! receiver reports), held back when its jitter grows, capped by what it asks (REMB,
//! TMMBR) and by the configured ceiling; and the packets kept to answer its NACKs.
//!
//! The loss rule is the loss-based half of Google's congestion control (draft-ietf-
//! rmcat-gcc §6), as in libwebrtc: under 2 % loss the rate grows 8 % a second; over 10 %
//! it falls by half the loss; in between it holds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The least we send: a picture still moves at this.
pub const FLOOR_KBPS: u32 = 64;
/// Jitter the far side reports beyond which we do not grow: a queue is building.
const JITTER_HOLD: Duration = Duration::from_millis(40);

/// The send rate of one video stream.
#[derive(Debug)]
pub struct SendRate {
    kbps: u32,
    ceiling: u32,
    /// What the far side asked for at most (REMB, TMMBR), if it did.
    asked: Option<u32>,
    last_growth: Option<Instant>,
}

impl SendRate {
    /// Starts at `start` kbit/s, never above `ceiling`.
    pub fn new(start: u32, ceiling: u32) -> SendRate {
        let ceiling = ceiling.max(FLOOR_KBPS);
        SendRate {
            kbps: start.clamp(FLOOR_KBPS, ceiling),
            ceiling,
            asked: None,
            last_growth: None,
        }
    }

    /// The rate to encode at now.
    pub fn kbps(&self) -> u32 {
        self.kbps
            .min(self.asked.unwrap_or(u32::MAX))
            .max(FLOOR_KBPS)
    }

    /// A receiver report: `fraction_lost` (of 256) since the last, and its jitter.
    /// Returns the new rate when it changed.
    pub fn report(&mut self, fraction_lost: u8, jitter: Duration, now: Instant) -> Option<u32> {
        let before = self.kbps();
        let loss = f64::from(fraction_lost) / 256.0;
        if loss > 0.10 {
            self.kbps = ((f64::from(self.kbps) * (1.0 - 0.5 * loss)) as u32).max(FLOOR_KBPS);
        } else if loss < 0.02 && jitter < JITTER_HOLD {
            let since = self
                .last_growth
                .map_or(Duration::from_secs(1), |t| now.saturating_duration_since(t));
            let grown = f64::from(self.kbps) * 1.08f64.powf(since.as_secs_f64().min(1.0));
            self.kbps = (grown.ceil() as u32).min(self.ceiling);
            self.last_growth = Some(now);
        }
        let after = self.kbps();
        (after != before).then_some(after)
    }

    /// The far side's cap (REMB, TMMBR), in bit/s. Returns the new rate when it changed.
    pub fn asked(&mut self, bps: u64) -> Option<u32> {
        let before = self.kbps();
        self.asked = Some(u32::try_from(bps / 1000).unwrap_or(u32::MAX));
        let after = self.kbps();
        (after != before).then_some(after)
    }
}

/// The packets sent last, by sequence number, to send again when the far side NACKs
/// them. Bounded: the oldest go first.
#[derive(Debug)]
pub struct SendHistory {
    packets: VecDeque<(u16, Vec<u8>)>,
    capacity: usize,
}

impl SendHistory {
    /// Keeps up to `capacity` packets (a second of 640×480 at 1 Mbit/s is ~100).
    pub fn new(capacity: usize) -> SendHistory {
        SendHistory {
            packets: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// A packet sent with sequence number `seq`.
    pub fn sent(&mut self, seq: u16, packet: &[u8]) {
        let mut buf = match self.packets.len() >= self.capacity {
            true => self.packets.pop_front().map(|(_, b)| b).unwrap_or_default(),
            false => Vec::new(),
        };
        buf.clear();
        buf.extend_from_slice(packet);
        self.packets.push_back((seq, buf));
    }

    /// The packet sent as `seq`, if it is still kept.
    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        // Sent in order: its place follows from the newest's number.
        let (newest, _) = self.packets.back()?;
        let back = usize::from(newest.wrapping_sub(seq));
        let i = self.packets.len().checked_sub(back + 1)?;
        self.packets
            .get(i)
            .filter(|(s, _)| *s == seq)
            .map(|(_, p)| p.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_falls_with_loss_grows_without_and_keeps_to_its_caps() {
        let t0 = Instant::now();
        let mut r = SendRate::new(800, 1000);
        // 25 % loss: down by an eighth.
        assert_eq!(r.report(64, Duration::ZERO, t0), Some(700));
        // 5 %: held.
        assert_eq!(r.report(13, Duration::ZERO, t0), None);
        // Clean for ten seconds: up 8 % a second, to the ceiling.
        let mut now = t0;
        for _ in 0..10 {
            now += Duration::from_secs(1);
            r.report(0, Duration::ZERO, now);
        }
        assert_eq!(r.kbps(), 1000);
        // Growing jitter holds it back.
        let mut r = SendRate::new(500, 1000);
        assert_eq!(r.report(0, Duration::from_millis(80), t0), None);
        // The far side's cap, then none.
        assert_eq!(r.asked(300_000), Some(300));
        assert_eq!(r.asked(10_000), Some(FLOOR_KBPS));
        assert_eq!(r.asked(u64::MAX), Some(500));
        // Total loss, again and again: never under the floor.
        for _ in 0..50 {
            r.report(255, Duration::ZERO, t0);
        }
        assert_eq!(r.kbps(), FLOOR_KBPS);
    }

    #[test]
    fn nacked_packets_are_found_while_kept() {
        let mut h = SendHistory::new(4);
        for seq in 65533..=65535u16 {
            h.sent(seq, &[seq as u8]);
        }
        for seq in 0..3u16 {
            h.sent(seq, &[seq as u8]);
        }
        assert_eq!(h.get(2), Some(&[2u8][..]));
        assert_eq!(h.get(65535), Some(&[255u8][..]));
        assert_eq!(h.get(65534), None, "dropped: only four kept");
        assert_eq!(h.get(3), None, "not sent yet");
        assert_eq!(SendHistory::new(4).get(1), None);
    }
}
