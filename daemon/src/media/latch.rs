//! Where a call's RTP is taken from and sent to. Before the first packet it is the host
//! the far side's SDP names, and nothing else: RTP sprayed at our ports by others must
//! neither be played nor draw our audio to them. (Any port of that host: a gateway may send
//! from another port than it receives on; symmetric RTP, RFC 4961, then answers there.)
//! After, the stream is known by its source and SSRC; it may move (a NAT rebinding, a far
//! side that restarts its stream), but only when several packets in a row continue it
//! plausibly from the new place. A far side behind a NAT whose SDP names its private
//! address is not heard until ICE nominates the pair (a later issue).

use std::net::SocketAddr;
use std::time::Instant;

/// Packets in a row that must continue a stream before it is taken from a new place.
const PROBATION: u32 = 4;
/// How far ahead a continuing packet may be, beyond what the time since the last one
/// explains: 10 s of 20 ms frames, and 10 s of clock.
const MAX_SEQ_GAP: u64 = 500;
const MAX_GAP_SECS: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    ssrc: u32,
    seq: u16,
    ts: u32,
    at: Instant,
}

impl Position {
    /// `next` carries on from here: ahead, and no further than the time between them
    /// (a hold, a silence) and a margin explain.
    fn continued_by(&self, next: &Position, clock: u32) -> bool {
        let elapsed = next.at.saturating_duration_since(self.at).as_secs();
        let seq_ahead = u64::from(next.seq.wrapping_sub(self.seq));
        let ts_ahead = u64::from(next.ts.wrapping_sub(self.ts));
        next.ssrc == self.ssrc
            && seq_ahead >= 1
            && seq_ahead <= (MAX_SEQ_GAP + 50 * elapsed).min(0x7fff)
            && ts_ahead <= u64::from(clock) * (MAX_GAP_SECS + elapsed)
    }

    /// `next` is later in the same stream (RFC 3550's notion: ahead by less than half the
    /// sequence space), whatever its timestamp.
    fn followed_by(&self, next: &Position) -> bool {
        next.ssrc == self.ssrc && (1..0x8000).contains(&next.seq.wrapping_sub(self.seq))
    }
}

#[derive(Debug)]
struct Candidate {
    from: SocketAddr,
    last: Position,
    count: u32,
}

/// The far side's media address, as validated so far.
#[derive(Debug)]
pub(super) struct Latch {
    remote: SocketAddr,
    stream: Option<Position>,
    candidate: Option<Candidate>,
}

impl Latch {
    /// Only `signalled` (the SDP's address) is taken until a packet comes from it.
    pub(super) fn new(signalled: SocketAddr) -> Latch {
        Latch {
            remote: signalled,
            stream: None,
            candidate: None,
        }
    }

    /// Where RTP goes, and comes from.
    pub(super) fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// A new SDP: a new address starts over from it; the same one keeps what was learnt.
    pub(super) fn signalled(&mut self, signalled: SocketAddr, before: SocketAddr) {
        if signalled != before {
            *self = Latch::new(signalled);
        }
    }

    /// Whether a packet could be the far side's at all, judged on its source and SSRC
    /// alone: from the far side's host, or the known stream from elsewhere. What passes is
    /// worth authenticating; `accept` then decides.
    pub(super) fn may_be(&self, from: SocketAddr, ssrc: u32) -> bool {
        from.ip() == self.remote.ip() || self.stream.is_some_and(|s| s.ssrc == ssrc)
    }

    /// Whether a packet that came at `now` is the far side's stream. `clock` is the RTP
    /// clock rate.
    pub(super) fn accept(
        &mut self,
        from: SocketAddr,
        ssrc: u32,
        seq: u16,
        ts: u32,
        clock: u32,
        now: Instant,
    ) -> bool {
        let pos = Position {
            ssrc,
            seq,
            ts,
            at: now,
        };
        match self.stream {
            None if from.ip() == self.remote.ip() => {
                self.remote = from;
                self.stream = Some(pos);
                true
            }
            None => false,
            Some(s) if from == self.remote && s.ssrc == ssrc => {
                if s.followed_by(&pos) {
                    self.stream = Some(pos);
                }
                // Late and repeated packets are the jitter buffer's to sort out.
                true
            }
            // From where the stream comes, but a new SSRC: taken once it settles.
            Some(_) if from == self.remote => self.probation(from, pos, None, clock),
            // Elsewhere: only the same stream, continued.
            Some(s) => self.probation(from, pos, Some(s), clock),
        }
    }

    fn probation(
        &mut self,
        from: SocketAddr,
        pos: Position,
        stream: Option<Position>,
        clock: u32,
    ) -> bool {
        let continues = match &self.candidate {
            Some(c) if c.from == from => c.last.continued_by(&pos, clock),
            _ => stream.is_none_or(|s| s.continued_by(&pos, clock)),
        };
        if !continues {
            // A new candidate only where the stream could continue.
            if self.candidate.as_ref().is_none_or(|c| c.from != from)
                && stream.is_none_or(|s| s.continued_by(&pos, clock))
            {
                self.candidate = Some(Candidate {
                    from,
                    last: pos,
                    count: 1,
                });
            }
            return false;
        }
        let count = match &mut self.candidate {
            Some(c) if c.from == from => {
                c.last = pos;
                c.count += 1;
                c.count
            }
            _ => {
                self.candidate = Some(Candidate {
                    from,
                    last: pos,
                    count: 1,
                });
                1
            }
        };
        if count < PROBATION {
            return false;
        }
        if from != self.remote {
            tracing::info!("RTP moved from {} to {from}; following it", self.remote);
        }
        self.remote = from;
        self.stream = Some(pos);
        self.candidate = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CLOCK: u32 = 8000;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn before_the_first_packet_only_the_signalled_host_is_taken() {
        let t = Instant::now();
        let mut l = Latch::new(addr("192.0.2.1:4000"));
        assert!(!l.accept(addr("198.51.100.9:4000"), 7, 1, 160, CLOCK, t));
        assert!(!l.accept(addr("198.51.100.9:4000"), 7, 2, 320, CLOCK, t));
        assert_eq!(l.remote(), addr("192.0.2.1:4000"));
        // Another port of that host: a gateway sending from elsewhere; we answer there.
        assert!(l.accept(addr("192.0.2.1:4002"), 42, 100, 16000, CLOCK, t));
        assert_eq!(l.remote(), addr("192.0.2.1:4002"));
        // A sprayer keeps being refused, whatever it sends, however often.
        for i in 0..50u16 {
            assert!(!l.accept(
                addr("198.51.100.9:4000"),
                9,
                i,
                u32::from(i) * 160,
                CLOCK,
                t
            ));
        }
        assert_eq!(l.remote(), addr("192.0.2.1:4002"));
    }

    #[test]
    fn the_stream_moves_only_when_continued_from_the_new_place() {
        let t = Instant::now();
        let far = addr("192.0.2.1:4000");
        let moved = addr("203.0.113.5:4500");
        let mut l = Latch::new(far);
        assert!(l.accept(far, 42, 100, 16000, CLOCK, t));
        assert!(l.accept(far, 42, 101, 16160, CLOCK, t));
        // The same SSRC from elsewhere but far off in sequence: not the stream.
        for i in 0..10u16 {
            assert!(!l.accept(moved, 42, 20000 + i, 16320, CLOCK, t));
        }
        // Continued: taken after the probation.
        let taken: Vec<bool> = (0..PROBATION as u16)
            .map(|i| l.accept(moved, 42, 102 + i, 16320 + u32::from(i) * 160, CLOCK, t))
            .collect();
        assert_eq!(taken, [false, false, false, true]);
        assert_eq!(l.remote(), moved);
        // The old place is now the stranger.
        assert!(!l.accept(far, 42, 200, 32000, CLOCK, t));
    }

    #[test]
    fn after_a_long_silence_the_stream_may_still_move() {
        let t = Instant::now();
        let far = addr("192.0.2.1:4000");
        let rebound = addr("192.0.2.1:6000");
        let mut l = Latch::new(far);
        assert!(l.accept(far, 42, 100, 16000, CLOCK, t));
        // A minute on hold, then the NAT gave the far side another port.
        let later = t + Duration::from_secs(60);
        let taken: Vec<bool> = (0..PROBATION)
            .map(|i| {
                let ts = 16000 + 60 * CLOCK + i * 160;
                l.accept(rebound, 42, 101 + i as u16, ts, CLOCK, later)
            })
            .collect();
        assert_eq!(taken, [false, false, false, true]);
        assert_eq!(l.remote(), rebound);
    }

    #[test]
    fn a_new_ssrc_from_the_far_side_is_taken_once_it_settles() {
        let t = Instant::now();
        let far = addr("192.0.2.1:4000");
        let mut l = Latch::new(far);
        assert!(l.accept(far, 42, 100, 16000, CLOCK, t));
        let taken: Vec<bool> = (0..PROBATION as u16)
            .map(|i| l.accept(far, 77, 5 + i, u32::from(i) * 160, CLOCK, t))
            .collect();
        assert_eq!(taken, [false, false, false, true]);
        assert!(l.accept(far, 77, 9, 640, CLOCK, t));
    }

    #[test]
    fn a_new_sdp_address_starts_over() {
        let t = Instant::now();
        let far = addr("192.0.2.1:4000");
        let mut l = Latch::new(far);
        assert!(l.accept(far, 42, 100, 16000, CLOCK, t));
        l.signalled(far, far);
        assert!(l.accept(far, 42, 101, 16160, CLOCK, t));
        l.signalled(addr("192.0.2.2:6000"), far);
        assert!(!l.accept(far, 42, 102, 16320, CLOCK, t));
        assert!(l.accept(addr("192.0.2.2:6000"), 5, 1, 0, CLOCK, t));
    }
}
