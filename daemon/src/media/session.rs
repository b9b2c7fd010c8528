//! One call's media: a task that every 20 ms sends a frame from its source and plays a
//! frame from the jitter buffer into its sink. Symmetric RTP: it sends from the port it
//! receives on, and follows the far side to the address its packets really come from.
//! DTMF goes both ways as RFC 4733 telephone events.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::codec::{Transcoder, frame_len, rtp_clock, sample_rate};
use super::device::{self, DeviceAudio};
use super::dtmf::{self, DtmfSender};
use super::jitter::{JitterBuffer, Playout};
use super::rtcp::{self, Reception, SenderInfo};
use super::rtp::RtpPacket;
use super::tone::Tone;
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
}

enum Source {
    Silence,
    Tone(Tone),
    File {
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

    fn fill(&mut self, out: &mut [i16]) {
        match self {
            Source::Silence => out.fill(0),
            Source::Tone(t) => t.fill(out),
            // Loops, and the call goes on when it wraps.
            // Loops, or plays once and then stays silent; the call goes on either way.
            Source::File {
                samples,
                pos,
                looping,
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

/// A UDP socket for RTP on `ip`: a free port in `ports` (inclusive), or any free port.
/// The port is even, as RTP's is by custom, so that RTCP can have the next one.
pub async fn bind(ip: IpAddr, ports: Option<(u16, u16)>) -> std::io::Result<UdpSocket> {
    let Some((lo, hi)) = ports else {
        let mut last = None;
        for _ in 0..32 {
            let s = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
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
        if port % 2 == 1 && port != hi {
            continue;
        }
        if let Ok(s) = UdpSocket::bind(SocketAddr::new(ip, port)).await {
            return Ok(s);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free RTP port in {lo}-{hi}"),
    ))
}

/// Digits waiting to be sent. The task looks every 20 ms anyway, so a plain queue does
/// (and costs less per call than a channel).
type DtmfQueue = std::sync::Arc<std::sync::Mutex<VecDeque<char>>>;

/// The running session. Dropping it stops the task.
pub struct MediaSession {
    params: watch::Sender<MediaParams>,
    dtmf: DtmfQueue,
    task: tokio::task::JoinHandle<MediaStats>,
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
    pub fn start(sock: UdpSocket, params: MediaParams, opts: MediaOptions<'_>) -> MediaSession {
        let (tx, rx) = watch::channel(params);
        let dtmf = DtmfQueue::default();
        let task = tokio::spawn(
            Runner {
                sock,
                input: opts.input.clone(),
                output: opts.output.clone(),
                timeout: opts.timeout,
                events: opts.events,
                live: opts.live,
                stats: MediaStats::default(),
            }
            .run(rx, dtmf.clone()),
        );
        MediaSession {
            params: tx,
            dtmf,
            task,
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
        self.task.await.unwrap_or_default()
    }
}

struct Runner {
    sock: UdpSocket,
    input: AudioEndpoint,
    output: AudioEndpoint,
    timeout: Option<Duration>,
    events: mpsc::Sender<MediaEvent>,
    live: std::sync::Arc<LiveStats>,
    stats: MediaStats,
}

impl Runner {
    /// The sound devices this call's endpoints name, if any; failure leaves it silent.
    async fn open_device(&self) -> Option<DeviceAudio> {
        let want = |ep: &AudioEndpoint| match ep {
            AudioEndpoint::Default => Some(None),
            AudioEndpoint::Device(n) => Some(Some(n.clone())),
            _ => None,
        };
        let (input, output) = (want(&self.input), want(&self.output));
        if input.is_none() && output.is_none() {
            return None;
        }
        match tokio::task::spawn_blocking(move || device::open(input, output)).await {
            Ok(Ok(a)) => Some(a),
            Ok(Err(e)) => {
                tracing::warn!("sound device unavailable ({e}); the call goes on without it");
                None
            }
            Err(e) => {
                tracing::warn!("sound device: {e}");
                None
            }
        }
    }

    async fn run(
        mut self,
        mut params: watch::Receiver<MediaParams>,
        dtmf_queue: DtmfQueue,
    ) -> MediaStats {
        let mut p = params.borrow_and_update().clone();
        let mut codec = match Transcoder::new(p.codec, p.fec, p.dtx) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{e}; the call has no audio");
                return self.stats;
            }
        };
        let mut audio = self.open_device().await;
        let mut source = match audio.as_mut().and_then(|a| a.capture.take()) {
            Some(capture) => Source::Device {
                capture,
                scratch: Vec::new(),
            },
            None => Source::open(&self.input, sample_rate(p.codec)),
        };
        let mut playback = audio.as_mut().and_then(|a| a.playback.take());
        let mut upsampled = Vec::new();
        let mut sink = open_sink(&self.output, sample_rate(p.codec));
        let ssrc = fastrand::u32(..);
        let (mut seq, mut ts) = (fastrand::u16(..), fastrand::u32(..));
        // RTCP on the next port (RFC 3550 §11), best effort: without it the call still works.
        let rtcp_sock = match self.sock.local_addr() {
            Ok(a) if a.port() % 2 == 0 => UdpSocket::bind(SocketAddr::new(a.ip(), a.port() + 1))
                .await
                .ok(),
            _ => None,
        };
        let started = Instant::now();
        let mut reception = Reception::default();
        let mut octets: u32 = 0;
        // Compound reports from phones are a few hundred bytes; a longer one is cut and read as far as it goes.
        let mut rtcp_buf = vec![0u8; 512];
        // Every 5 s (RFC 3550's minimum), jittered so that calls do not report in step.
        let mut rtcp_tick = tokio::time::interval_at(
            Instant::now() + Duration::from_millis(2500 + u64::from(fastrand::u16(..2500))),
            Duration::from_secs(5),
        );
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pcm = vec![0i16; frame_len(p.codec)];
        // Grown to what the codec needs (172 bytes for G.711), not to the largest packet.
        let (mut payload, mut packet, mut played) = (Vec::new(), Vec::new(), Vec::new());
        // One Ethernet MTU: RTP is not fragmented in practice.
        let mut buf = vec![0u8; 1500];
        let mut jitter = JitterBuffer::new();
        let mut dtmf_out: VecDeque<char> = VecDeque::new();
        let mut sending: Option<DtmfSender> = None;
        let mut dtmf_in = dtmf::Receiver::default();
        let mut latched = false;
        let mut last_rx = Instant::now();
        let mut timed_out = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let can_send = p.send && p.remote.port() != 0 && !p.remote.ip().is_unspecified();
                    let step = rtp_clock(p.codec) / 50;
                    dtmf_out.extend(dtmf_queue.lock().unwrap_or_else(|e| e.into_inner()).drain(..));
                    if sending.is_none() && let Some(d) = dtmf_out.pop_front() {
                        sending = DtmfSender::new(d, ts);
                    }
                    if let (Some(dt), Some(dpt)) = (sending.as_mut(), p.dtmf_pt) {
                        // A telephone event replaces audio while it lasts.
                        let (ev, done) = dt.next_packet();
                        if can_send {
                            RtpPacket { marker: dt.first(), pt: dpt, seq, timestamp: dt.timestamp(), ssrc, payload: &ev }.write(&mut packet);
                            if self.sock.send_to(&packet, p.remote).await.is_ok() {
                                octets = octets.wrapping_add(packet.len().saturating_sub(12) as u32);
                                self.stats.sent += 1;
                                self.live.sent.store(self.stats.sent, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        seq = seq.wrapping_add(1);
                        if done {
                            sending = None;
                        }
                    } else if can_send {
                        if p.muted {
                            pcm.fill(0);
                        } else {
                            source.fill(&mut pcm);
                        }
                        codec.encode(&pcm, &mut payload);
                        if !payload.is_empty() {
                            RtpPacket { marker: self.stats.sent == 0, pt: p.pt, seq, timestamp: ts, ssrc, payload: &payload }.write(&mut packet);
                            if self.sock.send_to(&packet, p.remote).await.is_ok() {
                                octets = octets.wrapping_add(packet.len().saturating_sub(12) as u32);
                                self.stats.sent += 1;
                                self.live.sent.store(self.stats.sent, std::sync::atomic::Ordering::Relaxed);
                            }
                            seq = seq.wrapping_add(1);
                        }
                    }
                    if sending.is_none() && p.dtmf_pt.is_none() {
                        // Without telephone-event, digits cannot be sent; say so once each.
                        for d in dtmf_out.drain(..) {
                            tracing::warn!("cannot send DTMF {d}: the far side does not take telephone-event");
                        }
                    }
                    ts = ts.wrapping_add(step);
                    played.clear();
                    match jitter.pop() {
                        Playout::Frame(f) => codec.decode(&f, &mut played),
                        Playout::Lost { next } => codec.conceal(next.as_deref(), &mut played),
                        // Nothing to play: silence, so that a recording keeps real time.
                        Playout::Empty => played.resize(pcm.len(), 0),
                    }
                    if p.receive && let Some(out) = &mut playback {
                        upsampled.resize(played.len() * device::DEVICE_RATE as usize / sample_rate(p.codec) as usize, 0);
                        device::convert_into(&played, &mut upsampled);
                        for s in &upsampled {
                            // Full: the device is not draining; drop rather than wait.
                            let _ = out.push(*s);
                        }
                    }
                    if !played.is_empty() && p.receive && let Some(s) = &mut sink && let Err(e) = s.writer.write(&played) {
                        tracing::warn!("recording to {} failed: {e}", s.path.display());
                        sink = None;
                    }
                    if let Some(limit) = self.timeout && p.receive && !timed_out && last_rx.elapsed() >= limit {
                        timed_out = true;
                        let _ = self.events.try_send(MediaEvent::Timeout(limit));
                    }
                }
                r = self.sock.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let pkt = match RtpPacket::parse(&buf[..n]) {
                        Ok(pkt) => pkt,
                        Err(e) => {
                            self.stats.malformed += 1;
                            if self.stats.malformed == 1 {
                                tracing::info!("dropping malformed RTP from {from}: {e}");
                            }
                            continue;
                        }
                    };
                    if Some(pkt.pt) == p.dtmf_pt {
                        last_rx = Instant::now();
                        if let Some(d) = dtmf_in.packet(pkt.timestamp, pkt.payload) {
                            let _ = self.events.try_send(MediaEvent::Dtmf(d));
                        }
                        continue;
                    }
                    if pkt.pt != p.pt {
                        self.stats.other_payload += 1;
                        continue;
                    }
                    self.stats.received += 1;
                    self.live.received.store(self.stats.received, std::sync::atomic::Ordering::Relaxed);
                    let clock = u64::from(rtp_clock(p.codec));
                    let arrival = (started.elapsed().as_micros() as u64 * clock / 1_000_000) as u32;
                    reception.packet(pkt.ssrc, pkt.seq, pkt.timestamp, arrival);
                    last_rx = Instant::now();
                    timed_out = false;
                    // Symmetric RTP (RFC 4961): answer where the media really comes from.
                    if !latched && from != p.remote {
                        tracing::debug!("RTP from {from}, not the signalled {}; following it", p.remote);
                        p.remote = from;
                    }
                    latched = true;
                    jitter.push(pkt.seq, pkt.payload);
                }
                _ = rtcp_tick.tick(), if rtcp_sock.is_some() => {
                    let Some(rs) = &rtcp_sock else { continue };
                    let sender = (self.stats.sent > 0).then(|| SenderInfo {
                        ntp: ntp_now(),
                        rtp_timestamp: ts,
                        packets: self.stats.sent as u32,
                        octets,
                    });
                    let report = rtcp::compound(ssrc, sender, reception.report(), "voipd");
                    let to = SocketAddr::new(p.remote.ip(), p.remote.port().wrapping_add(1));
                    if p.remote.port() != 0 {
                        let _ = rs.send_to(&report, to).await;
                    }
                }
                r = recv_opt(rtcp_sock.as_ref(), &mut rtcp_buf) => {
                    let Ok((n, _)) = r else { continue };
                    let clock = rtp_clock(p.codec).max(1);
                    for b in rtcp::reports_about(&rtcp_buf[..n], ssrc) {
                        self.stats.rtcp_reports += 1;
                        self.stats.remote_lost = b.cumulative_lost;
                        self.stats.remote_jitter_ms = (u64::from(b.jitter) * 1000 / u64::from(clock)) as u32;
                    }
                }
                changed = params.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let next = params.borrow_and_update().clone();
                    latched = latched && next.remote == p.remote;
                    last_rx = Instant::now();
                    if next.codec != p.codec {
                        // A re-INVITE moved to another codec: new state at its rate. (A
                        // recording keeps the rate it started with.)
                        match Transcoder::new(next.codec, next.fec, next.dtx) {
                            Ok(c) => {
                                codec = c;
                                pcm = vec![0; frame_len(next.codec)];
                                source = Source::open(&self.input, sample_rate(next.codec));
                                jitter = JitterBuffer::new();
                            }
                            Err(e) => tracing::warn!("{e}; keeping the old codec"),
                        }
                    }
                    p = next;
                }
            }
        }
        self.stats.lost = jitter.lost;
        self.stats.jitter_ms =
            (u64::from(reception.jitter()) * 1000 / u64::from(rtp_clock(p.codec).max(1))) as u32;
        self.stats.late = jitter.late;
        if let Some(s) = sink
            && let Err(e) = s.writer.finish(s.rate)
        {
            tracing::warn!("finishing recording {}: {e}", s.path.display());
        }
        self.stats
    }
}

/// Receives on an optional socket; never resolves without one.
async fn recv_opt(
    sock: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
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
