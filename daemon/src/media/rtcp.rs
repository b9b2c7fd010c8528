//! RTCP (RFC 3550 §6): reception statistics of the far side's stream (loss and
//! interarrival jitter, §A.3 and §A.8), our sender and receiver reports, and the far side's
//! reports about our stream.

/// Reception statistics for one incoming stream.
#[derive(Debug, Default, Clone)]
pub struct Reception {
    ssrc: u32,
    base: Option<u32>,
    /// Highest sequence number seen, extended with its wrap count.
    max_ext: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter in timestamp units, scaled by 16 (RFC 3550 §A.8).
    jitter_x16: u32,
    last_transit: Option<i32>,
}

/// What a report block says (about either side's reception).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    /// In timestamp units.
    pub jitter: u32,
}

impl Reception {
    /// Notes one packet: its sequence number, RTP timestamp, and arrival time in the same
    /// clock units as the timestamp.
    pub fn packet(&mut self, ssrc: u32, seq: u16, timestamp: u32, arrival: u32) {
        if self.base.is_none() || ssrc != self.ssrc {
            *self = Reception {
                ssrc,
                base: Some(u32::from(seq)),
                max_ext: u32::from(seq),
                ..Default::default()
            };
        }
        let max = self.max_ext as u16;
        let delta = seq.wrapping_sub(max);
        if delta < 0x8000 {
            // In order (possibly wrapped).
            if seq < max {
                self.max_ext = self.max_ext.wrapping_add(0x1_0000);
            }
            self.max_ext = (self.max_ext & !0xffff) | u32::from(seq);
        }
        self.received += 1;
        // Both clocks wrap (the RTP one starts anywhere); differences taken mod 2^32 stay
        // right across a wrap.
        let transit = arrival.wrapping_sub(timestamp) as i32;
        if let Some(last) = self.last_transit {
            let d = transit.wrapping_sub(last).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16; wide, because crafted timestamps
            // can make |D| as large as 2^31 and the sum overflow.
            let j = u64::from(self.jitter_x16);
            let next = (j + u64::from(d)).saturating_sub((j + 8) >> 4);
            self.jitter_x16 = u32::try_from(next).unwrap_or(u32::MAX);
        }
        self.last_transit = Some(transit);
    }

    fn expected(&self) -> u32 {
        self.base
            .map_or(0, |b| self.max_ext.wrapping_sub(b).wrapping_add(1))
    }

    /// Packets missing so far (negative with duplicates).
    pub fn lost(&self) -> i32 {
        (i64::from(self.expected()) - i64::from(self.received))
            .clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }

    pub fn jitter(&self) -> u32 {
        self.jitter_x16 >> 4
    }

    /// The report block for the next report; starts a new interval for fraction lost.
    pub fn report(&mut self) -> Option<ReportBlock> {
        self.base?;
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost(),
            highest_seq: self.max_ext,
            jitter: self.jitter(),
        })
    }
}

/// What we sent, for the sender info of an SR.
#[derive(Debug, Clone, Copy, Default)]
pub struct SenderInfo {
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

fn write_block(out: &mut Vec<u8>, b: &ReportBlock) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
    out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
    out.extend_from_slice(&b.highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    // LSR and DLSR: not tracked (round-trip time is not computed).
    out.extend_from_slice(&[0; 8]);
}

/// An SR (with `sender`) or an RR, with at most one report block, and an SDES CNAME, as a
/// compound packet (RFC 3550 §6.1).
pub fn compound(
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    let count = u8::from(block.is_some());
    let words: u16 = match sender {
        Some(_) => 6 + 6 * u16::from(count),
        None => 1 + 6 * u16::from(count),
    };
    out.push(0x80 | count);
    out.push(if sender.is_some() { 200 } else { 201 });
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    if let Some(b) = &block {
        write_block(&mut out, b);
    }
    // SDES: one chunk, CNAME, padded to a word.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + name.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    out.push(0x81);
    out.push(202);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.resize(out.len() + padded - (chunk - 1), 0);
    out
}

/// The report blocks about `ours` in a compound RTCP packet; malformed parts end the walk.
pub fn reports_about(packet: &[u8], ours: u32) -> Vec<ReportBlock> {
    let mut found = Vec::new();
    let mut p = packet;
    while p.len() >= 8 {
        if p[0] >> 6 != 2 {
            break;
        }
        let count = usize::from(p[0] & 0x1f);
        let len = (usize::from(u16::from_be_bytes([p[2], p[3]])) + 1) * 4;
        let Some(body) = p.get(..len) else { break };
        let blocks_at = match p[1] {
            200 => 28,
            201 => 8,
            _ => usize::MAX,
        };
        if blocks_at != usize::MAX {
            for i in 0..count {
                let Some(b) = body.get(blocks_at + 24 * i..blocks_at + 24 * (i + 1)) else {
                    break;
                };
                let w = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
                if w(0) != ours {
                    continue;
                }
                let lost = w(4) & 0x00ff_ffff;
                // Sign-extend the 24-bit cumulative loss.
                let cumulative_lost = ((lost << 8) as i32) >> 8;
                found.push(ReportBlock {
                    ssrc: ours,
                    fraction_lost: b[4],
                    cumulative_lost,
                    highest_seq: w(8),
                    jitter: w(12),
                });
            }
        }
        p = &p[len..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crafted_timestamps_do_not_overflow_the_jitter() {
        let mut r = Reception::default();
        for i in 0..200u32 {
            // Transit swinging by 2^31 each packet: |D| as large as it gets.
            let ts = if i % 2 == 0 { 0 } else { 0x8000_0000 };
            r.packet(7, i as u16, ts, 0);
        }
        assert!(r.jitter() > 0);
    }

    #[test]
    fn loss_and_jitter_are_counted() {
        let mut r = Reception::default();
        // 10 packets of 160 samples, the 5th missing, evenly spaced: no jitter.
        for i in (0u16..10).filter(|i| *i != 4) {
            r.packet(
                7,
                100 + i,
                1000 + 160 * u32::from(i),
                5000 + 160 * u32::from(i),
            );
        }
        assert_eq!(r.lost(), 1);
        assert_eq!(r.jitter(), 0);
        let b = r.report().unwrap();
        assert_eq!(
            (b.fraction_lost, b.cumulative_lost, b.highest_seq),
            (25, 1, 109)
        );
        // A late packet adds jitter.
        r.packet(7, 110, 1000 + 1600, 5000 + 1600 + 800);
        assert!(r.jitter() > 0);
        // Sequence numbers wrap.
        let mut w = Reception::default();
        w.packet(1, 65535, 0, 0);
        w.packet(1, 0, 160, 160);
        assert_eq!((w.lost(), w.report().unwrap().highest_seq), (0, 0x1_0000));
    }

    #[test]
    fn reports_round_trip() {
        let block = ReportBlock {
            ssrc: 42,
            fraction_lost: 64,
            cumulative_lost: -2,
            highest_seq: 70000,
            jitter: 33,
        };
        let sr = compound(
            9,
            Some(SenderInfo {
                ntp: 1,
                rtp_timestamp: 2,
                packets: 3,
                octets: 4,
            }),
            Some(block),
            "voipd",
        );
        assert_eq!(sr.len() % 4, 0);
        assert_eq!(reports_about(&sr, 42), vec![block]);
        assert!(reports_about(&sr, 43).is_empty());
        let rr = compound(9, None, Some(block), "x");
        assert_eq!(reports_about(&rr, 42), vec![block]);
        assert!(
            reports_about(&sr[..10], 42).is_empty(),
            "truncated: nothing, no panic"
        );
        assert!(reports_about(&[0xff; 64], 42).is_empty());
    }
}
