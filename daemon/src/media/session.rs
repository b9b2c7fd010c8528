//! One call's media: what SDP negotiated for each stream, and the call's handle on its
//! streams (`stream.rs`), which the engine (`engine.rs`) runs on shared ticks.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::codec::Codec;
use super::dtls::DtlsParams;
use super::dtmf::{self, DtmfSettings};
use super::engine::MediaEngine;
use super::ice::Ice;
use super::record::Prompt;
use super::srtp::SrtpKeys;
use super::stream::Setup;
use super::stun::MappingWatch;
use super::udp;
use super::video_stream::{VideoParams, VideoSettings, VideoSetup, VideoStats};
use crate::config::AudioEndpoint;

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
    /// SRTP keys, when the stream is encrypted with SDES.
    pub srtp: Option<SrtpKeys>,
    /// The DTLS handshake's parameters, when the stream is keyed by DTLS-SRTP.
    pub dtls: Option<DtlsParams>,
    /// RTCP on the RTP port (RFC 5761). Once on, it stays: the RTCP port is closed.
    pub rtcp_mux: bool,
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
    /// SRTP and SRTCP packets that failed authentication (or were too short to be SRTP),
    /// and replays: dropped, never decoded.
    pub auth_failed: u64,
    pub replayed: u64,
}

/// Packet counts readable while the call runs.
#[derive(Debug, Default)]
pub struct LiveStats {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub auth_failed: AtomicU64,
    pub replayed: AtomicU64,
    /// The call's video, when it has some.
    pub video: super::video_stream::VideoLive,
}

impl LiveStats {
    /// Copies the counts into `stats`.
    pub fn read_into(&self, stats: &mut MediaStats) {
        use std::sync::atomic::Ordering::Relaxed;
        stats.sent = self.sent.load(Relaxed);
        stats.received = self.received.load(Relaxed);
        stats.auth_failed = self.auth_failed.load(Relaxed);
        stats.replayed = self.replayed.load(Relaxed);
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
    /// The stream's keys could not be agreed (a DTLS handshake failed, or the far side's
    /// certificate is not the one signalled): no audio goes either way.
    EncryptionFailed(String),
    /// The NAT in front of us moved the stream's port to this public address: the far
    /// side is to be told, or its media goes where nobody listens.
    Mapped(SocketAddr),
    /// ICE nominated this pair for RTP, this long after its checks began.
    IceSelected(crate::media::ice::Selected, Duration),
    /// Writing the call's recording failed (why): it is closed with what it had.
    RecordingFailed(String),
    /// ICE found no working pair for this component (1: RTP, 2: RTCP).
    IceFailed(usize),
    /// The far end of this component's pair stopped consenting (RFC 7675): nothing more
    /// is sent to it.
    ConsentLost(usize),
}

/// RTCP's socket for the RTP socket `rtp`: the next port (RFC 3550 §11), when that is
/// free; None leaves the call without RTCP, which it survives.
pub fn bind_rtcp(rtp: &UdpSocket) -> Option<UdpSocket> {
    match rtp.local_addr() {
        Ok(a) if a.port() % 2 == 0 => UdpSocket::bind(SocketAddr::new(a.ip(), a.port() + 1))
            .ok()
            .filter(|s| s.set_nonblocking(true).is_ok()),
        _ => None,
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

/// What the call asks of its running audio stream, each part taken by the stream at its
/// next tick. The engine looks every 20 ms anyway, so plain slots do, and in one
/// allocation per call: channels and a slot each were a kilobyte more. (The large rare
/// ones are boxed.)
#[derive(Default)]
pub(super) struct Controls {
    /// What the latest offer or answer says.
    pub(super) params: Mutex<Option<MediaParams>>,
    /// Digits waiting to be sent.
    pub(super) dtmf: Mutex<VecDeque<char>>,
    /// Audio to play into the call instead of its input (None: stop playing).
    pub(super) play: Mutex<Option<Option<Prompt>>>,
    /// A recording to start in place of the one running (None: stop).
    pub(super) record: Mutex<Option<Option<Box<super::recording::CallRecording>>>>,
    /// A conference to join in place of the one joined (None: leave).
    pub(super) conf: Mutex<Option<Option<Box<super::mixer::ConfLeg>>>>,
    /// The call-waiting tone is wanted in the output.
    pub(super) waiting: AtomicBool,
}

/// Locks a control, also after a panic elsewhere (its value is still whole).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running stream's handle. Dropping it ends the stream at the engine's next tick (the
/// stream then holds the only reference to the controls).
struct StreamHandle {
    controls: Arc<Controls>,
    done: oneshot::Receiver<MediaStats>,
}

/// A call's media: its streams, keyed by their SDP `mid` (audio now; video will be one
/// more), each run by the engine on its shared ticks.
pub struct MediaSession {
    // A list, not a map: a call has one or two streams, and a map's first node is a
    // kilobyte per call.
    streams: Vec<(String, StreamHandle)>,
    video: Option<VideoHandle>,
}

/// A video stream's sockets before it starts, with what was learnt of the NAT in front of
/// them: STUN's mapping to keep open, ICE's agent (given the far side's candidates).
pub struct VideoPorts {
    pub rtp: UdpSocket,
    pub rtcp: Option<UdpSocket>,
    pub mapping: Option<MappingWatch>,
    pub ice: Option<Box<Ice>>,
}

/// A running video stream's handle; dropping it ends the stream.
struct VideoHandle {
    mid: String,
    params: watch::Sender<VideoParams>,
    done: oneshot::Receiver<VideoStats>,
}

pub struct MediaOptions<'a> {
    pub input: &'a AudioEndpoint,
    pub output: &'a AudioEndpoint,
    pub dtmf: DtmfSettings,
    /// No RTP for this long (while receiving is expected) is reported; None: never.
    pub timeout: Option<Duration>,
    pub events: flume::Sender<MediaEvent>,
    pub live: std::sync::Arc<LiveStats>,
    /// The NAT mapping of the stream's port to keep open and watch (STUN).
    pub mapping: Option<MappingWatch>,
    /// The RTCP port ([`bind_rtcp`]), if it has one of its own.
    pub rtcp: Option<UdpSocket>,
    /// ICE's agent, with the far side's candidates: it chooses the path.
    pub ice: Option<Box<Ice>>,
}

impl MediaSession {
    /// A session with one audio stream, `mid`, on `sock`.
    pub fn start(
        engine: &MediaEngine,
        mid: &str,
        sock: UdpSocket,
        params: MediaParams,
        opts: MediaOptions<'_>,
    ) -> MediaSession {
        let controls = Arc::new(Controls::default());
        let (done_tx, done) = oneshot::channel();
        let setup = Setup {
            sock,
            input: opts.input.clone(),
            output: opts.output.clone(),
            timeout: opts.timeout,
            events: opts.events,
            live: opts.live,
            mapping: opts.mapping,
            rtcp: opts.rtcp,
            ice: opts.ice,
            params,
            controls: controls.clone(),
            dtmf_settings: opts.dtmf,
            done: done_tx,
        };
        let engine = engine.clone();
        // Opening a sound device blocks; the engine's ticks must not wait for it.
        tokio::spawn(async move {
            if let Some(stream) = setup.open().await {
                engine
                    .add(super::engine::Added::Audio(Box::new(stream)))
                    .await;
            }
        });
        let handle = StreamHandle { controls, done };
        MediaSession {
            streams: vec![(mid.to_string(), handle)],
            video: None,
        }
    }

    /// Starts the call's video stream `mid` on `ports`, in place of the one running, if
    /// any. Err: why it could not start (its source, its keys).
    pub fn start_video(
        &mut self,
        engine: &MediaEngine,
        mid: &str,
        ports: VideoPorts,
        params: VideoParams,
        settings: VideoSettings,
        live: std::sync::Arc<LiveStats>,
    ) -> Result<(), String> {
        let VideoPorts {
            rtp: sock,
            rtcp,
            mapping,
            ice,
        } = ports;
        let (tx, rx) = watch::channel(params);
        let (done_tx, done) = oneshot::channel();
        let stream = VideoSetup {
            sock,
            rtcp,
            params: rx,
            settings,
            live,
            done: done_tx,
            mapping,
            ice,
        }
        .open()?;
        self.video = Some(VideoHandle {
            mid: mid.to_string(),
            params: tx,
            done,
        });
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .add(super::engine::Added::Video(Box::new(stream)))
                .await;
        });
        Ok(())
    }

    /// What a new offer or answer says for the video stream.
    pub fn update_video(&self, params: VideoParams) {
        if let Some(v) = &self.video {
            let _ = v.params.send(params);
        }
    }

    /// The running video stream's mid, if one runs.
    pub fn video_mid(&self) -> Option<&str> {
        self.video.as_ref().map(|v| v.mid.as_str())
    }

    /// Ends the video stream (the audio goes on); its figures.
    pub async fn stop_video(&mut self) -> Option<VideoStats> {
        let v = self.video.take()?;
        drop(v.params);
        v.done.await.ok()
    }

    /// What a new offer or answer says for stream `mid`.
    pub fn update(&self, mid: &str, params: MediaParams) {
        // A far side may renumber its only stream (a new mid, or none where there was
        // one): with one stream, that one is meant.
        let stream = match self.streams.iter().find(|(m, _)| m == mid) {
            Some((_, s)) => Some(s),
            None if self.streams.len() == 1 => self.streams.first().map(|(_, s)| s),
            None => None,
        };
        match stream {
            Some(s) => *lock(&s.controls.params) = Some(params),
            None => tracing::warn!("no media stream {mid:?} to update"),
        }
    }

    /// Queues digits to send as RFC 4733 events on the audio streams.
    pub fn send_dtmf(&self, digits: &str) {
        for (_, s) in &self.streams {
            lock(&s.controls.dtmf)
                .extend(digits.chars().filter(|c| dtmf::event_code(*c).is_some()));
        }
    }

    /// Plays `prompt` into the audio streams once, in place of their input (None: stops
    /// what is playing).
    pub fn play(&self, prompt: Option<Prompt>) {
        for (_, s) in &self.streams {
            *lock(&s.controls.play) = Some(prompt.clone());
        }
    }

    /// Records the call's audio into `r` from the next frame on, in place of what records
    /// now (None: stops; the file is closed off the tick).
    pub fn record(&self, r: Option<super::recording::CallRecording>) {
        if let Some((_, s)) = self.streams.first() {
            *lock(&s.controls.record) = Some(r.map(Box::new));
        }
    }

    /// Plays the call-waiting tone into the call's output, or stops it.
    pub fn waiting_tone(&self, on: bool) {
        if let Some((_, s)) = self.streams.first() {
            s.controls.waiting.store(on, Ordering::Relaxed);
        }
    }

    /// Mixes the call into a conference (None: takes it out).
    pub fn conference(&self, leg: Option<super::mixer::ConfLeg>) {
        if let Some((_, s)) = self.streams.first() {
            *lock(&s.controls.conf) = Some(leg.map(Box::new));
        }
    }

    /// Stops every stream and returns what was counted, summed over them.
    pub async fn stop(mut self) -> MediaStats {
        self.stop_video().await;
        let mut total = MediaStats::default();
        for (_, StreamHandle { controls, done }) in self.streams {
            drop(controls);
            total.add(&done.await.unwrap_or_default());
        }
        total
    }
}

impl MediaStats {
    /// Adds another stream's counts; the figures that describe one stream (jitter, what
    /// the far side reported) are the larger of the two.
    fn add(&mut self, o: &MediaStats) {
        self.sent += o.sent;
        self.received += o.received;
        self.malformed += o.malformed;
        self.other_payload += o.other_payload;
        self.foreign += o.foreign;
        self.lost += o.lost;
        self.late += o.late;
        self.rtcp_reports += o.rtcp_reports;
        self.auth_failed += o.auth_failed;
        self.replayed += o.replayed;
        self.jitter_ms = self.jitter_ms.max(o.jitter_ms);
        self.remote_lost = self.remote_lost.max(o.remote_lost);
        self.remote_jitter_ms = self.remote_jitter_ms.max(o.remote_jitter_ms);
    }
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
}
