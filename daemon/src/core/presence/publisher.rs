//! Publishing our presence to the account's server (PUBLISH, RFC 3903), so that watchers
//! who ask the server rather than us learn it: once registered, on every change of our
//! status, refreshed before it expires, and withdrawn when we stop. A server that does not
//! take PUBLISH (405, 489, 501) is not asked again until the account registers anew.

use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::{Presence, Stoppable, refresh_at};
use crate::config::Account;
use crate::core::pidf;
use crate::core::request::{credentials, outbound};
use crate::sip::auth::{AuthSession, Credentials};
use crate::sip::message::{Method, Name, Response};
use crate::sip::transaction::{Endpoint, random_token};

/// How long a publication lasts; refreshed well before.
const EXPIRES: u32 = 3600;
const RETRY: Duration = Duration::from_secs(30);
const LONGEST_RETRY: Duration = Duration::from_secs(600);

pub(in crate::core) struct Publisher(Stoppable);

impl Publisher {
    pub(in crate::core) fn start(
        ep: Endpoint,
        account: Account,
        own: watch::Receiver<Presence>,
    ) -> Publisher {
        let p = Publishing {
            ep,
            creds: credentials(&account),
            account,
            call_id: format!("{}@voipd", random_token(20)),
            cseq: 0,
            etag: None,
            auth: AuthSession::default(),
        };
        Publisher(Stoppable::spawn(|stop| p.run(own, stop)))
    }

    /// Withdraws the publication.
    pub(in crate::core) async fn stop(self) {
        self.0.stop().await;
    }
}

struct Publishing {
    ep: Endpoint,
    account: Account,
    call_id: String,
    cseq: u32,
    /// The server's name for our publication, for refreshing, changing and removing it.
    etag: Option<String>,
    creds: Option<Credentials>,
    auth: AuthSession,
}

enum Outcome {
    Published(u32),
    /// The server does not take PUBLISH for presence.
    Unsupported(u16),
    /// No answer or a passing failure: try again later.
    Failed(u16),
}

impl Publishing {
    async fn run(mut self, mut own: watch::Receiver<Presence>, mut stop: oneshot::Receiver<()>) {
        // Send the document now; later only when it changes (a refresh carries none).
        let mut body = true;
        let mut wait = RETRY;
        loop {
            let doc = body.then(|| {
                let p = own.borrow_and_update().clone();
                pidf::write(&self.account.aor.0.to_string(), p.status, &p.note)
            });
            let next = match self.publish(doc, EXPIRES).await {
                Outcome::Published(expires) => {
                    if body {
                        tracing::info!(
                            account = self.account.id.as_str(),
                            "presence published: {}",
                            own.borrow().status.as_str()
                        );
                    }
                    wait = RETRY;
                    body = false;
                    refresh_at(expires)
                }
                Outcome::Unsupported(code) => {
                    tracing::info!(
                        account = self.account.id.as_str(),
                        "the server does not take PUBLISH ({code}); presence is not published"
                    );
                    let _ = stop.await;
                    return;
                }
                Outcome::Failed(code) => {
                    tracing::info!(
                        account = self.account.id.as_str(),
                        "PUBLISH failed ({code}); trying again in {wait:?}"
                    );
                    // The next try carries the document, still for our publication (its
                    // tag is dropped only when the server says it forgot it: 412), so
                    // that no second one is made beside it. After a 412: at once.
                    body = true;
                    if code == 412 {
                        Instant::now()
                    } else {
                        let at = Instant::now() + wait;
                        wait = (wait * 2).min(LONGEST_RETRY);
                        at
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                changed = own.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    body = true;
                }
                _ = &mut stop => {
                    if self.etag.is_some() {
                        self.publish(None, 0).await;
                    }
                    return;
                }
            }
        }
    }

    /// One PUBLISH (with `doc`, or a refresh without), answering challenges (and
    /// carrying the answers on later PUBLISHes).
    async fn publish(&mut self, doc: Option<String>, expires: u32) -> Outcome {
        self.auth.next_request();
        for _ in 0..3 {
            let r = match self.attempt(doc.as_deref(), expires).await {
                Some(r) => r,
                None => return Outcome::Failed(408),
            };
            match r.code {
                200..=299 => {
                    self.etag = r.headers.get(&Name::SipETag).map(str::to_string);
                    let granted = r
                        .headers
                        .get(&Name::Expires)
                        .and_then(|e| e.trim().parse().ok())
                        .unwrap_or(expires);
                    return Outcome::Published(granted.max(1));
                }
                401 | 407 => {
                    if let Err(e) = self.auth.challenged(&r, self.creds.as_ref()) {
                        tracing::warn!(account = %self.account.id, "PUBLISH: {e}");
                        return Outcome::Failed(r.code);
                    }
                }
                // The server forgot our publication: start a new one (with the document).
                412 => {
                    self.etag = None;
                    return Outcome::Failed(412);
                }
                403 | 404 | 405 | 489 | 501 => return Outcome::Unsupported(r.code),
                code => return Outcome::Failed(code),
            }
        }
        Outcome::Failed(401)
    }

    async fn attempt(&mut self, doc: Option<&str>, expires: u32) -> Option<Response> {
        self.cseq += 1;
        let aor = self.account.aor.0.clone();
        let out = outbound(
            &self.ep,
            Method::Publish,
            Some(&self.account),
            &aor,
            &self.call_id,
            self.cseq,
        )
        .await
        .ok()?;
        let mut req = out.request;
        req.headers.push(Name::Event, "presence");
        req.headers.push(Name::Expires, expires.to_string());
        if let Some(etag) = &self.etag {
            req.headers.push(Name::SipIfMatch, etag.clone());
        }
        self.auth.authorize(&mut req, self.creds.as_ref());
        if let Some(doc) = doc {
            req.headers.push(Name::ContentType, pidf::CONTENT_TYPE);
            req.body = doc.as_bytes().to_vec();
        }
        let mut tx = self.ep.request(req, out.target).await.ok()?;
        tx.final_response().await.ok()
    }
}
