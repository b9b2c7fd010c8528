use std::sync::Arc;

use tokio::sync::Notify;

use super::{Endpoint, ServerKey};
use crate::sip::message::{Method, Request, Response};
use crate::sip::transport::{Target, lock};

/// A server transaction's remembered state.
pub(super) struct Entry {
    target: Target,
    /// The last response sent, for retransmitted requests.
    last: Option<Vec<u8>>,
    last_code: u16,
    acked: bool,
    cancelled: Arc<Notify>,
}

/// Answers one request. Responses go where RFC 3261 §18.2.2 says; retransmissions of the
/// request are absorbed by the layer below.
#[derive(Debug)]
pub struct ServerTx {
    ep: Endpoint,
    key: Option<ServerKey>,
    target: Target,
    cancelled: Arc<Notify>,
}

impl ServerTx {
    /// For requests outside any transaction (an ACK for a 2xx).
    pub(super) fn detached(ep: Endpoint, target: Target) -> ServerTx {
        ServerTx {
            ep,
            key: None,
            target,
            cancelled: Arc::new(Notify::new()),
        }
    }

    /// Resolves when a CANCEL for this INVITE arrives (it has been answered 200 already).
    pub async fn cancelled(&self) {
        self.cancelled.notified().await;
    }

    pub async fn respond(&self, resp: Response) {
        let bytes = resp.encode();
        if let Err(e) = self.ep.transport().send(self.target, bytes.clone()).await {
            tracing::debug!("cannot send {} to {}: {e}", resp.code, self.target);
        }
        let Some(key) = &self.key else { return };
        let code = resp.code;
        {
            let mut servers = lock(&self.ep.inner.servers);
            let Some(e) = servers.get_mut(key) else {
                return;
            };
            e.last = Some(bytes.clone());
            e.last_code = code;
            if code < 200 {
                return;
            }
            // RFC 6026 Accepted: the dialog retransmits the 2xx; the transaction stays for
            // 64·T1 only to absorb copies of the INVITE, which would otherwise be new
            // calls. Forgotten with the completed non-INVITE ones (the same 64·T1).
            if key.2 == Method::Invite && code < 300 {
                e.last = None;
                let _ = self.ep.inner.reaper.send((
                    tokio::time::Instant::now() + 64 * self.ep.timers().t1,
                    key.clone(),
                ));
                return;
            }
        }
        let (ep, key, target) = (self.ep.clone(), key.clone(), self.target);
        let t = ep.timers();
        let reliable = target.proto.reliable();
        if key.2 != Method::Invite {
            // Timer J (RFC 3261 §17.2.2): kept to answer a retransmitted request over UDP;
            // over a reliable transport there is none to answer.
            if reliable {
                lock(&ep.inner.servers).remove(&key);
            } else {
                let _ = ep
                    .inner
                    .reaper
                    .send((tokio::time::Instant::now() + 64 * t.t1, key));
            }
            return;
        }
        tokio::spawn(async move {
            // Timer G retransmits until the ACK; Timer H gives up on it.
            let until = tokio::time::Instant::now() + 64 * t.t1;
            let mut g = t.t1;
            while tokio::time::Instant::now() < until {
                tokio::time::sleep(g.min(until - tokio::time::Instant::now())).await;
                let acked = lock(&ep.inner.servers).get(&key).is_none_or(|e| e.acked);
                if acked {
                    return;
                }
                if !reliable {
                    let _ = ep.transport().send(target, bytes.clone()).await;
                    g = (g * 2).min(t.t2);
                }
            }
            lock(&ep.inner.servers).remove(&key);
        });
    }
}

/// Forgets completed non-INVITE server transactions as their Timer J fires.
pub(super) async fn reap(
    inner: std::sync::Weak<super::Inner>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<(tokio::time::Instant, ServerKey)>,
) {
    while let Some((at, key)) = queue.recv().await {
        tokio::time::sleep_until(at).await;
        let Some(inner) = inner.upgrade() else { return };
        lock(&inner.servers).remove(&key);
    }
}

/// A request the layer above let go without a final answer (a task that ended, a queue
/// that was full) leaves no entry behind: kept, it would swallow every retransmission
/// unanswered and never be forgotten. Without it a retransmission is new again.
impl Drop for ServerTx {
    fn drop(&mut self) {
        let Some(key) = &self.key else { return };
        let mut servers = lock(&self.ep.inner.servers);
        if servers.get(key).is_some_and(|e| e.last_code < 200) {
            servers.remove(key);
        }
    }
}

pub(super) async fn create(
    ep: &Endpoint,
    key: ServerKey,
    req: &Request,
    target: Target,
) -> ServerTx {
    let cancelled = Arc::new(Notify::new());
    lock(&ep.inner.servers).insert(
        key.clone(),
        Entry {
            target,
            last: None,
            last_code: 0,
            acked: false,
            cancelled: cancelled.clone(),
        },
    );
    let tx = ServerTx {
        ep: ep.clone(),
        key: Some(key),
        target,
        cancelled,
    };
    if req.method == Method::Invite {
        // At once: it stops the caller's INVITE retransmissions (RFC 3261 §17.2.1).
        tx.respond(req.response(100, "Trying")).await;
    }
    tx
}

/// A retransmission of a request we have a transaction for: answer it again (or take the
/// ACK that completes an INVITE transaction). True when absorbed.
pub(super) async fn absorb(ep: &Endpoint, key: &ServerKey, req: &Request, _from: Target) -> bool {
    let again = {
        let mut servers = lock(&ep.inner.servers);
        let Some(e) = servers.get_mut(key) else {
            return false;
        };
        if req.method == Method::Ack {
            if e.last_code < 300 {
                // Not ours: an ACK for a 2xx, which belongs to the dialog.
                return false;
            }
            e.acked = true;
            None
        } else {
            e.last.clone().map(|b| (b, e.target))
        }
    };
    if req.method == Method::Ack {
        // Timer I absorbs ACK retransmissions for T4, then the entry goes.
        let (ep, key) = (ep.clone(), key.clone());
        let t4 = ep.timers().t4;
        tokio::spawn(async move {
            tokio::time::sleep(t4).await;
            lock(&ep.inner.servers).remove(&key);
        });
        return true;
    }
    if let Some((bytes, target)) = again {
        let _ = ep.transport().send(target, bytes).await;
    }
    true
}

/// CANCEL (RFC 3261 §9.2): 200 and notify the INVITE's owner, or 481 with nothing to cancel.
pub(super) async fn cancel(ep: &Endpoint, key: &ServerKey, req: &Request, target: Target) {
    let invite_key = (key.0.clone(), key.1.clone(), Method::Invite);
    let found = lock(&ep.inner.servers)
        .get(&invite_key)
        .map(|e| (e.last_code, e.cancelled.clone()));
    let tx = create(ep, key.clone(), req, target).await;
    match found {
        Some((code, notify)) => {
            tx.respond(req.response(200, "OK")).await;
            if code < 200 {
                notify.notify_one();
            }
        }
        None => {
            tx.respond(req.response(481, "Call/Transaction Does Not Exist"))
                .await
        }
    }
}
