//! One stream as the engine runs it (`engine.rs`): every 20 ms it reads what arrived,
//! sends a frame from its source and plays a frame from the jitter buffer into its sink.
//! Symmetric RTP: it sends from the port it receives on, and follows the far side to the
//! address its packets really come from. DTMF goes both ways as RFC 4733 telephone events.
//! Packets pass through its transport (`transport.rs`), in clear or as SRTP.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::codec::{Transcoder, frame_len, rtp_clock, sample_rate};
use super::device::{self, DeviceAudio};
use super::dtls;
use super::dtmf::{self, DtmfSender, DtmfSettings};
use super::ice::{Ice, IceEvent};
use super::inband::InbandDetector;
use super::jitter::{JitterBuffer, Playout};
use super::latch::Latch;
use super::mixer::ConfLeg;
use super::recording::CallRecording;
use super::rtcp::{self, Reception, SenderInfo};
use super::rtp::RtpPacket;
use super::session::{Controls, LiveStats, MediaEvent, MediaParams, MediaStats, lock};
use super::sink::Sink;
use super::source::Source;
use super::srtp::SrtpError;
use super::stun::{self, MappingWatch};
use super::tone::WaitingTone;
use super::transport::{Incoming, Relayed, RtpTransport};
use super::udp::RecvBuf;
use crate::config::AudioEndpoint;

/// What a session starts from, before its devices are open.
pub(super) struct Setup {
    pub(super) sock: UdpSocket,
    pub(super) rtcp: Option<UdpSocket>,
    pub(super) ice: Option<Box<Ice>>,
    pub(super) input: AudioEndpoint,
    pub(super) output: AudioEndpoint,
    pub(super) timeout: Option<Duration>,
    pub(super) events: flume::Sender<MediaEvent>,
    pub(super) live: std::sync::Arc<LiveStats>,
    pub(super) mapping: Option<MappingWatch>,
    pub(super) params: MediaParams,
    pub(super) controls: Arc<Controls>,
    pub(super) dtmf_settings: DtmfSettings,
    pub(super) done: oneshot::Sender<MediaStats>,
}

/// The sound devices `input` and `output` name, if any; failure leaves the call silent
/// and is told to the call (`events`), which tells the user.
async fn open_device(
    input: &AudioEndpoint,
    output: &AudioEndpoint,
    events: &flume::Sender<MediaEvent>,
) -> Option<DeviceAudio> {
    let want = |ep: &AudioEndpoint| match ep {
        AudioEndpoint::Default => Some(None),
        AudioEndpoint::Device(n) => Some(Some(n.clone())),
        _ => None,
    };
    let (input, output) = (want(input), want(output));
    let (wants_in, wants_out) = (input.is_some(), output.is_some());
    if !wants_in && !wants_out {
        return None;
    }
    // Without a card ALSA has nothing to open; asking it anyway only fills the log.
    let opened = match device::sound_missing() {
        Some(why) => Err(why),
        None => match tokio::task::spawn_blocking(move || device::open(input, output)).await {
            Ok(r) => r,
            Err(e) => Err(e.to_string()),
        },
    };
    match opened {
        Ok(a) => Some(a),
        Err(why) => {
            // Once at warning level: on a machine without a card every call would say it.
            static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            let end = match (wants_in, wants_out) {
                (true, true) => "input or output",
                (true, false) => "input",
                _ => "output",
            };
            if TOLD.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::debug!("no sound {end} ({why}); the call goes on without");
            } else {
                tracing::warn!(
                    "no sound {end} ({why}); calls go on without it (set [audio] input and output to \"null\" or files to mean that)"
                );
            }
            let _ = events.try_send(MediaEvent::NoSound {
                why,
                input: wants_in,
                output: wants_out,
            });
            None
        }
    }
}

impl Setup {
    pub(super) async fn open(self) -> Option<Stream> {
        let p = self.params;
        // On failure `done` is dropped, and the session's stop() reads empty figures.
        let codec = match Transcoder::new(p.codec, p.fec, p.dtx) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{e}; the call has no audio");
                return None;
            }
        };
        let mut audio = open_device(&self.input, &self.output, &self.events).await;
        let source = match audio.as_mut().and_then(|a| a.capture.take()) {
            Some(capture) => Source::Device {
                capture,
                scratch: Vec::new(),
            },
            None => Source::open(&self.input, sample_rate(p.codec)),
        };
        let playback = audio.as_mut().and_then(|a| a.playback.take());
        let mut transport = RtpTransport::new(self.sock, self.rtcp, self.mapping, self.ice);
        if p.rtcp_mux {
            transport.mux();
        }
        if let Err(e) = transport.configure(p.srtp.as_ref(), p.dtls.as_ref()) {
            // Never in clear instead: the far side was promised SRTP.
            tracing::error!("SRTP: {e}; the call has no audio");
            return None;
        }
        let now = Instant::now();
        Some(Stream {
            sink: Sink::open(&self.output, sample_rate(p.codec), playback),
            pcm: vec![0; frame_len(p.codec)],
            transport,
            timeout: self.timeout,
            events: self.events,
            live: self.live,
            controls: self.controls,
            done: Some(self.done),
            stats: MediaStats::default(),
            codec,
            audio,
            source,
            ssrc: fastrand::u32(..),
            seq: fastrand::u16(..),
            ts: fastrand::u32(..),
            reception: Reception::default(),
            octets: 0,
            // Every 5 s (RFC 3550's minimum), jittered so that calls do not report in step.
            next_rtcp: now + Duration::from_millis(2500 + u64::from(fastrand::u16(..2500))),
            // Spread over the ticks, so that each reads a tenth of the calls' ports.
            rtcp_wait: fastrand::u8(..RTCP_READ_EVERY),
            payload: Vec::new(),
            packet: Vec::new(),
            played: Vec::new(),
            jitter: JitterBuffer::new(),
            dtmf_out: VecDeque::new(),
            sending: None,
            dtmf_pause: 0,
            dtmf_settings: self.dtmf_settings,
            dtmf_in: dtmf::Receiver::default(),
            inband: self
                .dtmf_settings
                .inband
                .then(|| Box::new(InbandDetector::new(sample_rate(p.codec)))),
            heard: None,
            playing: None,
            recording: None,
            sent_audio: false,
            conf: None,
            waiting_tone: None,
            cued: Vec::new(),
            latch: Latch::new(p.remote),
            ice_remote: None,
            relayed: Vec::new(),
            started: now,
            last_rx: now,
            timed_out: false,
            p,
        })
    }
}

/// How long ICE's checks may take before the media timeout counts anyway.
const ICE_GRACE: Duration = Duration::from_secs(15);

/// At most this many datagrams are read from one socket in one tick (25,600 a second):
/// enough that junk at a call's port cannot crowd out the far side's few packets, and a
/// bound so that a flood at one call cannot take a shard's whole tick from the others.
const MAX_READ_PER_TICK: usize = 512;

/// The RTCP port is read every this many ticks (200 ms) once nothing there is in a hurry:
/// a report every 5 s needs no 20 ms reads, and at 10,000 calls those empty reads were a
/// quarter of the daemon's system calls. DTLS and ICE on the port are read every tick.
const RTCP_READ_EVERY: u8 = 10;

/// One call's media as the engine runs it: every tick it reads what arrived, sends a frame
/// from its source and plays a frame from the jitter buffer into its sink.
pub(super) struct Stream {
    transport: RtpTransport,
    timeout: Option<Duration>,
    events: flume::Sender<MediaEvent>,
    live: std::sync::Arc<LiveStats>,
    /// What the call asks (new parameters, digits, prompts, recordings, conferences, the
    /// waiting tone), taken at the next tick; the stream ends when it holds them alone.
    controls: Arc<Controls>,
    done: Option<oneshot::Sender<MediaStats>>,
    stats: MediaStats,
    p: MediaParams,
    codec: Transcoder,
    /// Keeps the device streams open for as long as the call runs.
    audio: Option<DeviceAudio>,
    source: Source,
    sink: Sink,
    ssrc: u32,
    seq: u16,
    ts: u32,
    reception: Reception,
    octets: u32,
    next_rtcp: Instant,
    /// Ticks before the RTCP port is read again.
    rtcp_wait: u8,
    pcm: Vec<i16>,
    // Grown to what the codec needs (172 bytes for G.711), not to the largest packet.
    payload: Vec<u8>,
    packet: Vec<u8>,
    played: Vec<i16>,
    jitter: JitterBuffer,
    dtmf_out: VecDeque<char>,
    sending: Option<DtmfSender>,
    /// Packets of audio still to send before the next digit may start.
    dtmf_pause: u16,
    dtmf_settings: DtmfSettings,
    dtmf_in: dtmf::Receiver,
    /// Listens for digits in the far side's audio, when configured.
    inband: Option<Box<InbandDetector>>,
    /// The last digit reported, whether it was heard in-band, and when: a far side that
    /// sends both an event and the tone must not have its digit reported twice.
    heard: Option<(char, bool, Instant)>,
    // The features few calls use are boxed (inband, recording, conf): a stream is per call.
    /// What the user asked to play, playing instead of the source until it ends.
    playing: Option<Source>,
    /// The recording asked for, written every tick: `pcm` when `sent_audio`, and what was
    /// played.
    recording: Option<Box<CallRecording>>,
    sent_audio: bool,
    /// The conference joined.
    conf: Option<Box<ConfLeg>>,
    /// Another call rings: its tone goes into what we hear (not into recordings).
    waiting_tone: Option<WaitingTone>,
    cued: Vec<i16>,
    /// Where the far side's RTP is taken from and ours goes.
    latch: Latch,
    /// The far end of ICE's nominated RTP pair: it wins over the SDP's address.
    ice_remote: Option<SocketAddr>,
    /// Packets that came through the TURN relay this tick.
    relayed: Vec<Relayed>,
    started: Instant,
    last_rx: Instant,
    timed_out: bool,
}

impl Stream {
    /// One 20 ms step. False when the session is over (its handle is gone).
    pub(super) fn tick(&mut self, now: Instant, rx: &mut RecvBuf) -> bool {
        if Arc::strong_count(&self.controls) == 1 {
            return false;
        }
        let next = self
            .controls
            .params
            .try_lock()
            .ok()
            .and_then(|mut p| p.take());
        if let Some(next) = next {
            self.renegotiated(next, now);
        }
        for _ in 0..MAX_READ_PER_TICK {
            match self.transport.next_rtp(rx, self.latch.remote().ip()) {
                Some(Incoming::Rtp(d)) => {
                    let (from, at_ns) = (d.from, d.at_ns);
                    self.rtp_in(d.bytes, from, at_ns, now);
                }
                Some(Incoming::Rtcp(d)) => {
                    let (bytes, from) = (d.bytes, d.from);
                    self.rtcp_packet(bytes, from);
                }
                Some(Incoming::Mapped(at)) => {
                    tracing::info!("the NAT moved our RTP port to {at}");
                    let _ = self.events.try_send(MediaEvent::Mapped(at));
                }
                Some(Incoming::Taken) => {}
                None => break,
            }
        }
        if self.rtcp_wait == 0 || self.transport.rtcp_urgent() {
            self.rtcp_wait = RTCP_READ_EVERY - 1;
            self.rtcp_in(rx);
        } else {
            self.rtcp_wait -= 1;
        }
        self.ice_in(now);
        self.transport.keep_mapping(now.into_std());
        match self.transport.drive(self.latch.remote()) {
            Some(Ok(suite)) => tracing::info!("DTLS-SRTP keyed ({suite})"),
            Some(Err(e)) => {
                tracing::warn!("{e}; the call cannot carry audio");
                let _ = self
                    .events
                    .try_send(MediaEvent::EncryptionFailed(e.to_string()));
            }
            None => {}
        }
        self.take_slots();
        self.send_frame();
        self.play_frame(now);
        self.record_frame();
        // Nothing can come before ICE has nominated a pair: the silence counts from there,
        // or from ICE_GRACE after the start for checks that never end (ICE's own failure
        // ends the call sooner).
        if let Some(limit) = self.timeout
            && self.p.receive
            && !self.timed_out
            && (self.ice_remote.is_some()
                || !self.transport.has_ice()
                || now.duration_since(self.started) >= ICE_GRACE)
            && now.duration_since(self.last_rx) >= limit
        {
            self.timed_out = true;
            let _ = self.events.try_send(MediaEvent::Timeout(limit));
        }
        if now >= self.next_rtcp {
            self.next_rtcp += Duration::from_secs(5);
            self.rtcp_out();
        }
        true
    }

    /// What the call asked for since the last tick: a recording, a conference.
    fn take_slots(&mut self) {
        if let Ok(mut slot) = self.controls.record.try_lock()
            && let Some(next) = slot.take()
            && let Some(old) = std::mem::replace(&mut self.recording, next)
        {
            tokio::task::spawn_blocking(move || old.finish());
        }
        if let Ok(mut slot) = self.controls.conf.try_lock()
            && let Some(next) = slot.take()
        {
            self.conf = next;
        }
    }

    fn record_frame(&mut self) {
        let Some(r) = &mut self.recording else { return };
        let ours: &[i16] = if self.sent_audio { &self.pcm } else { &[] };
        if let Err(e) = r.frame(ours, &self.played, sample_rate(self.p.codec)) {
            tracing::warn!("recording to {} failed: {e}", r.path().display());
            if let Some(r) = self.recording.take() {
                tokio::task::spawn_blocking(move || r.finish());
            }
            let _ = self
                .events
                .try_send(MediaEvent::RecordingFailed(e.to_string()));
        }
    }

    fn renegotiated(&mut self, next: MediaParams, now: Instant) {
        // Before the keys: with DTLS, the RTCP port's handshake goes with it.
        if next.rtcp_mux {
            self.transport.mux();
        }
        if (next.srtp != self.p.srtp || next.dtls != self.p.dtls)
            && let Err(e) = self
                .transport
                .configure(next.srtp.as_ref(), next.dtls.as_ref())
        {
            // Keys that cannot be used: nothing goes out rather than audio in clear.
            tracing::error!("SRTP: {e}; the stream stops");
            let mut next = next;
            next.send = false;
            next.receive = false;
            self.p = next;
            return;
        }
        // With ICE the nominated pair says where the far side is, whatever its SDP says.
        if self.ice_remote.is_none() {
            self.latch.signalled(next.remote, self.p.remote);
        }
        self.last_rx = now;
        if next.codec != self.p.codec {
            // A re-INVITE moved to another codec: new state at its rate. (A recording keeps
            // the rate it started with.)
            match Transcoder::new(next.codec, next.fec, next.dtx) {
                Ok(c) => {
                    self.codec = c;
                    self.pcm = vec![0; frame_len(next.codec)];
                    self.source.retarget(sample_rate(next.codec));
                    if let Some(p) = &mut self.playing {
                        p.retarget(sample_rate(next.codec));
                    }
                    if let Some(d) = &mut self.inband {
                        d.set_rate(sample_rate(next.codec));
                    }
                    self.jitter = JitterBuffer::new();
                }
                Err(e) => tracing::warn!("{e}; keeping the old codec"),
            }
        }
        self.p = next;
    }

    fn malformed(&mut self, from: SocketAddr, e: &dyn std::fmt::Display) {
        self.stats.malformed += 1;
        if self.stats.malformed == 1 {
            tracing::info!("dropping malformed RTP from {from}: {e}");
        }
    }

    fn rtp_in(&mut self, bytes: &[u8], from: SocketAddr, at_ns: u128, now: Instant) {
        let header_len = match RtpPacket::header_len(bytes) {
            Ok(n) => n,
            Err(e) => return self.malformed(from, &e),
        };
        // Only what may be the far side's stream is worth a decryption (and a place in
        // the SRTP context's table of streams): strangers are dropped on their header.
        let ssrc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if !self.latch.may_be(from, ssrc) {
            return self.foreign(from, ssrc);
        }
        let opened = match self.transport.open_rtp(bytes, header_len) {
            Ok(b) => b,
            Err(e) => return self.not_opened(from, &e),
        };
        let pkt = match RtpPacket::parse(&opened) {
            Ok(pkt) => pkt,
            Err(e) => return self.malformed(from, &e),
        };
        let clock = rtp_clock(self.p.codec);
        if !self.latch.accept(
            from,
            pkt.ssrc,
            pkt.seq,
            pkt.timestamp,
            clock,
            now.into_std(),
        ) {
            return self.foreign(from, pkt.ssrc);
        }
        if Some(pkt.pt) == self.p.dtmf_pt {
            self.last_rx = now;
            if let Some(d) = self.dtmf_in.packet(pkt.timestamp, pkt.payload) {
                self.digit(d, false, now);
            }
            return;
        }
        if pkt.pt != self.p.pt {
            self.stats.other_payload += 1;
            return;
        }
        self.stats.received += 1;
        self.live
            .received
            .store(self.stats.received, std::sync::atomic::Ordering::Relaxed);
        // In RTP clock units; only differences count, so wrapping is fine.
        let arrival = (at_ns * u128::from(clock) / 1_000_000_000) as u32;
        self.reception
            .packet(pkt.ssrc, pkt.seq, pkt.timestamp, arrival);
        self.last_rx = now;
        self.timed_out = false;
        self.jitter.push(pkt.seq, pkt.payload);
    }

    fn foreign(&mut self, from: SocketAddr, ssrc: u32) {
        self.stats.foreign += 1;
        if self.stats.foreign == 1 {
            tracing::info!(
                "dropping RTP from {from} (SSRC {ssrc:08x}): not the far side's stream at {}",
                self.latch.remote()
            );
        }
    }

    /// An SRTP or SRTCP packet that failed authentication, a replay, or one too short to
    /// be SRTP: counted and dropped, never decoded.
    fn not_opened(&mut self, from: SocketAddr, e: &SrtpError) {
        use std::sync::atomic::Ordering::Relaxed;
        let n = match e {
            // Before a DTLS handshake is done: the far side started early; not an attack.
            SrtpError::NotKeyed => return,
            // Nothing that could carry a tag (baresip's srtp sends one such packet as a
            // stream starts): not SRTP at all, rather than a forgery.
            SrtpError::TooShort | SrtpError::Malformed(_) => return self.malformed(from, e),
            SrtpError::Replayed => {
                self.stats.replayed += 1;
                self.live.replayed.store(self.stats.replayed, Relaxed);
                self.stats.replayed
            }
            _ => {
                self.stats.auth_failed += 1;
                self.live.auth_failed.store(self.stats.auth_failed, Relaxed);
                self.stats.auth_failed
            }
        };
        // The first of each kind, then every thousandth: a flood must not flood the log.
        if n % 1000 == 1 {
            tracing::info!("dropping SRTP from {from}: {e} ({n} so far)");
        }
    }

    fn send_rtp(&mut self) {
        // Symmetric RTP (RFC 4961): where the far side's stream comes from, once known.
        if self.transport.send_rtp(&self.packet, self.latch.remote()) {
            self.octets = self
                .octets
                .wrapping_add(self.packet.len().saturating_sub(12) as u32);
            self.stats.sent += 1;
            self.live
                .sent
                .store(self.stats.sent, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn send_frame(&mut self) {
        let p = &self.p;
        let remote = self.latch.remote();
        let can_send = p.send && remote.port() != 0 && !remote.ip().is_unspecified();
        let step = rtp_clock(p.codec) / 50;
        let rate = sample_rate(p.codec);
        self.sent_audio = false;
        self.dtmf_out.extend(lock(&self.controls.dtmf).drain(..));
        if let Ok(mut slot) = self.controls.play.try_lock()
            && let Some(cmd) = slot.take()
        {
            self.playing = cmd
                .map(|prompt| Source::open(&AudioEndpoint::Prompt(prompt), sample_rate(p.codec)));
        }
        if self.sending.is_none() {
            if self.dtmf_pause > 0 {
                self.dtmf_pause -= 1;
            } else if let Some(d) = self.dtmf_out.pop_front() {
                self.sending = DtmfSender::new(d, self.ts, self.dtmf_settings.tone_packets);
            }
        }
        if let (Some(dt), Some(dpt)) = (self.sending.as_mut(), p.dtmf_pt) {
            // A telephone event replaces audio while it lasts.
            let (ev, done) = dt.next_packet();
            if can_send {
                RtpPacket {
                    marker: dt.first(),
                    pt: dpt,
                    seq: self.seq,
                    timestamp: dt.timestamp(),
                    ssrc: self.ssrc,
                    payload: &ev,
                }
                .write(&mut self.packet);
                self.send_rtp();
            }
            self.seq = self.seq.wrapping_add(1);
            if done {
                self.sending = None;
                self.dtmf_pause = self
                    .dtmf_settings
                    .gap_packets
                    .saturating_sub(dtmf::END_REPEATS);
            }
        } else if can_send {
            // What the user plays goes out even when muted: it is meant to be heard.
            if let Some(playing) = &mut self.playing {
                playing.fill(&mut self.pcm);
                if playing.finished() {
                    self.playing = None;
                }
            } else if p.muted {
                self.pcm.fill(0);
            } else {
                self.source.fill(&mut self.pcm);
            }
            // In a conference the far side hears the other parties with us.
            if let Some(c) = &mut self.conf {
                c.mix_into(&mut self.pcm, rate);
            }
            self.sent_audio = true;
            self.codec.encode(&self.pcm, &mut self.payload);
            if !self.payload.is_empty() {
                RtpPacket {
                    marker: self.stats.sent == 0,
                    pt: p.pt,
                    seq: self.seq,
                    timestamp: self.ts,
                    ssrc: self.ssrc,
                    payload: &self.payload,
                }
                .write(&mut self.packet);
                self.send_rtp();
                self.seq = self.seq.wrapping_add(1);
            }
        }
        if self.sending.is_none() && self.p.dtmf_pt.is_none() {
            // Without telephone-event, digits cannot be sent; say so once each.
            for d in self.dtmf_out.drain(..) {
                tracing::warn!("cannot send DTMF {d}: the far side does not take telephone-event");
            }
        }
        self.ts = self.ts.wrapping_add(step);
    }

    fn play_frame(&mut self, now: Instant) {
        self.played.clear();
        let heard = match self.jitter.pop() {
            Playout::Frame(f) => {
                self.codec.decode(&f, &mut self.played);
                true
            }
            Playout::Lost { next } => {
                self.codec.conceal(next.as_deref(), &mut self.played);
                false
            }
            // Nothing to play: silence, so that a recording keeps real time.
            Playout::Empty => {
                self.played.resize(self.pcm.len(), 0);
                false
            }
        };
        // Only what came: concealment invents audio, and digits must not be invented.
        if heard && let Some(d) = self.inband.as_mut().and_then(|i| i.feed(&self.played)) {
            self.digit(d, true, now);
        }
        if let Some(c) = &mut self.conf {
            let heard: &[i16] = if self.p.receive { &self.played } else { &[] };
            c.publish(heard, sample_rate(self.p.codec));
        }
        if !self.p.receive {
            return;
        }
        let rate = sample_rate(self.p.codec);
        let waiting = self
            .controls
            .waiting
            .load(std::sync::atomic::Ordering::Relaxed);
        if waiting != self.waiting_tone.is_some() {
            self.waiting_tone = waiting.then(|| WaitingTone::new(rate));
        }
        match &mut self.waiting_tone {
            Some(w) => {
                self.cued.clear();
                self.cued.extend_from_slice(&self.played);
                w.mix(&mut self.cued, rate);
                self.sink.play(&self.cued, rate);
            }
            None => self.sink.play(&self.played, rate),
        }
    }

    /// Reports a digit from the far side, once: the same digit by the other way (event or
    /// tone) within a second is the same key press.
    fn digit(&mut self, d: char, inband: bool, now: Instant) {
        if let Some((last, was_inband, at)) = self.heard
            && last == d
            && was_inband != inband
            && now.duration_since(at) < Duration::from_secs(1)
        {
            return;
        }
        self.heard = Some((d, inband, now));
        let _ = self.events.try_send(MediaEvent::Dtmf(d));
    }

    fn rtcp_in(&mut self, rx: &mut RecvBuf) {
        for _ in 0..MAX_READ_PER_TICK {
            let Some(d) = self.transport.recv_rtcp(rx) else {
                break;
            };
            if stun::is_stun(d.bytes) {
                self.transport.stun_in(true, d.bytes, d.from);
                continue;
            }
            let (bytes, from) = (d.bytes, d.from);
            self.rtcp_packet(bytes, from);
        }
    }

    /// An RTCP datagram from `from`, at our RTCP port or through the relay.
    fn rtcp_packet(&mut self, bytes: &[u8], from: SocketAddr) {
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
        let opened = match self.transport.open_rtcp(bytes) {
            Ok(b) => b,
            Err(e) => return self.not_opened(from, &e),
        };
        let clock = rtp_clock(self.p.codec).max(1);
        for b in rtcp::reports_about(&opened, self.ssrc) {
            self.stats.rtcp_reports += 1;
            self.stats.remote_lost = b.cumulative_lost;
            self.stats.remote_jitter_ms = (u64::from(b.jitter) * 1000 / u64::from(clock)) as u32;
        }
    }

    /// ICE's step: a nominated pair moves the stream to it; a failure or lost consent is
    /// the call's to end; what came through the relay is taken as if it came to our ports.
    fn ice_in(&mut self, now: Instant) {
        let mut relayed = std::mem::take(&mut self.relayed);
        for ev in self.transport.ice_tick(now.into_std(), &mut relayed) {
            match ev {
                IceEvent::Selected {
                    component: 1,
                    pair,
                    after,
                } => {
                    tracing::info!(
                        "ICE: RTP goes over a {} pair to {}",
                        if pair.relayed { "relayed" } else { "direct" },
                        pair.remote
                    );
                    self.ice_remote = Some(pair.remote);
                    self.latch = Latch::new(pair.remote);
                    self.last_rx = now;
                    let _ = self.events.try_send(MediaEvent::IceSelected(pair, after));
                }
                IceEvent::Selected { .. } => {}
                IceEvent::Failed { component } => {
                    let _ = self.events.try_send(MediaEvent::IceFailed(component));
                }
                IceEvent::ConsentLost { component } => {
                    let _ = self.events.try_send(MediaEvent::ConsentLost(component));
                }
            }
        }
        // Read only when something came through the relay: every call runs this each tick.
        let at_ns = if relayed.is_empty() {
            0
        } else {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        };
        for r in relayed.drain(..) {
            if r.rtcp {
                self.rtcp_packet(&r.bytes, r.from);
            } else if dtls::is_dtls(&r.bytes) {
                self.transport.dtls_in(false, &r.bytes);
            } else {
                self.rtp_in(&r.bytes, r.from, at_ns, now);
            }
        }
        self.relayed = relayed;
    }

    fn rtcp_out(&mut self) {
        let remote = self.latch.remote();
        if remote.port() == 0 {
            return;
        }
        let sender = (self.stats.sent > 0).then(|| SenderInfo {
            ntp: ntp_now(),
            rtp_timestamp: self.ts,
            packets: self.stats.sent as u32,
            octets: self.octets,
        });
        let report = rtcp::compound(self.ssrc, sender, self.reception.report(), "voipd");
        self.transport.send_rtcp(&report, remote);
    }

    /// Ends the session: closes the recording and the devices, then hands over the
    /// figures. Off the shared tick: both touch the disk or wait for a device thread.
    pub(super) fn finish(mut self) {
        self.stats.lost = self.jitter.lost;
        self.stats.jitter_ms = (u64::from(self.reception.jitter()) * 1000
            / u64::from(rtp_clock(self.p.codec).max(1))) as u32;
        self.stats.late = self.jitter.late;
        if self.stats.foreign > 0 {
            tracing::warn!(
                "dropped {} RTP packets from others than the far side during the call",
                self.stats.foreign
            );
        }
        let (sink, audio, done, stats) =
            (self.sink, self.audio.take(), self.done.take(), self.stats);
        let recording = self.recording.take();
        tokio::task::spawn_blocking(move || {
            sink.finish();
            if let Some(r) = recording {
                r.finish();
            }
            drop(audio);
            // Only now: whoever waits for the figures may read the recording at once.
            if let Some(done) = done {
                let _ = done.send(stats);
            }
        });
    }
}

/// Now as a 64-bit NTP timestamp (seconds since 1900, 32.32 fixed point).
pub(super) fn ntp_now() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    (secs << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}
