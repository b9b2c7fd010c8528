//! The INVITE initiator (RFC 3261 §13.2, the UAC side of a call's set-up): sends the
//! INVITE, answers digest challenges (the 401/407 is ACKed by the transaction, the INVITE
//! sent again with the next CSeq), follows redirections, and turns the first 2xx into a
//! confirmed dialog whose ACK is repeated for every 2xx retransmission; 2xx from other
//! forks are ACKed and ended. Reliable provisional responses (RFC 3262) are PRACKed in
//! their early dialogs, and a 422 (RFC 4028) raises the session interval asked for.

use super::reliable::{rack, rseq};
use super::session_timer::raise_for_422;
use crate::sip::auth::{AuthSession, ChallengeError, Credentials};
use crate::sip::dialog::{Dialog, Exchange};
use crate::sip::message::{Method, Name, NameAddr, Request, Response, SipHeaders};
use crate::sip::transaction::{ClientTx, Endpoint, TxError};
use crate::sip::transport::Target;
use crate::sip::uri::{SipUri, Uri};

/// How many targets one call tries through redirections (3xx) before it gives up.
const MAX_REDIRECT_TARGETS: usize = 8;

/// An INVITE to send and how to treat what comes back.
pub struct Invitation {
    /// The INVITE without a Via: From (tagged), To, Call-ID, CSeq, Contact, body.
    pub request: Request,
    /// The first hop: the outbound proxy, or the target itself.
    pub hop: Target,
    /// Where to go when `hop` does not answer, fails or answers 503 (RFC 3263 §4.3).
    pub alternatives: Vec<Target>,
    /// True when `hop` is an outbound proxy: redirected requests go through it too.
    pub via_proxy: bool,
    pub credentials: Option<Credentials>,
    /// Follow 3xx answers to their Contacts (in q order).
    pub follow_redirects: bool,
}

/// What the far side said so far.
#[derive(Debug)]
pub enum Progress {
    /// A provisional response other than 100 (ringing, session progress, queued).
    Provisional(Response),
    /// Answered: the dialog is confirmed (ACK sent).
    Answered {
        dialog: Box<Dialog>,
        response: Response,
    },
}

/// Why the INVITE did not set up a call.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("{}", refusal(.0))]
    Refused(Box<Response>),
    #[error("{source}")]
    Auth {
        code: u16,
        #[source]
        source: ChallengeError,
    },
    #[error("no answer")]
    Timeout,
    #[error(transparent)]
    Transaction(TxError),
    #[error("redirected in a loop ({0})")]
    RedirectLoop(u16),
    #[error("cannot reach the redirection target {target}: {why}")]
    Redirect { target: String, why: String },
    #[error("the 2xx lacks a To tag or a Contact")]
    Bad2xx,
}

impl InviteError {
    /// The SIP status that stands for this failure in history and events.
    pub fn code(&self) -> u16 {
        match self {
            InviteError::Refused(r) => r.code,
            InviteError::Auth { code, .. } => *code,
            InviteError::Timeout => 408,
            InviteError::Transaction(_) | InviteError::Redirect { .. } => 503,
            InviteError::RedirectLoop(_) => 482,
            InviteError::Bad2xx => 502,
        }
    }
}

impl From<TxError> for InviteError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Timeout => InviteError::Timeout,
            e => InviteError::Transaction(e),
        }
    }
}

/// A response as people read it: code, phrase, and the Reason text when there is one.
pub fn status_text(r: &Response) -> String {
    format!("{} {}", r.code, refusal(r))
}

/// The reason phrase, and the Reason header's text when the far side gave one (RFC 3326).
fn refusal(r: &Response) -> String {
    let text = r.headers.get(&Name::Reason).and_then(|v| {
        let (_, rest) = v.split_once("text=\"")?;
        rest.split('"').next().map(str::to_string)
    });
    match text {
        Some(t) if !t.is_empty() && t != r.reason => format!("{} ({t})", r.reason),
        _ => r.reason.clone(),
    }
}

/// An INVITE on its way. Drive it with [`Initiator::next`] until it is answered or fails.
pub struct Initiator {
    ep: Endpoint,
    inv: Invitation,
    tx: Option<ClientTx>,
    auth: AuthSession,
    /// Early dialogs (a reliable 1xx's fork) by To tag, with the last RSeq PRACKed.
    early: Vec<(String, Dialog, u32)>,
    /// A 422 was answered once: a second one ends the call.
    raised: bool,
    /// Redirection targets not yet tried, best first; and all tried so far.
    pending: Vec<SipUri>,
    tried: Vec<String>,
    cancelled: bool,
    /// After a CANCEL, the INVITE's final answer is waited for this long at most (RFC 3261
    /// §9.1: 64·T1), even when a provisional response stopped Timer B.
    give_up_at: Option<tokio::time::Instant>,
}

impl Initiator {
    /// Sends the INVITE.
    pub async fn send(ep: &Endpoint, inv: Invitation) -> Result<Initiator, InviteError> {
        let mut me = Initiator {
            ep: ep.clone(),
            tried: vec![inv.request.uri.to_string()],
            inv,
            tx: None,
            auth: AuthSession::default(),
            pending: Vec::new(),
            early: Vec::new(),
            raised: false,
            cancelled: false,
            give_up_at: None,
        };
        let hop = me.inv.hop;
        me.start(hop).await?;
        Ok(me)
    }

    /// Our Contact, as the INVITE gives it: the dialogs' too.
    fn contact(&self) -> String {
        self.inv
            .request
            .headers
            .get(&Name::Contact)
            .unwrap_or_default()
            .to_string()
    }

    /// The INVITE as last sent (its CSeq and credentials).
    pub fn request(&self) -> &Request {
        &self.inv.request
    }

    /// Sends the INVITE to `hop`; one that cannot be sent there goes to the next of the
    /// name's targets (RFC 3263 §4.3).
    async fn start(&mut self, mut hop: Target) -> Result<(), InviteError> {
        loop {
            self.auth
                .authorize(&mut self.inv.request, self.inv.credentials.as_ref());
            match self.ep.request(self.inv.request.clone(), hop).await {
                Ok(tx) => {
                    self.tx = Some(tx);
                    self.inv.hop = hop;
                    return Ok(());
                }
                Err(e @ TxError::Transport(_)) if self.can_fail_over() => {
                    let next = self.inv.alternatives.remove(0);
                    tracing::info!("{hop} failed ({e}); trying {next}");
                    self.auth.next_request();
                    self.bump_cseq();
                    hop = next;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The same INVITE again with the next CSeq (after a challenge or a redirection).
    fn bump_cseq(&mut self) {
        let req = &mut self.inv.request;
        let seq = req.cseq().map_or(1, |c| c.seq) + 1;
        req.headers.set(Name::CSeq, format!("{seq} {}", req.method));
    }

    /// CANCELs the INVITE (RFC 3261 §9.1); the final answer still comes through `next`.
    pub async fn cancel(&mut self) -> Result<(), InviteError> {
        self.cancelled = true;
        self.give_up_at = Some(tokio::time::Instant::now() + 64 * self.ep.timers().t1);
        if let Some(tx) = &self.tx {
            let mut c = self.ep.cancel(tx).await?;
            tokio::spawn(async move { c.final_response().await.map(|_| ()) });
        }
        Ok(())
    }

    /// The next step: a provisional response, the answer, or why the call failed.
    pub async fn next(&mut self) -> Result<Progress, InviteError> {
        loop {
            let r = self.wait().await;
            if let Some(p) = self.handle(r).await? {
                return Ok(p);
            }
        }
    }

    /// What the current INVITE transaction hears next. Cancel-safe: a caller may race it
    /// with other work in `select!` and hand what it got to [`Initiator::handle`], which
    /// is not to be raced.
    pub async fn wait(&mut self) -> Result<Response, TxError> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(TxError::Terminated);
        };
        match self.give_up_at {
            Some(at) => tokio::select! {
                r = tx.response() => r,
                () = tokio::time::sleep_until(at) => Err(TxError::Timeout),
            },
            None => tx.response().await,
        }
    }

    /// Acts on what [`Initiator::wait`] got: answers challenges, follows redirections,
    /// fails over, PRACKs, confirms the answer. None: nothing to tell yet.
    pub async fn handle(
        &mut self,
        r: Result<Response, TxError>,
    ) -> Result<Option<Progress>, InviteError> {
        let resp = match r {
            Ok(r) if r.code == 503 && self.can_fail_over() => {
                self.fail_over(&format!("503 {}", r.reason)).await?;
                return Ok(None);
            }
            Ok(r) => r,
            Err(e @ (TxError::Timeout | TxError::Transport(_))) if self.can_fail_over() => {
                self.fail_over(&e.to_string()).await?;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        match resp.code {
            100 => {}
            101..=199 => {
                // A retransmission, or out of order: not news (RFC 3262 §4).
                if rseq(&resp).is_none_or(|n| self.prack(&resp, n)) {
                    return Ok(Some(Progress::Provisional(resp)));
                }
            }
            200..=299 => return self.answered(resp).await.map(Some),
            401 | 407 if !self.cancelled => {
                let code = resp.code;
                self.auth
                    .challenged(&resp, self.inv.credentials.as_ref())
                    .map_err(|source| InviteError::Auth { code, source })?;
                self.resend().await?;
            }
            422 if !self.cancelled
                && !self.raised
                && raise_for_422(&resp, &mut self.inv.request) =>
            {
                self.raised = true;
                self.resend().await?;
            }
            300..=399 if self.inv.follow_redirects && !self.cancelled => {
                self.redirected(&resp)?;
                self.next_target(resp.code).await?;
            }
            // A redirection target that refuses: the next one is tried; the last
            // refusal is the news.
            _ if !self.cancelled && !self.pending.is_empty() => {
                self.next_target(resp.code).await?;
            }
            _ => return Err(InviteError::Refused(Box::new(resp))),
        }
        Ok(None)
    }

    /// The INVITE again to the same hop, with the next CSeq (after a challenge, a 422).
    async fn resend(&mut self) -> Result<(), InviteError> {
        self.bump_cseq();
        let hop = self.inv.hop;
        self.start(hop).await
    }

    async fn answered(&mut self, resp: Response) -> Result<Progress, InviteError> {
        let mut dialog = Dialog::from_response(&self.inv.request, &resp, self.contact())
            .ok_or(InviteError::Bad2xx)?;
        // PRACKs in this fork's early dialog used CSeq numbers after the INVITE's.
        let tag = dialog.remote.tag().unwrap_or_default();
        if let Some((_, early, _)) = self.early.iter().find(|(t, _, _)| t == tag) {
            dialog.local_cseq = dialog.local_cseq.max(early.local_cseq);
        }
        dialog.credentials = self.inv.credentials.clone();
        self.auth.next_request();
        dialog.auth = self.auth.clone();
        let tx = self
            .tx
            .take()
            .ok_or(InviteError::Transaction(TxError::Terminated))?;
        dialog
            .confirm(
                &self.ep,
                Exchange {
                    request: self.inv.request.clone(),
                    response: resp.clone(),
                    tx,
                },
            )
            .await;
        Ok(Progress::Answered {
            dialog: Box::new(dialog),
            response: resp,
        })
    }

    fn can_fail_over(&self) -> bool {
        !self.cancelled && !self.inv.alternatives.is_empty()
    }

    /// Sends the INVITE to the next target of the first hop's name.
    async fn fail_over(&mut self, why: &str) -> Result<(), InviteError> {
        let hop = self.inv.alternatives.remove(0);
        tracing::info!("{} failed ({why}); trying {hop}", self.inv.hop);
        self.auth.next_request();
        self.bump_cseq();
        self.start(hop).await
    }

    /// PRACKs a reliable provisional response with RSeq `n` in its early dialog; false for
    /// one that is not the next in its dialog (a retransmission), which gets none.
    fn prack(&mut self, resp: &Response, n: u32) -> bool {
        let Some(tag) = resp.to().and_then(|t| t.tag().map(str::to_string)) else {
            return false;
        };
        let i = match self.early.iter().position(|(t, _, _)| *t == tag) {
            Some(i) if self.early[i].2.checked_add(1) != Some(n) => return false,
            Some(i) => i,
            None => {
                let Some(mut d) = Dialog::from_response(&self.inv.request, resp, self.contact())
                else {
                    return false;
                };
                d.credentials = self.inv.credentials.clone();
                d.auth = self.auth.clone();
                self.early.push((tag, d, 0));
                self.early.len() - 1
            }
        };
        let (_, dialog, last) = &mut self.early[i];
        *last = n;
        let Some(rack) = rack(resp, n) else {
            return false;
        };
        let mut prack = dialog.request(Method::Prack, None);
        prack.headers.push(Name::RAck, rack);
        dialog.send_detached(&self.ep, prack);
        true
    }

    /// Queues a 3xx's Contacts, highest q first, leaving out any tried before.
    fn redirected(&mut self, resp: &Response) -> Result<(), InviteError> {
        let mut targets: Vec<(f32, SipUri)> = resp
            .headers
            .all(&Name::Contact)
            .filter_map(|c| NameAddr::parse(c).ok())
            .filter_map(|na| {
                let q = na
                    .param("q")
                    .flatten()
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                match na.uri {
                    Uri::Sip(u) => Some((q, u)),
                    _ => None,
                }
            })
            .collect();
        targets.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut looped = false;
        for (_, uri) in targets {
            let key = uri.to_string();
            if self.tried.contains(&key) || self.pending.iter().any(|p| p.to_string() == key) {
                looped = true;
                continue;
            }
            self.pending.push(uri);
        }
        if self.pending.is_empty() {
            return Err(if looped {
                InviteError::RedirectLoop(resp.code)
            } else {
                InviteError::Refused(Box::new(resp.clone()))
            });
        }
        Ok(())
    }

    /// Sends the INVITE to the next redirection target.
    async fn next_target(&mut self, code: u16) -> Result<(), InviteError> {
        if self.tried.len() >= MAX_REDIRECT_TARGETS {
            return Err(InviteError::RedirectLoop(code));
        }
        let uri = self.pending.remove(0);
        tracing::info!("trying {uri} (redirected)");
        self.tried.push(uri.to_string());
        let hop = if self.inv.via_proxy {
            self.inv.hop
        } else {
            // The first hop's other targets are no way to the new one.
            self.inv.alternatives.clear();
            self.ep
                .locator()
                .resolve(&uri)
                .await
                .map_err(|why| InviteError::Redirect {
                    target: uri.to_string(),
                    why,
                })?
        };
        self.inv.request.uri = Uri::Sip(uri);
        self.auth.next_request();
        self.bump_cseq();
        self.start(hop).await
    }
}
