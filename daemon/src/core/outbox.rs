//! Sending text messages (SIP MESSAGE): each queued message has a task that sends it, answers
//! a digest challenge, and tries again with backoff while the network or the far side is
//! away, until a final answer says delivered or failed. The queue is the store: what was not
//! sent when the daemon stopped is sent when it starts again, under the same Call-ID.

use std::time::Duration;

use tokio::sync::mpsc;

use super::calls::CallUpdate;
use super::request::{credentials, outbound};
use crate::config::Account;
use crate::sip::auth::{AuthSession, Credentials};
use crate::sip::message::{Method, Name, Response};
use crate::sip::transaction::Endpoint;
use crate::sip::uri::SipUri;
use crate::store::{MessageEntry, Store};

/// Tries before giving up (about 17 minutes of backoff in all).
const ATTEMPTS: u32 = 10;
const FIRST_RETRY: Duration = Duration::from_secs(2);
const LONGEST_RETRY: Duration = Duration::from_secs(300);

pub(super) struct Outgoing {
    pub ep: Endpoint,
    pub store: Store,
    pub updates: mpsc::Sender<CallUpdate>,
    pub account: Option<Account>,
    pub entry: MessageEntry,
    pub sip_call_id: String,
}

/// Sends until a final answer, then records and announces the outcome.
pub(super) async fn deliver(o: Outgoing) {
    let (delivered, code) = send(&o).await;
    match o.store.message_sent(o.entry.id, delivered, code).await {
        Ok(entry) => {
            let _ = o
                .updates
                .send(CallUpdate::MessageChanged(Box::new(entry)))
                .await;
        }
        Err(e) => tracing::error!("message {}: outcome not recorded: {e}", o.entry.id),
    }
}

/// (delivered, SIP status); 408 when the far side could not be reached at all.
async fn send(o: &Outgoing) -> (bool, u16) {
    let Ok(uri) = o.entry.peer.parse::<SipUri>() else {
        return (false, 416);
    };
    let mut cseq = 1;
    let creds = o.account.as_ref().and_then(credentials);
    let mut auth = AuthSession::default();
    let mut wait = FIRST_RETRY;
    let mut last = 408;
    for _ in 0..ATTEMPTS {
        match attempt(o, &uri, cseq, &mut auth, creds.as_ref()).await {
            Some(r) if r.code < 300 => return (true, r.code),
            Some(r) if matches!(r.code, 401 | 407) => {
                if let Err(e) = auth.challenged(&r, creds.as_ref()) {
                    tracing::warn!("message {}: {e}", o.entry.id);
                    return (false, r.code);
                }
                cseq += 1;
                continue;
            }
            // Busy or briefly unavailable: worth another try later.
            Some(r) if matches!(r.code, 408 | 480 | 500 | 503 | 504) => last = r.code,
            Some(r) => return (false, r.code),
            None => last = 408,
        }
        tracing::info!(
            "message {} to {}: no delivery yet ({last}); trying again in {wait:?}",
            o.entry.id,
            o.entry.peer
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LONGEST_RETRY);
        cseq += 1;
        auth.next_request();
    }
    (false, last)
}

/// One MESSAGE and its final response; None when it got none (unreachable, timeout).
async fn attempt(
    o: &Outgoing,
    uri: &SipUri,
    cseq: u32,
    auth: &mut AuthSession,
    creds: Option<&Credentials>,
) -> Option<Response> {
    let out = outbound(
        &o.ep,
        Method::Message,
        o.account.as_ref(),
        uri,
        &o.sip_call_id,
        cseq,
    )
    .await
    .ok()?;
    let mut req = out.request;
    auth.authorize(&mut req, creds);
    req.headers
        .push(Name::ContentType, "text/plain;charset=UTF-8");
    req.body = o.entry.body.clone().into_bytes();
    let mut tx = o.ep.request(req, out.target).await.ok()?;
    tx.final_response().await.ok()
}
