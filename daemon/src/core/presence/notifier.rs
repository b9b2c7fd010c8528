//! Those who follow our presence: every SUBSCRIBE to it is answered here, each accepted
//! one becomes a dialog that gets a NOTIFY now, on every change of our status, and a last
//! one when it ends (expired, unsubscribed, or the daemon stopping).

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{Presence, PresenceStatus, Sharing, answer};
use crate::core::pidf;
use crate::sip::dialog::Dialog;
use crate::sip::message::{Method, Name, SipHeaders, reason_phrase};
use crate::sip::transaction::{Endpoint, TuRequest, random_token};

/// The longest subscription we grant, and the shortest we take (RFC 6665 §4.2.1.1).
const MAX_EXPIRES: u32 = 3600;
const MIN_EXPIRES: u32 = 60;
/// Followers at once; more are answered 503 rather than let memory grow.
const MAX_WATCHERS: usize = 1000;
/// A refused NOTIFY is sent again this much later (times the refusals), this many times.
const RETRY: Duration = Duration::from_secs(2);
const RETRIES: u32 = 3;

pub(in crate::core) enum Msg {
    /// Any SUBSCRIBE for our presence; `allowed` says whether a new one may be granted,
    /// `entity` is the address it is about.
    Subscribe {
        req: Box<TuRequest>,
        allowed: bool,
        entity: String,
    },
    /// A NOTIFY to a follower was answered (or not: None).
    Sent(String, Option<u16>),
    /// Time to send a follower the state again, after a refused NOTIFY.
    Again(String),
    /// Who may follow now; the others are ended.
    Recheck(Sharing),
    /// Ends every subscription (with a last NOTIFY) and stops.
    Stop(oneshot::Sender<()>),
}

struct Watcher {
    dialog: Dialog,
    entity: String,
    until: Instant,
    /// A NOTIFY is on its way; another waits for its answer, so that they arrive in order.
    sending: bool,
    /// Our status changed while one was on its way.
    dirty: bool,
    /// NOTIFYs refused in a row.
    refused: u32,
}

/// `own` is our presence as the user sets it: every change reaches every follower.
pub(in crate::core) fn start(ep: Endpoint, own: watch::Receiver<Presence>) -> mpsc::Sender<Msg> {
    let (tx, rx) = mpsc::channel(64);
    let n = Notifier {
        ep,
        own,
        watchers: HashMap::new(),
        me: tx.clone(),
    };
    tokio::spawn(n.run(rx));
    tx
}

struct Notifier {
    ep: Endpoint,
    own: watch::Receiver<Presence>,
    watchers: HashMap<String, Watcher>,
    me: mpsc::Sender<Msg>,
}

impl Notifier {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            let next = self.watchers.values().map(|w| w.until).min();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Subscribe { req, allowed, entity }) => {
                        self.subscribe(*req, allowed, entity).await;
                    }
                    Some(Msg::Sent(k, code)) => self.sent(&k, code),
                    Some(Msg::Again(k)) => {
                        self.notify(&k, None);
                    }
                    Some(Msg::Recheck(sharing)) => {
                        let refused: Vec<String> = self
                            .watchers
                            .iter()
                            .filter(|(_, w)| {
                                let from = match &w.dialog.remote.uri {
                                    crate::sip::uri::Uri::Sip(u) => Some(u),
                                    _ => None,
                                };
                                !sharing.allows(from)
                            })
                            .map(|(k, _)| k.clone())
                            .collect();
                        for k in refused {
                            tracing::info!("presence follower {k} no longer allowed");
                            self.notify(&k, Some("rejected"));
                        }
                    }
                    Some(Msg::Stop(done)) => {
                        let mut sent = Vec::new();
                        let keys: Vec<String> = self.watchers.keys().cloned().collect();
                        for k in keys {
                            sent.extend(self.notify(&k, Some("deactivated")));
                        }
                        let _ = tokio::time::timeout(
                            Duration::from_secs(2),
                            futures_join(sent),
                        )
                        .await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                changed = self.own.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let keys: Vec<String> = self.watchers.keys().cloned().collect();
                    for k in keys {
                        self.notify(&k, None);
                    }
                }
                _ = sleep_until(next) => {
                    let now = Instant::now();
                    let over: Vec<String> = self
                        .watchers
                        .iter()
                        .filter(|(_, w)| w.until <= now)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in over {
                        self.notify(&k, Some("timeout"));
                    }
                }
            }
        }
    }

    async fn subscribe(&mut self, tu: TuRequest, allowed: bool, entity: String) {
        let req = &tu.request;
        let event = req.headers.get(&Name::Event).unwrap_or_default();
        let package = event.split(';').next().unwrap_or_default().trim();
        if !package.eq_ignore_ascii_case("presence") {
            let mut r = req.response(489, reason_phrase(489));
            r.headers.push(Name::AllowEvents, "presence");
            crate::sip::capabilities::add_to_tag(&mut r);
            return tu.tx.respond(r).await;
        }
        let expires = req
            .headers
            .get(&Name::Expires)
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(MAX_EXPIRES)
            .min(MAX_EXPIRES);
        if expires != 0 && expires < MIN_EXPIRES {
            let mut r = req.response(423, reason_phrase(423));
            r.headers.push(Name::MinExpires, MIN_EXPIRES.to_string());
            crate::sip::capabilities::add_to_tag(&mut r);
            return tu.tx.respond(r).await;
        }
        let in_dialog = req.to().is_some_and(|t| t.tag().is_some());
        let key = if in_dialog {
            match self
                .watchers
                .iter()
                .find(|(_, w)| w.dialog.matches(req))
                .map(|(k, _)| k.clone())
            {
                // No longer allowed (presence.share, or no longer a contact): ended now.
                Some(k) if !allowed => {
                    answer(&tu, 403).await;
                    self.notify(&k, Some("rejected"));
                    return;
                }
                Some(k) => k,
                None => return answer(&tu, 481).await,
            }
        } else {
            if !allowed {
                tracing::info!(
                    "presence SUBSCRIBE from {} refused (presence.share)",
                    req.from().map_or_else(String::new, |f| f.uri.to_string())
                );
                return answer(&tu, 403).await;
            }
            let accepts = req.headers.all(&Name::Accept).collect::<Vec<_>>();
            if !accepts.is_empty()
                && !accepts.iter().any(|a| {
                    let a = a.to_ascii_lowercase();
                    a.contains(pidf::CONTENT_TYPE)
                        || a.contains("*/*")
                        || a.contains("application/*")
                })
            {
                return answer(&tu, 406).await;
            }
            if self.watchers.len() >= MAX_WATCHERS {
                return answer(&tu, 503).await;
            }
            let tag = random_token(10);
            // Our Contact: our address towards the follower's.
            let Some(mut dialog) = Dialog::from_request(req, &tag, String::new()) else {
                return answer(&tu, 400).await;
            };
            // A name in the route may need a DNS lookup: bounded, as every follower waits.
            let hop = tokio::time::timeout(Duration::from_secs(2), dialog.next_hop(&self.ep)).await;
            let Some((public, target)) = hop
                .ok()
                .and_then(Result::ok)
                .and_then(|t| Some((self.ep.transport().public_for(t)?, t)))
            else {
                return answer(&tu, 480).await;
            };
            let user = req
                .uri
                .to_string()
                .strip_prefix("sip:")
                .and_then(|u| u.split_once('@'))
                .map_or_else(|| "voipd".to_string(), |(u, _)| u.to_string());
            dialog.contact = crate::core::calls::contact(&user, public, target);
            let key = format!(
                "{};{}",
                dialog.call_id,
                dialog.remote.tag().unwrap_or_default()
            );
            tracing::info!("{} follows our presence", dialog.remote.uri);
            self.watchers.insert(
                key.clone(),
                Watcher {
                    dialog,
                    entity,
                    until: Instant::now(),
                    sending: false,
                    dirty: false,
                    refused: 0,
                },
            );
            key
        };
        let Some(w) = self.watchers.get_mut(&key) else {
            return;
        };
        w.dialog.remote_cseq = req.cseq().map(|c| c.seq);
        w.until = Instant::now() + Duration::from_secs(u64::from(expires));
        let mut ok = req.response(200, "OK");
        ok.headers.set_first(Name::To, w.dialog.local.to_string());
        ok.headers.push(Name::Contact, w.dialog.contact.clone());
        ok.headers.push(Name::Expires, expires.to_string());
        tu.tx.respond(ok).await;
        // A NOTIFY follows every accepted SUBSCRIBE, the last one with the state final.
        self.notify(&key, (expires == 0).then_some("timeout"));
    }

    /// Sends the current state to one follower; with `ended`, the last NOTIFY (and the
    /// follower is dropped). Returns the sending task.
    fn notify(
        &mut self,
        key: &str,
        ended: Option<&'static str>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let (mut dialog, entity, until) = match ended {
            // The last one goes at once, whatever is on its way.
            Some(_) => {
                let w = self.watchers.remove(key)?;
                (w.dialog, w.entity, w.until)
            }
            None => {
                let w = self.watchers.get_mut(key)?;
                if w.sending {
                    w.dirty = true;
                    return None;
                }
                w.sending = true;
                w.dirty = false;
                // Counted on the kept dialog, so that the next one has a higher CSeq.
                w.dialog.local_cseq += 1;
                let mut d = w.dialog.clone();
                d.local_cseq -= 1;
                (d, w.entity.clone(), w.until)
            }
        };
        let mut req = dialog.request(Method::Notify, None);
        let left = until.saturating_duration_since(Instant::now()).as_secs();
        let state = match ended {
            Some(reason) => format!("terminated;reason={reason}"),
            None => format!("active;expires={left}"),
        };
        // Stopping: we are offline from now on; refused: it may no longer see ours.
        let own = if matches!(ended, Some("deactivated" | "rejected")) {
            Presence::now(PresenceStatus::Offline, String::new())
        } else {
            self.own.borrow().clone()
        };
        req.headers.push(Name::Event, "presence");
        req.headers.push(Name::SubscriptionState, state);
        req.headers.push(Name::ContentType, pidf::CONTENT_TYPE);
        req.body = pidf::write(&entity, own.status, &own.note).into_bytes();
        let (ep, me, key) = (self.ep.clone(), self.me.clone(), key.to_string());
        Some(tokio::spawn(async move {
            let answered = async {
                let target = dialog.next_hop(&ep).await.ok()?;
                let mut tx = ep.request(req, target).await.ok()?;
                tx.final_response().await.ok().map(|r| r.code)
            }
            .await;
            if ended.is_none() {
                let _ = me.send(Msg::Sent(key, answered)).await;
            }
        }))
    }

    /// A NOTIFY's answer: the follower is gone (481, or none at all, or refusals again
    /// and again), the same is tried again a little later (a refusal), or the next may go.
    fn sent(&mut self, key: &str, code: Option<u16>) {
        let Some(w) = self.watchers.get_mut(key) else {
            return;
        };
        w.sending = false;
        match code {
            Some(200..=299) => {
                w.refused = 0;
                if w.dirty {
                    self.notify(key, None);
                }
            }
            Some(c) if c != 481 && w.refused < RETRIES => {
                w.refused += 1;
                let (me, key, wait) = (self.me.clone(), key.to_string(), RETRY * w.refused);
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = me.send(Msg::Again(key)).await;
                });
            }
            _ => {
                tracing::info!("presence follower {key} gone ({code:?})");
                self.watchers.remove(key);
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}
