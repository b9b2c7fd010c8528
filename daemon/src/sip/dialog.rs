//! Dialogs (RFC 3261 §12): the state two user agents share for a call, and the requests
//! sent inside it (ACK, BYE, re-INVITE) with the right tags, CSeq, target and route set,
//! answering digest challenges with the dialog's credentials.

use crate::sip::auth::{AuthSession, ChallengeError, Credentials};
use crate::sip::message::{Headers, Method, Name, NameAddr, Request, Response, SipHeaders};
use crate::sip::transaction::{ClientTx, Endpoint, TxError};
use crate::sip::transport::Target;
use crate::sip::uri::Uri;

/// Why a request in a dialog got no final answer.
#[derive(Debug, thiserror::Error)]
pub enum DialogError {
    #[error("no route to the far side: {0}")]
    Route(String),
    #[error(transparent)]
    Transaction(#[from] TxError),
    #[error(transparent)]
    Auth(#[from] ChallengeError),
}

/// A request of ours in a dialog and its final answer.
pub struct Exchange {
    /// As last sent (with the CSeq and credentials that got `response`).
    pub request: Request,
    pub response: Response,
    /// The client transaction: an INVITE's, in Accepted, hands [`Dialog::confirm`] the
    /// 2xx retransmissions to ACK.
    pub tx: ClientTx,
}

#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    /// Our side, with our tag: From in our requests.
    pub local: NameAddr,
    /// The far side, with its tag: To in our requests.
    pub remote: NameAddr,
    /// Where in-dialog requests go: the far side's Contact.
    pub remote_target: Uri,
    /// Route header values, in the order our requests carry them.
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
    /// Our Contact, for re-INVITEs and their answers.
    pub contact: String,
    /// What challenges to our requests are answered with; None: they end the request.
    pub credentials: Option<Credentials>,
    /// Challenges answered so far, answered again on each request (RFC 3261 §22.3).
    pub auth: AuthSession,
}

fn contact_uri(h: &Headers) -> Option<Uri> {
    h.get(&Name::Contact)
        .and_then(|c| NameAddr::parse(c).ok())
        .map(|c| c.uri)
}

impl Dialog {
    /// The UAC's dialog from a 2xx (or a 1xx with a To tag) to its INVITE.
    pub fn from_response(invite: &Request, resp: &Response, contact: String) -> Option<Dialog> {
        let remote = resp.to()?;
        remote.tag()?;
        let mut route_set: Vec<String> = resp
            .headers
            .all(&Name::RecordRoute)
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Some(Dialog {
            call_id: invite.call_id()?.to_string(),
            local: invite.from()?,
            remote,
            remote_target: contact_uri(&resp.headers)?,
            route_set,
            local_cseq: invite.cseq()?.seq,
            remote_cseq: None,
            contact,
            credentials: None,
            auth: AuthSession::default(),
        })
    }

    /// The UAS's dialog from an INVITE it answers, with the To tag it chose.
    pub fn from_request(req: &Request, local_tag: &str, contact: String) -> Option<Dialog> {
        let mut local = req.to()?;
        local.set_param("tag", Some(local_tag.to_string()));
        Some(Dialog {
            call_id: req.call_id()?.to_string(),
            local,
            remote: req.from()?,
            remote_target: contact_uri(&req.headers)?,
            route_set: req
                .headers
                .all(&Name::RecordRoute)
                .map(str::to_string)
                .collect(),
            local_cseq: fastrand::u32(1..1 << 16),
            remote_cseq: req.cseq().map(|c| c.seq),
            contact,
            credentials: None,
            auth: AuthSession::default(),
        })
    }

    /// Whether `req` belongs to this dialog (Call-ID and both tags).
    pub fn matches(&self, req: &Request) -> bool {
        req.call_id() == Some(self.call_id.as_str())
            && req.to().is_some_and(|t| t.tag() == self.local.tag())
            && req.from().is_some_and(|f| f.tag() == self.remote.tag())
    }

    /// Takes the CSeq of a request from the far side: false when it is older than one
    /// already taken (RFC 3261 §12.2.2: answer 500). ACK and CANCEL reuse the INVITE's.
    pub fn take_remote_cseq(&mut self, req: &Request) -> bool {
        let Some(seq) = req.cseq().map(|c| c.seq) else {
            return false;
        };
        if matches!(req.method, Method::Ack | Method::Cancel) {
            return true;
        }
        if self.remote_cseq.is_some_and(|r| seq < r) {
            return false;
        }
        self.remote_cseq = Some(seq);
        true
    }

    /// A new request in the dialog. ACK reuses the INVITE's CSeq number; others count up.
    pub fn request(&mut self, method: Method, invite_cseq: Option<u32>) -> Request {
        let seq = match (&method, invite_cseq) {
            (Method::Ack, Some(n)) => n,
            _ => {
                self.local_cseq += 1;
                self.local_cseq
            }
        };
        let mut h = Headers::default();
        h.push(Name::MaxForwards, "70");
        h.push(Name::From, self.local.to_string());
        h.push(Name::To, self.remote.to_string());
        h.push(Name::CallId, self.call_id.clone());
        h.push(Name::CSeq, format!("{seq} {method}"));
        for r in &self.route_set {
            h.push(Name::Route, r.clone());
        }
        if method != Method::Ack {
            h.push(Name::Contact, self.contact.clone());
        }
        Request {
            method,
            uri: self.remote_target.clone(),
            headers: h,
            body: Vec::new(),
        }
    }

    /// Sends `req` (made by [`Dialog::request`], with its body) and waits for its final
    /// answer. A 401/407 is answered with the dialog's credentials and the request sent
    /// again with the next CSeq; a wrong password ends it with [`DialogError::Auth`].
    pub async fn transact(
        &mut self,
        ep: &Endpoint,
        mut req: Request,
    ) -> Result<Exchange, DialogError> {
        self.auth.next_request();
        loop {
            self.auth.authorize(&mut req, self.credentials.as_ref());
            let hop = self.next_hop(ep).await.map_err(DialogError::Route)?;
            let mut tx = ep.request(req.clone(), hop).await?;
            let response = tx.final_response().await?;
            if matches!(response.code, 401 | 407) {
                self.auth.challenged(&response, self.credentials.as_ref())?;
                self.local_cseq += 1;
                req.headers
                    .set(Name::CSeq, format!("{} {}", self.local_cseq, req.method));
                continue;
            }
            return Ok(Exchange {
                request: req,
                response,
                tx,
            });
        }
    }

    /// Sends `req` (made by [`Dialog::request`]) in a task of its own: its transaction and
    /// any challenge finish there, and a refusal or failure is logged. For requests whose
    /// answer changes nothing here (BYE, PRACK): a far side that never answers must not
    /// hold anyone up for 64·T1.
    pub fn send_detached(&self, ep: &Endpoint, req: Request) {
        let (mut d, ep) = (self.clone(), ep.clone());
        tokio::spawn(async move {
            let method = req.method.clone();
            match d.transact(&ep, req).await {
                Ok(x) if x.response.code >= 300 => tracing::info!(
                    "{method} in {} answered {} {}",
                    d.call_id,
                    x.response.code,
                    x.response.reason
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("{method} in {} failed: {e}", d.call_id),
            }
        });
    }

    /// Gives `req` the next CSeq, to send it again as a new request (after a challenge, a
    /// 422).
    pub fn renumber(&mut self, req: &mut Request) {
        self.local_cseq += 1;
        req.headers
            .set(Name::CSeq, format!("{} {}", self.local_cseq, req.method));
    }

    /// The ACK for the 2xx to `invite` (its CSeq, its credentials: RFC 3261 §13.2.2.4).
    pub fn ack_for(&mut self, invite: &Request) -> Request {
        let mut ack = self.request(Method::Ack, invite.cseq().map(|c| c.seq));
        for name in [Name::Authorization, Name::ProxyAuthorization] {
            for v in invite.headers.all(&name) {
                ack.headers.push(name.clone(), v);
            }
        }
        ack
    }

    /// Sends the ACK for the 2xx `exchange` got, and again for each retransmission of it
    /// until Timer M (a lost ACK would make the far side end the call). A 2xx from another
    /// fork of the INVITE is ACKed and ended with a BYE: this dialog is the call.
    pub async fn confirm(&mut self, ep: &Endpoint, exchange: Exchange) {
        let Exchange {
            request: invite,
            tx,
            ..
        } = exchange;
        let ack = self.ack_for(&invite);
        let hop = match self.next_hop(ep).await {
            Ok(hop) => hop,
            Err(e) => return tracing::warn!("ACK not sent: {e}"),
        };
        if let Err(e) = ep.send_ack(ack.clone(), hop).await {
            tracing::warn!("ACK not sent: {e}");
        }
        // The transaction holds the INVITE too; and of the dialog, only what a second
        // fork's would take from it. Accepted lasts Timer M (32 s) after every call's
        // answer: a dialer's hundred calls a second keep 3,200 of these tasks.
        let forks = Box::new(ForkKit {
            ours: self.remote.tag().map(str::to_string),
            contact: self.contact.clone(),
            credentials: self.credentials.clone(),
            auth: self.auth.clone(),
        });
        tokio::spawn(reack(ep.clone(), forks, tx, ack, hop));
    }

    /// Where in-dialog requests are sent: the first route (loose routing), else the target.
    pub async fn next_hop(&self, ep: &Endpoint) -> Result<Target, String> {
        let uri = match self.route_set.first() {
            Some(r) => {
                NameAddr::parse(r)
                    .map_err(|e| format!("bad route {r}: {e}"))?
                    .uri
            }
            None => self.remote_target.clone(),
        };
        match uri {
            Uri::Sip(u) => ep.locator().resolve(&u).await,
            other => Err(format!("cannot send to {other}")),
        }
    }
}

/// What a second fork's dialog takes from ours, and our far side's tag.
struct ForkKit {
    ours: Option<String>,
    contact: String,
    credentials: Option<Credentials>,
    auth: AuthSession,
}

/// Accepted (RFC 6026): ACKs each further 2xx to the INVITE until Timer M; one from
/// another fork gets its own ACK and a BYE. (What is sent is boxed: this task lives 32 s
/// after every answer, at the size of its largest await.)
async fn reack(ep: Endpoint, forks: Box<ForkKit>, mut tx: ClientTx, ack: Request, hop: Target) {
    let mut ended_forks = Vec::new();
    while let Ok(r) = tx.response().await {
        let tag = r.to().and_then(|t| t.tag().map(str::to_string));
        // Each with a Via of its own: a far side that takes a byte-identical ACK for a
        // retransmission (SIPp does) would answer it with the 200 again, and again.
        if tag == forks.ours {
            let _ = Box::pin(ep.send_ack(ack.clone(), hop)).await;
            continue;
        }
        // A fork's retransmitted 2xx: its ACK and BYE are on their way already.
        if ended_forks.contains(&tag) {
            continue;
        }
        ended_forks.push(tag.clone());
        Box::pin(end_fork(&ep, &forks, tx.request(), &r, tag)).await;
    }
}

/// ACKs a second fork's 2xx and ends its dialog with a BYE: this call has one already.
async fn end_fork(
    ep: &Endpoint,
    forks: &ForkKit,
    invite: &Request,
    r: &Response,
    tag: Option<String>,
) {
    let Some(mut fork) = Dialog::from_response(invite, r, forks.contact.clone()) else {
        return;
    };
    tracing::info!(
        "a second fork answered ({}); ACK and BYE it",
        tag.unwrap_or_default()
    );
    fork.credentials = forks.credentials.clone();
    fork.auth = forks.auth.clone();
    let ack = fork.ack_for(invite);
    if let Ok(fork_hop) = fork.next_hop(ep).await {
        let _ = ep.send_ack(ack, fork_hop).await;
        let bye = fork.request(Method::Bye, None);
        fork.send_detached(ep, bye);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::request;

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@a.example>;tag=a1\r\nTo: <sip:bob@b.example>\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\nContact: <sip:alice@10.0.0.1>\r\nRecord-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\nContent-Length: 0\r\n\r\n";

    fn req() -> Request {
        request(INVITE)
    }

    #[test]
    fn uas_dialog_routes_in_record_route_order() {
        let r = req();
        let mut d = Dialog::from_request(&r, "b1", "<sip:bob@10.0.0.2>".into()).unwrap();
        let bye = d.request(Method::Bye, None);
        assert_eq!(bye.uri.to_string(), "sip:alice@10.0.0.1");
        assert_eq!(
            bye.headers.all(&Name::Route).collect::<Vec<_>>(),
            ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
        );
        assert_eq!(bye.from().unwrap().tag(), Some("b1"));
        assert_eq!(bye.to().unwrap().tag(), Some("a1"));
        assert!(d.matches(&{
            let mut x = r.clone();
            x.headers.set_first(Name::To, "<sip:bob@b.example>;tag=b1");
            x
        }));
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_acks_with_invite_cseq() {
        let r = req();
        let mut resp = r.response(200, "OK");
        resp.headers
            .set_first(Name::To, "<sip:bob@b.example>;tag=b9");
        // The 200 carries the INVITE's Record-Route (Request::response copies it).
        resp.headers.push(Name::Contact, "<sip:bob@10.0.0.2:5070>");
        let mut d = Dialog::from_response(&r, &resp, "<sip:alice@10.0.0.1>".into()).unwrap();
        let ack = d.request(Method::Ack, Some(5));
        assert_eq!(ack.cseq().unwrap().seq, 5);
        assert_eq!(ack.uri.to_string(), "sip:bob@10.0.0.2:5070");
        assert_eq!(
            ack.headers.all(&Name::Route).collect::<Vec<_>>(),
            ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
        );
        assert_eq!(d.request(Method::Bye, None).cseq().unwrap().seq, 6);
    }
}
