//! Presence (RFC 3856 over RFC 6665 subscriptions, documents in PIDF): we follow each
//! contact's SIP address with a SUBSCRIBE of its own, and answer those who follow ours.
//! Followers are served by one task ([`notifier`]); each followed address has a task
//! ([`follower`]); a [`publisher`] per registered account PUBLISHes ours when asked to.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};

use super::calls::CallUpdate;
use super::contacts::ContactInfo;
use crate::config::{Account, AccountId, PresenceShare};
use crate::sip::message::{SipHeaders, reason_phrase};
use crate::sip::transaction::{Endpoint, TuRequest};
use crate::sip::uri::SipUri;
use crate::store::Contact;

pub(super) mod notifier;
mod publisher;

use super::subscriber::{Follow, Watch};
use crate::sip::usage::subscription::refresh_at;
use crate::sip::usage::subscription::{PRESENCE, Package, SubState};

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
    /// Unknown: why it cannot be known (the name does not resolve, the server refused).
    pub reason: String,
}

impl Presence {
    pub fn now(status: PresenceStatus, note: String) -> Presence {
        Presence {
            status,
            note,
            since: Some(SystemTime::now()),
            reason: String::new(),
        }
    }

    /// Presence that cannot be learnt now, and why: not "offline", which would say the
    /// contact is away when we only failed to ask.
    pub fn unknown(reason: String) -> Presence {
        Presence {
            reason,
            ..Presence::default()
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
    /// Which contact a peer is, without a scan.
    index: Arc<Index>,
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
            index: Arc::default(),
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
            let mut index = Index::default();
            for (i, contact) in c.iter().enumerate() {
                for a in &contact.addresses {
                    // The first contact with an address keeps it.
                    match a.parse::<SipUri>() {
                        Ok(u) => index.by_identity.entry(identity(&u)).or_insert(i),
                        Err(_) => index.by_number.entry(a.clone()).or_insert(i),
                    };
                }
            }
            self.index = Arc::new(index);
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
            let watch = PresenceWatch {
                name: format!("presence of {uri}"),
                address: uri.to_string(),
                last: None,
                pending: None,
            };
            let f = Follow::start(
                ep.clone(),
                account.clone(),
                uri,
                watch,
                updates.clone(),
                delay,
            );
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
        let known = contact
            .addresses
            .iter()
            .filter_map(|a| self.known.get(a))
            .max_by_key(|p| p.status)
            .cloned();
        let presence = known.unwrap_or_else(|| {
            let sip = contact.addresses.iter().any(|a| a.starts_with("sip"));
            let followed = contact
                .addresses
                .iter()
                .any(|a| self.following.contains_key(a));
            Presence::unknown(
                match (sip, followed) {
                    (false, _) => "a number has no presence; only SIP addresses do",
                    (true, false) => "not asked yet (or presence.subscribe is off)",
                    (true, true) => "asked, no answer yet",
                }
                .into(),
            )
        });
        ContactInfo { contact, presence }
    }

    /// The contact with `uri` among its addresses: the same user at the same host (ports
    /// and parameters do not name a person).
    pub(super) fn contact_of(&self, uri: &SipUri) -> Option<&Contact> {
        self.index.find(uri).and_then(|i| self.contacts.get(i))
    }

    /// The contact named `name` (letter case aside), if exactly one is.
    pub(super) fn named(&self, name: &str) -> Option<&Contact> {
        let name = name.trim();
        let mut found = self
            .contacts
            .iter()
            .filter(|c| c.name.eq_ignore_ascii_case(name));
        let first = found.next();
        found.next().is_none().then_some(first).flatten()
    }

    /// Who may follow our presence now, by their From: as `share` says, "contacts" meaning
    /// those `contact_of` finds. Its own (shared) copy, for the notifier to ask.
    pub(super) fn sharing(&self, share: PresenceShare) -> Sharing {
        Sharing {
            share,
            index: self.index.clone(),
        }
    }

    /// Tells the followers' notifier who may follow now: those no longer allowed (a
    /// removed contact, `share` changed) are ended at once.
    pub(super) fn recheck_followers(&self, share: PresenceShare) {
        if let Some(n) = &self.notifier {
            // A notifier far behind checks again at each refresh anyway.
            let _ = n.try_send(notifier::Msg::Recheck(self.sharing(share)));
        }
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

/// Which contact (its place in the list) a peer is: by SIP user at host, or by number (a
/// call from sip:+441865270000@pbx is that number's contact).
#[derive(Default)]
struct Index {
    by_identity: HashMap<Identity, usize>,
    by_number: HashMap<String, usize>,
}

impl Index {
    fn find(&self, uri: &SipUri) -> Option<usize> {
        let number = || {
            let n = super::contacts::normalise_address(uri.user.as_deref()?).ok()?;
            self.by_number.get(&n)
        };
        self.by_identity
            .get(&identity(uri))
            .or_else(number)
            .copied()
    }
}

/// Who may follow our presence: `presence.share` and the contacts when it was made.
pub(super) struct Sharing {
    share: PresenceShare,
    index: Arc<Index>,
}

impl Sharing {
    pub(super) fn allows(&self, from: Option<&SipUri>) -> bool {
        match self.share {
            PresenceShare::Everyone => true,
            PresenceShare::Contacts => from.is_some_and(|u| self.index.find(u).is_some()),
            PresenceShare::Nobody => false,
        }
    }
}

/// A SIP user at a host: who an address names, whatever its port and parameters.
type Identity = (Option<String>, String);

fn identity(u: &SipUri) -> Identity {
    (u.user.clone(), u.host.to_string().to_ascii_lowercase())
}

/// Between the starts of new subscriptions made together.
const STAGGER: Duration = Duration::from_millis(50);

/// A contact's presence as its NOTIFYs (PIDF) tell it.
struct PresenceWatch {
    name: String,
    address: String,
    /// What the core was told last (the reason counts for unknown: a different failure
    /// is news), and what it is being told.
    last: Option<(PresenceStatus, String)>,
    pending: Option<(PresenceStatus, String)>,
}

impl PresenceWatch {
    fn news(&mut self, presence: Presence) -> Option<CallUpdate> {
        let note = if presence.status == PresenceStatus::Unknown {
            presence.reason.clone()
        } else {
            presence.note.clone()
        };
        let key = (presence.status, note);
        if self.last.as_ref() == Some(&key) {
            return None;
        }
        self.pending = Some(key);
        Some(CallUpdate::Presence {
            address: self.address.clone(),
            presence,
        })
    }
}

impl Watch for PresenceWatch {
    const PACKAGE: Package = PRESENCE;

    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self, body: &[u8], state: &SubState) -> Result<Option<CallUpdate>, String> {
        let learnt = if !body.is_empty() {
            Some(super::pidf::parse(body).map_err(|e| format!("PIDF: {e}"))?)
        } else if !matches!(state, SubState::Pending { .. }) {
            // No document at all (a presence server with no publication): nobody there.
            Some((PresenceStatus::Offline, String::new()))
        } else {
            None
        };
        Ok(learnt.and_then(|(status, note)| self.news(Presence::now(status, note))))
    }

    fn unknown(&mut self, why: String) -> Option<CallUpdate> {
        self.news(Presence::unknown(why))
    }

    fn absent(&mut self) -> Option<CallUpdate> {
        self.news(Presence::now(PresenceStatus::Offline, String::new()))
    }

    fn delivered(&mut self) {
        if let Some(p) = self.pending.take() {
            self.last = Some(p);
        }
    }
}

/// A task that says goodbye on the network when asked to stop.
pub(super) struct Stoppable {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Stoppable {
    pub(super) fn spawn<F: Future<Output = ()> + Send + 'static>(
        run: impl FnOnce(oneshot::Receiver<()>) -> F,
    ) -> Stoppable {
        let (stop, rx) = oneshot::channel();
        Stoppable {
            stop,
            task: tokio::spawn(run(rx)),
        }
    }

    /// Asks it to stop and waits a little for its goodbye to be sent.
    pub(super) async fn stop(self) {
        let Stoppable { stop, mut task } = self;
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut task).await;
        task.abort();
    }
}

/// Answers a presence request with `code` alone (and a To tag of ours).
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
