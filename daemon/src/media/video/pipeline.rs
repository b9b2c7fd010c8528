//! A video stream's two halves without I/O: the sender (pictures → encoder → RTP packets,
//! kept for NACKs, at the rate feedback allows) and the receiver (RTP packets → frames →
//! pictures, and what to ask of the far side: a key frame, lost packets again). The stream
//! that owns them does the sockets and SRTP on the media engine's tick.

use std::time::{Duration, Instant};

use super::feedback::Feedback;
use super::h264::{H264Decoder, H264Encoder};
use super::h264_payload::{self, H264Depacketizer, PacketizationMode};
use super::rate::{SendHistory, SendRate};
use super::vp8::{Vp8Decoder, Vp8Encoder};
use super::vp8_payload::{self, Vp8Depacketizer};
use super::{Depacketized, Encoded, Frame, PacketLoss, VideoCodec, VideoError};
use crate::media::rtp::RtpPacket;

/// Payloads at most this long: an RTP packet with SRTP's tag stays under a 1,280-byte
/// path MTU (IPv6's minimum) with room for headers.
const MTU: usize = 1160;
/// Packets kept for NACKs (a second of 640×480 at 1 Mbit/s is ~100).
const HISTORY: usize = 512;
/// The largest frame we take from the far side (a key frame of 1080p at high quality
/// is under 1 MB).
const MAX_FRAME: usize = 2 << 20;
/// Between two key frame requests while none comes (baresip repeats every 500 ms too).
const ASK_AGAIN: Duration = Duration::from_millis(500);

/// Boxed: the codecs' C structures are large (libvpx's configuration, OpenH264's
/// bitstream info), the sender stays small to move.
enum Encoder {
    Vp8(Box<Vp8Encoder>),
    H264(Box<H264Encoder>),
}

/// What we send: settings from the negotiation and the configuration.
#[derive(Debug, Clone, Copy)]
pub struct SenderSettings {
    /// The negotiated codec, its payload type and (H.264) mode.
    pub codec: VideoCodec,
    pub pt: u8,
    pub mode: Option<PacketizationMode>,
    /// Our SSRC.
    pub ssrc: u32,
    /// The picture size and rate.
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    /// Start and most bitrate, kbit/s.
    pub kbps: u32,
    pub max_kbps: u32,
    /// A key frame at least this often.
    pub key_interval: Duration,
}

/// The sending half.
pub struct VideoSender {
    s: SenderSettings,
    encoder: Encoder,
    seq: u16,
    picture_id: u16,
    history: SendHistory,
    rate: SendRate,
    /// The sequence number of the last FIR taken (a repeated one is not a new request).
    fir_seq: Option<u8>,
    /// Key frames sent on request.
    pub key_requests: u64,
    /// Packets sent again on NACK.
    pub retransmitted: u64,
}

impl VideoSender {
    /// A sender; its first frame is a key frame.
    pub fn new(s: SenderSettings) -> Result<VideoSender, VideoError> {
        let frames = (s.key_interval.as_secs_f64() * f64::from(s.fps)).ceil() as u32;
        let encoder = match s.codec {
            VideoCodec::Vp8 => Encoder::Vp8(Box::new(Vp8Encoder::new(
                s.width, s.height, s.kbps, frames,
            )?)),
            VideoCodec::H264 => Encoder::H264(Box::new(H264Encoder::new(
                s.width,
                s.height,
                s.fps as f32,
                s.kbps,
                frames,
            )?)),
        };
        Ok(VideoSender {
            s,
            encoder,
            seq: fastrand::u16(..),
            picture_id: fastrand::u16(..) & 0x7fff,
            history: SendHistory::new(HISTORY),
            rate: SendRate::new(s.kbps, s.max_kbps),
            fir_seq: None,
            key_requests: 0,
            retransmitted: 0,
        })
    }

    /// Where its sequence numbers and picture ids are: for the sender that follows it.
    pub fn position(&self) -> (u16, u16) {
        (self.seq, self.picture_id)
    }

    /// Goes on from another sender's [`position`](Self::position) on the same SSRC.
    pub fn resume_at(&mut self, (seq, picture_id): (u16, u16)) {
        (self.seq, self.picture_id) = (seq, picture_id);
    }

    /// The current send rate, kbit/s.
    pub fn kbps(&self) -> u32 {
        self.rate.kbps()
    }

    /// Encodes a picture taken at `timestamp` (90 kHz) into RTP packets to send, in order.
    pub fn picture(&mut self, f: &Frame, timestamp: u32) -> Result<Vec<Vec<u8>>, VideoError> {
        let step = 90_000 / self.s.fps.max(1);
        let encoded: Option<Encoded> = match &mut self.encoder {
            Encoder::Vp8(e) => e.encode(f, i64::from(timestamp), step)?,
            Encoder::H264(e) => e.encode(f)?,
        };
        let Some(e) = encoded else {
            return Ok(Vec::new());
        };
        let payloads = match self.s.codec {
            VideoCodec::Vp8 => {
                self.picture_id = self.picture_id.wrapping_add(1) & 0x7fff;
                vp8_payload::packetize(&e.data, self.picture_id, MTU)
            }
            VideoCodec::H264 => h264_payload::packetize(
                &e.data,
                self.s.mode.unwrap_or(PacketizationMode::Single),
                MTU,
            ),
        };
        let last = payloads.len().saturating_sub(1);
        let mut packets = Vec::with_capacity(payloads.len());
        for (i, payload) in payloads.iter().enumerate() {
            let mut out = Vec::with_capacity(12 + payload.len());
            RtpPacket {
                marker: i == last,
                pt: self.s.pt,
                seq: self.seq,
                timestamp,
                ssrc: self.s.ssrc,
                payload,
            }
            .write(&mut out);
            self.history.sent(self.seq, &out);
            self.seq = self.seq.wrapping_add(1);
            packets.push(out);
        }
        Ok(packets)
    }

    /// The far side's feedback: packets to send again now (NACK); a key frame or a new
    /// rate take effect with the next picture.
    pub fn feedback(&mut self, fb: &Feedback) -> Vec<Vec<u8>> {
        let ours = self.s.ssrc;
        match fb {
            Feedback::Pli { media, .. } if *media == ours => self.key_frame(),
            // RFC 5104 §4.3.1.2: a FIR repeated (same number) is the same request; RFC
            // 2032's has no number (0).
            Feedback::Fir { media, seq, .. }
                if *media == ours && (self.fir_seq != Some(*seq) || *seq == 0) =>
            {
                self.fir_seq = Some(*seq);
                self.key_frame();
            }
            Feedback::Nack { media, lost, .. } if *media == ours => {
                let again: Vec<Vec<u8>> = lost
                    .iter()
                    .filter_map(|s| self.history.get(*s).map(<[u8]>::to_vec))
                    .collect();
                self.retransmitted += again.len() as u64;
                return again;
            }
            Feedback::Remb { bps, ssrcs } if ssrcs.contains(&ours) => {
                if let Some(k) = self.rate.asked(*bps) {
                    self.set_kbps(k);
                }
            }
            Feedback::Tmmbr { media, bps, .. } if *media == ours => {
                if let Some(k) = self.rate.asked(*bps) {
                    self.set_kbps(k);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// A receiver report about our stream: its loss (of 256) and jitter.
    pub fn report(&mut self, fraction_lost: u8, jitter: Duration, now: Instant) {
        if let Some(k) = self.rate.report(fraction_lost, jitter, now) {
            self.set_kbps(k);
        }
    }

    fn key_frame(&mut self) {
        self.key_requests += 1;
        match &mut self.encoder {
            Encoder::Vp8(e) => e.request_key_frame(),
            Encoder::H264(e) => e.request_key_frame(),
        }
    }

    fn set_kbps(&mut self, kbps: u32) {
        let done = match &mut self.encoder {
            Encoder::Vp8(e) => e.set_kbps(kbps),
            Encoder::H264(e) => e.set_kbps(kbps),
        };
        if let Err(e) = done {
            tracing::warn!("video rate {kbps} kbit/s: {e}");
        }
    }
}

enum Depacketizer {
    Vp8(Vp8Depacketizer),
    H264(H264Depacketizer),
}

enum Decoder {
    Vp8(Vp8Decoder),
    H264(H264Decoder),
}

/// What the receiver counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveStats {
    /// Pictures decoded.
    pub frames: u64,
    /// Of them, key frames.
    pub key_frames: u64,
    /// Frames lost to missing packets.
    pub frames_lost: u64,
    /// Packets that did not come (sequence gaps).
    pub packets_lost: u64,
    /// Payloads dropped as malformed or unsupported.
    pub malformed: u64,
    /// Frames the decoder refused.
    pub decode_errors: u64,
    /// Key frames asked for.
    pub key_requests: u64,
    /// The size of the last picture.
    pub width: usize,
    pub height: usize,
}

/// What the far side should be told after a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// The picture is broken: a key frame (PLI, or FIR where it takes no PLI).
    KeyFrame,
    /// These packets did not come: again (generic NACK).
    Again(Vec<u16>),
}

/// The receiving half.
pub struct VideoReceiver {
    depack: Depacketizer,
    decoder: Decoder,
    /// The picture is broken until a key frame comes.
    broken: bool,
    last_ask: Option<Instant>,
    /// The next sequence number expected, to NACK what is skipped.
    next_seq: Option<u16>,
    nack: bool,
    /// Keep each decoded frame as it came, for a recording (`take_encoded`).
    pub keep_encoded: bool,
    encoded: Option<Depacketized>,
    /// What it counted.
    pub stats: ReceiveStats,
}

impl VideoReceiver {
    /// A receiver for `codec`; `nack`: the far side answers generic NACKs.
    pub fn new(codec: VideoCodec, nack: bool) -> Result<VideoReceiver, VideoError> {
        let (depack, decoder) = match codec {
            VideoCodec::Vp8 => (
                Depacketizer::Vp8(Vp8Depacketizer::new(MAX_FRAME)),
                Decoder::Vp8(Vp8Decoder::new()?),
            ),
            VideoCodec::H264 => (
                Depacketizer::H264(H264Depacketizer::new(MAX_FRAME)),
                Decoder::H264(H264Decoder::new()?),
            ),
        };
        Ok(VideoReceiver {
            depack,
            decoder,
            broken: true,
            last_ask: None,
            next_seq: None,
            nack,
            keep_encoded: false,
            encoded: None,
            stats: ReceiveStats::default(),
        })
    }

    /// One RTP packet of the stream, in order (after the jitter buffer): a picture when
    /// one is complete, and what to ask of the far side.
    pub fn packet(&mut self, p: &RtpPacket<'_>, now: Instant) -> (Option<Frame>, Option<Ask>) {
        let mut ask = None;
        match self.next_seq.map(|next| (next, p.seq.wrapping_sub(next))) {
            // Packets skipped (whole frames, perhaps): the picture is broken until they
            // come again (NACK, a short run) or a key frame does.
            Some((next, gap)) if (1..0x8000).contains(&gap) => {
                self.broken = true;
                self.stats.packets_lost += u64::from(gap);
                ask = match self.nack && gap <= 32 {
                    true => Some(Ask::Again((0..gap).map(|i| next.wrapping_add(i)).collect())),
                    false => self.ask_key(now),
                };
                self.next_seq = Some(p.seq.wrapping_add(1));
            }
            // A packet from before (sent again, or late): the sequence goes on from where it was.
            Some((_, gap)) if gap >= 0x8000 => {}
            _ => self.next_seq = Some(p.seq.wrapping_add(1)),
        }
        let out: Result<Option<Depacketized>, PacketLoss> = match &mut self.depack {
            Depacketizer::Vp8(d) => d.push(p.seq, p.timestamp, p.marker, p.payload),
            Depacketizer::H264(d) => d.push(p.seq, p.timestamp, p.marker, p.payload),
        };
        let frame = match out {
            Ok(Some(f)) => f,
            Ok(None) => return (None, ask),
            Err(e) => {
                match e {
                    PacketLoss::Gap | PacketLoss::TooLarge => self.stats.frames_lost += 1,
                    PacketLoss::Malformed | PacketLoss::Unsupported => self.stats.malformed += 1,
                }
                self.broken = true;
                return (None, ask.or_else(|| self.ask_key(now)));
            }
        };
        if self.broken && !frame.key {
            // Not decodable without what was lost.
            return (None, ask.or_else(|| self.ask_key(now)));
        }
        let decoded = match &mut self.decoder {
            Decoder::Vp8(d) => d.decode(&frame.data),
            Decoder::H264(d) => d.decode(&frame.data),
        };
        match decoded {
            Ok(Some(pic)) => {
                self.broken = false;
                self.stats.frames += 1;
                self.stats.key_frames += u64::from(frame.key);
                if self.keep_encoded {
                    self.encoded = Some(frame);
                }
                (self.stats.width, self.stats.height) = (pic.width, pic.height);
                (Some(pic), ask)
            }
            Ok(None) => (None, ask),
            Err(e) => {
                tracing::debug!("video frame dropped: {e}");
                self.stats.decode_errors += 1;
                self.broken = true;
                let asked = self.ask_key(now);
                // A decoder that refused a frame may keep broken references: it starts
                // afresh from the key frame asked for. At most as often as one is asked
                // for, so that a flood of bad frames cannot make it start over and over.
                if asked.is_some() {
                    let fresh = match &self.decoder {
                        Decoder::Vp8(_) => Vp8Decoder::new().map(Decoder::Vp8),
                        Decoder::H264(_) => H264Decoder::new().map(Decoder::H264),
                    };
                    match fresh {
                        Ok(d) => self.decoder = d,
                        Err(e) => tracing::warn!("video decoder not reset: {e}"),
                    }
                }
                (None, ask.or(asked))
            }
        }
    }

    /// The frame last decoded, as it came (with `keep_encoded`).
    pub fn take_encoded(&mut self) -> Option<Depacketized> {
        self.encoded.take()
    }

    /// A key frame request, unless one went out a moment ago.
    fn ask_key(&mut self, now: Instant) -> Option<Ask> {
        if self
            .last_ask
            .is_some_and(|t| now.saturating_duration_since(t) < ASK_AGAIN)
        {
            return None;
        }
        self.last_ask = Some(now);
        self.stats.key_requests += 1;
        Some(Ask::KeyFrame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::pattern::TestPattern;

    fn settings(codec: VideoCodec) -> SenderSettings {
        SenderSettings {
            codec,
            pt: 96,
            mode: Some(PacketizationMode::NonInterleaved),
            ssrc: 0x1234,
            width: 320,
            height: 240,
            fps: 15,
            kbps: 500,
            max_kbps: 1000,
            key_interval: Duration::from_secs(10),
        }
    }

    /// Sends `n` pictures through `drop` (which packets are lost, by index of all sent),
    /// answering the receiver's asks as a far side would; returns the receiver.
    fn run(
        codec: VideoCodec,
        n: u32,
        nack: bool,
        drop: impl Fn(usize) -> bool,
    ) -> (VideoReceiver, VideoSender) {
        let pattern = TestPattern::new(320, 240);
        let mut tx = VideoSender::new(settings(codec)).unwrap();
        let mut rx = VideoReceiver::new(codec, nack).unwrap();
        let mut sent = 0;
        let mut now = Instant::now();
        for i in 0..n {
            now += Duration::from_millis(66);
            let pic = pattern.picture(Duration::from_millis(u64::from(i) * 66));
            let mut queue = tx.picture(&pic, i * 6000).unwrap();
            while !queue.is_empty() {
                let packet = queue.remove(0);
                sent += 1;
                if drop(sent) {
                    continue;
                }
                let p = RtpPacket::parse(&packet).unwrap();
                let (_, ask) = rx.packet(&p, now);
                match ask {
                    Some(Ask::KeyFrame) => {
                        tx.feedback(&Feedback::Pli {
                            sender: 1,
                            media: 0x1234,
                        });
                    }
                    Some(Ask::Again(lost)) => {
                        let again = tx.feedback(&Feedback::Nack {
                            sender: 1,
                            media: 0x1234,
                            lost,
                        });
                        // Sent again at once: before the rest of the frame.
                        for (k, a) in again.into_iter().enumerate() {
                            queue.insert(k, a);
                        }
                    }
                    None => {}
                }
            }
        }
        (rx, tx)
    }

    #[test]
    fn a_clean_stream_decodes_every_picture_both_codecs() {
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            let (rx, tx) = run(codec, 30, true, |_| false);
            assert!(rx.stats.frames >= 29, "{codec:?}: {:?}", rx.stats);
            assert_eq!((rx.stats.width, rx.stats.height), (320, 240));
            assert_eq!(rx.stats.key_requests, 0);
            assert_eq!(tx.key_requests, 0);
        }
    }

    #[test]
    fn a_lost_packet_comes_again_on_nack_or_a_key_frame_is_asked_for() {
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            // With NACK: the packet comes again, in order as the jitter buffer would give
            // it... here it comes after the gap was seen, so the frame is lost and then
            // repaired by the key frame; what matters: the picture recovers.
            let (rx, tx) = run(codec, 30, true, |k| k == 20);
            assert!(tx.retransmitted >= 1, "{codec:?}");
            assert!(rx.stats.frames >= 20, "{codec:?}: {:?}", rx.stats);
            // Without NACK: a key frame repairs it.
            let (rx, tx) = run(codec, 30, false, |k| k == 20);
            assert_eq!(tx.retransmitted, 0);
            assert!(
                rx.stats.key_requests >= 1 && tx.key_requests >= 1,
                "{codec:?}: {:?}",
                rx.stats
            );
            assert!(rx.stats.key_frames >= 2, "{codec:?}: {:?}", rx.stats);
            assert!(rx.stats.frames >= 20, "{codec:?}: {:?}", rx.stats);
        }
    }

    #[test]
    fn rate_feedback_and_malformed_payloads() {
        let mut tx = VideoSender::new(settings(VideoCodec::Vp8)).unwrap();
        tx.feedback(&Feedback::Remb {
            bps: 200_000,
            ssrcs: vec![0x1234],
        });
        assert_eq!(tx.kbps(), 200);
        // About another stream: not ours.
        tx.feedback(&Feedback::Remb {
            bps: 100_000,
            ssrcs: vec![7],
        });
        assert_eq!(tx.kbps(), 200);
        // A FIR repeated with the same number asks once.
        tx.feedback(&Feedback::Fir {
            sender: 1,
            media: 0x1234,
            seq: 5,
        });
        tx.feedback(&Feedback::Fir {
            sender: 1,
            media: 0x1234,
            seq: 5,
        });
        assert_eq!(tx.key_requests, 1);

        let mut rx = VideoReceiver::new(VideoCodec::H264, false).unwrap();
        let now = Instant::now();
        let junk = RtpPacket {
            marker: true,
            pt: 96,
            seq: 1,
            timestamp: 1,
            ssrc: 9,
            payload: &[0x80, 1, 2],
        };
        assert_eq!(rx.packet(&junk, now), (None, Some(Ask::KeyFrame)));
        // Asked a moment ago: not again yet.
        assert_eq!(rx.packet(&RtpPacket { seq: 2, ..junk }, now), (None, None));
        assert_eq!(rx.stats.malformed, 2);
    }
}
