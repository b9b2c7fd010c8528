//! The media engine: every call's RTP is driven by a few shared 20 ms ticks (one shard per
//! core) rather than a timer and a wakeup per call per packet. At each tick a shard reads
//! what arrived on each of its calls' sockets, then sends and plays one frame for each.
//! A call costs its work and its syscalls, and nothing when the engine is idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::stream::Stream;
use super::udp::RecvBuf;
use super::video_stream::VideoStream;

/// A stream handed to a shard: a call's audio, or its video.
pub(super) enum Added {
    Audio(Box<Stream>),
    Video(Box<VideoStream>),
}

/// Cheap to clone; the shards stop when the last clone is gone and their calls have ended.
#[derive(Clone)]
pub struct MediaEngine {
    shards: Arc<[mpsc::Sender<Added>]>,
    next: Arc<AtomicUsize>,
}

/// More shards than cores would only take turns; more than a few buys nothing at 20 ms.
const MAX_SHARDS: usize = 4;
const FRAME: Duration = Duration::from_millis(20);

impl MediaEngine {
    /// Starts the shards on the current tokio runtime.
    pub fn start() -> MediaEngine {
        let n = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_SHARDS);
        let shards = (0..n)
            .map(|_| {
                // New calls arrive one per call setup; a short queue is plenty.
                let (tx, rx) = mpsc::channel(64);
                tokio::spawn(shard(rx));
                tx
            })
            .collect();
        MediaEngine {
            shards,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Hands a call's stream to a shard, round robin.
    pub(super) async fn add(&self, stream: Added) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        // A shard is gone only when the runtime shuts down; the stream is dropped with it.
        let _ = self.shards[i].send(stream).await;
    }
}

async fn shard(mut adds: mpsc::Receiver<Added>) {
    // Boxed: a stream is 2 kB, and a vector of them grows to twice what it holds.
    let mut streams: Vec<Box<Stream>> = Vec::new();
    let mut videos: Vec<Box<VideoStream>> = Vec::new();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut open = true;
    while open || !streams.is_empty() || !videos.is_empty() {
        let busy = !streams.is_empty() || !videos.is_empty();
        tokio::select! {
            s = adds.recv(), if open => match s {
                Some(s) => {
                    if !busy {
                        // Idle until now: start the beat from here, not from long ago.
                        tick.reset_immediately();
                    }
                    match s {
                        Added::Audio(s) => streams.push(s),
                        Added::Video(v) => videos.push(v),
                    }
                }
                None => open = false,
            },
            _ = tick.tick(), if busy => {
                let now = Instant::now();
                let mut buf = RecvBuf::default();
                tick_all(&mut streams, now, &mut buf, "media");
                tick_all(&mut videos, now, &mut buf, "video");
            }
        }
    }
}

/// What a shard runs: one step per tick (false: over), then its end off the tick.
trait Ticked {
    fn tick(&mut self, now: Instant, rx: &mut RecvBuf) -> bool;
    fn finish(self);
}

impl Ticked for Box<Stream> {
    fn tick(&mut self, now: Instant, rx: &mut RecvBuf) -> bool {
        Stream::tick(self, now, rx)
    }
    fn finish(self) {
        Stream::finish(*self)
    }
}

impl Ticked for Box<VideoStream> {
    fn tick(&mut self, now: Instant, rx: &mut RecvBuf) -> bool {
        VideoStream::tick(self, now, rx)
    }
    fn finish(self) {
        VideoStream::finish(*self)
    }
}

/// One tick of each stream of a kind; those that are over are finished and dropped.
fn tick_all<T: Ticked>(streams: &mut Vec<T>, now: Instant, buf: &mut RecvBuf, kind: &str) {
    let mut i = 0;
    while i < streams.len() {
        buf.next_stream();
        // A bug in one stream (or in a parser under it) must not take the shard's other
        // calls with it.
        let ticked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| streams[i].tick(now, buf)));
        match ticked {
            Ok(true) => i += 1,
            Ok(false) => streams.swap_remove(i).finish(),
            Err(_) => {
                tracing::error!(
                    "a {kind} stream failed (a bug in voipd); its call goes on without it"
                );
                drop(streams.swap_remove(i));
            }
        }
    }
}
