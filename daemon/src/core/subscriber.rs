//! Following one resource through an event package: a task that SUBSCRIBEs (RFC 6665),
//! answers a challenge, takes the NOTIFYs, refreshes before the end, starts again after
//! one, and un-SUBSCRIBEs when told to stop. What the NOTIFYs mean is the package's
//! [`Watch`]: a contact's presence (RFC 3856), an account's voicemail summary (RFC 3842).

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::presence::{Stoppable, answer};
use crate::config::Account;
use crate::core::calls::CallUpdate;
use crate::core::request::{credentials, outbound};
use crate::sip::auth::{AuthSession, Credentials};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Method, Name, Request, Response, SipHeaders};
use crate::sip::transaction::{Endpoint, TuRequest, TxError, random_token};
use crate::sip::transport::Target;
use crate::sip::uri::SipUri;
use crate::sip::usage::subscription::{Package, SubState, refresh_at, take_notify};

/// How long we ask a subscription to last; refreshed well before.
const EXPIRES: u32 = 600;
/// After a refusal or no answer, try again this much later (doubling up to the longest).
const FIRST_RETRY: Duration = Duration::from_secs(15);
const LONGEST_RETRY: Duration = Duration::from_secs(600);

/// What an event package's NOTIFYs mean, and what the core is told.
pub(super) trait Watch: Send + Sync + 'static {
    /// What goes in Event and Accept.
    const PACKAGE: Package;

    /// What is followed, for the log.
    fn name(&self) -> &str;

    /// What a NOTIFY in `state` says (its body may be empty): news for the core, if any.
    /// Err: why the body cannot be read; it is answered 400 and nothing changes.
    fn read(&mut self, body: &[u8], state: &SubState) -> Result<Option<CallUpdate>, String>;

    /// Nothing can be learnt now, and why.
    fn unknown(&mut self, why: String) -> Option<CallUpdate>;

    /// The far side is not there (not registered, gone).
    fn absent(&mut self) -> Option<CallUpdate>;

    /// The core has the news last made: a repeat of it is no news.
    fn delivered(&mut self);
}

/// Following one resource: the task and where its NOTIFYs go.
pub(super) struct Follow {
    pub(super) call_id: String,
    pub(super) requests: mpsc::Sender<TuRequest>,
    task: Stoppable,
}

impl Follow {
    /// Starts following `uri` as `account`, `watch` making news of its NOTIFYs for
    /// `updates`.
    pub(super) fn start<W: Watch>(
        ep: Endpoint,
        account: Option<Account>,
        uri: SipUri,
        watch: W,
        updates: mpsc::Sender<CallUpdate>,
        delay: Duration,
    ) -> Follow {
        let call_id = format!("{}@voipd", random_token(20));
        let (tx, rx) = mpsc::channel(8);
        let f = Follower {
            ep,
            account,
            uri,
            call_id: call_id.clone(),
            cseq: 0,
            updates,
            requests: rx,
            watch,
            granted: None,
        };
        Follow {
            call_id,
            requests: tx,
            task: Stoppable::spawn(move |stop| f.run(delay, stop)),
        }
    }

    /// Ends the subscription (un-SUBSCRIBE).
    pub(super) async fn stop(self) {
        self.task.stop().await;
    }
}

struct Follower<W> {
    ep: Endpoint,
    account: Option<Account>,
    uri: SipUri,
    call_id: String,
    cseq: u32,
    updates: mpsc::Sender<CallUpdate>,
    requests: mpsc::Receiver<TuRequest>,
    watch: W,
    /// When the current subscription was first granted (a 2xx or a NOTIFY).
    granted: Option<tokio::time::Instant>,
}

/// How one subscription ended.
enum Ended {
    Stopped,
    /// Start a new one after this long.
    Retry(Duration),
}

/// A subscription in progress: the SUBSCRIBE that made it and, once known, its dialog.
struct Sub {
    request: Request,
    dialog: Option<Dialog>,
    contact: String,
    first_hop: Target,
    refresh_at: tokio::time::Instant,
    /// Challenges answered, answered again on refreshes.
    auth: AuthSession,
}

impl<W: Watch> Follower<W> {
    async fn run(mut self, delay: Duration, mut stop: oneshot::Receiver<()>) {
        // Many contacts at once (a start, an import) are not all asked in one burst.
        if self.pause(delay, &mut stop).await {
            return;
        }
        let mut wait = FIRST_RETRY;
        loop {
            self.granted = None;
            let ended = self.subscription(&mut stop).await;
            // A subscription that lasted resets the backoff; one never granted (no answer,
            // refused) or ended at once (a far side that ends every one it grants) may not
            // be asked again at once for ever.
            let lasted = self.granted.is_some_and(|t| t.elapsed() > FIRST_RETRY);
            if lasted {
                wait = FIRST_RETRY;
            }
            let d = match ended {
                Ended::Stopped => return,
                Ended::Retry(d) if d.is_zero() && lasted => Duration::ZERO,
                Ended::Retry(d) => {
                    let d = d.max(wait);
                    wait = (wait * 2).min(LONGEST_RETRY);
                    d
                }
            };
            if self.pause(d, &mut stop).await {
                return;
            }
        }
    }

    /// Waits `d`, answering NOTIFYs of a subscription that is over; true when stopped.
    async fn pause(&mut self, d: Duration, stop: &mut oneshot::Receiver<()>) -> bool {
        let until = tokio::time::Instant::now() + d.min(LONGEST_RETRY);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return false,
                _ = &mut *stop => return true,
                Some(req) = self.requests.recv() => answer(&req, 481).await,
            }
        }
    }

    /// Tells the core, if there is news; remembered only once the core has it, so that a
    /// change is never lost.
    async fn tell(&mut self, news: Option<CallUpdate>) {
        let Some(news) = news else { return };
        if self.updates.send(news).await.is_ok() {
            self.watch.delivered();
        }
    }

    /// That nothing can be learnt now, and why.
    async fn cannot_know(&mut self, reason: String) {
        tracing::info!("{}: unknown ({reason})", self.watch.name());
        let news = self.watch.unknown(reason);
        self.tell(news).await;
    }

    /// That the far side is not there.
    async fn absent(&mut self) {
        let news = self.watch.absent();
        self.tell(news).await;
    }

    /// One subscription, from the first SUBSCRIBE to its end.
    async fn subscription(&mut self, stop: &mut oneshot::Receiver<()>) -> Ended {
        let mut sub = match self.initial().await {
            Ok(sub) => sub,
            // The name does not resolve, there is no route: nothing is learnt of the
            // contact, who may well be online.
            Err(why) => {
                self.cannot_know(why).await;
                return Ended::Retry(FIRST_RETRY);
            }
        };
        let mut tx = match self
            .ep
            .request(sub.request.clone(), self.target(&sub).await)
            .await
        {
            Ok(tx) => Some(tx),
            Err(e) => {
                self.cannot_know(e.to_string()).await;
                return Ended::Retry(FIRST_RETRY);
            }
        };
        loop {
            tokio::select! {
                r = async { Some(tx.as_mut()?.response().await) }, if tx.is_some() => {
                    let r = match r {
                        Some(Ok(r)) => r,
                        // The provider's server cannot be reached: nothing is learnt of
                        // the contact, who may well be online.
                        Some(Err(TxError::Transport(e))) if self.account.is_some() => {
                            self.cannot_know(e.to_string()).await;
                            return Ended::Retry(FIRST_RETRY);
                        }
                        Some(Err(TxError::Timeout)) if self.account.is_some() => {
                            self.cannot_know("the server does not answer".into()).await;
                            return Ended::Retry(FIRST_RETRY);
                        }
                        // Asked directly, no answer (or nobody at the port): the
                        // far side is gone.
                        _ => {
                            self.absent().await;
                            return Ended::Retry(FIRST_RETRY);
                        }
                    };
                    if r.code < 200 {
                        continue;
                    }
                    tx = None;
                    match r.code {
                        200..=299 => {
                            let expires = r.headers.get(&Name::Expires)
                                .and_then(|e| e.trim().parse::<u32>().ok())
                                .unwrap_or(EXPIRES);
                            if expires == 0 {
                                return Ended::Retry(FIRST_RETRY);
                            }
                            if sub.dialog.is_none() {
                                sub.dialog = Dialog::from_response(&sub.request, &r, sub.contact.clone());
                            }
                            self.granted.get_or_insert_with(tokio::time::Instant::now);
                            sub.refresh_at = refresh_at(expires);
                        }
                        401 | 407 => {
                            let Some(next) = self.with_auth(&mut sub, &r) else {
                                return Ended::Retry(LONGEST_RETRY);
                            };
                            sub.request = next;
                            if let Some(d) = sub.dialog.as_mut() {
                                d.local_cseq = self.cseq;
                            }
                            let target = self.target(&sub).await;
                            tx = self.ep.request(sub.request.clone(), target).await.ok();
                        }
                        // Not registered, or not there.
                        404 | 408 | 410 | 480 => {
                            self.absent().await;
                            return Ended::Retry(FIRST_RETRY);
                        }
                        // 481: the far side lost our refresh's dialog.
                        481 => return Ended::Retry(Duration::ZERO),
                        code => {
                            self.cannot_know(format!("the server answered {code} {}", r.reason)).await;
                            return Ended::Retry(LONGEST_RETRY);
                        }
                    }
                }
                Some(req) = self.requests.recv() => {
                    if let Some(ended) = self.notify(&mut sub, req).await {
                        return ended;
                    }
                }
                _ = tokio::time::sleep_until(sub.refresh_at), if tx.is_none() => {
                    let Some(d) = sub.dialog.as_mut() else {
                        return Ended::Retry(Duration::ZERO);
                    };
                    let mut req = d.request(Method::Subscribe, None);
                    W::PACKAGE.subscribe_headers(&mut req, EXPIRES);
                    self.cseq = d.local_cseq;
                    sub.auth.next_request();
                    sub.auth.authorize(&mut req, self.credentials().as_ref());
                    sub.request = req;
                    let target = self.target(&sub).await;
                    tx = self.ep.request(sub.request.clone(), target).await.ok();
                    // Until its answer, the next refresh is not due.
                    sub.refresh_at = refresh_at(EXPIRES);
                }
                _ = &mut *stop => {
                    self.unsubscribe(&mut sub).await;
                    return Ended::Stopped;
                }
            }
        }
    }

    /// The first SUBSCRIBE of a new subscription (a new From tag, the same Call-ID).
    async fn initial(&mut self) -> Result<Sub, String> {
        self.cseq += 1;
        let out = outbound(
            &self.ep,
            Method::Subscribe,
            self.account.as_ref(),
            &self.uri,
            &self.call_id,
            self.cseq,
        )
        .await
        .map_err(|(_, why)| why)?;
        let contact = crate::core::calls::contact(&out.user, out.public, out.target);
        let mut request = out.request;
        request.headers.push(Name::Contact, contact.clone());
        W::PACKAGE.subscribe_headers(&mut request, EXPIRES);
        Ok(Sub {
            request,
            dialog: None,
            contact,
            first_hop: out.target,
            refresh_at: refresh_at(EXPIRES),
            auth: AuthSession::default(),
        })
    }

    /// In the dialog: its next hop; before: where the first SUBSCRIBE went.
    async fn target(&self, sub: &Sub) -> Target {
        if let Some(d) = &sub.dialog
            && let Ok(t) = d.next_hop(&self.ep).await
        {
            return t;
        }
        sub.first_hop
    }

    fn credentials(&self) -> Option<Credentials> {
        self.account.as_ref().and_then(credentials)
    }

    /// The request again, one CSeq on, answering the challenge in `r`.
    fn with_auth(&mut self, sub: &mut Sub, r: &Response) -> Option<Request> {
        let creds = self.credentials();
        if let Err(e) = sub.auth.challenged(r, creds.as_ref()) {
            tracing::info!("{}: {e}", self.watch.name());
            return None;
        }
        let mut req = sub.request.clone();
        let seq = req.cseq()?.seq + 1;
        req.headers
            .set_first(Name::CSeq, format!("{seq} SUBSCRIBE"));
        sub.auth.authorize(&mut req, creds.as_ref());
        self.cseq = seq;
        Some(req)
    }

    /// Handles a NOTIFY; returns how the subscription ended if this ended it.
    async fn notify(&mut self, sub: &mut Sub, req: TuRequest) -> Option<Ended> {
        if req.request.method != Method::Notify {
            answer(&req, 481).await;
            return None;
        }
        if let Err(code) = take_notify(&mut sub.dialog, &sub.request, &sub.contact, &req.request) {
            answer(&req, code).await;
            return None;
        }
        if !W::PACKAGE.takes(&req.request) {
            answer(&req, 415).await;
            return None;
        }
        let state = SubState::of(&req.request);
        let news = match self.watch.read(&req.request.body, &state) {
            Ok(news) => news,
            Err(e) => {
                tracing::info!("{}: unreadable NOTIFY: {e}", self.watch.name());
                answer(&req, 400).await;
                return None;
            }
        };
        // Answered before the core is told, which may take a moment when it is busy.
        answer(&req, 200).await;
        self.granted.get_or_insert_with(tokio::time::Instant::now);
        self.tell(news).await;
        match state {
            SubState::Terminated {
                reason,
                retry_after,
            } => Some(Ended::Retry(match (reason.as_str(), retry_after) {
                (_, Some(s)) => Duration::from_secs(s).min(LONGEST_RETRY),
                ("deactivated" | "timeout", None) => Duration::ZERO,
                ("rejected" | "noresource" | "invariant", None) => LONGEST_RETRY,
                _ => FIRST_RETRY,
            })),
            SubState::Active { expires } | SubState::Pending { expires } => {
                // The notifier may shorten the subscription, never lengthen it.
                if let Some(e) = expires {
                    sub.refresh_at = sub.refresh_at.min(refresh_at(e.max(1)));
                }
                None
            }
        }
    }

    /// SUBSCRIBE with Expires: 0 in the dialog, so the far side stops notifying.
    async fn unsubscribe(&mut self, sub: &mut Sub) {
        let Some(d) = sub.dialog.as_mut() else {
            return;
        };
        let mut req = d.request(Method::Subscribe, None);
        W::PACKAGE.subscribe_headers(&mut req, 0);
        sub.auth.next_request();
        sub.auth.authorize(&mut req, self.credentials().as_ref());
        if let Ok(target) = d.next_hop(&self.ep).await
            && let Ok(mut tx) = self.ep.request(req, target).await
        {
            let _ = tokio::time::timeout(Duration::from_secs(1), tx.response()).await;
        }
    }
}
