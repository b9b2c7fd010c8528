//! RTCP feedback for video (RFC 4585 AVPF, RFC 5104 CCM, REMB): what the far side asks of
//! our sending (a key frame, packets again, a lower rate) and what we ask of its.
//!
//! baresip sends the RFC 2032 FIR (packet type 192) to a far side whose SDP has no
//! `rtcp-fb … nack`, so that is read as a key frame request too.

/// One feedback message, as read or to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// Picture Loss Indication (RFC 4585 §6.3.1): send a key frame.
    Pli { sender: u32, media: u32 },
    /// Full Intra Request (RFC 5104 §4.3.1, or RFC 2032's): send a key frame. `seq` tells
    /// a repeated request from a new one (RFC 2032's has none: 0).
    Fir { sender: u32, media: u32, seq: u8 },
    /// Generic NACK (RFC 4585 §6.2.1): these packets did not arrive.
    Nack {
        sender: u32,
        media: u32,
        lost: Vec<u16>,
    },
    /// REMB: the receiver's estimate of what it can take, for these streams.
    Remb { bps: u64, ssrcs: Vec<u32> },
    /// TMMBR (RFC 5104 §4.2.1): the most this stream may send.
    Tmmbr { sender: u32, media: u32, bps: u64 },
}

const RTPFB: u8 = 205;
const PSFB: u8 = 206;
const RFC2032_FIR: u8 = 192;

/// mantissa · 2^exp, saturated (a 6-bit exponent can say more than 64 bits hold).
fn scaled(mantissa: u64, exp: u32) -> u64 {
    match mantissa {
        0 => 0,
        m if exp >= m.leading_zeros() => u64::MAX,
        m => m << exp,
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// The feedback in a compound RTCP packet; what is malformed is skipped (the walk ends at
/// a broken length).
pub fn parse(packet: &[u8]) -> Vec<Feedback> {
    let mut found = Vec::new();
    let mut p = packet;
    while p.len() >= 4 {
        if p[0] >> 6 != 2 {
            break;
        }
        let fmt = p[0] & 0x1f;
        let len = (usize::from(u16::from_be_bytes([p[2], p[3]])) + 1) * 4;
        let Some(body) = p.get(..len) else { break };
        read_one(p[1], fmt, body, &mut found);
        p = &p[len..];
    }
    found
}

fn read_one(pt: u8, fmt: u8, b: &[u8], found: &mut Vec<Feedback>) {
    let (Some(sender), Some(media)) = (be32(b, 4), be32(b, 8)) else {
        // RFC 2032's FIR is only 8 bytes: the SSRC it asks of.
        if pt == RFC2032_FIR
            && let Some(media) = be32(b, 4)
        {
            found.push(Feedback::Fir {
                sender: 0,
                media,
                seq: 0,
            });
        }
        return;
    };
    let fci = &b[12..];
    match (pt, fmt) {
        (PSFB, 1) => found.push(Feedback::Pli { sender, media }),
        (PSFB, 4) => {
            for e in fci.chunks_exact(8) {
                if let Some(media) = be32(e, 0) {
                    found.push(Feedback::Fir {
                        sender,
                        media,
                        seq: e[4],
                    });
                }
            }
        }
        (PSFB, 15) if fci.starts_with(b"REMB") && fci.len() >= 8 => {
            let n = usize::from(fci[4]);
            let exp = u32::from(fci[5] >> 2);
            let mantissa = u64::from(fci[5] & 3) << 16 | u64::from(fci[6]) << 8 | u64::from(fci[7]);
            let ssrcs: Vec<u32> = fci[8..]
                .chunks_exact(4)
                .take(n)
                .filter_map(|c| be32(c, 0))
                .collect();
            found.push(Feedback::Remb {
                bps: scaled(mantissa, exp),
                ssrcs,
            });
        }
        (RTPFB, 1) => {
            let mut lost = Vec::new();
            for e in fci.chunks_exact(4) {
                let pid = u16::from_be_bytes([e[0], e[1]]);
                let blp = u16::from_be_bytes([e[2], e[3]]);
                lost.push(pid);
                lost.extend(
                    (0..16)
                        .filter(|i| blp & (1 << i) != 0)
                        .map(|i| pid.wrapping_add(i + 1)),
                );
            }
            if !lost.is_empty() {
                found.push(Feedback::Nack {
                    sender,
                    media,
                    lost,
                });
            }
        }
        (RTPFB, 3) => {
            for e in fci.chunks_exact(8) {
                let Some(ssrc) = be32(e, 0) else { continue };
                let exp = u32::from(e[4] >> 2);
                let mantissa =
                    u64::from(e[4] & 3) << 15 | u64::from(e[5]) << 7 | u64::from(e[6] >> 1);
                found.push(Feedback::Tmmbr {
                    sender,
                    media: ssrc,
                    bps: scaled(mantissa, exp),
                });
            }
        }
        (RFC2032_FIR, _) => found.push(Feedback::Fir {
            sender: 0,
            media: sender,
            seq: 0,
        }),
        _ => {}
    }
}

fn header(out: &mut Vec<u8>, fmt: u8, pt: u8, words: usize, sender: u32, media: u32) {
    out.push(0x80 | fmt);
    out.push(pt);
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&media.to_be_bytes());
}

/// Appends a PLI from `sender` about stream `media`.
pub fn write_pli(out: &mut Vec<u8>, sender: u32, media: u32) {
    header(out, 1, PSFB, 2, sender, media);
}

/// Appends a FIR (RFC 5104) asking `media` for a key frame; `seq` goes up with each new
/// request.
pub fn write_fir(out: &mut Vec<u8>, sender: u32, media: u32, seq: u8) {
    // The media SSRC of the common header is 0; the FCI names the stream.
    header(out, 4, PSFB, 4, sender, 0);
    out.extend_from_slice(&media.to_be_bytes());
    out.extend_from_slice(&[seq, 0, 0, 0]);
}

/// Appends a generic NACK for the sequence numbers in `lost` (any order; at most 64 entries
/// of 17 packets each are written).
pub fn write_nack(out: &mut Vec<u8>, sender: u32, media: u32, lost: &[u16]) {
    let mut seqs = lost.to_vec();
    seqs.sort_unstable();
    seqs.dedup();
    let mut entries: Vec<(u16, u16)> = Vec::new();
    for s in seqs {
        match entries.last_mut() {
            Some((pid, blp)) if s.wrapping_sub(*pid) <= 16 && s != *pid => {
                *blp |= 1 << (s.wrapping_sub(*pid) - 1);
            }
            _ => entries.push((s, 0)),
        }
    }
    entries.truncate(64);
    if entries.is_empty() {
        return;
    }
    header(out, 1, RTPFB, 2 + entries.len(), sender, media);
    for (pid, blp) in entries {
        out.extend_from_slice(&pid.to_be_bytes());
        out.extend_from_slice(&blp.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_we_write_reads_back() {
        let mut out = Vec::new();
        write_pli(&mut out, 1, 2);
        write_fir(&mut out, 1, 2, 7);
        write_nack(&mut out, 1, 2, &[100, 101, 116, 117, 65535, 3]);
        assert_eq!(out.len() % 4, 0);
        let got = parse(&out);
        assert_eq!(
            got[0],
            Feedback::Pli {
                sender: 1,
                media: 2
            }
        );
        assert_eq!(
            got[1],
            Feedback::Fir {
                sender: 1,
                media: 2,
                seq: 7
            }
        );
        let Feedback::Nack { lost, .. } = &got[2] else {
            panic!("{got:?}")
        };
        let mut lost = lost.clone();
        lost.sort_unstable();
        assert_eq!(lost, [3, 100, 101, 116, 117, 65535]);
    }

    #[test]
    fn remb_tmmbr_and_rfc2032_fir_from_other_senders() {
        // REMB: 1 SSRC, exponent 3, mantissa 100000: 800 kbit/s.
        let m: u32 = 100_000;
        let mut remb = vec![0x8f, 206, 0, 5, 0, 0, 0, 9, 0, 0, 0, 0];
        remb.extend_from_slice(b"REMB");
        remb.extend_from_slice(&[1, (3 << 2) | (m >> 16) as u8, (m >> 8) as u8, m as u8]);
        remb.extend_from_slice(&0x1234u32.to_be_bytes());
        // TMMBR: exponent 4, mantissa 25000: 400 kbit/s.
        let t: u32 = 25_000;
        let mut tmmbr = vec![0x83, 205, 0, 4, 0, 0, 0, 9, 0, 0, 0, 0];
        tmmbr.extend_from_slice(&0x1234u32.to_be_bytes());
        tmmbr.extend_from_slice(&[
            (4 << 2) | (t >> 15) as u8,
            (t >> 7) as u8,
            (t << 1) as u8,
            40,
        ]);
        let fir2032 = [0x80, 192, 0, 1, 0, 0, 0x12, 0x34];
        let all = [remb, tmmbr, fir2032.to_vec()].concat();
        assert_eq!(
            parse(&all),
            [
                Feedback::Remb {
                    bps: 800_000,
                    ssrcs: vec![0x1234]
                },
                Feedback::Tmmbr {
                    sender: 9,
                    media: 0x1234,
                    bps: 400_000
                },
                Feedback::Fir {
                    sender: 0,
                    media: 0x1234,
                    seq: 0
                },
            ]
        );
    }

    #[test]
    fn broken_packets_give_what_is_readable_and_never_panic() {
        let mut ok = Vec::new();
        write_pli(&mut ok, 1, 2);
        for bad in [
            &[][..],
            &[0x81],
            &[0x81, 206, 0, 9, 0, 0], // length past the end
            &[0x41, 206, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0], // version 1
            &[
                0x8f, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, b'R', b'E', b'M', b'B',
            ], // short REMB
            &[
                0x8f, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, b'R', b'E', b'M', b'B', 9, 0xff, 0xff,
                0xff,
            ], // 9 SSRCs promised
        ] {
            let mut p = ok.clone();
            p.extend_from_slice(bad);
            let got = parse(&p);
            assert_eq!(
                got.first(),
                Some(&Feedback::Pli {
                    sender: 1,
                    media: 2
                }),
                "{bad:02x?}"
            );
        }
        // An exponent that would overflow saturates.
        let mut remb = vec![0x8f, 206, 0, 4, 0, 0, 0, 9, 0, 0, 0, 0];
        remb.extend_from_slice(b"REMB");
        remb.extend_from_slice(&[0, 0xff, 0xff, 0xff]);
        assert!(matches!(parse(&remb)[0], Feedback::Remb { bps, .. } if bps > 1 << 40));
    }
}
