use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::framing::{Frame, Framer};
use super::{
    CONNECT_TIMEOUT, Conn, IDLE_TIMEOUT, MAX_CONNECTIONS, Proto, Shared, Target, TransportError,
    accept, lock,
};

/// Bytes queued for one connection before senders wait.
const WRITE_QUEUE: usize = 64;

pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: wait a moment rather than spin.
                tracing::warn!("tcp accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if lock(&shared.conns).len() >= MAX_CONNECTIONS {
            tracing::warn!(
                "refusing tcp connection from {peer}: {MAX_CONNECTIONS} connections open"
            );
            continue;
        }
        register(&shared, stream, peer);
    }
}

/// Starts reader and writer for a connection and makes it available for sending.
fn register(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) -> mpsc::Sender<Vec<u8>> {
    let _ = stream.set_nodelay(true);
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    lock(&shared.conns).insert(peer, Conn { tx: tx.clone() });
    tokio::spawn(run(stream, peer, rx, tx.clone(), shared.clone()));
    tx
}

async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
    tx: mpsc::Sender<Vec<u8>>,
    shared: Arc<Shared>,
) {
    let target = Target {
        proto: Proto::Tcp,
        addr: peer,
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut framer = Framer::default();
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match tokio::time::timeout(IDLE_TIMEOUT, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!("tcp {peer}: {e}");
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
                    if let Some(answer) = accept(&shared, &m, target) {
                        let _ = tx.send(answer).await;
                    }
                }
                Err(e) => {
                    tracing::warn!("closing tcp connection from {peer}: {e}");
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
    {
        let mut conns = lock(&shared.conns);
        // Only our own entry: a newer connection to the same peer may have replaced it.
        if conns.get(&peer).is_some_and(|c| c.tx.same_channel(&tx)) {
            conns.remove(&peer);
        }
    }
    drop(tx);
    writer.abort();
    let _ = shared.closed.send(target);
}

pub(super) async fn send(
    shared: &Arc<Shared>,
    target: Target,
    bytes: Vec<u8>,
) -> Result<(), TransportError> {
    let existing = lock(&shared.conns).get(&target.addr).map(|c| c.tx.clone());
    let tx = match existing {
        Some(tx) => tx,
        None => {
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
            register(shared, stream, target.addr)
        }
    };
    tx.send(bytes)
        .await
        .map_err(|_| TransportError::Closed(target))
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
