//! Transactions (RFC 3261 §17): client and server, INVITE and non-INVITE, timers A–K.
//!
//! One dispatcher task matches what the transport delivers to transactions. A client
//! transaction runs its timers inside [`ClientTx::response`], so it costs no task of its
//! own; server transactions keep their last response in a table for retransmissions, and a
//! short timer task per completed transaction clears it. Out-of-dialog OPTIONS are answered
//! statelessly (RFC 3261 §8.2.7), so a keepalive flood creates no state at all.

mod admission;
mod client;
mod server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

pub use admission::{Admission, Admit};
pub use client::ClientTx;
pub use server::ServerTx;

use crate::sip::message::{Message, Method, Name, Request, Response, SipHeaders};
use crate::sip::resolve::Locator;
use crate::sip::transport::{Incoming, Target, Transport, TransportError, lock, response_target};

/// RFC 3261 timer bases; Timer F, B and H are 64·T1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error("no answer (transaction timeout)")]
    Timeout,
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the transaction is over")]
    Terminated,
}

/// A request for the layer above, in a server transaction that answers it.
#[derive(Debug)]
pub struct TuRequest {
    pub request: Request,
    pub from: Target,
    pub tx: ServerTx,
}

/// How many new requests may wait for the layer above; past it they get 503. At 2,000
/// calls/s (an INVITE, an ACK and a BYE each) this is about 170 ms of them: enough to ride
/// out the core being scheduled out on a loaded machine, and at most a few megabytes.
const TU_QUEUE: usize = 1024;

type ClientKey = (String, Method);
/// Branch (or, from RFC 2543 peers, the request's identity), sent-by and method (ACK
/// counts as INVITE), as RFC 3261 §17.2.3 matches.
type ServerKey = (String, String, Method);

pub(crate) struct Inner {
    transport: Transport,
    timers: Timers,
    /// Each client transaction's inbox, and where it sent its request (an ICMP error from
    /// there fails it).
    clients: Mutex<HashMap<ClientKey, (flume::Sender<client::Heard>, Target)>>,
    servers: Mutex<HashMap<ServerKey, server::Entry>>,
    /// Completed non-INVITE server transactions to forget, each at its Timer J. They all
    /// wait the same 64·T1, so the queue is in deadline order and one task serves it.
    reaper: mpsc::UnboundedSender<(tokio::time::Instant, ServerKey)>,
    user_agent: Mutex<String>,
    locator: Locator,
    /// None: everything is taken (until the layer above installs its gate).
    admission: Mutex<Option<Arc<dyn Admission>>>,
}

/// The transaction layer. Cheap to clone.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Endpoint")
    }
}

pub fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| CHARS[fastrand::usize(..CHARS.len())] as char)
        .collect()
}

pub fn new_branch() -> String {
    format!("z9hG4bK{}", random_token(16))
}

fn server_key(req: &Request) -> Option<ServerKey> {
    let via = req.top_via()?;
    let method = match req.method {
        Method::Ack => Method::Invite,
        ref m => m.clone(),
    };
    let sent_by = format!("{}:{}", via.host, via.port.unwrap_or(0));
    let id = match via.branch() {
        Some(b) if b.starts_with("z9hG4bK") => b.to_string(),
        // RFC 2543 peers (no magic cookie): §17.2.3 matches by Request-URI, From tag,
        // Call-ID and CSeq number (and the top Via, in sent-by). The To tag is left out so
        // that the ACK for a non-2xx, which carries ours, matches its INVITE.
        _ => format!(
            "2543 {} {} {} {}",
            req.uri,
            req.from()?.tag().unwrap_or_default(),
            req.call_id()?,
            req.cseq()?.seq
        ),
    };
    Some((id, sent_by, method))
}

impl Endpoint {
    /// Starts the dispatcher. New requests come out of the returned receiver.
    pub fn start(
        transport: Transport,
        incoming: mpsc::Receiver<Incoming>,
        timers: Timers,
        user_agent: String,
        locator: Locator,
    ) -> (Endpoint, mpsc::Receiver<TuRequest>) {
        let (reaper, reap) = mpsc::unbounded_channel();
        let ep = Endpoint {
            inner: Arc::new(Inner {
                transport,
                timers,
                clients: Mutex::new(HashMap::new()),
                servers: Mutex::new(HashMap::new()),
                reaper,
                user_agent: Mutex::new(user_agent),
                locator,
                admission: Mutex::new(None),
            }),
        };
        tokio::spawn(server::reap(Arc::downgrade(&ep.inner), reap));
        let (tu, tu_rx) = mpsc::channel(TU_QUEUE);
        tokio::spawn(ep.clone().dispatch(incoming, tu));
        (ep, tu_rx)
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// Where requests for a URI go (RFC 3263).
    pub fn locator(&self) -> &Locator {
        &self.inner.locator
    }

    pub fn timers(&self) -> Timers {
        self.inner.timers
    }

    pub fn user_agent(&self) -> String {
        lock(&self.inner.user_agent).clone()
    }

    pub fn set_user_agent(&self, ua: String) {
        *lock(&self.inner.user_agent) = ua;
    }

    /// Gives back the room the transaction tables grew to in a burst: a map keeps its
    /// largest capacity until asked (a flood would otherwise hold its peak for good).
    pub fn compact(&self) {
        crate::memory::shrink(&mut lock(&self.inner.servers));
        crate::memory::shrink(&mut lock(&self.inner.clients));
        self.inner.transport.compact();
    }

    /// Puts `gate` in front of every request that arrives from now on.
    pub fn set_admission(&self, gate: Arc<dyn Admission>) {
        *lock(&self.inner.admission) = Some(gate);
    }

    /// Sends a request statelessly (an ACK for a 2xx, a CRLF keepalive is not a request).
    pub async fn send_stateless(
        &self,
        target: Target,
        bytes: Vec<u8>,
    ) -> Result<(), TransportError> {
        self.inner.transport.send(target, bytes).await
    }

    async fn dispatch(self, mut incoming: mpsc::Receiver<Incoming>, tu: mpsc::Sender<TuRequest>) {
        let mut unreachable = self.inner.transport.unreachable();
        let mut reports = true;
        loop {
            tokio::select! {
                m = incoming.recv() => match m.inspect(|_| crate::memory::busy()) {
                    Some(Incoming { msg: Message::Response(r), .. }) => self.on_response(r),
                    Some(Incoming { msg: Message::Request(r), from }) => {
                        self.on_request(r, from, &tu).await
                    }
                    None => return,
                },
                u = unreachable.recv(), if reports => match u {
                    Ok((target, why)) => self.on_unreachable(target, &why),
                    // Missed reports: those transactions time out as they would have.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => reports = false,
                },
            }
        }
    }

    /// RFC 3261 §8.1.3.1: a transport error ends the transactions it concerns now, not
    /// at Timer B/F.
    fn on_unreachable(&self, target: Target, why: &str) {
        let hit: Vec<_> = lock(&self.inner.clients)
            .values()
            .filter(|(_, t)| *t == target)
            .map(|(tx, _)| tx.clone())
            .collect();
        if !hit.is_empty() {
            tracing::info!(
                "{target} is unreachable ({why}); failing {} transaction(s)",
                hit.len()
            );
        }
        for tx in hit {
            let _ = tx.try_send(client::Heard::Unreachable(why.to_string()));
        }
    }

    fn on_response(&self, resp: Response) {
        let (Some(via), Some(cseq)) = (resp.top_via(), resp.cseq()) else {
            return;
        };
        let Some(branch) = via.branch() else { return };
        let key = (branch.to_string(), cseq.method);
        let tx = lock(&self.inner.clients)
            .get(&key)
            .map(|(tx, _)| tx.clone());
        match tx {
            // Full means the transaction is not reading: a retransmission it can miss.
            Some(tx) => {
                let _ = tx.try_send(client::Heard::Response(resp));
            }
            None => tracing::debug!(
                "dropping unmatched response {} for branch {branch}",
                resp.code
            ),
        }
    }

    async fn send_response(&self, target: Target, resp: &Response) {
        if let Err(e) = self.inner.transport.send(target, resp.encode()).await {
            tracing::debug!("cannot send {} to {target}: {e}", resp.code);
        }
    }

    async fn on_request(&self, req: Request, from: Target, tu: &mpsc::Sender<TuRequest>) {
        let Some(via) = req.top_via() else { return };
        let reply_to = response_target(&via, from);
        // Before anything is answered or kept: a stranger learns nothing.
        let gate = lock(&self.inner.admission).clone();
        match gate.map_or(Admit::Take, |g| g.admit(&req, from)) {
            Admit::Take => {
                // Out of dialog, only those the gate lets in are taken: the flow is theirs.
                let out_of_dialog = !matches!(req.method, Method::Ack | Method::Cancel)
                    && req.to().is_some_and(|t| t.tag().is_none());
                if out_of_dialog {
                    self.inner.transport.prove(from);
                }
            }
            Admit::Drop => return,
            Admit::Refuse => {
                if req.method != Method::Ack {
                    let mut resp = req.response(403, "Forbidden");
                    crate::sip::capabilities::add_to_tag(&mut resp);
                    self.send_response(reply_to, &resp).await;
                }
                return;
            }
        }
        let Some(key) = server_key(&req) else {
            let resp = req.response(400, "Missing Call-ID, From or CSeq");
            self.send_response(reply_to, &resp).await;
            return;
        };
        if server::absorb(self, &key, &req, reply_to).await {
            return;
        }
        match req.method {
            // An ACK for a 2xx belongs to the dialog, not to a transaction.
            Method::Ack => {
                let _ = tu.try_send(TuRequest {
                    request: req,
                    from,
                    tx: ServerTx::detached(self.clone(), reply_to),
                });
                return;
            }
            Method::Cancel => {
                server::cancel(self, &key, &req, reply_to).await;
                return;
            }
            Method::Options if req.to().is_some_and(|t| t.tag().is_none()) => {
                let resp = crate::sip::capabilities::options_response(&req, &self.user_agent());
                self.send_response(reply_to, &resp).await;
                return;
            }
            _ => {}
        }
        let tx = server::create(self, key, &req, reply_to).await;
        if let Err(mpsc::error::TrySendError::Full(r)) = tu.try_send(TuRequest {
            request: req,
            from,
            tx,
        }) {
            let mut resp = r.request.response(503, "Service Unavailable");
            resp.headers.push(Name::RetryAfter, "5");
            r.tx.respond(resp).await;
        }
    }
}

#[cfg(test)]
mod tests;
