//! A call's video stream as the engine runs it, on the same 20 ms ticks as audio: each
//! tick it reads what arrived (RTP into the reorder buffer, RTCP feedback into the
//! sender), decodes what is complete into the snapshot and the sink, and encodes a picture
//! from its source when one is due. Lost packets are asked for again at once (NACK) while
//! the reorder buffer waits for them; a picture that stays broken asks for a key frame.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::dtls::{self, DtlsParams};
use super::ice::{Ice, IceEvent};
use super::latch::Latch;
use super::rtcp::{self, Reception, SenderInfo};
use super::rtp::RtpPacket;
use super::srtp::{SrtpError, SrtpKeys};
use super::stun::{self as stun_msg, MappingWatch};
use super::transport::{Incoming, Relayed, RtpTransport};
use super::udp::RecvBuf;
use super::video::camera::{Camera, CameraFeed, V4l2Camera};
use super::video::feedback::{self, Feedback};
use super::video::h264_payload::PacketizationMode;
use super::video::pattern::TestPattern;
use super::video::pipeline::{Ask, ReceiveStats, SenderSettings, VideoReceiver, VideoSender};
use super::video::reorder::ReorderBuffer;
use super::video::sink::VideoSink;
use super::video::y4m::Y4mReader;
use super::video::{Frame, VideoCodec};

/// What SDP negotiated for the video stream; it may change mid-call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    pub codec: VideoCodec,
    pub pt: u8,
    pub mode: Option<PacketizationMode>,
    pub remote: SocketAddr,
    pub send: bool,
    pub receive: bool,
    /// Feedback the far side takes: generic NACK, PLI, FIR.
    pub nack: bool,
    pub pli: bool,
    pub fir: bool,
    /// SRTP keys, when the stream is encrypted with SDES.
    pub srtp: Option<SrtpKeys>,
    /// The DTLS handshake's parameters, when the stream is keyed by DTLS-SRTP.
    pub dtls: Option<DtlsParams>,
}

/// Where sent pictures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSource {
    /// Colour bars, a moving square and the call's time.
    Pattern,
    /// A Y4M file, looped; its own size is sent.
    Y4m(PathBuf),
    /// A V4L2 camera by its device path; the size it gives is sent.
    Camera(PathBuf),
}

/// What we send and keep, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSettings {
    pub source: VideoSource,
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    /// The ceiling of the send rate, kbit/s (the start is half of it).
    pub max_kbps: u32,
    /// A key frame at least this often.
    pub key_interval: Duration,
    /// Received video written here (its extension says how), if anywhere.
    pub sink: Option<PathBuf>,
}

impl Default for VideoSettings {
    fn default() -> VideoSettings {
        VideoSettings {
            source: VideoSource::Pattern,
            width: 640,
            height: 480,
            fps: 15,
            max_kbps: 1000,
            key_interval: Duration::from_secs(10),
            sink: None,
        }
    }
}

/// The video figures readable while the call runs, and its latest picture.
#[derive(Debug, Default)]
pub struct VideoLive {
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
    pub packets_lost: AtomicU64,
    pub malformed: AtomicU64,
    pub key_frames_asked: AtomicU64,
    pub key_frames_sent_on_request: AtomicU64,
    pub retransmitted: AtomicU64,
    pub nacks_sent: AtomicU64,
    /// Size and rate of what we receive (pictures in the last second).
    pub width: AtomicU32,
    pub height: AtomicU32,
    pub fps: AtomicU32,
    /// What we sent in the last second, kbit/s, and the rate the encoder aims at (what
    /// the far side's reports allow, under the ceiling).
    pub send_kbps: AtomicU32,
    pub target_kbps: AtomicU32,
    /// The latest decoded picture.
    pub snapshot: std::sync::Mutex<Option<Arc<Frame>>>,
}

/// A copy of [`VideoLive`]'s figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoStats {
    pub frames_sent: u64,
    pub frames_received: u64,
    pub packets_lost: u64,
    pub malformed: u64,
    pub key_frames_asked: u64,
    pub key_frames_sent_on_request: u64,
    pub retransmitted: u64,
    pub nacks_sent: u64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub send_kbps: u32,
    pub target_kbps: u32,
}

impl VideoLive {
    /// The figures now.
    pub fn read(&self) -> VideoStats {
        VideoStats {
            frames_sent: self.frames_sent.load(Relaxed),
            frames_received: self.frames_received.load(Relaxed),
            packets_lost: self.packets_lost.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            key_frames_asked: self.key_frames_asked.load(Relaxed),
            key_frames_sent_on_request: self.key_frames_sent_on_request.load(Relaxed),
            retransmitted: self.retransmitted.load(Relaxed),
            nacks_sent: self.nacks_sent.load(Relaxed),
            width: self.width.load(Relaxed),
            height: self.height.load(Relaxed),
            fps: self.fps.load(Relaxed),
            send_kbps: self.send_kbps.load(Relaxed),
            target_kbps: self.target_kbps.load(Relaxed),
        }
    }

    /// Zeroes the figures: each stream counts its own.
    fn reset(&self) {
        for a in [
            &self.frames_sent,
            &self.frames_received,
            &self.packets_lost,
            &self.malformed,
            &self.key_frames_asked,
            &self.key_frames_sent_on_request,
            &self.retransmitted,
            &self.nacks_sent,
        ] {
            a.store(0, Relaxed);
        }
        for a in [
            &self.width,
            &self.height,
            &self.fps,
            &self.send_kbps,
            &self.target_kbps,
        ] {
            a.store(0, Relaxed);
        }
    }

    /// The latest decoded picture, if one came.
    pub fn snapshot(&self) -> Option<Arc<Frame>> {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

enum Source {
    Pattern(TestPattern),
    Y4m(Box<Y4mReader>),
    Camera(CameraFeed),
}

/// Packets read from one socket in one tick at most (a 640×480 key frame is ~40).
const MAX_READ_PER_TICK: usize = 512;
/// How long a missing packet is waited for: a NACK's round trip on the engine's ticks
/// (ours, the far side's, ours again) with room to spare; without NACK, only reordering.
const WAIT_NACK: Duration = Duration::from_millis(120);
const WAIT_REORDER: Duration = Duration::from_millis(40);
/// Receiver reports every second: the sender's rate follows them.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What a video stream starts from.
pub(super) struct VideoSetup {
    pub(super) sock: UdpSocket,
    pub(super) rtcp: Option<UdpSocket>,
    pub(super) params: watch::Receiver<VideoParams>,
    pub(super) settings: VideoSettings,
    pub(super) live: Arc<super::session::LiveStats>,
    pub(super) done: oneshot::Sender<VideoStats>,
    /// The NAT mapping of the stream's port to keep open (STUN), and ICE's agent with the
    /// far side's candidates, as for audio.
    pub(super) mapping: Option<MappingWatch>,
    pub(super) ice: Option<Box<Ice>>,
}

/// One call's video as the engine runs it.
pub(super) struct VideoStream {
    transport: RtpTransport,
    params: watch::Receiver<VideoParams>,
    p: VideoParams,
    settings: VideoSettings,
    live: Arc<super::session::LiveStats>,
    done: Option<oneshot::Sender<VideoStats>>,
    source: Option<Source>,
    sender: Option<VideoSender>,
    receiver: Option<VideoReceiver>,
    sink: Option<VideoSink>,
    reorder: ReorderBuffer,
    latch: Latch,
    ssrc: u32,
    /// The far side's SSRC, once its stream came (feedback names it).
    their_ssrc: Option<u32>,
    /// The highest sequence number seen, to NACK what it skips as soon as it does.
    highest: Option<u16>,
    reception: Reception,
    sent_packets: u32,
    octets: u32,
    /// `octets` at the last report, for the rate sent since.
    octets_reported: u32,
    last_ts: u32,
    fir_seq: u8,
    /// Datagrams that were not RTP (payloads the receiver drops, it counts).
    rtp_malformed: u64,
    /// Packets that came through the TURN relay this tick.
    relayed: Vec<Relayed>,
    /// Where a dropped encoder's sequence numbers and picture ids were.
    resume: Option<(u16, u16)>,
    /// What receivers before the one running counted.
    received_before: ReceiveStats,
    /// ICE's nominated RTP pair, once there is one: it wins over the SDP's address.
    ice_remote: Option<SocketAddr>,
    started: Instant,
    next_picture: Instant,
    next_report: Instant,
    fps_window: (Instant, u32),
}

impl VideoSetup {
    pub(super) fn open(mut self) -> Result<VideoStream, String> {
        let p = self.params.borrow_and_update().clone();
        let mut transport = RtpTransport::new(self.sock, self.rtcp, self.mapping, self.ice);
        transport.configure(p.srtp.as_ref(), p.dtls.as_ref())?;
        let source = match &self.settings.source {
            VideoSource::Pattern => {
                Source::Pattern(TestPattern::new(self.settings.width, self.settings.height))
            }
            VideoSource::Y4m(path) => {
                let r = Y4mReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let (w, h) = r.size();
                crate::config::parse_size(&format!("{w}x{h}"))
                    .map_err(|e| format!("{}: its size {e}", path.display()))?;
                (self.settings.width, self.settings.height) = (w, h);
                Source::Y4m(Box::new(r))
            }
            VideoSource::Camera(path) => {
                let (p, w, h, fps) = (
                    path.clone(),
                    self.settings.width,
                    self.settings.height,
                    self.settings.fps,
                );
                let open =
                    move || V4l2Camera::open(&p, w, h, fps).map(|c| Box::new(c) as Box<dyn Camera>);
                Source::Camera(
                    CameraFeed::start(open, path.display().to_string())
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                )
            }
        };
        self.live.video.reset();
        let now = Instant::now();
        let mut s = VideoStream {
            transport,
            params: self.params,
            settings: self.settings,
            live: self.live,
            done: Some(self.done),
            source: Some(source),
            sender: None,
            receiver: None,
            sink: None,
            reorder: ReorderBuffer::new(WAIT_REORDER),
            latch: Latch::new(p.remote),
            ssrc: fastrand::u32(..),
            their_ssrc: None,
            highest: None,
            reception: Reception::default(),
            sent_packets: 0,
            octets: 0,
            octets_reported: 0,
            last_ts: 0,
            fir_seq: 0,
            rtp_malformed: 0,
            relayed: Vec::new(),
            resume: None,
            received_before: ReceiveStats::default(),
            ice_remote: None,
            started: now,
            next_picture: now,
            next_report: now + REPORT_EVERY,
            fps_window: (now, 0),
            p: p.clone(),
        };
        s.apply(p);
        Ok(s)
    }
}

impl VideoStream {
    /// One tick. False when the session is over.
    pub(super) fn tick(&mut self, now: Instant, rx: &mut RecvBuf) -> bool {
        match self.params.has_changed() {
            Err(_) => return false,
            Ok(true) => {
                let next = self.params.borrow_and_update().clone();
                if (next.srtp != self.p.srtp || next.dtls != self.p.dtls)
                    && let Err(e) = self
                        .transport
                        .configure(next.srtp.as_ref(), next.dtls.as_ref())
                {
                    tracing::error!("video SRTP: {e}; the video stops");
                    self.p.send = false;
                    self.p.receive = false;
                    return true;
                }
                if self.ice_remote.is_none() {
                    self.latch.signalled(next.remote, self.p.remote);
                }
                self.apply(next);
            }
            Ok(false) => {}
        }
        for _ in 0..MAX_READ_PER_TICK {
            match self.transport.next_rtp(rx, self.latch.remote().ip()) {
                Some(Incoming::Rtp(d)) => {
                    let (from, at_ns) = (d.from, d.at_ns);
                    self.rtp_in(d.bytes, from, at_ns, now);
                }
                // (Video keeps its RTCP port; were it muxed, this is where RTCP would be.)
                Some(Incoming::Rtcp(d)) => {
                    let from = d.from;
                    self.rtcp_in(d.bytes, from, now);
                }
                Some(Incoming::Mapped(at)) => {
                    tracing::info!("the NAT moved our video RTP port to {at}");
                }
                Some(Incoming::Taken) => {}
                None => break,
            }
        }
        for _ in 0..MAX_READ_PER_TICK {
            let Some(d) = self.transport.recv_rtcp(rx) else {
                break;
            };
            if stun_msg::is_stun(d.bytes) {
                self.transport.stun_in(true, d.bytes, d.from);
                continue;
            }
            let from = d.from;
            self.rtcp_in(d.bytes, from, now);
        }
        self.ice_in(now);
        self.transport.keep_mapping(now.into_std());
        match self.transport.drive(self.latch.remote()) {
            Some(Ok(suite)) => tracing::info!("video DTLS-SRTP keyed ({suite})"),
            Some(Err(e)) => tracing::warn!("video DTLS-SRTP: {e}; no video either way"),
            None => {}
        }
        self.decode(now);
        if self.p.send && now >= self.next_picture {
            self.send_picture(now);
        }
        if now >= self.next_report {
            self.next_report = now + REPORT_EVERY;
            let sent = self.octets.wrapping_sub(self.octets_reported);
            self.octets_reported = self.octets;
            let kbps = u64::from(sent) * 8 / 1000 / REPORT_EVERY.as_secs().max(1);
            self.live
                .video
                .send_kbps
                .store(u32::try_from(kbps).unwrap_or(u32::MAX), Relaxed);
            self.report(None);
        }
        true
    }

    /// Takes new negotiated parameters: codecs are made (again) as the direction and
    /// codec need them.
    fn apply(&mut self, next: VideoParams) {
        let first = self.receiver.is_none() && self.sender.is_none();
        let codec_changed = next.codec != self.p.codec || next.mode != self.p.mode;
        if !next.send || codec_changed {
            self.drop_sender();
        }
        if next.send && self.sender.is_none() {
            self.make_sender(&next);
        }
        // A new codec's frames go to a file of their own; on hold the file stays open.
        if codec_changed && let Some(s) = self.sink.take() {
            tokio::task::spawn_blocking(move || s.finish());
        }
        let mut fresh = false;
        if (!next.receive || codec_changed)
            && let Some(r) = self.receiver.take()
        {
            // The stream's figures go on across receivers (hold and resume).
            let b = &mut self.received_before;
            b.frames += r.stats.frames;
            b.key_requests += r.stats.key_requests;
            b.packets_lost += r.stats.packets_lost.max(self.reorder.skipped);
            b.malformed += r.stats.malformed;
        }
        if next.receive && self.receiver.is_none() {
            match VideoReceiver::new(next.codec, false) {
                Ok(mut r) => {
                    if self.sink.is_none()
                        && let Some(path) = &self.settings.sink
                    {
                        let path = super::video::sink::free_path(path.clone());
                        match VideoSink::open(&path, next.codec, self.settings.fps) {
                            Ok(s) => {
                                tracing::info!("received video goes to {}", s.path().display());
                                self.sink = Some(s);
                            }
                            Err(e) => tracing::warn!("video sink: {e}"),
                        }
                    }
                    r.keep_encoded = self.sink.as_ref().is_some_and(VideoSink::wants_encoded);
                    self.receiver = Some(r);
                    fresh = true;
                }
                Err(e) => tracing::warn!("video decoder: {e}; received video is not shown"),
            }
        }
        // Packets in flight are kept through a refresh that changes nothing of theirs.
        if first || fresh || next.nack != self.p.nack {
            self.reorder = ReorderBuffer::new(if next.nack { WAIT_NACK } else { WAIT_REORDER });
            self.highest = None;
        }
        self.p = next;
    }

    /// Drops the encoder, keeping where its sequence numbers and picture ids were: the
    /// next one goes on from there (RFC 3550: one SSRC, one sequence).
    fn drop_sender(&mut self) {
        if let Some(old) = self.sender.take() {
            self.resume = Some(old.position());
        }
    }

    /// An encoder for `p` at the settings' size.
    fn make_sender(&mut self, p: &VideoParams) {
        let s = &self.settings;
        let settings = SenderSettings {
            codec: p.codec,
            pt: p.pt,
            mode: p.mode,
            ssrc: self.ssrc,
            width: s.width,
            height: s.height,
            fps: s.fps.max(1),
            kbps: (s.max_kbps / 2).max(64),
            max_kbps: s.max_kbps,
            key_interval: s.key_interval,
        };
        match VideoSender::new(settings) {
            Ok(mut v) => {
                if let Some(at) = self.resume.take() {
                    v.resume_at(at);
                }
                self.sender = Some(v);
            }
            Err(e) => tracing::warn!("video encoder: {e}; no video is sent"),
        }
    }

    fn rtp_in(&mut self, bytes: &[u8], from: SocketAddr, at_ns: u128, now: Instant) {
        let Ok(header_len) = RtpPacket::header_len(bytes) else {
            return self.malformed();
        };
        let ssrc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if !self.latch.may_be(from, ssrc) {
            return;
        }
        let opened = match self.transport.open_rtp(bytes, header_len) {
            Ok(b) => b,
            Err(SrtpError::TooShort | SrtpError::Malformed(_)) => return self.malformed(),
            Err(_) => return,
        };
        let Ok(pkt) = RtpPacket::parse(&opened) else {
            return self.malformed();
        };
        if !self.latch.accept(
            from,
            pkt.ssrc,
            pkt.seq,
            pkt.timestamp,
            90_000,
            now.into_std(),
        ) || pkt.pt != self.p.pt
            || !self.p.receive
        {
            return;
        }
        self.their_ssrc = Some(pkt.ssrc);
        let arrival = (at_ns * 90_000 / 1_000_000_000) as u32;
        self.reception
            .packet(pkt.ssrc, pkt.seq, pkt.timestamp, arrival);
        // A sequence that skips: the skipped packets are asked for again now, while the
        // reorder buffer waits for them.
        match self.highest.map(|h| pkt.seq.wrapping_sub(h)) {
            None => self.highest = Some(pkt.seq),
            Some(d) if (1..0x8000).contains(&d) => {
                if d > 1
                    && d <= 33
                    && self.p.nack
                    && let Some(h) = self.highest
                {
                    let lost: Vec<u16> = (1..d).map(|i| h.wrapping_add(i)).collect();
                    self.report(Some(Ask::Again(lost)));
                }
                self.highest = Some(pkt.seq);
            }
            Some(_) => {}
        }
        self.reorder.push(pkt.seq, &opened, now.into_std());
    }

    fn malformed(&mut self) {
        self.rtp_malformed += 1;
        if self.rtp_malformed == 1 {
            tracing::info!("dropping malformed video RTP");
        }
    }

    /// Decodes what the reorder buffer lets go.
    fn decode(&mut self, now: Instant) {
        let Some(receiver) = &mut self.receiver else {
            return;
        };
        let mut asks = Vec::new();
        for packet in self.reorder.pop(now.into_std()) {
            let Ok(pkt) = RtpPacket::parse(&packet) else {
                continue;
            };
            let (picture, ask) = receiver.packet(&pkt, now.into_std());
            if let Some(a) = ask {
                asks.push(a);
            }
            if let Some(e) = receiver.take_encoded()
                && let Some(s) = &mut self.sink
            {
                s.encoded(e);
            }
            let Some(picture) = picture else { continue };
            let picture = Arc::new(picture);
            if let Some(s) = &mut self.sink
                && !s.wants_encoded()
            {
                s.picture(picture.clone());
            }
            self.live.video.width.store(picture.width as u32, Relaxed);
            self.live.video.height.store(picture.height as u32, Relaxed);
            *self
                .live
                .video
                .snapshot
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(picture);
            self.fps_window.1 += 1;
        }
        let (st, before) = (receiver.stats, self.received_before);
        let v = &self.live.video;
        v.frames_received.store(before.frames + st.frames, Relaxed);
        v.key_frames_asked
            .store(before.key_requests + st.key_requests, Relaxed);
        v.packets_lost.store(
            before.packets_lost + st.packets_lost.max(self.reorder.skipped),
            Relaxed,
        );
        v.malformed.store(
            self.rtp_malformed + before.malformed + st.malformed,
            Relaxed,
        );
        if now.duration_since(self.fps_window.0) >= Duration::from_secs(1) {
            self.live.video.fps.store(self.fps_window.1, Relaxed);
            self.fps_window = (now, 0);
        }
        for a in asks {
            self.report(Some(a));
        }
    }

    fn send_picture(&mut self, now: Instant) {
        let step = Duration::from_secs(1) / self.settings.fps.max(1);
        // Behind by more than a picture (a slow tick): skip rather than burst.
        self.next_picture = (self.next_picture + step).max(now);
        let at = now.duration_since(self.started);
        let picture = match &mut self.source {
            Some(Source::Pattern(p)) => p.picture(at),
            Some(Source::Y4m(r)) => match r.next_frame() {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!("video source: {e}; no more video is sent");
                    self.source = None;
                    return;
                }
            },
            // No new picture since the last: the camera is slower than our rate.
            Some(Source::Camera(c)) => match c.take() {
                Some(f) => f,
                None => return,
            },
            None => return,
        };
        // The source decides the size (a camera's choice, a file's): the encoder follows,
        // starting again from a key frame.
        if (picture.width, picture.height) != (self.settings.width, self.settings.height) {
            (self.settings.width, self.settings.height) = (picture.width, picture.height);
            self.drop_sender();
            let p = self.p.clone();
            self.make_sender(&p);
        }
        let Some(sender) = &mut self.sender else {
            return;
        };
        let ts = (at.as_micros() * 9 / 100) as u32;
        let packets = match sender.picture(&picture, ts) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("video encoding failed: {e}");
                return;
            }
        };
        if !packets.is_empty() {
            self.live.video.frames_sent.fetch_add(1, Relaxed);
            self.last_ts = ts;
        }
        self.live.video.target_kbps.store(sender.kbps(), Relaxed);
        self.send_packets(packets);
    }

    fn send_packets(&mut self, packets: Vec<Vec<u8>>) {
        let remote = self.latch.remote();
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return;
        }
        for p in packets {
            if self.transport.send_rtp(&p, remote) {
                self.sent_packets = self.sent_packets.wrapping_add(1);
                self.octets = self.octets.wrapping_add(p.len().saturating_sub(12) as u32);
            }
        }
    }

    /// ICE's step: a nominated pair moves the stream to it; what came through the relay
    /// is taken as if it came to our ports.
    fn ice_in(&mut self, now: Instant) {
        let mut relayed = std::mem::take(&mut self.relayed);
        for ev in self.transport.ice_tick(now.into_std(), &mut relayed) {
            match ev {
                IceEvent::Selected {
                    component: 1, pair, ..
                } => {
                    tracing::info!("ICE: video goes to {}", pair.remote);
                    self.ice_remote = Some(pair.remote);
                    self.latch = Latch::new(pair.remote);
                }
                IceEvent::Selected { .. } => {}
                IceEvent::Failed { component } | IceEvent::ConsentLost { component } => {
                    tracing::warn!("ICE: no path for video component {component}");
                }
            }
        }
        for r in relayed.drain(..) {
            if r.rtcp {
                self.rtcp_in(&r.bytes, r.from, now);
            } else if dtls::is_dtls(&r.bytes) {
                self.transport.dtls_in(false, &r.bytes);
            } else {
                let at_ns = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                self.rtp_in(&r.bytes, r.from, at_ns, now);
            }
        }
        self.relayed = relayed;
    }

    fn rtcp_in(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
        let peer = self
            .transport
            .ice_peer(2)
            .unwrap_or_else(|| self.latch.remote());
        if from.ip() != peer.ip() {
            return;
        }
        if dtls::is_dtls(bytes) {
            self.transport.dtls_in(true, bytes);
            return;
        }
        let Ok(opened) = self.transport.open_rtcp(bytes) else {
            return;
        };
        let Some(sender) = &mut self.sender else {
            return;
        };
        for b in rtcp::reports_about(&opened, self.ssrc) {
            let jitter = Duration::from_micros(u64::from(b.jitter) * 100 / 9);
            sender.report(b.fraction_lost, jitter, now.into_std());
        }
        let mut again = Vec::new();
        for fb in feedback::parse(&opened) {
            if matches!(fb, Feedback::Pli { .. } | Feedback::Fir { .. }) {
                tracing::debug!("the far side asks for a key frame");
            }
            again.extend(sender.feedback(&fb));
        }
        self.live
            .video
            .key_frames_sent_on_request
            .store(sender.key_requests, Relaxed);
        self.live
            .video
            .retransmitted
            .store(sender.retransmitted, Relaxed);
        self.live.video.target_kbps.store(sender.kbps(), Relaxed);
        self.send_packets(again);
    }

    /// A receiver (or sender) report, with feedback when there is some to give.
    fn report(&mut self, ask: Option<Ask>) {
        let remote = self.latch.remote();
        if remote.port() == 0 {
            return;
        }
        let sender = (self.sent_packets > 0).then(|| SenderInfo {
            ntp: super::stream::ntp_now(),
            rtp_timestamp: self.last_ts,
            packets: self.sent_packets,
            octets: self.octets,
        });
        let mut out = rtcp::compound(self.ssrc, sender, self.reception.report(), "voipd");
        let media = self.their_ssrc.unwrap_or(0);
        match ask {
            None => {}
            Some(Ask::KeyFrame) => {
                // PLI where the far side takes it, or takes nothing we know of (baresip
                // answers PLI either way); FIR only where it is all it takes.
                if self.p.fir && !self.p.pli {
                    self.fir_seq = self.fir_seq.wrapping_add(1);
                    feedback::write_fir(&mut out, self.ssrc, media, self.fir_seq);
                } else {
                    feedback::write_pli(&mut out, self.ssrc, media);
                }
            }
            Some(Ask::Again(lost)) => {
                self.live.video.nacks_sent.fetch_add(1, Relaxed);
                feedback::write_nack(&mut out, self.ssrc, media, &lost);
            }
        }
        self.transport.send_rtcp(&out, remote);
    }

    /// Ends the stream: the sink's file is closed off the tick.
    pub(super) fn finish(mut self) {
        let stats = self.live.video.read();
        // A picture of a stream that is gone is not the call's picture now.
        *self
            .live
            .video
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        let sink = self.sink.take();
        let done = self.done.take();
        let camera = match self.source.take() {
            Some(Source::Camera(c)) => Some(c),
            _ => None,
        };
        tokio::task::spawn_blocking(move || {
            if let Some(s) = sink {
                s.finish();
            }
            // The figures are read: whoever waits for them need not wait for the camera.
            if let Some(d) = done {
                let _ = d.send(stats);
            }
            if let Some(c) = camera {
                c.stop();
            }
        });
    }
}
