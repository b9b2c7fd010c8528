//! SIP over connections (RFC 3261 §18.3): TCP, and TLS on top of it. One reader and one
//! writer per connection; the table in conns.rs decides which connections may stay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::conns::{Activity, Refusal};
use super::framing::{Frame, Framer};
use super::{CONNECT_TIMEOUT, IDLE_TIMEOUT, Proto, Shared, Target, TransportError, accept, lock};

/// Bytes queued for one connection before senders wait.
const WRITE_QUEUE: usize = 64;
/// A connection none of whose requests was taken in this long after it opened is closed:
/// an honest client sends its request at once.
const UNPROVEN_TIMEOUT: Duration = Duration::from_secs(20);
/// Backoff after a failed accept (out of file descriptors, say): from the first to the
/// longest wait.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));
/// At most one log line this often for refused connections and failed accepts.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// A TLS handshake from a client must be done in this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections for `proto` (TCP, or TLS with the transport's certificate).
pub(super) async fn accept_loop(listener: TcpListener, proto: Proto, shared: Arc<Shared>) {
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut failures = Throttled::default();
    let mut refusals = Throttled::default();
    // Shared with the handshakes, each a task of its own so that a slow one holds no one up.
    let handshake_failures = Arc::new(std::sync::Mutex::new(Throttled::default()));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => {
                backoff = ACCEPT_BACKOFF.0;
                crate::memory::busy();
                s
            }
            Err(e) => {
                // EMFILE and friends: the connection stays queued and accept would fail
                // again at once; wait rather than spin, and say so once a minute.
                failures.note(|n| {
                    tracing::warn!("{} accept failed {n} times lately: {e}", proto.param())
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let refused = lock(&shared.conns).make_room(peer);
        match refused {
            Ok(()) if proto == Proto::Tls => {
                let (shared, failures) = (shared.clone(), handshake_failures.clone());
                tokio::spawn(async move {
                    let Some(acceptor) = shared.tls.acceptor.clone() else {
                        return;
                    };
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            register(&shared, tls, peer, proto, true);
                        }
                        Ok(Err(e)) => lock(&failures).note(|n| {
                            tracing::warn!(
                                "TLS handshake from {peer} failed: {} ({n} failed lately)",
                                super::tls::describe(&e, &peer.ip().to_string())
                            )
                        }),
                        Err(_) => lock(&failures).note(|n| {
                            tracing::warn!(
                                "TLS handshake from {peer} timed out ({n} failed lately)"
                            )
                        }),
                    }
                });
            }
            Ok(()) => {
                register(&shared, stream, peer, proto, true);
            }
            Err(why) => {
                // Dropping the stream closes it.
                refusals.note(|n| {
                    let why = match why {
                        Refusal::PerSource(k) => format!("{k} open from {}", peer.ip()),
                        Refusal::Full(k) => format!("{k} open, none to close"),
                    };
                    tracing::warn!(
                        "refused {n} {} connections lately, the last from {peer}: {why}",
                        proto.param()
                    );
                });
            }
        }
    }
}

/// Counts events and logs the first, then at most one line a minute.
#[derive(Default)]
struct Throttled {
    count: u64,
    logged: Option<std::time::Instant>,
}

impl Throttled {
    fn note(&mut self, log: impl FnOnce(u64)) {
        self.count += 1;
        if self.logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            log(self.count);
            self.count = 0;
            self.logged = Some(std::time::Instant::now());
        }
    }
}

/// A connection's byte stream: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Send + 'static> Stream for S {}

/// Starts reader and writer for a connection and makes it available for sending.
fn register(
    shared: &Arc<Shared>,
    stream: impl Stream,
    peer: SocketAddr,
    proto: Proto,
    inbound: bool,
) -> mpsc::Sender<Vec<u8>> {
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let activity = lock(&shared.conns).insert(peer, tx.clone(), inbound, proto);
    let target = Target { proto, addr: peer };
    tokio::spawn(run(
        stream,
        target,
        rx,
        tx.clone(),
        activity,
        shared.clone(),
    ));
    tx
}

async fn run(
    stream: impl Stream,
    target: Target,
    mut rx: mpsc::Receiver<Vec<u8>>,
    tx: mpsc::Sender<Vec<u8>>,
    activity: Arc<Activity>,
    shared: Arc<Shared>,
) {
    let peer = target.addr;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut framer = Framer::default();
    let mut buf = vec![0u8; 16 * 1024];
    // Unproven, a connection has this long in all, however it trickles bytes in.
    let unproven_until = tokio::time::Instant::now() + UNPROVEN_TIMEOUT;
    'read: loop {
        let until = if activity.valid.load(Ordering::Relaxed) {
            tokio::time::Instant::now() + IDLE_TIMEOUT
        } else {
            unproven_until
        };
        let read = tokio::select! {
            r = tokio::time::timeout_at(until, rd.read(&mut buf)) => r,
            // Closed to make room for a newer connection.
            () = activity.close.notified() => break,
        };
        let n = match read {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!("{target}: {e}");
                break;
            }
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Ping)) => {
                    let _ = tx.send(b"\r\n".to_vec()).await;
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(Some(Frame::Message(m))) => {
                    let taken = accept(&shared, &m, target);
                    // Messages count as activity; pings and trickled bytes do not.
                    if taken.parsed {
                        activity.touch();
                    }
                    if let Some(answer) = taken.answer {
                        let _ = tx.send(answer).await;
                    }
                }
                Err(e) => {
                    tracing::warn!("closing the connection from {target}: {e}");
                    if let Some(left) = refuse_oversized(&framer, &shared, target, &tx).await {
                        // Read what is still coming before closing, so that closing does
                        // not reset the connection and take the answer with it.
                        drain(&mut rd, left, &mut buf).await;
                    }
                    break 'read;
                }
            }
        }
    }
    lock(&shared.conns).remove(&peer, Some(&activity));
    drop(tx);
    // What is queued (the 513 above, an answer just made) goes out before the connection
    // closes: aborting at once lost it when the writer had not run yet. A peer that
    // does not read is not waited for long.
    let stop = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        stop.abort();
    }
    let _ = shared.closed.send(target);
}

pub(super) async fn send(
    shared: &Arc<Shared>,
    target: Target,
    bytes: Vec<u8>,
) -> Result<(), TransportError> {
    // Only a connection of the target's kind: SIP meant for TLS never goes out in clear.
    let usable = |shared: &Shared| {
        lock(&shared.conns)
            .get(&target.addr)
            .filter(|c| c.proto == target.proto)
            .map(|c| c.tx.clone())
    };
    let existing = usable(shared);
    let tx = match existing {
        Some(tx) => tx,
        None => {
            // One connection attempt per peer at a time: the sends that raced it (many
            // accounts registering at once) wait and use what it made, rather than each
            // opening its own and closing the others' with their answers still to come.
            let gate = lock(&shared.connecting)
                .entry(target.addr)
                .or_default()
                .clone();
            let _turn = gate.lock().await;
            let made = usable(shared);
            let tx = match made {
                Some(tx) => Ok(tx),
                None => connect(shared, target).await,
            };
            let mut connecting = lock(&shared.connecting);
            // Ours was the last turn: the gate goes (a later failure makes a new one).
            if Arc::strong_count(&gate) <= 2 {
                connecting.remove(&target.addr);
            }
            drop(connecting);
            tx?
        }
    };
    tx.send(bytes)
        .await
        .map_err(|_| TransportError::Closed(target))
}

/// A new connection to `target` (TLS on TCP for a TLS target), in the table.
async fn connect(
    shared: &Arc<Shared>,
    target: Target,
) -> Result<mpsc::Sender<Vec<u8>>, TransportError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr))
        .await
        .map_err(|_| TransportError::Connect {
            addr: target.addr,
            source: std::io::ErrorKind::TimedOut.into(),
        })?
        .map_err(|source| TransportError::Connect {
            addr: target.addr,
            source,
        })?;
    let _ = stream.set_nodelay(true);
    Ok(match target.proto {
        Proto::Tls => {
            let tls = shared.tls.connect(stream, target).await?;
            register(shared, tls, target.addr, Proto::Tls, false)
        }
        _ => register(shared, stream, target.addr, Proto::Tcp, false),
    })
}

/// Above this a sender is not waited for: the connection is just closed.
const DRAIN_LIMIT: usize = 4 << 20;

/// Answers a request too large to take with 513 (RFC 3261 §21.5.14) when its head arrived
/// and names the dialog; returns how many of its bytes are still to come.
async fn refuse_oversized(
    framer: &Framer,
    shared: &Shared,
    target: Target,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Option<usize> {
    let (head, total) = framer.oversized()?;
    let left = total.saturating_sub(framer.buffered());
    if left > DRAIN_LIMIT {
        return None;
    }
    let mut e = match crate::sip::message::parse(head) {
        Err(e) => e,
        Ok(_) => return None,
    };
    e.kind = crate::sip::message::ParseErrorKind::TooLarge;
    let answer = e.response()?;
    shared.counters.malformed.fetch_add(1, Ordering::Relaxed);
    tracing::debug!("answered an oversized request from {target} with 513");
    tx.send(answer.encode()).await.ok()?;
    Some(left)
}

async fn drain(rd: &mut (impl AsyncReadExt + Unpin), mut left: usize, buf: &mut [u8]) {
    while left > 0 {
        match tokio::time::timeout(Duration::from_secs(5), rd.read(buf)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => return,
        }
    }
}
