//! An adaptive jitter buffer: packets are held by sequence number and played out one per
//! 20 ms tick. Playout starts once `target` frames are buffered; a packet that arrives
//! after its turn makes the target grow (up to 12 frames, 240 ms), and a long calm stretch
//! lets it shrink again. Gaps become concealment frames, with the packet after the gap
//! offered for Opus in-band FEC.

use std::collections::VecDeque;

const MIN_TARGET: usize = 2;
const MAX_TARGET: usize = 12;
/// Ticks without a late packet before the target may shrink by one.
const CALM: u32 = 500;
/// More buffered than this (the far side sends in bursts, or we stalled) is cut back.
const MAX_HELD: usize = 50;

#[derive(Debug, PartialEq, Eq)]
pub enum Playout {
    Frame(Vec<u8>),
    /// The packet for this turn is missing; `next` is the one after it, if here.
    Lost {
        next: Option<Vec<u8>>,
    },
    /// Nothing to play (not started, or ran dry): silence or concealment.
    Empty,
}

#[derive(Default)]
pub struct JitterBuffer {
    /// By extended sequence number, ascending; a few at a time, mostly added at the end
    /// (a map's first node alone is 400 bytes per call).
    packets: VecDeque<(u64, Vec<u8>)>,
    /// Extended sequence number of the next frame to play.
    next: Option<u64>,
    /// Highest extended sequence number seen, to unwrap 16-bit numbers.
    highest: Option<u64>,
    target: usize,
    playing: bool,
    calm: u32,
    pub late: u64,
    pub lost: u64,
}

impl JitterBuffer {
    pub fn new() -> JitterBuffer {
        JitterBuffer {
            target: MIN_TARGET,
            ..Default::default()
        }
    }

    pub fn target_frames(&self) -> usize {
        self.target
    }

    fn extend(&mut self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            // Start well above zero so that earlier packets still have a number.
            let e = (1u64 << 32) + u64::from(seq);
            self.highest = Some(e);
            return e;
        };
        let base = h & !0xffff;
        let candidates =
            [base.wrapping_sub(0x1_0000), base, base + 0x1_0000].map(|b| b + u64::from(seq));
        let e = candidates
            .into_iter()
            .min_by_key(|c| c.abs_diff(h))
            .unwrap_or(base + u64::from(seq));
        if e > h {
            self.highest = Some(e);
        }
        e
    }

    pub fn push(&mut self, seq: u16, payload: &[u8]) {
        let e = self.extend(seq);
        if self.next.is_some_and(|n| e < n) {
            // Its turn has passed: the network is jumpier than we allowed for.
            self.late += 1;
            self.calm = 0;
            self.target = (self.target + 1).min(MAX_TARGET);
            return;
        }
        if let Err(at) = self.find(e) {
            self.packets.insert(at, (e, payload.to_vec()));
        }
        if self.packets.len() > MAX_HELD {
            // Far behind: drop the oldest and jump ahead.
            while self.packets.len() > self.target {
                self.packets.pop_front();
            }
            self.next = self.first();
        }
    }

    /// The frame for this 20 ms tick.
    pub fn pop(&mut self) -> Playout {
        if !self.playing {
            if self.packets.len() < self.target {
                return Playout::Empty;
            }
            self.playing = true;
            self.next = self.first();
        }
        let Some(n) = self.next else {
            return Playout::Empty;
        };
        if self.packets.is_empty() {
            // Ran dry: wait for the buffer to fill again before playing on.
            self.playing = false;
            self.target = (self.target + 1).min(MAX_TARGET);
            return Playout::Empty;
        }
        self.calm += 1;
        if self.calm >= CALM && self.target > MIN_TARGET {
            self.target -= 1;
            self.calm = 0;
        }
        self.next = Some(n + 1);
        match self.find(n).ok().and_then(|i| self.packets.remove(i)) {
            Some((_, p)) => Playout::Frame(p),
            None => {
                self.lost += 1;
                let next = self.find(n + 1).ok().and_then(|i| self.packets.get(i));
                let next = next.map(|(_, p)| p.clone());
                Playout::Lost { next }
            }
        }
    }

    /// Where packet `e` is held (Ok), or would go (Err).
    fn find(&self, e: u64) -> Result<usize, usize> {
        self.packets.binary_search_by_key(&e, |(k, _)| *k)
    }

    fn first(&self) -> Option<u64> {
        self.packets.front().map(|(k, _)| *k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(b: u8) -> Playout {
        Playout::Frame(vec![b])
    }

    #[test]
    fn reorders_and_starts_after_the_target() {
        let mut j = JitterBuffer::new();
        j.push(11, &[11]);
        assert_eq!(j.pop(), Playout::Empty, "waits for two frames");
        j.push(10, &[10]);
        assert_eq!(j.pop(), frame(10));
        assert_eq!(j.pop(), frame(11));
    }

    #[test]
    fn gaps_are_concealed_with_the_next_packet_offered() {
        let mut j = JitterBuffer::new();
        for s in [1u16, 2, 4, 5] {
            j.push(s, &[s as u8]);
        }
        assert_eq!(j.pop(), frame(1));
        assert_eq!(j.pop(), frame(2));
        assert_eq!(
            j.pop(),
            Playout::Lost {
                next: Some(vec![4])
            }
        );
        assert_eq!(j.pop(), frame(4));
        assert_eq!(j.lost, 1);
    }

    #[test]
    fn late_packets_grow_the_target_and_calm_shrinks_it() {
        let mut j = JitterBuffer::new();
        j.push(1, &[1]);
        j.push(2, &[2]);
        assert_eq!(j.pop(), frame(1));
        assert_eq!(j.pop(), frame(2));
        j.push(3, &[3]);
        j.push(5, &[5]);
        assert_eq!(j.pop(), frame(3));
        assert_eq!(
            j.pop(),
            Playout::Lost {
                next: Some(vec![5])
            }
        );
        j.push(4, &[4]); // too late
        assert_eq!((j.late, j.target_frames()), (1, 3));
        for s in 6..(6 + CALM as u16 + 10) {
            j.push(s, &[0]);
            let _ = j.pop();
        }
        assert_eq!(j.target_frames(), 2, "a calm stretch shrinks it back");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut j = JitterBuffer::new();
        j.push(65534, &[1]);
        j.push(65535, &[2]);
        assert_eq!(j.pop(), frame(1));
        j.push(0, &[3]);
        assert_eq!(j.pop(), frame(2));
        assert_eq!(j.pop(), frame(3));
    }
}
