//! Presence (RFC 3856 over RFC 6665 subscriptions, documents in PIDF): we follow each
//! contact's SIP address with a SUBSCRIBE of its own, and answer those who follow ours.
//! Followers are served by one task ([`notifier`]); each followed address has a task.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};

use super::calls::CallUpdate;
use super::contacts::ContactInfo;
use super::pidf;
use super::request::{answer_challenge, outbound};
use crate::config::{Account, AccountId};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Method, Name, Request, Response, SipHeaders, reason_phrase};
use crate::sip::transaction::{Endpoint, TuRequest, random_token};
use crate::sip::transport::Target;
use crate::sip::uri::SipUri;
use crate::store::Contact;

pub(super) mod notifier;
mod publisher;

/// Most available last, so that `max` picks what a contact shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub enum PresenceStatus {
    #[default]
    Unknown,
    Offline,
    Away,
    Busy,
    Online,
}

impl PresenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Unknown => "unknown",
            PresenceStatus::Offline => "offline",
            PresenceStatus::Away => "away",
            PresenceStatus::Busy => "busy",
            PresenceStatus::Online => "online",
        }
    }

    /// What a user may set for us (unknown is not a choice).
    pub fn settable(s: &str) -> Option<PresenceStatus> {
        match s.trim().to_ascii_lowercase().as_str() {
            "online" => Some(PresenceStatus::Online),
            "away" => Some(PresenceStatus::Away),
            "busy" => Some(PresenceStatus::Busy),
            "offline" => Some(PresenceStatus::Offline),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    pub status: PresenceStatus,
    pub note: String,
    /// When it was learnt (or set); None while unknown.
    pub since: Option<SystemTime>,
}

impl Presence {
    pub fn now(status: PresenceStatus, note: String) -> Presence {
        Presence {
            status,
            note,
            since: Some(SystemTime::now()),
        }
    }
}

/// What the core knows and does about presence: whom it follows, what it learnt, and who
/// is in the address book (for presence events and `presence.share`).
pub(super) struct Presences {
    known: HashMap<String, Presence>,
    following: HashMap<String, Follow>,
    by_call_id: HashMap<String, String>,
    /// Every contact, as last read from the store.
    contacts: Vec<Contact>,
    /// Which contact (index in `contacts`) a SIP user at a host is: calls, messages and
    /// followers are named through it, so it must not cost a scan.
    by_identity: HashMap<Identity, usize>,
    /// The same for numbers: a call from sip:+441865270000@pbx is that number's contact.
    by_number: HashMap<String, usize>,
    /// The account subscriptions are made from (they restart when it changes).
    from: Option<Account>,
    own: watch::Sender<Presence>,
    notifier: Option<mpsc::Sender<notifier::Msg>>,
    publishers: HashMap<AccountId, (Account, publisher::Publisher)>,
}

impl Presences {
    pub(super) fn new() -> Presences {
        Presences {
            known: HashMap::new(),
            following: HashMap::new(),
            by_call_id: HashMap::new(),
            contacts: Vec::new(),
            by_identity: HashMap::new(),
            by_number: HashMap::new(),
            from: None,
            own: watch::Sender::new(Presence::now(PresenceStatus::Online, String::new())),
            notifier: None,
            publishers: HashMap::new(),
        }
    }

    /// The account subscriptions are made from.
    pub(super) fn from(&self) -> Option<&Account> {
        self.from.as_ref()
    }

    /// Publishes our presence through each of `registered` (when `enabled`), and stops
    /// publishing through the others.
    pub(super) fn publish(
        &mut self,
        ep: Option<&Endpoint>,
        registered: Vec<Account>,
        enabled: bool,
    ) {
        let wanted: Vec<Account> = match ep {
            Some(_) if enabled => registered,
            _ => Vec::new(),
        };
        // Gone, or changed in a reload (a new password or proxy): withdrawn.
        let gone: Vec<AccountId> = self
            .publishers
            .iter()
            .filter(|(_, (running, _))| !wanted.contains(running))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some((_, p)) = self.publishers.remove(&id) {
                tokio::spawn(p.stop());
            }
        }
        let Some(ep) = ep else { return };
        for a in wanted {
            if !self.publishers.contains_key(&a.id) {
                let p = publisher::Publisher::start(ep.clone(), a.clone(), self.own.subscribe());
                self.publishers.insert(a.id.clone(), (a, p));
            }
        }
    }

    /// Follows every contact's SIP address (when `subscribe`), as `account`; stops
    /// following the rest.
    pub(super) fn follow(
        &mut self,
        contacts: Option<Vec<Contact>>,
        subscribe: bool,
        ep: Option<&Endpoint>,
        account: Option<Account>,
        updates: &mpsc::Sender<CallUpdate>,
    ) {
        if let Some(c) = contacts {
            self.by_identity.clear();
            self.by_number.clear();
            for (i, contact) in c.iter().enumerate() {
                for a in &contact.addresses {
                    // The first contact with an address keeps it.
                    match a.parse::<SipUri>() {
                        Ok(u) => self.by_identity.entry(identity(&u)).or_insert(i),
                        Err(_) => self.by_number.entry(a.clone()).or_insert(i),
                    };
                }
            }
            self.contacts = c;
        }
        if account != self.from {
            // Subscriptions made as another account (or with its old settings) are made
            // again.
            self.stop_following(|_| true);
            self.from = account.clone();
        }
        let wanted: HashSet<String> = match ep {
            Some(_) if subscribe => self
                .contacts
                .iter()
                .flat_map(|c| c.addresses.iter())
                .filter(|a| a.starts_with("sip:") || a.starts_with("sips:"))
                .cloned()
                .collect(),
            _ => HashSet::new(),
        };
        self.stop_following(|a| !wanted.contains(a));
        self.known
            .retain(|a, _| wanted.contains(a) || self.following.contains_key(a));
        let Some(ep) = ep else { return };
        let mut started = 0;
        for address in wanted {
            if self.following.contains_key(&address) {
                continue;
            }
            let Ok(uri) = address.parse::<SipUri>() else {
                continue;
            };
            // Twenty new subscriptions a second at most: a thousand contacts do not trip
            // a proxy's flood guard.
            let delay = STAGGER * started;
            started += 1;
            let f = Follow::start(ep.clone(), account.clone(), uri, updates.clone(), delay);
            self.by_call_id.insert(f.call_id.clone(), address.clone());
            self.following.insert(address, f);
        }
    }

    fn stop_following(&mut self, which: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self
            .following
            .keys()
            .filter(|a| which(a))
            .cloned()
            .collect();
        for a in gone {
            if let Some(f) = self.following.remove(&a) {
                self.by_call_id.remove(&f.call_id);
                tokio::spawn(f.stop());
            }
        }
    }

    /// Hands a NOTIFY to the subscription it is for; one for none is answered 481.
    pub(super) fn route(&self, req: TuRequest) {
        let f = req
            .request
            .call_id()
            .and_then(|c| self.by_call_id.get(c))
            .and_then(|a| self.following.get(a));
        let refused = match f {
            Some(f) => match f.requests.try_send(req) {
                Ok(()) => return,
                // A follower far behind: the notifier may try again later.
                Err(e) => (e.into_inner(), 500),
            },
            None => (req, 481),
        };
        tokio::spawn(async move { answer(&refused.0, refused.1).await });
    }

    /// Records what was learnt of `address`; returns the contacts it changes.
    pub(super) fn learnt(&mut self, address: String, p: Presence) -> Vec<ContactInfo> {
        if !self.following.contains_key(&address) {
            return Vec::new();
        }
        self.known.insert(address.clone(), p);
        self.contacts
            .iter()
            .filter(|c| c.addresses.contains(&address))
            .map(|c| self.info(c.clone()))
            .collect()
    }

    /// A contact with its presence: the most available of its addresses'.
    pub(super) fn info(&self, contact: Contact) -> ContactInfo {
        let presence = contact
            .addresses
            .iter()
            .filter_map(|a| self.known.get(a))
            .max_by_key(|p| p.status)
            .cloned()
            .unwrap_or_default();
        ContactInfo { contact, presence }
    }

    /// The contact with `uri` among its addresses: the same user at the same host (ports
    /// and parameters do not name a person).
    pub(super) fn contact_of(&self, uri: &SipUri) -> Option<&Contact> {
        let number = || {
            let user = uri.user.as_deref()?;
            let n = super::contacts::normalise_address(user).ok()?;
            self.by_number.get(&n)
        };
        self.by_identity
            .get(&identity(uri))
            .or_else(number)
            .and_then(|&i| self.contacts.get(i))
    }

    /// The name of the contact whose address `uri` (text, as calls and messages keep it) is.
    pub(super) fn name_of(&self, uri: &str) -> Option<String> {
        let u = uri.parse::<SipUri>().ok()?;
        self.contact_of(&u).map(|c| c.name.clone())
    }

    /// The notifier, started on first use.
    pub(super) fn notifier(&mut self, ep: &Endpoint) -> &mpsc::Sender<notifier::Msg> {
        let own = self.own.subscribe();
        self.notifier
            .get_or_insert_with(|| notifier::start(ep.clone(), own))
    }

    pub(super) fn own(&self) -> Presence {
        self.own.borrow().clone()
    }

    /// Followers and publishers watch it: none misses a change.
    pub(super) fn set_own(&mut self, p: Presence) {
        self.own.send_replace(p);
    }

    /// Ends all subscriptions, both ways, and waits (briefly) for that to be said.
    pub(super) async fn shutdown(&mut self) {
        let follows: Vec<Follow> = self.following.drain().map(|(_, f)| f).collect();
        self.by_call_id.clear();
        let notifier = self.notifier.take();
        let told = async {
            if let Some(n) = notifier {
                let (done, wait) = oneshot::channel();
                if n.send(notifier::Msg::Stop(done)).await.is_ok() {
                    let _ = wait.await;
                }
            }
        };
        let publishers: Vec<_> = self.publishers.drain().map(|(_, (_, p))| p).collect();
        // All at once: each may wait up to two seconds for its goodbye.
        let mut all = tokio::task::JoinSet::new();
        for f in follows {
            all.spawn(f.stop());
        }
        for p in publishers {
            all.spawn(p.stop());
        }
        let stopped = async { while all.join_next().await.is_some() {} };
        tokio::join!(told, stopped);
    }
}

/// A SIP user at a host: who an address names, whatever its port and parameters.
type Identity = (Option<String>, String);

fn identity(u: &SipUri) -> Identity {
    (u.user.clone(), u.host.to_string().to_ascii_lowercase())
}

/// How long we ask a subscription to last; refreshed well before.
const EXPIRES: u32 = 600;
/// After a refusal or no answer, try again this much later (doubling up to the longest).
const FIRST_RETRY: Duration = Duration::from_secs(15);
const LONGEST_RETRY: Duration = Duration::from_secs(600);
/// Between the starts of new subscriptions made together.
const STAGGER: Duration = Duration::from_millis(50);

/// A task that says goodbye on the network when asked to stop.
struct Stoppable {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Stoppable {
    fn spawn<F: Future<Output = ()> + Send + 'static>(
        run: impl FnOnce(oneshot::Receiver<()>) -> F,
    ) -> Stoppable {
        let (stop, rx) = oneshot::channel();
        Stoppable {
            stop,
            task: tokio::spawn(run(rx)),
        }
    }

    /// Asks it to stop and waits a little for its goodbye to be sent.
    async fn stop(self) {
        let Stoppable { stop, mut task } = self;
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut task).await;
        task.abort();
    }
}

/// Following one address: the task and where its NOTIFYs go.
pub(super) struct Follow {
    pub(super) call_id: String,
    pub(super) requests: mpsc::Sender<TuRequest>,
    task: Stoppable,
}

impl Follow {
    /// Starts following `uri` as `account`; updates go to `updates` as CallUpdate::Presence.
    pub(super) fn start(
        ep: Endpoint,
        account: Option<Account>,
        uri: SipUri,
        updates: mpsc::Sender<CallUpdate>,
        delay: Duration,
    ) -> Follow {
        let call_id = format!("{}@voipd", random_token(20));
        let (tx, rx) = mpsc::channel(8);
        let f = Follower {
            ep,
            account,
            address: uri.to_string(),
            uri,
            call_id: call_id.clone(),
            cseq: 0,
            updates,
            requests: rx,
            last: None,
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

struct Follower {
    ep: Endpoint,
    account: Option<Account>,
    uri: SipUri,
    address: String,
    call_id: String,
    cseq: u32,
    updates: mpsc::Sender<CallUpdate>,
    requests: mpsc::Receiver<TuRequest>,
    last: Option<(PresenceStatus, String)>,
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
}

impl Follower {
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

    async fn tell(&mut self, status: PresenceStatus, note: String) {
        if self.last.as_ref() == Some(&(status, note.clone())) {
            return;
        }
        let update = CallUpdate::Presence {
            address: self.address.clone(),
            presence: Presence::now(status, note.clone()),
        };
        // Remembered only once the core has it, so that a change is never lost.
        if self.updates.send(update).await.is_ok() {
            self.last = Some((status, note));
        }
    }

    /// One subscription, from the first SUBSCRIBE to its end.
    async fn subscription(&mut self, stop: &mut oneshot::Receiver<()>) -> Ended {
        let Some(mut sub) = self.initial().await else {
            self.tell(PresenceStatus::Offline, String::new()).await;
            return Ended::Retry(FIRST_RETRY);
        };
        let mut tx = match self
            .ep
            .request(sub.request.clone(), self.target(&sub).await)
            .await
        {
            Ok(tx) => Some(tx),
            Err(_) => return Ended::Retry(FIRST_RETRY),
        };
        let mut auth_tries = 0;
        loop {
            tokio::select! {
                r = async { tx.as_mut()?.response().await.ok() }, if tx.is_some() => {
                    let Some(r) = r else {
                        // No answer: the far side is gone.
                        self.tell(PresenceStatus::Offline, String::new()).await;
                        return Ended::Retry(FIRST_RETRY);
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
                        401 | 407 if auth_tries < 2 => {
                            auth_tries += 1;
                            let Some(next) = self.with_auth(&sub, &r) else {
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
                            self.tell(PresenceStatus::Offline, String::new()).await;
                            return Ended::Retry(FIRST_RETRY);
                        }
                        // 481: the far side lost our refresh's dialog.
                        481 => return Ended::Retry(Duration::ZERO),
                        code => {
                            tracing::info!("presence of {}: SUBSCRIBE answered {code}", self.address);
                            self.tell(PresenceStatus::Unknown, String::new()).await;
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
                    subscribe_headers(&mut req, EXPIRES);
                    self.cseq = d.local_cseq;
                    sub.request = req;
                    auth_tries = 0;
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
    async fn initial(&mut self) -> Option<Sub> {
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
        .ok()?;
        let contact = super::calls::contact(&out.user, out.local, out.target);
        let mut request = out.request;
        request.headers.push(Name::Contact, contact.clone());
        subscribe_headers(&mut request, EXPIRES);
        Some(Sub {
            request,
            dialog: None,
            contact,
            first_hop: out.target,
            refresh_at: refresh_at(EXPIRES),
        })
    }

    /// In the dialog: its next hop; before: where the first SUBSCRIBE went.
    async fn target(&self, sub: &Sub) -> Target {
        if let Some(d) = &sub.dialog
            && let Ok(t) = d.next_hop().await
        {
            return t;
        }
        sub.first_hop
    }

    /// The request again, one CSeq on, answering the challenge in `r`.
    fn with_auth(&mut self, sub: &Sub, r: &Response) -> Option<Request> {
        let mut req = sub.request.clone();
        let (name, value) =
            answer_challenge(self.account.as_ref(), r, "SUBSCRIBE", &req.uri.to_string())?;
        req.headers.remove(&Name::Authorization);
        req.headers.remove(&Name::ProxyAuthorization);
        req.headers.push(name, value);
        let seq = req.cseq()?.seq + 1;
        req.headers
            .set_first(Name::CSeq, format!("{seq} SUBSCRIBE"));
        self.cseq = seq;
        Some(req)
    }

    /// Handles a NOTIFY; returns how the subscription ended if this ended it.
    async fn notify(&mut self, sub: &mut Sub, req: TuRequest) -> Option<Ended> {
        let ours = sub.request.from().and_then(|f| f.tag().map(str::to_string));
        let to_tag = req.request.to().and_then(|t| t.tag().map(str::to_string));
        if req.request.method != Method::Notify || ours.is_none() || to_tag != ours {
            answer(&req, 481).await;
            return None;
        }
        // A NOTIFY may come before the 200 (through a proxy): it makes the dialog too.
        if sub.dialog.is_none()
            && let Some(tag) = &ours
            && let Some(mut d) = Dialog::from_request(&req.request, tag, sub.contact.clone())
        {
            d.local_cseq = self.cseq;
            // This very NOTIFY is checked against it below: not yet taken.
            d.remote_cseq = None;
            sub.dialog = Some(d);
        }
        if let Some(d) = sub.dialog.as_mut() {
            // Another fork of a forked SUBSCRIBE: not the dialog we keep (RFC 6665 §4.1.3).
            if req.request.from().and_then(|f| f.tag().map(str::to_string))
                != d.remote.tag().map(str::to_string)
            {
                answer(&req, 481).await;
                return None;
            }
            let seq = req.request.cseq().map(|c| c.seq);
            if let (Some(seq), Some(last)) = (seq, d.remote_cseq)
                && seq <= last
            {
                // Older than one already taken (out of order over UDP).
                answer(&req, 500).await;
                return None;
            }
            d.remote_cseq = seq.or(d.remote_cseq);
            if let Some(target) = req
                .request
                .headers
                .get(&Name::Contact)
                .and_then(|c| crate::sip::message::NameAddr::parse(c).ok())
            {
                d.remote_target = target.uri;
            }
        }
        let state = req
            .request
            .headers
            .get(&Name::SubscriptionState)
            .unwrap_or("active")
            .to_string();
        let body_ok = req.request.body.is_empty()
            || req
                .request
                .headers
                .get(&Name::ContentType)
                .is_some_and(|c| c.to_ascii_lowercase().starts_with(pidf::CONTENT_TYPE));
        if !body_ok {
            answer(&req, 415).await;
            return None;
        }
        let (kind, params) = state.split_once(';').unwrap_or((state.as_str(), ""));
        let kind = kind.trim().to_ascii_lowercase();
        let learnt = if !req.request.body.is_empty() {
            match pidf::parse(&req.request.body) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::info!("presence of {}: unreadable PIDF: {e}", self.address);
                    answer(&req, 400).await;
                    return None;
                }
            }
        } else if kind != "pending" {
            // No document at all (a presence server with no publication): nobody there.
            Some((PresenceStatus::Offline, String::new()))
        } else {
            None
        };
        // Answered before the core is told, which may take a moment when it is busy.
        answer(&req, 200).await;
        self.granted.get_or_insert_with(tokio::time::Instant::now);
        if let Some((status, note)) = learnt {
            self.tell(status, note).await;
        }
        let param = |name: &str| {
            params.split(';').find_map(|p| {
                let (n, v) = p.split_once('=')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        match kind.as_str() {
            "terminated" => {
                let retry = param("retry-after").and_then(|r| r.parse::<u64>().ok());
                let reason = param("reason").unwrap_or_default().to_ascii_lowercase();
                Some(Ended::Retry(match (reason.as_str(), retry) {
                    (_, Some(s)) => Duration::from_secs(s).min(LONGEST_RETRY),
                    ("deactivated" | "timeout", None) => Duration::ZERO,
                    ("rejected" | "noresource" | "invariant", None) => LONGEST_RETRY,
                    _ => FIRST_RETRY,
                }))
            }
            _ => {
                // The notifier may shorten the subscription, never lengthen it.
                if let Some(e) = param("expires").and_then(|e| e.parse::<u32>().ok()) {
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
        subscribe_headers(&mut req, 0);
        if let Ok(target) = d.next_hop().await
            && let Ok(mut tx) = self.ep.request(req, target).await
        {
            let _ = tokio::time::timeout(Duration::from_secs(1), tx.response()).await;
        }
    }
}

fn subscribe_headers(req: &mut Request, expires: u32) {
    req.headers.push(Name::Event, "presence");
    req.headers.push(Name::Accept, pidf::CONTENT_TYPE);
    req.headers.push(Name::Expires, expires.to_string());
}

/// A refresh well before the end: at 80 %, or 5 s before for short ones.
fn refresh_at(expires: u32) -> tokio::time::Instant {
    let secs = u64::from(expires);
    let lead = (secs / 5).max(5).min(secs.saturating_sub(1));
    tokio::time::Instant::now() + Duration::from_secs(secs - lead)
}

pub(super) async fn answer(req: &TuRequest, code: u16) {
    let mut resp = req.request.response(code, reason_phrase(code));
    crate::sip::capabilities::add_to_tag(&mut resp);
    req.tx.respond(resp).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: i64, name: &str, addresses: &[&str]) -> Contact {
        Contact {
            id,
            uid: format!("u{id}"),
            name: name.into(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            favourite: false,
            notes: String::new(),
        }
    }

    #[tokio::test]
    async fn peers_are_named_by_user_and_host_or_by_number() {
        let (tx, _rx) = mpsc::channel(1);
        let mut p = Presences::new();
        let list = vec![
            contact(1, "Alice", &["sip:alice@example.com", "+441865270000"]),
            contact(2, "Bob", &["sip:bob@example.com:5080"]),
        ];
        p.follow(Some(list), false, None, None, &tx);
        assert_eq!(
            p.name_of("sip:alice@EXAMPLE.com;transport=tcp").as_deref(),
            Some("Alice")
        );
        assert_eq!(
            p.name_of("sip:bob@example.com").as_deref(),
            Some("Bob"),
            "ports do not name a person"
        );
        assert_eq!(
            p.name_of("sip:+441865270000@pbx.example").as_deref(),
            Some("Alice")
        );
        assert_eq!(p.name_of("sip:carol@example.com"), None);
        assert_eq!(p.name_of("not a uri"), None);
    }
}
