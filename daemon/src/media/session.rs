//! One call's media: a task that every 20 ms sends a frame from its source and writes
//! what arrives to its sink. Symmetric RTP: it sends from the port it receives on, and
//! follows the far side to the address its packets really come from.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::g711;
use super::rtp::RtpPacket;
use super::tone::Tone;
use super::wav::{self, WavWriter};
use crate::config::{AudioEndpoint, Codec};

const RATE: u32 = 8000;
const FRAME: usize = 160; // 20 ms at 8 kHz

/// What SDP negotiated, as the media layer needs it. May change mid-call (hold, re-INVITE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaParams {
    pub codec: Codec,
    pub pt: u8,
    pub remote: SocketAddr,
    pub send: bool,
    pub receive: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    pub sent: u64,
    pub received: u64,
    pub malformed: u64,
    pub other_payload: u64,
}

enum Source {
    Silence,
    Tone(Tone),
    File { samples: Vec<i16>, pos: usize },
}

impl Source {
    fn open(ep: &AudioEndpoint) -> Source {
        match ep {
            AudioEndpoint::Tone(f) => Source::Tone(Tone::new(*f, RATE)),
            AudioEndpoint::File(p) => match wav::read(p) {
                Ok((samples, rate)) if !samples.is_empty() => Source::File {
                    samples: resample(&samples, rate),
                    pos: 0,
                },
                Ok(_) => Source::Silence,
                Err(e) => {
                    tracing::warn!("audio input {e}; sending silence");
                    Source::Silence
                }
            },
            // Sound devices come with the audio I/O layer; until then they are silent.
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
            Source::File { samples, pos } => {
                for s in out {
                    *s = samples[*pos];
                    *pos = (*pos + 1) % samples.len();
                }
            }
        }
    }
}

/// Nearest-sample conversion to 8 kHz; good enough for prompts and test tones.
fn resample(samples: &[i16], rate: u32) -> Vec<i16> {
    if rate == RATE || rate == 0 {
        return samples.to_vec();
    }
    let n = (samples.len() as u64 * u64::from(RATE) / u64::from(rate)) as usize;
    (0..n)
        .map(|i| {
            samples
                [((i as u64 * u64::from(rate) / u64::from(RATE)) as usize).min(samples.len() - 1)]
        })
        .collect()
}

fn open_sink(ep: &AudioEndpoint) -> Option<(WavWriter, PathBuf)> {
    let AudioEndpoint::File(p) = ep else {
        return None;
    };
    match WavWriter::create(p, RATE) {
        Ok(w) => Some((w, p.clone())),
        Err(e) => {
            tracing::warn!(
                "cannot record to {}: {e}; received audio is dropped",
                p.display()
            );
            None
        }
    }
}

/// A UDP socket for RTP on `ip`, any free port.
pub async fn bind(ip: IpAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(SocketAddr::new(ip, 0)).await
}

/// The running session. Dropping it stops the task.
pub struct MediaSession {
    params: watch::Sender<MediaParams>,
    task: tokio::task::JoinHandle<MediaStats>,
}

impl MediaSession {
    pub fn start(
        sock: UdpSocket,
        params: MediaParams,
        input: &AudioEndpoint,
        output: &AudioEndpoint,
    ) -> MediaSession {
        let (tx, rx) = watch::channel(params);
        let task = tokio::spawn(run(
            Arc::new(sock),
            rx,
            Source::open(input),
            open_sink(output),
        ));
        MediaSession { params: tx, task }
    }

    pub fn update(&self, params: MediaParams) {
        let _ = self.params.send(params);
    }

    /// Stops and returns what was counted.
    pub async fn stop(self) -> MediaStats {
        drop(self.params);
        self.task.await.unwrap_or_default()
    }
}

async fn run(
    sock: Arc<UdpSocket>,
    mut params: watch::Receiver<MediaParams>,
    mut source: Source,
    mut sink: Option<(WavWriter, PathBuf)>,
) -> MediaStats {
    let mut stats = MediaStats::default();
    let mut p = params.borrow_and_update().clone();
    let ssrc = fastrand::u32(..);
    let (mut seq, mut ts) = (fastrand::u16(..), fastrand::u32(..));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut pcm, mut payload, mut packet) = ([0i16; FRAME], [0u8; FRAME], Vec::with_capacity(200));
    let mut decoded = Vec::with_capacity(FRAME);
    let mut buf = vec![0u8; 2048];
    let mut latched = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if p.send && p.remote.port() != 0 && !p.remote.ip().is_unspecified() {
                    source.fill(&mut pcm);
                    for (o, s) in payload.iter_mut().zip(pcm.iter()) {
                        *o = match p.codec {
                            Codec::Pcma => g711::alaw_encode(*s),
                            _ => g711::ulaw_encode(*s),
                        };
                    }
                    RtpPacket { marker: stats.sent == 0, pt: p.pt, seq, timestamp: ts, ssrc, payload: &payload }.write(&mut packet);
                    if sock.send_to(&packet, p.remote).await.is_ok() {
                        stats.sent += 1;
                    }
                }
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(FRAME as u32);
            }
            r = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let pkt = match RtpPacket::parse(&buf[..n]) {
                    Ok(pkt) => pkt,
                    Err(e) => {
                        stats.malformed += 1;
                        if stats.malformed == 1 {
                            tracing::info!("dropping malformed RTP from {from}: {e}");
                        }
                        continue;
                    }
                };
                if pkt.pt != p.pt {
                    stats.other_payload += 1;
                    continue;
                }
                stats.received += 1;
                // Symmetric RTP (RFC 4961): answer where the media really comes from.
                if !latched && from != p.remote {
                    tracing::debug!("RTP from {from}, not the signalled {}; following it", p.remote);
                    p.remote = from;
                }
                latched = true;
                if !p.receive {
                    continue;
                }
                decoded.clear();
                decoded.extend(pkt.payload.iter().map(|b| match p.codec {
                    Codec::Pcma => g711::alaw_decode(*b),
                    _ => g711::ulaw_decode(*b),
                }));
                if let Some((w, path)) = &mut sink
                    && let Err(e) = w.write(&decoded)
                {
                    tracing::warn!("recording to {} failed: {e}", path.display());
                    sink = None;
                }
            }
            changed = params.changed() => {
                if changed.is_err() {
                    break;
                }
                let next = params.borrow_and_update().clone();
                latched = latched && next.remote == p.remote;
                p = next;
            }
        }
    }
    if let Some((w, path)) = sink
        && let Err(e) = w.finish(RATE)
    {
        tracing::warn!("finishing recording {}: {e}", path.display());
    }
    stats
}
