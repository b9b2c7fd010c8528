//! SRTP's replay window (RFC 3711 §3.3.2), in the shape webrtc-srtp takes one. It builds a
//! fresh window each time it looks a stream up, twice a packet, and keeps it only for a
//! stream it has not seen; so making one must cost no more than its box. This one holds
//! its 128 bits inline where webrtc-util's keeps them in a vector (a second allocation,
//! and a loop to shift), and otherwise decides exactly as that one does (a test holds
//! them side by side).

use webrtc_util::replay_detector::ReplayDetector;

/// Packets this far behind the newest still count as late rather than replayed (RFC 3711
/// asks for at least 64).
pub(super) const WINDOW: u32 = u128::BITS;

/// The window over one stream's sequence numbers, which wrap after `max`.
pub(super) struct ReplayWindow {
    max: u64,
    /// The newest sequence number accepted; None before the first packet.
    latest: Option<u64>,
    /// Bit i: `latest - i` was accepted.
    seen: u128,
    /// What `check` passed, for `accept` once the packet has authenticated.
    pending: Option<u64>,
}

impl ReplayWindow {
    /// A window for sequence numbers 0..=`max` (65,535 for SRTP, 2^31 - 1 for SRTCP).
    pub(super) fn new(max: u64) -> ReplayWindow {
        ReplayWindow {
            max,
            latest: None,
            seen: 0,
            pending: None,
        }
    }

    /// How far `seq` is behind the newest (negative: ahead), across the wrap.
    fn behind(&self, latest: u64, seq: u64) -> i64 {
        let half = (self.max / 2) as i64;
        let d = latest as i64 - seq as i64;
        if d > half {
            d - (self.max + 1) as i64
        } else if d <= -half {
            d + (self.max + 1) as i64
        } else {
            d
        }
    }
}

impl ReplayDetector for ReplayWindow {
    fn check(&mut self, seq: u64) -> bool {
        self.pending = None;
        if seq > self.max {
            return false;
        }
        // The first packet is taken as one ahead of a newest that came before it.
        let latest = *self
            .latest
            .get_or_insert(if seq == 0 { self.max } else { seq - 1 });
        let behind = self.behind(latest, seq);
        if behind >= i64::from(WINDOW) || (behind >= 0 && self.seen >> behind & 1 == 1) {
            return false;
        }
        self.pending = Some(seq);
        true
    }

    fn accept(&mut self) {
        let (Some(seq), Some(latest)) = (self.pending.take(), self.latest) else {
            return;
        };
        let behind = self.behind(latest, seq);
        if behind < 0 {
            self.seen = self
                .seen
                .checked_shl(behind.unsigned_abs() as u32)
                .unwrap_or(0)
                | 1;
            self.latest = Some(seq);
        } else {
            self.seen |= 1 << behind;
        }
    }
}

#[cfg(test)]
mod tests {
    use webrtc_util::replay_detector::WrappedSlidingWindowDetector;

    use super::*;

    /// Random streams (in order, late, repeated, far ahead, across the wrap, some never
    /// authenticated) get the same answers from this window and from webrtc-util's.
    #[test]
    fn decides_as_webrtc_utils_window_does() {
        for max in [65_535, 0x7FFF_FFFF] {
            for round in 0..200u64 {
                let mut rng = fastrand::Rng::with_seed(round);
                let mut ours = ReplayWindow::new(max);
                let mut theirs = WrappedSlidingWindowDetector::new(WINDOW as usize, max);
                let mut seq = rng.u64(0..=max);
                for i in 0..2_000 {
                    seq = match rng.u8(0..10) {
                        0 => seq.wrapping_sub(rng.u64(0..300)),
                        1 => seq.wrapping_add(rng.u64(0..3_000)),
                        2 => seq,
                        _ => seq.wrapping_add(1),
                    } & max;
                    let (a, b) = (ours.check(seq), theirs.check(seq));
                    assert_eq!(a, b, "max {max} round {round} packet {i}: seq {seq}");
                    // One in eight fails authentication and is never accepted.
                    if a && rng.u8(0..8) != 0 {
                        ours.accept();
                        theirs.accept();
                    }
                }
            }
        }
    }

    #[test]
    fn a_replay_is_refused_and_a_late_packet_within_the_window_is_not() {
        let mut w = ReplayWindow::new(65_535);
        for seq in [65_530, 65_531, 65_535, 0, 1] {
            assert!(w.check(seq), "{seq}");
            w.accept();
        }
        assert!(!w.check(1), "a replay");
        assert!(w.check(65_533), "late, across the wrap");
        w.accept();
        assert!(!w.check(65_533), "now a replay");
        // Checked but not authenticated: it may come again.
        assert!(w.check(65_534));
        assert!(w.check(65_534));
        // Too old for the window.
        assert!(!w.check(1u64.wrapping_sub(u64::from(WINDOW)) & 65_535));
    }
}
