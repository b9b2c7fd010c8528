//! One call's media: what SDP negotiated, the call's handle on it, and the stream the
//! engine runs (`engine.rs`): every 20 ms it sends a frame from its source and plays a
//! frame from the jitter buffer into its sink. Symmetric RTP: it sends from the port it
//! receives on, and follows the far side to the address its packets really come from.
//! DTMF goes both ways as RFC 4733 telephone events.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use std::net::UdpSocket;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::codec::{Transcoder, frame_len, rtp_clock, sample_rate};
use super::device::{self, DeviceAudio};
use super::dtmf::{self, DtmfSender};
use super::engine::MediaEngine;
use super::jitter::{JitterBuffer, Playout};
use super::latch::Latch;
use super::rtcp::{self, Reception, SenderInfo};
use super::rtp::RtpPacket;
use super::tone::Tone;
use super::udp::{self, RecvBuf};
use super::wav::{self, WavWriter};
use crate::config::{AudioEndpoint, Codec};

/// What SDP negotiated, as the media layer needs it. May change mid-call (hold, re-INVITE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaParams {
    pub codec: Codec,
    pub pt: u8,
    pub dtmf_pt: Option<u8>,
    pub remote: SocketAddr,
    pub send: bool,
    pub receive: bool,
    pub muted: bool,
    /// Opus in-band FEC and DTX, as the far side asked.
    pub fec: bool,
    pub dtx: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    pub sent: u64,
    pub received: u64,
    pub malformed: u64,
    pub other_payload: u64,
    /// Packets from others than the far side's stream (source or SSRC), dropped.
    pub foreign: u64,
    pub lost: u64,
    pub late: u64,
    /// Interarrival jitter of what we receive, in ms (RFC 3550 §A.8).
    pub jitter_ms: u32,
    /// RTCP reports from the far side about our stream, and what the last one said.
    pub rtcp_reports: u64,
    pub remote_lost: i32,
    pub remote_jitter_ms: u32,
}

/// Packet counts readable while the call runs.
#[derive(Debug, Default)]
pub struct LiveStats {
    pub sent: std::sync::atomic::AtomicU64,
    pub received: std::sync::atomic::AtomicU64,
}

impl LiveStats {
    pub fn snapshot(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.sent.load(Relaxed), self.received.load(Relaxed))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    Dtmf(char),
    /// No RTP for this long while some was expected.
    Timeout(Duration),
    /// The sound device the call was to use could not be had (why), for its input,
    /// output or both: the call goes on without.
    NoSound {
        why: String,
        input: bool,
        output: bool,
    },
}

enum Source {
    Silence,
    Tone(Tone),
    File {
        /// As read, and at the rate being sent.
        original: Vec<i16>,
        original_rate: u32,
        samples: Vec<i16>,
        pos: usize,
        looping: bool,
    },
    Device {
        capture: rtrb::Consumer<i16>,
        scratch: Vec<i16>,
    },
}

impl Source {
    fn open(ep: &AudioEndpoint, rate: u32) -> Source {
        match ep {
            AudioEndpoint::Tone(f) => Source::Tone(Tone::new(*f, rate)),
            AudioEndpoint::File(p) | AudioEndpoint::FileOnce(p) => match wav::read(p) {
                Ok((samples, r)) if !samples.is_empty() => Source::File {
                    samples: resample(&samples, r, rate),
                    original: samples,
                    original_rate: r,
                    pos: 0,
                    looping: matches!(ep, AudioEndpoint::File(_)),
                },
                Ok(_) => Source::Silence,
                Err(e) => {
                    tracing::warn!("audio input {e}; sending silence");
                    Source::Silence
                }
            },
            // A device that could not be opened, or none wanted.
            AudioEndpoint::Default | AudioEndpoint::Device(_) | AudioEndpoint::Null => {
                Source::Silence
            }
        }
    }

    /// Goes on at another codec rate (a re-INVITE changed the codec), without going back
    /// to the disk: this runs on the engine's shared tick.
    fn retarget(&mut self, rate: u32) {
        match self {
            Source::Tone(t) => t.set_rate(rate),
            Source::File {
                original,
                original_rate,
                samples,
                pos,
                ..
            } => {
                let done = *pos as f64 / samples.len().max(1) as f64;
                *samples = resample(original, *original_rate, rate);
                *pos = (done * samples.len() as f64) as usize;
            }
            // The device runs at its own rate, converted per frame.
            Source::Silence | Source::Device { .. } => {}
        }
    }

    fn fill(&mut self, out: &mut [i16]) {
        match self {
            Source::Silence => out.fill(0),
            Source::Tone(t) => t.fill(out),
            // Loops, or plays once and then stays silent; the call goes on either way.
            Source::File {
                samples,
                pos,
                looping,
                ..
            } => {
                for s in out {
                    *s = samples.get(*pos).copied().unwrap_or(0);
                    *pos += 1;
                    if *pos >= samples.len() && *looping {
                        *pos = 0;
                    }
                }
            }
            Source::Device { capture, scratch } => {
                // This frame's worth at the device rate; a backlog beyond two frames is
                // dropped so that delay cannot build up, a shortfall is padded.
                let want = device::DEVICE_RATE as usize / 50;
                let backlog = capture.slots().saturating_sub(2 * want);
                if backlog > 0
                    && let Ok(chunk) = capture.read_chunk(backlog)
                {
                    chunk.commit_all();
                }
                scratch.clear();
                while scratch.len() < want {
                    match capture.pop() {
                        Ok(s) => scratch.push(s),
                        Err(_) => break,
                    }
                }
                scratch.resize(want, 0);
                device::convert_into(scratch, out);
            }
        }
    }
}

/// Linear interpolation between rates; good enough for prompts and test tones.
fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || from == 0 || samples.is_empty() {
        return samples.to_vec();
    }
    let n = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * f64::from(from) / f64::from(to);
            let (a, frac) = (pos.floor() as usize, pos.fract());
            let x = f64::from(samples[a.min(samples.len() - 1)]);
            let y = f64::from(samples[(a + 1).min(samples.len() - 1)]);
            (x + (y - x) * frac) as i16
        })
        .collect()
}

struct Sink {
    writer: WavWriter,
    path: PathBuf,
    rate: u32,
}

fn open_sink(ep: &AudioEndpoint, rate: u32) -> Option<Sink> {
    let (AudioEndpoint::File(p) | AudioEndpoint::FileOnce(p)) = ep else {
        return None;
    };
    match WavWriter::create(p, rate) {
        Ok(writer) => Some(Sink {
            writer,
            path: p.clone(),
            rate,
        }),
        Err(e) => {
            tracing::warn!(
                "cannot record to {}: {e}; received audio is dropped",
                p.display()
            );
            None
        }
    }
}

/// A UDP socket for RTP on `ip`, ready for the engine: a free port in `ports` (inclusive),
/// or any free port. The port is even, as RTP's is by custom, so that RTCP can have the
/// next one.
pub fn bind(ip: IpAddr, ports: Option<(u16, u16)>) -> std::io::Result<UdpSocket> {
    let sock = bind_even(ip, ports)?;
    udp::prepare(&sock)?;
    Ok(sock)
}

fn bind_even(ip: IpAddr, ports: Option<(u16, u16)>) -> std::io::Result<UdpSocket> {
    let Some((lo, hi)) = ports else {
        let mut last = None;
        for _ in 0..32 {
            let s = UdpSocket::bind(SocketAddr::new(ip, 0))?;
            if s.local_addr()?.port() % 2 == 0 {
                return Ok(s);
            }
            last = Some(s);
        }
        // Odd ports only, it seems; RTCP then simply goes without.
        return last.ok_or_else(|| std::io::Error::other("no port"));
    };
    // Start somewhere random so that concurrent calls do not all probe the same ports.
    let span = u32::from(hi - lo) + 1;
    let start = fastrand::u32(..span);
    for i in 0..span {
        let port = lo + ((start + i) % span) as u16;
        if port % 2 == 1 {
            continue;
        }
        if let Ok(s) = UdpSocket::bind(SocketAddr::new(ip, port)) {
            return Ok(s);
        }
    }
    // An odd last port (a range of one odd port) only when no even one is free: RTCP then
    // goes without, as it does in any case an odd port is all there is.
    if hi % 2 == 1
        && let Ok(s) = UdpSocket::bind(SocketAddr::new(ip, hi))
    {
        return Ok(s);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free RTP port in {lo}-{hi}"),
    ))
}

/// Digits waiting to be sent. The engine looks every 20 ms anyway, so a plain queue does
/// (and costs less per call than a channel).
type DtmfQueue = std::sync::Arc<std::sync::Mutex<VecDeque<char>>>;

/// A running session, driven by the engine. Dropping it ends the stream at the next tick.
pub struct MediaSession {
    params: watch::Sender<MediaParams>,
    dtmf: DtmfQueue,
    done: oneshot::Receiver<MediaStats>,
}

pub struct MediaOptions<'a> {
    pub input: &'a AudioEndpoint,
    pub output: &'a AudioEndpoint,
    /// No RTP for this long (while receiving is expected) is reported; None: never.
    pub timeout: Option<Duration>,
    pub events: mpsc::Sender<MediaEvent>,
    pub live: std::sync::Arc<LiveStats>,
}

impl MediaSession {
    pub fn start(
        engine: &MediaEngine,
        sock: UdpSocket,
        params: MediaParams,
        opts: MediaOptions<'_>,
    ) -> MediaSession {
        let (tx, rx) = watch::channel(params);
        let dtmf = DtmfQueue::default();
        let (done_tx, done) = oneshot::channel();
        let setup = Setup {
            sock,
            input: opts.input.clone(),
            output: opts.output.clone(),
            timeout: opts.timeout,
            events: opts.events,
            live: opts.live,
            params: rx,
            dtmf: dtmf.clone(),
            done: done_tx,
        };
        let engine = engine.clone();
        // Opening a sound device blocks; the engine's ticks must not wait for it.
        tokio::spawn(async move {
            if let Some(stream) = setup.open().await {
                engine.add(stream).await;
            }
        });
        MediaSession {
            params: tx,
            dtmf,
            done,
        }
    }

    pub fn update(&self, params: MediaParams) {
        let _ = self.params.send(params);
    }

    /// Queues digits to send as RFC 4733 events (or in-band when none was negotiated).
    pub fn send_dtmf(&self, digits: &str) {
        let mut q = self.dtmf.lock().unwrap_or_else(|e| e.into_inner());
        q.extend(digits.chars().filter(|c| dtmf::event_code(*c).is_some()));
    }

    /// Stops and returns what was counted.
    pub async fn stop(self) -> MediaStats {
        drop(self.params);
        self.done.await.unwrap_or_default()
    }
}

/// What a session starts from, before its devices are open.
struct Setup {
    sock: UdpSocket,
    input: AudioEndpoint,
    output: AudioEndpoint,
    timeout: Option<Duration>,
    events: mpsc::Sender<MediaEvent>,
    live: std::sync::Arc<LiveStats>,
    params: watch::Receiver<MediaParams>,
    dtmf: DtmfQueue,
    done: oneshot::Sender<MediaStats>,
}

/// The sound devices `input` and `output` name, if any; failure leaves the call silent
/// and is told to the call (`events`), which tells the user.
async fn open_device(
    input: &AudioEndpoint,
    output: &AudioEndpoint,
    events: &mpsc::Sender<MediaEvent>,
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
    async fn open(mut self) -> Option<Stream> {
        let p = self.params.borrow_and_update().clone();
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
        // RTCP on the next port (RFC 3550 §11), best effort: without it the call still works.
        let rtcp = match self.sock.local_addr() {
            Ok(a) if a.port() % 2 == 0 => UdpSocket::bind(SocketAddr::new(a.ip(), a.port() + 1))
                .ok()
                .filter(|s| s.set_nonblocking(true).is_ok()),
            _ => None,
        };
        let now = Instant::now();
        Some(Stream {
            sink: open_sink(&self.output, sample_rate(p.codec)),
            pcm: vec![0; frame_len(p.codec)],
            sock: self.sock,
            rtcp,
            timeout: self.timeout,
            events: self.events,
            live: self.live,
            params: self.params,
            dtmf_queue: self.dtmf,
            done: Some(self.done),
            stats: MediaStats::default(),
            codec,
            audio,
            source,
            playback,
            upsampled: Vec::new(),
            ssrc: fastrand::u32(..),
            seq: fastrand::u16(..),
            ts: fastrand::u32(..),
            reception: Reception::default(),
            octets: 0,
            // Every 5 s (RFC 3550's minimum), jittered so that calls do not report in step.
            next_rtcp: now + Duration::from_millis(2500 + u64::from(fastrand::u16(..2500))),
            payload: Vec::new(),
            packet: Vec::new(),
            played: Vec::new(),
            jitter: JitterBuffer::new(),
            dtmf_out: VecDeque::new(),
            sending: None,
            dtmf_in: dtmf::Receiver::default(),
            latch: Latch::new(p.remote),
            last_rx: now,
            timed_out: false,
            p,
        })
    }
}

/// At most this many datagrams are read from one socket in one tick (25,600 a second):
/// enough that junk at a call's port cannot crowd out the far side's few packets, and a
/// bound so that a flood at one call cannot take a shard's whole tick from the others.
const MAX_READ_PER_TICK: usize = 512;

/// One call's media as the engine runs it: every tick it reads what arrived, sends a frame
/// from its source and plays a frame from the jitter buffer into its sink.
pub(super) struct Stream {
    sock: UdpSocket,
    rtcp: Option<UdpSocket>,
    timeout: Option<Duration>,
    events: mpsc::Sender<MediaEvent>,
    live: std::sync::Arc<LiveStats>,
    params: watch::Receiver<MediaParams>,
    dtmf_queue: DtmfQueue,
    done: Option<oneshot::Sender<MediaStats>>,
    stats: MediaStats,
    p: MediaParams,
    codec: Transcoder,
    /// Keeps the device streams open for as long as the call runs.
    audio: Option<DeviceAudio>,
    source: Source,
    playback: Option<rtrb::Producer<i16>>,
    upsampled: Vec<i16>,
    sink: Option<Sink>,
    ssrc: u32,
    seq: u16,
    ts: u32,
    reception: Reception,
    octets: u32,
    next_rtcp: Instant,
    pcm: Vec<i16>,
    // Grown to what the codec needs (172 bytes for G.711), not to the largest packet.
    payload: Vec<u8>,
    packet: Vec<u8>,
    played: Vec<i16>,
    jitter: JitterBuffer,
    dtmf_out: VecDeque<char>,
    sending: Option<DtmfSender>,
    dtmf_in: dtmf::Receiver,
    /// Where the far side's RTP is taken from and ours goes.
    latch: Latch,
    last_rx: Instant,
    timed_out: bool,
}

impl Stream {
    /// One 20 ms step. False when the session is over (its handle is gone).
    pub(super) fn tick(&mut self, now: Instant, rx: &mut RecvBuf) -> bool {
        match self.params.has_changed() {
            Err(_) => return false,
            Ok(true) => {
                let next = self.params.borrow_and_update().clone();
                self.renegotiated(next, now);
            }
            Ok(false) => {}
        }
        for _ in 0..MAX_READ_PER_TICK {
            match rx.recv(&self.sock) {
                Ok(d) => self.rtp_in(d.bytes, d.from, d.at_ns, now),
                // WouldBlock, or an ICMP error for an earlier send: either way, done here.
                Err(_) => break,
            }
        }
        self.rtcp_in(rx);
        self.send_frame();
        self.play_frame();
        if let Some(limit) = self.timeout
            && self.p.receive
            && !self.timed_out
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

    fn renegotiated(&mut self, next: MediaParams, now: Instant) {
        self.latch.signalled(next.remote, self.p.remote);
        self.last_rx = now;
        if next.codec != self.p.codec {
            // A re-INVITE moved to another codec: new state at its rate. (A recording keeps
            // the rate it started with.)
            match Transcoder::new(next.codec, next.fec, next.dtx) {
                Ok(c) => {
                    self.codec = c;
                    self.pcm = vec![0; frame_len(next.codec)];
                    self.source.retarget(sample_rate(next.codec));
                    self.jitter = JitterBuffer::new();
                }
                Err(e) => tracing::warn!("{e}; keeping the old codec"),
            }
        }
        self.p = next;
    }

    fn rtp_in(&mut self, bytes: &[u8], from: SocketAddr, at_ns: u128, now: Instant) {
        let pkt = match RtpPacket::parse(bytes) {
            Ok(pkt) => pkt,
            Err(e) => {
                self.stats.malformed += 1;
                if self.stats.malformed == 1 {
                    tracing::info!("dropping malformed RTP from {from}: {e}");
                }
                return;
            }
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
            self.stats.foreign += 1;
            if self.stats.foreign == 1 {
                tracing::info!(
                    "dropping RTP from {from} (SSRC {:08x}): not the far side's stream at {}",
                    pkt.ssrc,
                    self.latch.remote()
                );
            }
            return;
        }
        if Some(pkt.pt) == self.p.dtmf_pt {
            self.last_rx = now;
            if let Some(d) = self.dtmf_in.packet(pkt.timestamp, pkt.payload) {
                let _ = self.events.try_send(MediaEvent::Dtmf(d));
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

    fn send_rtp(&mut self) {
        // Symmetric RTP (RFC 4961): where the far side's stream comes from, once known.
        if self.sock.send_to(&self.packet, self.latch.remote()).is_ok() {
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
        self.dtmf_out.extend(
            self.dtmf_queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..),
        );
        if self.sending.is_none()
            && let Some(d) = self.dtmf_out.pop_front()
        {
            self.sending = DtmfSender::new(d, self.ts);
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
            }
        } else if can_send {
            if p.muted {
                self.pcm.fill(0);
            } else {
                self.source.fill(&mut self.pcm);
            }
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

    fn play_frame(&mut self) {
        self.played.clear();
        match self.jitter.pop() {
            Playout::Frame(f) => self.codec.decode(&f, &mut self.played),
            Playout::Lost { next } => self.codec.conceal(next.as_deref(), &mut self.played),
            // Nothing to play: silence, so that a recording keeps real time.
            Playout::Empty => self.played.resize(self.pcm.len(), 0),
        }
        if !self.p.receive {
            return;
        }
        if let Some(out) = &mut self.playback {
            self.upsampled.resize(
                self.played.len() * device::DEVICE_RATE as usize
                    / sample_rate(self.p.codec) as usize,
                0,
            );
            device::convert_into(&self.played, &mut self.upsampled);
            for s in &self.upsampled {
                // Full: the device is not draining; drop rather than wait.
                let _ = out.push(*s);
            }
        }
        if !self.played.is_empty()
            && let Some(s) = &mut self.sink
            && let Err(e) = s.writer.write(&self.played)
        {
            tracing::warn!("recording to {} failed: {e}", s.path.display());
            self.sink = None;
        }
    }

    fn rtcp_in(&mut self, rx: &mut RecvBuf) {
        let Some(rs) = &self.rtcp else { return };
        let clock = rtp_clock(self.p.codec).max(1);
        for _ in 0..MAX_READ_PER_TICK {
            let Ok(d) = rx.recv(rs) else { break };
            if d.from.ip() != self.latch.remote().ip() {
                continue;
            }
            for b in rtcp::reports_about(d.bytes, self.ssrc) {
                self.stats.rtcp_reports += 1;
                self.stats.remote_lost = b.cumulative_lost;
                self.stats.remote_jitter_ms =
                    (u64::from(b.jitter) * 1000 / u64::from(clock)) as u32;
            }
        }
    }

    fn rtcp_out(&mut self) {
        let Some(rs) = &self.rtcp else { return };
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
        let to = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
        let _ = rs.send_to(&report, to);
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
        let (sink, audio, done, stats) = (
            self.sink.take(),
            self.audio.take(),
            self.done.take(),
            self.stats,
        );
        tokio::task::spawn_blocking(move || {
            if let Some(s) = sink
                && let Err(e) = s.writer.finish(s.rate)
            {
                tracing::warn!("finishing recording {}: {e}", s.path.display());
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
fn ntp_now() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    (secs << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_ports_are_even_while_an_even_one_is_free() {
        let lo = std::iter::repeat_with(|| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        })
        .find(|p| p % 2 == 0 && *p < u16::MAX - 1)
        .unwrap();
        let ip = IpAddr::from([127, 0, 0, 1]);
        // The range's odd last port was as likely as the even one before.
        for _ in 0..20 {
            let s = bind_even(ip, Some((lo, lo + 1))).unwrap();
            assert_eq!(s.local_addr().unwrap().port(), lo);
        }
    }

    #[test]
    fn a_file_plays_in_a_loop_or_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        let mut w = WavWriter::create(&p, 8000).unwrap();
        w.write(&[1, 2, 3]).unwrap();
        w.finish(8000).unwrap();
        let mut out = [0i16; 7];
        Source::open(&AudioEndpoint::File(p.clone()), 8000).fill(&mut out);
        assert_eq!(out, [1, 2, 3, 1, 2, 3, 1]);
        let mut once = Source::open(&AudioEndpoint::FileOnce(p), 8000);
        once.fill(&mut out);
        assert_eq!(out, [1, 2, 3, 0, 0, 0, 0]);
        once.fill(&mut out);
        assert_eq!(out, [0; 7], "then silence, for as long as the call lasts");
    }
}
