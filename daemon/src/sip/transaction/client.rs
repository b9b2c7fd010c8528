use tokio::time::{Duration, Instant, sleep_until};

use super::{ClientKey, Endpoint, TxError, new_branch};
use crate::sip::message::{Method, Name, Request, Response, SipHeaders};
use crate::sip::transport::{Target, TransportError, lock};

/// What reaches a client transaction.
#[derive(Debug)]
pub(crate) enum Heard {
    /// A response to its request.
    Response(Response),
    /// An ICMP error came back for what was sent to its target: why.
    Unreachable(String),
}

/// A client transaction. Timers run while [`ClientTx::response`] is awaited, which the
/// owner does until a final response; dropping it ends the transaction (after absorbing
/// retransmissions for Timer K or D on unreliable transports).
#[must_use = "a client transaction only retransmits while its response is awaited"]
pub struct ClientTx {
    ep: Endpoint,
    key: ClientKey,
    rx: flume::Receiver<Heard>,
    request: Request,
    bytes: Vec<u8>,
    target: Target,
    retransmit_at: Option<Instant>,
    interval: Duration,
    deadline: Option<Instant>,
    done: bool,
    /// RFC 6026 Accepted: an INVITE's 2xx came; until Timer M more 2xx (retransmitted, or
    /// from other forks) still reach the owner, which ACKs each.
    accepted: Option<Instant>,
    /// A final response whose ACK was being sent when the caller stopped waiting.
    pending: Option<Response>,
    /// A response came: the far side is there, and a later ICMP error is about something
    /// else sent to the same address.
    heard: bool,
}

impl Endpoint {
    /// Sends `req` to `target` in a new client transaction: adds our top Via (new branch,
    /// `rport`) and a User-Agent.
    pub async fn request(&self, mut req: Request, target: Target) -> Result<ClientTx, TxError> {
        let local = self
            .transport()
            .local_for(target)
            .ok_or(TransportError::NoSocket(target.proto, target.addr))?;
        let branch = new_branch();
        req.headers.push_front(
            Name::Via,
            format!(
                "SIP/2.0/{} {local};branch={branch};rport",
                target.proto.via_name()
            ),
        );
        if req.headers.get(&Name::UserAgent).is_none() {
            req.headers.push(Name::UserAgent, self.user_agent());
        }
        self.start_client(req, branch, target).await
    }

    /// CANCELs a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To,
    /// CSeq number, Route and top Via as the INVITE.
    pub async fn cancel(&self, invite: &ClientTx) -> Result<ClientTx, TxError> {
        let inv = &invite.request;
        let mut cancel = Request {
            method: Method::Cancel,
            uri: inv.uri.clone(),
            headers: Default::default(),
            body: Vec::new(),
        };
        for (n, v) in inv.headers.iter() {
            match n {
                Name::Via if cancel.headers.get(&Name::Via).is_none() => {
                    cancel.headers.push(Name::Via, v)
                }
                Name::From | Name::To | Name::CallId | Name::Route | Name::MaxForwards => {
                    cancel.headers.push(n.clone(), v)
                }
                _ => {}
            }
        }
        let seq = inv.cseq().map_or(1, |c| c.seq);
        cancel.headers.push(Name::CSeq, format!("{seq} CANCEL"));
        self.start_client(cancel, invite.key.0.clone(), invite.target)
            .await
    }

    /// Sends a request outside any transaction (the ACK for a 2xx), with a Via of its own.
    pub async fn send_ack(&self, mut req: Request, target: Target) -> Result<(), TxError> {
        let local = self
            .transport()
            .local_for(target)
            .ok_or(TransportError::NoSocket(target.proto, target.addr))?;
        req.headers.push_front(
            Name::Via,
            format!(
                "SIP/2.0/{} {local};branch={};rport",
                target.proto.via_name(),
                new_branch()
            ),
        );
        self.transport().send(target, req.encode()).await?;
        Ok(())
    }

    async fn start_client(
        &self,
        req: Request,
        branch: String,
        target: Target,
    ) -> Result<ClientTx, TxError> {
        let bytes = req.encode();
        // flume, not tokio's channel: that allocates 32 slots (2.6 kB of Heard) at once, and
        // an INVITE's transaction lives a minute (Timer M, then Timer D's linger).
        let (tx, rx) = flume::bounded(8);
        let key = (branch, req.method.clone());
        lock(&self.inner.clients).insert(key.clone(), (tx, target));
        let t = self.timers();
        let now = Instant::now();
        let mut ctx = ClientTx {
            ep: self.clone(),
            key,
            rx,
            bytes,
            target,
            // Timer A / E: only unreliable transports retransmit.
            retransmit_at: (!target.proto.reliable()).then(|| now + t.t1),
            interval: t.t1,
            // Timer B / F.
            deadline: Some(now + 64 * t.t1),
            request: req,
            done: false,
            accepted: None,
            pending: None,
            heard: false,
        };
        self.transport()
            .send(target, ctx.bytes.clone())
            .await
            .inspect_err(|_| ctx.done = true)?;
        Ok(ctx)
    }
}

impl ClientTx {
    /// The request, as sent (with our Via).
    pub fn request(&self) -> &Request {
        &self.request
    }

    fn invite(&self) -> bool {
        self.request.method == Method::Invite
    }

    /// The next response: provisional ones, then the final one. After the final response
    /// or an error, returns [`TxError::Terminated`].
    pub async fn response(&mut self) -> Result<Response, TxError> {
        if let Some(r) = self.pending.take() {
            return Ok(r);
        }
        if let Some(until) = self.accepted {
            return self.more_2xx(until).await;
        }
        if self.done {
            return Err(TxError::Terminated);
        }
        let t = self.ep.timers();
        loop {
            let wake = match (self.retransmit_at, self.deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let resp = match wake {
                Some(at) => tokio::select! {
                    r = self.rx.recv_async() => r.ok(),
                    () = sleep_until(at) => {
                        if self.deadline.is_some_and(|d| Instant::now() >= d) {
                            self.done = true;
                            return Err(TxError::Timeout);
                        }
                        // Boxed: a send's future (TCP's connect, TLS's handshake) would
                        // otherwise size every transaction's wait, Accepted's 32 s too.
                        if let Err(e) = Box::pin(self.ep.transport().send(self.target, self.bytes.clone())).await {
                            self.done = true;
                            return Err(e.into());
                        }
                        self.interval = if self.invite() { self.interval * 2 } else { (self.interval * 2).min(t.t2) };
                        self.retransmit_at = Some(Instant::now() + self.interval);
                        continue;
                    }
                },
                None => self.rx.recv_async().await.ok(),
            };
            let resp = match resp {
                Some(Heard::Response(r)) => r,
                Some(Heard::Unreachable(_)) if self.heard => continue,
                Some(Heard::Unreachable(why)) => {
                    self.done = true;
                    return Err(TxError::Transport(TransportError::Unreachable {
                        target: self.target,
                        why,
                    }));
                }
                None => {
                    self.done = true;
                    return Err(TxError::Terminated);
                }
            };
            self.heard = true;
            if resp.code < 200 {
                if self.invite() {
                    // Proceeding: the far side has it; INVITE waits for the callee.
                    self.retransmit_at = None;
                    self.deadline = None;
                } else if self.retransmit_at.is_some() {
                    self.interval = t.t2;
                }
                return Ok(resp);
            }
            self.done = true;
            if self.invite() && resp.code >= 300 {
                // Kept until the ACK is out: cut off while sending it, the next call
                // still gets the response.
                self.pending = Some(resp.clone());
                // Boxed, as the retransmission above.
                Box::pin(self.ack_and_linger(&resp)).await;
                self.pending = None;
            }
            if self.invite() && resp.code < 300 {
                // Timer M. The INVITE is not sent again: its bytes can go.
                self.accepted = Some(Instant::now() + 64 * t.t1);
                self.bytes = Vec::new();
            }
            return Ok(resp);
        }
    }

    /// In Accepted: the next 2xx before Timer M fires, else [`TxError::Terminated`].
    async fn more_2xx(&mut self, until: Instant) -> Result<Response, TxError> {
        loop {
            tokio::select! {
                r = self.rx.recv_async() => match r {
                    Ok(Heard::Response(r)) if (200..300).contains(&r.code) => return Ok(r),
                    Ok(_) => {}
                    Err(_) => break,
                },
                () = sleep_until(until) => break,
            }
        }
        self.accepted = None;
        Err(TxError::Terminated)
    }

    /// The final response, past any provisional ones.
    pub async fn final_response(&mut self) -> Result<Response, TxError> {
        if self.accepted.is_some() || self.done {
            return Err(TxError::Terminated);
        }
        loop {
            let r = self.response().await?;
            if r.code >= 200 {
                return Ok(r);
            }
        }
    }

    /// RFC 3261 §17.1.1.3: the ACK for a non-2xx final response (before anything else
    /// goes out), sent again for each retransmission of it until Timer D.
    async fn ack_and_linger(&mut self, resp: &Response) {
        let req = &self.request;
        let mut ack = Request {
            method: Method::Ack,
            uri: req.uri.clone(),
            headers: Default::default(),
            body: Vec::new(),
        };
        for (n, v) in req.headers.iter() {
            match n {
                // Only the top Via: ours, with the transaction's branch.
                Name::Via if ack.headers.get(&Name::Via).is_none() => {
                    ack.headers.push(Name::Via, v)
                }
                Name::From | Name::CallId | Name::Route | Name::MaxForwards => {
                    ack.headers.push(n.clone(), v)
                }
                _ => {}
            }
        }
        if let Some(to) = resp.headers.get(&Name::To) {
            ack.headers.push(Name::To, to);
        }
        if let Some(c) = req.cseq() {
            ack.headers.push(Name::CSeq, format!("{} ACK", c.seq));
        }
        let bytes = ack.encode();
        let _ = self.ep.transport().send(self.target, bytes.clone()).await;
        if self.target.proto.reliable() {
            return;
        }
        let (_, rx) = flume::bounded(1);
        let rx = std::mem::replace(&mut self.rx, rx);
        let (ep, target) = (self.ep.clone(), self.target);
        // Timer D: at least 32 s on unreliable transports.
        let until = Instant::now() + Duration::from_secs(32).max(64 * ep.timers().t1);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = rx.recv_async() => match r {
                        Ok(Heard::Response(r)) if r.code >= 300 => { let _ = ep.transport().send(target, bytes.clone()).await; }
                        Ok(_) => {}
                        Err(_) => return,
                    },
                    () = sleep_until(until) => return,
                }
            }
        });
    }
}

impl Drop for ClientTx {
    fn drop(&mut self) {
        // What the transaction held goes back to the heap with no message to say so: an
        // INVITE's, Timer M after the answer, when a burst of calls may be long over. The
        // trimmer is to look again.
        crate::memory::busy();
        let ep = self.ep.clone();
        let key = std::mem::replace(&mut self.key, (String::new(), Method::Ack));
        // Timer K (T4) absorbs retransmitted responses on unreliable transports; Timer D's
        // linger task owns the channel for INVITE.
        let linger = if self.target.proto.reliable() {
            Duration::ZERO
        } else if self.invite() {
            Duration::from_secs(32).max(64 * ep.timers().t1)
        } else {
            ep.timers().t4
        };
        if linger.is_zero() {
            lock(&ep.inner.clients).remove(&key);
        } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(linger).await;
                lock(&ep.inner.clients).remove(&key);
            });
        } else {
            lock(&ep.inner.clients).remove(&key);
        }
    }
}
