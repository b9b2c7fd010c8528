//! Webhooks: every event a `[[webhook]]` is `on`, POSTed to it as the JSON `voipctl watch
//! --json` prints, in order, signed with HMAC-SHA256 when it has a secret. Each has a
//! bounded queue and a task that delivers from it, retrying with backoff while the
//! receiver is down; an adapter like the others, so a slow receiver holds up nothing else.

mod http;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;

use crate::config::Webhook;
use crate::core::{Event, PhoneHandle};
use http::{Client, Outcome};

/// The first retry comes after this long; each next one after twice as long…
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// …up to this.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How long what is queued at shutdown may take to go out.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// One event to deliver.
#[derive(Clone)]
struct Item {
    seq: u64,
    name: &'static str,
    body: Bytes,
}

/// A webhook's waiting events, oldest first.
struct Queue {
    items: Mutex<VecDeque<Item>>,
    ready: Notify,
    bound: usize,
    dropped: AtomicU64,
}

impl Queue {
    fn push(&self, hook: &str, item: Item) {
        let mut q = self.items.lock().unwrap_or_else(|e| e.into_inner());
        while q.len() >= self.bound {
            if let Some(old) = q.pop_front() {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    webhook = %hook,
                    "webhook {hook}: queue full ({} waiting), event {} ({}) dropped ({n} dropped since start)",
                    self.bound,
                    old.seq,
                    old.name
                );
            }
        }
        q.push_back(item);
        drop(q);
        self.ready.notify_one();
    }

    fn front(&self) -> Option<Item> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .front()
            .cloned()
    }

    /// Takes `seq` off the front, if the bound has not pushed it out meanwhile.
    fn done(&self, seq: u64) {
        let mut q = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if q.front().is_some_and(|i| i.seq == seq) {
            q.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

struct Sink {
    hook: Arc<Webhook>,
    queue: Arc<Queue>,
    task: tokio::task::AbortHandle,
}

/// Starts sending events to the webhooks (subscribed before this returns, so that
/// `daemon_started` goes out too) until the daemon stops; it owns the delivery tasks.
pub fn start(phone: PhoneHandle) -> tokio::task::JoinHandle<()> {
    let mut set = phone.hooks();
    let hooks = set.borrow_and_update().webhooks.clone();
    // Subscribed only while there are webhooks: `status` counts watchers.
    let events = (!hooks.is_empty()).then(|| phone.subscribe());
    tokio::spawn(serve(phone, set, hooks, events))
}

async fn serve(
    phone: PhoneHandle,
    mut set: tokio::sync::watch::Receiver<Arc<crate::core::HookSet>>,
    mut hooks: Vec<Webhook>,
    mut events: Option<broadcast::Receiver<Arc<Event>>>,
) {
    let mut tasks = JoinSet::new();
    let mut sinks = reconcile(Vec::new(), &hooks, &mut tasks);
    loop {
        tokio::select! {
            ev = super::next_event(&mut events) => match ev {
                Ok(ev) => queue(&sinks, &ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("webhooks fell {n} events behind; those events were not sent");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Ok(()) = set.changed() => {
                let now = set.borrow_and_update().webhooks.clone();
                if now != hooks {
                    hooks = now;
                    sinks = reconcile(sinks, &hooks, &mut tasks);
                    if sinks.is_empty() {
                        events = None;
                    } else if events.is_none() {
                        events = Some(phone.subscribe());
                    }
                }
            }
            Some(_) = tasks.join_next() => {}
            () = phone.stopped() => break,
        }
    }
    // What was emitted before the stop (shutting_down among it) goes out if it can.
    while let Some(Ok(ev)) = events.as_mut().map(broadcast::Receiver::try_recv) {
        queue(&sinks, &ev);
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while !sinks.iter().all(|s| s.queue.is_empty()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tasks.shutdown().await;
}

/// The sinks for `hooks`: the running ones kept with what waits in them where their
/// webhook is unchanged, new ones started, the others stopped.
fn reconcile(mut old: Vec<Sink>, hooks: &[Webhook], tasks: &mut JoinSet<()>) -> Vec<Sink> {
    let mut sinks = Vec::new();
    for h in hooks {
        if let Some(i) = old.iter().position(|s| *s.hook == *h) {
            sinks.push(old.swap_remove(i));
            continue;
        }
        let hook = Arc::new(h.clone());
        let client = match Client::new(hook.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(webhook = %h.name, "webhook {}: {e}; it gets no events", h.name);
                continue;
            }
        };
        let queue = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            bound: h.queue as usize,
            dropped: AtomicU64::new(0),
        });
        let task = tasks.spawn(deliver(hook.clone(), client, queue.clone()));
        sinks.push(Sink { hook, queue, task });
    }
    for gone in old {
        let waiting = gone
            .queue
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        if waiting > 0 {
            tracing::warn!(webhook = %gone.hook.name, "webhook {} changed or removed: {waiting} waiting events dropped", gone.hook.name);
        }
        gone.task.abort();
    }
    sinks
}

fn queue(sinks: &[Sink], ev: &Event) {
    let wanting: Vec<&Sink> = sinks.iter().filter(|s| s.hook.wants(ev.name)).collect();
    if wanting.is_empty() {
        return;
    }
    let Some(body) = super::event_json(ev).map(Bytes::from) else {
        return;
    };
    for s in wanting {
        s.queue.push(
            &s.hook.name,
            Item {
                seq: ev.seq,
                name: ev.name,
                body: body.clone(),
            },
        );
    }
}

/// `sha256=HEX` of the body under the secret, as GitHub's webhooks sign theirs.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in tag {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Delivers one webhook's queue in order, for as long as the webhook is configured.
async fn deliver(hook: Arc<Webhook>, mut client: Client, queue: Arc<Queue>) {
    let name = &hook.name;
    let mut backoff = FIRST_RETRY;
    let mut failures = 0u32;
    loop {
        let Some(item) = queue.front() else {
            queue.ready.notified().await;
            continue;
        };
        let mut headers = vec![
            ("x-voipd-event", item.name.to_string()),
            ("x-voipd-delivery", item.seq.to_string()),
        ];
        if let Some(secret) = &hook.secret {
            headers.push((
                "x-voipd-signature-256",
                signature(secret.expose(), &item.body),
            ));
        }
        let why = match client.post(item.body.clone(), &headers).await {
            Outcome::Status(s) if (200..300).contains(&s) => {
                if failures > 0 {
                    tracing::info!(webhook = %name, "webhook {name} takes events again after {failures} failed tries");
                }
                queue.done(item.seq);
                backoff = FIRST_RETRY;
                failures = 0;
                continue;
            }
            // The receiver refuses this event for good: trying again cannot help.
            Outcome::Status(s) if (400..500).contains(&s) && s != 408 && s != 429 => {
                tracing::warn!(webhook = %name, "webhook {name} refused event {} ({}) with {s}; dropped", item.seq, item.name);
                queue.done(item.seq);
                continue;
            }
            Outcome::Status(s) => format!("answered {s}"),
            Outcome::Failed(e) => e,
        };
        failures += 1;
        // Said the first time and now and then, not on every try of a long outage.
        if failures == 1 || failures.is_power_of_two() {
            tracing::warn!(
                webhook = %name,
                "webhook {name}: event {} not delivered ({why}); trying again in {:.1} s (try {failures})",
                item.seq,
                backoff.as_secs_f64()
            );
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts() {
        let q = Queue {
            items: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            bound: 2,
            dropped: AtomicU64::new(0),
        };
        for seq in 1..=5 {
            q.push(
                "t",
                Item {
                    seq,
                    name: "dtmf",
                    body: Bytes::new(),
                },
            );
        }
        assert_eq!(q.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(q.front().map(|i| i.seq), Some(4));
        q.done(3);
        assert_eq!(q.front().map(|i| i.seq), Some(4), "only the front is taken");
        q.done(4);
        assert_eq!(q.front().map(|i| i.seq), Some(5));
    }
}
