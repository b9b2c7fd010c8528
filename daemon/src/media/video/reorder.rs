//! Video's jitter buffer: packets put back in sequence order, and a missing one waited
//! for a little (the time a NACK takes to bring it back) before the stream goes on
//! without it. Audio's jitter buffer plays out at a steady rate; video's only orders: a
//! picture is shown when its last packet is in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Packets held (one more at most): past it, a gap is given up on.
const CAPACITY: usize = 1024;

/// Reorders a stream's RTP packets by sequence number.
#[derive(Debug)]
pub struct ReorderBuffer {
    /// By extended sequence number (wraps counted), with when each came.
    held: BTreeMap<u64, (Instant, Vec<u8>)>,
    /// The extended number due next; None before the first packet.
    next: Option<u64>,
    /// How long a missing packet is waited for.
    wait: Duration,
    /// Packets given up on (never came in time), and late ones dropped.
    pub skipped: u64,
    /// Packets that came after their place was given up, or twice.
    pub late: u64,
}

impl ReorderBuffer {
    /// A buffer that waits up to `wait` for a missing packet (about one round trip plus a
    /// frame interval).
    pub fn new(wait: Duration) -> ReorderBuffer {
        ReorderBuffer {
            held: BTreeMap::new(),
            next: None,
            wait,
            skipped: 0,
            late: 0,
        }
    }

    /// The extended number of `seq`: the one nearest to what is due.
    fn extend(&self, seq: u16) -> u64 {
        let Some(next) = self.next else {
            return u64::from(seq) + (1 << 16);
        };
        let base = next & !0xffff;
        [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .map(|b| b | u64::from(seq))
            .min_by_key(|c| c.abs_diff(next))
            .unwrap_or(next)
    }

    /// A packet came: `seq` and the whole packet.
    pub fn push(&mut self, seq: u16, packet: &[u8], now: Instant) {
        let ext = self.extend(seq);
        let next = *self.next.get_or_insert(ext);
        if ext < next || self.held.contains_key(&ext) {
            self.late += 1;
            return;
        }
        self.held.insert(ext, (now, packet.to_vec()));
        // Too much held (a long gap, or no one taking): the gap at the head is given up
        // on, or, with none, the oldest packet dropped.
        if self.held.len() > CAPACITY
            && let Some(&first) = self.held.keys().next()
        {
            if first != next {
                self.skip_to(first);
                self.next = Some(first);
            } else {
                self.held.remove(&first);
                self.skipped += 1;
                self.next = Some(first + 1);
            }
        }
    }

    /// The packets that may go on now, in order: those due, and past a gap whose wait is
    /// over.
    pub fn pop(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((&first, (arrived, _))) = self.held.first_key_value() {
            let Some(next) = self.next else { break };
            if first != next {
                // A gap: waited for since the packet after it came.
                if now.saturating_duration_since(*arrived) < self.wait {
                    break;
                }
                self.skip_to(first);
            }
            if let Some((_, p)) = self.held.remove(&first) {
                out.push(p);
            }
            self.next = Some(first + 1);
        }
        out
    }

    /// When the gap at the head stops being waited for, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        let (&first, (arrived, _)) = self.held.first_key_value()?;
        (Some(first) != self.next).then_some(*arrived + self.wait)
    }

    fn skip_to(&mut self, first: u64) {
        if let Some(next) = self.next {
            self.skipped += first.saturating_sub(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(out: &[Vec<u8>]) -> Vec<u8> {
        out.iter().map(|p| p[0]).collect()
    }

    #[test]
    fn packets_come_out_in_order_and_a_gap_is_waited_for_then_skipped() {
        let t = Instant::now();
        let wait = Duration::from_millis(100);
        let mut b = ReorderBuffer::new(wait);
        b.push(1, &[1], t);
        b.push(3, &[3], t);
        b.push(2, &[2], t);
        assert_eq!(seqs(&b.pop(t)), [1, 2, 3]);
        // 4 missing: 5 and 6 wait…
        b.push(5, &[5], t);
        b.push(6, &[6], t);
        assert!(b.pop(t + Duration::from_millis(50)).is_empty());
        assert_eq!(b.deadline(), Some(t + wait));
        // …the NACKed 4 comes in time.
        b.push(4, &[4], t + Duration::from_millis(60));
        assert_eq!(seqs(&b.pop(t + Duration::from_millis(60))), [4, 5, 6]);
        // 7 never comes: after the wait, 8 goes on without it.
        b.push(8, &[8], t);
        assert_eq!(seqs(&b.pop(t + wait)), [8]);
        assert_eq!(b.skipped, 1);
        // 7 now, or 8 again: late.
        b.push(7, &[7], t);
        b.push(8, &[8], t);
        assert_eq!(b.late, 2);
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn sequence_numbers_wrap_and_a_flood_is_bounded() {
        let t = Instant::now();
        let mut b = ReorderBuffer::new(Duration::from_secs(10));
        b.push(65534, &[0], t);
        b.push(0, &[2], t);
        b.push(65535, &[1], t);
        b.push(1, &[3], t);
        assert_eq!(seqs(&b.pop(t)), [0, 1, 2, 3]);
        // A hole, then more than the buffer holds behind it: the hole is given up on.
        for i in 0..(CAPACITY as u16 + 10) {
            b.push(10 + i, &[0], t);
        }
        assert!(b.held.len() <= CAPACITY + 1);
        assert_eq!(b.pop(t).len(), CAPACITY + 1);
        // 2 to 9 given up on; then, with no one taking, the nine oldest dropped.
        assert_eq!(b.skipped, 8 + 9);
    }
}
