use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::store::{Contact, HistoryEntry, HistoryQuery, MessageEntry, Store};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::accounts::Accounts;
use super::calls::{self, CallCommand, CallContext, CallInfo, CallState, CallUpdate, Endpoints};
use super::contacts::ContactInfo;
use super::events::EventBus;
use super::inbound::Inbound;
use super::{AccountInfo, ConfigSource, CoreError, Event, EventKind, ReloadReport, Status, uas};
use crate::config::{Config, ConfigLocation, Loaded};
use crate::core::presence::{Presence, PresenceStatus, Presences};
use crate::logging::Logging;
use crate::sip::message::{Method, SipHeaders};
use crate::sip::registration::{RegCommand, RegState};
use crate::sip::transaction::{Endpoint, TuRequest};
use crate::sip::uri::{SipUri, Uri};

mod call_table;
mod conference;
mod directory;
mod forwarding;
mod handle;
mod hooks;
mod messaging;
mod mwi;
mod play;
mod providers;
mod recording;
mod router;
mod transfer;
mod voicemail;

use call_table::CallEntry;
pub(super) use directory::dial_target;
use forwarding::ForwardChange;
pub use hooks::HookSet;
use messaging::receive_message;

/// The settings key of our presence: "STATUS\tNOTE".
const OWN_PRESENCE: &str = "presence";

/// Commands queue here; callers wait (not fail) when it is full, which bounds memory.
const COMMAND_QUEUE: usize = 64;
/// How many of the calls' reports the core takes before anything else, each turn.
const REPORTS_FIRST: usize = 64;

enum Command {
    Status(oneshot::Sender<Status>),
    /// The daemon's faces are up: say so to them.
    Started(oneshot::Sender<()>),
    Reload(oneshot::Sender<Result<ReloadReport, CoreError>>),
    Shutdown {
        reason: String,
        done: oneshot::Sender<()>,
    },
    ListAccounts(oneshot::Sender<Vec<AccountInfo>>),
    GetAccount(String, oneshot::Sender<Result<AccountInfo, CoreError>>),
    Register(String, oneshot::Sender<Result<AccountInfo, CoreError>>),
    Unregister(String, oneshot::Sender<Result<AccountInfo, CoreError>>),
    Dial {
        account: Option<String>,
        /// Whom: a contact's addresses in order (the first that can be dialled is), or
        /// what was typed.
        target: crate::core::contacts::Resolved,
        endpoints: Endpoints,
        reply: oneshot::Sender<Result<CallInfo, CoreError>>,
    },
    CallAction(
        u64,
        CallAction,
        oneshot::Sender<Result<CallInfo, CoreError>>,
    ),
    ListCalls(oneshot::Sender<Vec<CallInfo>>),
    /// The latest picture of a call's received video.
    Snapshot(
        u64,
        oneshot::Sender<Result<Option<std::sync::Arc<crate::media::video::Frame>>, CoreError>>,
    ),
    SendMessage {
        account: Option<String>,
        to: String,
        text: String,
        reply: oneshot::Sender<Result<MessageEntry, CoreError>>,
    },
    SendDtmf(u64, String, oneshot::Sender<Result<CallInfo, CoreError>>),
    /// The address book changed (the store has it already): announce it and follow.
    ContactsChanged(Box<EventKind>, oneshot::Sender<()>),
    /// News the core did not make itself (a store change through the API).
    Emit(Box<EventKind>, oneshot::Sender<()>),
    WithPresence(Vec<Contact>, oneshot::Sender<Vec<ContactInfo>>),
    /// Addresses as they are dialled: numbers and bare users completed with the account.
    Complete(Vec<String>, oneshot::Sender<Vec<String>>),
    /// The names of the contacts these URIs belong to.
    ContactNames(Vec<String>, oneshot::Sender<Vec<Option<String>>>),
    SetPresence(Presence, oneshot::Sender<Presence>),
    OwnPresence(oneshot::Sender<Presence>),
    /// Which account a forwarding change is for, checked; nothing changes yet.
    CheckForward(
        Option<String>,
        ForwardChange,
        oneshot::Sender<Result<String, CoreError>>,
    ),
    /// Mixes these calls together (`voipctl conference`).
    Conference(Vec<u64>, oneshot::Sender<Result<Vec<CallInfo>, CoreError>>),
    /// Takes apart the conference this call is in (`voipctl split`).
    Split(u64, oneshot::Sender<Result<Vec<CallInfo>, CoreError>>),
    /// The configured [audio] output.
    AudioOutput(oneshot::Sender<crate::config::AudioEndpoint>),
    /// A forwarding change the store holds now.
    ApplyForward(
        String,
        ForwardChange,
        oneshot::Sender<Result<AccountInfo, CoreError>>,
    ),
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallAction {
    /// Answer, optionally with other audio endpoints than the configured ones.
    Answer(Endpoints),
    /// Refuse a ringing call: 486 Busy Here, or 603 Decline.
    Reject {
        busy: bool,
    },
    Hangup,
    Hold,
    Resume,
    Mute(bool),
    /// Send a ringing call on with 302: a SIP URI, a number or user at the account's
    /// domain, or a contact's name.
    Forward(String),
    /// A ringing call: the hooks that had a say are done; the answer mode goes on.
    Proceed,
    /// An established call: play this into it, once, instead of its input (None: stop).
    Play(Option<crate::media::record::Prompt>),
    /// An established call: record it into this file, opened already (None: stop).
    Record(Option<crate::media::recording::Handover>),
    /// An established call: blind transfer to this target.
    Transfer(String),
    /// An established call: attended transfer, replacing this other call.
    TransferTo(u64),
    /// Accept or decline the far side's transfer (`transfer = "ask"`).
    AnswerTransfer(bool),
    /// An established call: add video (or take it up again) at this size and rate, or
    /// remove it (None), by re-INVITE.
    Video(Option<crate::core::calls::VideoAsk>),
    Get,
}

/// Which call a command without a call id means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPick {
    /// The incoming call ringing here.
    Ringing,
    /// The established call (active or held).
    Established,
    /// The call going on, in whatever state.
    Any,
}

/// The signalling stack the core drives, started before it.
pub struct SipStack {
    pub endpoint: Endpoint,
    pub requests: mpsc::Receiver<TuRequest>,
    /// RFC 5626 instance id of this installation.
    pub instance: String,
}

/// The core's state, owned by one task: no locks, and every change happens in order.
pub struct Phone {
    location: ConfigLocation,
    config: Config,
    embedded: bool,
    config_loaded: SystemTime,
    started: SystemTime,
    started_at: Instant,
    listening: Vec<String>,
    logging: Option<Logging>,
    events: EventBus,
    stop: watch::Sender<bool>,
    /// The hooks in force, for the hook runner.
    hooks: watch::Sender<Arc<HookSet>>,
    accounts: Accounts,
    endpoint: Option<Endpoint>,
    // Boxed: an entry is most of a kilobyte, and the table grows to twice what it holds.
    calls: HashMap<u64, Box<CallEntry>>,
    /// The calls by SIP Call-ID, for the requests inside them.
    by_sip_call_id: HashMap<String, u64>,
    /// The incoming calls that ring (or play early media), and the calls that play the
    /// call-waiting tone: the limits on ringing calls and call waiting look at these on
    /// every call's every change, not at all calls.
    ringing: BTreeSet<u64>,
    waiting_tone: BTreeSet<u64>,
    next_call: u64,
    /// Call ids up to this one are marked as given in the store.
    calls_reserved: u64,
    call_updates: mpsc::Sender<CallUpdate>,
    media: crate::media::engine::MediaEngine,
    store: Store,
    presence: Presences,
    /// Reads of the address book asked for, and the newest one applied: an older read that
    /// finishes late is not applied over a newer one.
    contacts_reads: u64,
    contacts_applied: u64,
    /// Our presence was set since the start (the stored one, read later, must not undo it).
    own_presence_set: bool,
    /// The gate in front of the SIP stack: who may reach us.
    inbound: Arc<Inbound>,
    /// The look-up of the providers' addresses under way, if any.
    resolving: Option<tokio::task::JoinHandle<()>>,
    /// Each registrar's and outbound proxy's addresses, as DNS last gave them.
    providers: HashMap<String, Vec<std::net::IpAddr>>,
    /// The accounts' message-summary subscriptions.
    mwi: mwi::Mwi,
    /// The calls transfers tie together.
    transfers: transfer::Transfers,
}

/// The one API every face uses. Cheap to clone.
#[derive(Clone)]
pub struct PhoneHandle {
    commands: mpsc::Sender<Command>,
    pub(super) store: Store,
    /// Forwarding changes one at a time: each writes the store, then the core, and two at
    /// once must not land in the two in different orders.
    forwarding: Arc<tokio::sync::Mutex<()>>,
    events: broadcast::Sender<Arc<Event>>,
    stop: watch::Receiver<bool>,
    hooks: watch::Receiver<Arc<HookSet>>,
}

impl Phone {
    /// Starts the core task. `listening` names the control addresses already bound.
    pub fn start(
        location: ConfigLocation,
        loaded: Loaded,
        logging: Option<Logging>,
        listening: Vec<String>,
        sip: Option<SipStack>,
        store: Store,
    ) -> (PhoneHandle, tokio::task::JoinHandle<()>) {
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let (stop, stop_rx) = watch::channel(false);
        let (hooks, hooks_rx) = watch::channel(HookSet::of(&loaded.config));
        let (endpoint, requests, instance) = match sip {
            Some(s) => (Some(s.endpoint), Some(s.requests), s.instance),
            None => (None, None, String::new()),
        };
        let (accounts, reg_updates) =
            Accounts::new(endpoint.clone(), instance, &loaded.config.accounts);
        let (call_updates, call_rx) = mpsc::channel(256);
        let inbound = Arc::new(Inbound::new(
            &loaded.config.sip,
            loaded.config.accounts.len(),
        ));
        if let Some(ep) = &endpoint {
            ep.set_admission(inbound.clone());
            ep.transport().set_error_gate(inbound.clone());
        }
        let mut phone = Phone {
            inbound,
            resolving: None,
            providers: HashMap::new(),
            mwi: mwi::Mwi::default(),
            transfers: transfer::Transfers::default(),
            accounts,
            endpoint,
            calls: HashMap::new(),
            by_sip_call_id: HashMap::new(),
            ringing: BTreeSet::new(),
            waiting_tone: BTreeSet::new(),
            next_call: store.calls_given() + 1,
            calls_reserved: store.calls_given() + crate::store::CALL_ID_BLOCK,
            call_updates,
            media: crate::media::engine::MediaEngine::start(),
            store: store.clone(),
            presence: Presences::new(),
            contacts_reads: 0,
            contacts_applied: 0,
            own_presence_set: false,
            location,
            config: loaded.config,
            embedded: loaded.embedded,
            config_loaded: SystemTime::now(),
            started: SystemTime::now(),
            started_at: Instant::now(),
            listening,
            logging,
            events: EventBus::new(),
            stop,
            hooks,
        };
        let handle = PhoneHandle {
            commands,
            store,
            forwarding: Arc::default(),
            events: phone.events.sender(),
            stop: stop_rx,
            hooks: hooks_rx,
        };
        phone.resume_outbox();
        phone.read_contacts();
        phone.read_own_presence();
        phone.read_forwarding();
        phone.recover_voicemails();
        let task = tokio::spawn(phone.run(rx, reg_updates, requests, call_rx));
        (handle, task)
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut reg_updates: mpsc::Receiver<(String, RegState)>,
        mut requests: Option<mpsc::Receiver<TuRequest>>,
        mut call_rx: mpsc::Receiver<CallUpdate>,
    ) {
        let mut resolve = tokio::time::interval(providers::RESOLVE_EVERY);
        resolve.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The calls' own reports first, a few at a time so that nothing else waits
            // long: a call that just ended has said so before a request for it (the ACK
            // of its last answer) finds its task gone.
            for _ in 0..REPORTS_FIRST {
                match call_rx.try_recv() {
                    Ok(update) => self.on_call_update(update),
                    Err(_) => break,
                }
            }
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return };
                    if let Some(done) = self.command(cmd) {
                        if let Some(r) = self.resolving.take() {
                            r.abort();
                            let _ = r.await;
                        }
                        self.hang_up_all(&mut call_rx).await;
                        self.stop_mwi().await;
                        self.presence.shutdown().await;
                        self.accounts.shutdown().await;
                        let _ = self.stop.send(true);
                        let _ = done.send(());
                        return;
                    }
                }
                // With no accounts there is nothing to look up, and an idle daemon sleeps.
                _ = resolve.tick(), if !self.config.accounts.is_empty() => self.resolve_providers(),
                Some((id, state)) = reg_updates.recv() => {
                    if let RegState::Registered { registrar, .. } = &state {
                        self.inbound.set_registered(&id, Some(registrar.addr.ip()));
                    }
                    if let Some(info) = self.accounts.update(&id, state) {
                        self.events.emit(EventKind::AccountChanged(info));
                        // Presence subscriptions go from the first registered account, and
                        // what we publish goes through every registered one.
                        self.follow(None);
                        self.follow_mwi(false);
                    }
                }
                Some(req) = recv_opt(&mut requests) => self.on_request(req),
                Some(update) = call_rx.recv() => self.on_call_update(update),
            }
        }
    }

    /// Handles one command; returns the reply channel when it is a shutdown.
    fn command(&mut self, cmd: Command) -> Option<oneshot::Sender<()>> {
        crate::memory::busy();
        match cmd {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Started(reply) => {
                self.events.emit(EventKind::DaemonStarted {
                    version: env!("CARGO_PKG_VERSION").into(),
                });
                let _ = reply.send(());
            }
            Command::Reload(reply) => {
                let _ = reply.send(self.reload());
            }
            Command::ListAccounts(reply) => {
                let _ = reply.send(self.accounts.infos());
            }
            Command::GetAccount(id, reply) => {
                let _ = reply.send(self.accounts.get(&id));
            }
            Command::Register(id, reply) => {
                let _ = reply.send(self.accounts.command(&id, RegCommand::Register));
            }
            Command::Unregister(id, reply) => {
                let _ = reply.send(self.accounts.command(&id, RegCommand::Unregister));
            }
            Command::Dial {
                account,
                target,
                endpoints,
                reply,
            } => {
                let _ = reply.send(self.dial(account.as_deref(), &target, &endpoints));
            }
            Command::CallAction(id, action, reply) => {
                let _ = reply.send(self.call_action(id, action));
            }
            Command::SendDtmf(id, digits, reply) => {
                let _ = reply.send(self.send_dtmf(id, &digits));
            }
            Command::SendMessage {
                account,
                to,
                text,
                reply,
            } => self.send_message(account.as_deref(), &to, text, reply),
            Command::Snapshot(id, reply) => {
                let r = match self.calls.get(&id) {
                    Some(c) => Ok(c.snapshot()),
                    None => Err(CoreError::NotFound {
                        what: "call",
                        id: id.to_string(),
                    }),
                };
                let _ = reply.send(r);
            }
            Command::ListCalls(reply) => {
                let mut list: Vec<CallInfo> = self.calls.values().map(|c| c.view()).collect();
                list.sort_by_key(|c| c.id);
                let _ = reply.send(list);
            }
            Command::ContactsChanged(kind, done) => {
                self.events.emit(*kind);
                self.read_contacts();
                let _ = done.send(());
            }
            Command::Emit(kind, done) => {
                self.events.emit(*kind);
                let _ = done.send(());
            }
            Command::WithPresence(list, reply) => {
                let _ = reply.send(list.into_iter().map(|c| self.presence.info(c)).collect());
            }
            Command::Complete(addresses, reply) => {
                let account = self.accounts.for_dialing(None).ok().flatten();
                let mut done = Vec::new();
                for a in addresses {
                    match dial_target("with", &a, account.as_ref()) {
                        // As messages keep their peers; also without the port (a From
                        // rarely has one).
                        Ok(u) => {
                            let mut u = u.bare();
                            done.push(u.to_string());
                            if u.port.take().is_some() {
                                done.push(u.to_string());
                            }
                        }
                        Err(_) => done.push(a),
                    }
                }
                let _ = reply.send(done);
            }
            Command::ContactNames(uris, reply) => {
                let _ = reply.send(uris.iter().map(|u| self.presence.name_of(u)).collect());
            }
            Command::SetPresence(p, reply) => {
                tracing::info!("our presence: {} {:?}", p.status.as_str(), p.note);
                self.presence.set_own(p.clone());
                self.own_presence_set = true;
                let _ = reply.send(p);
            }
            Command::OwnPresence(reply) => {
                let _ = reply.send(self.presence.own());
            }
            Command::Conference(ids, reply) => {
                let _ = reply.send(self.conference(&ids));
            }
            Command::Split(id, reply) => {
                let _ = reply.send(self.split(id));
            }
            Command::AudioOutput(reply) => {
                let _ = reply.send(self.config.audio.output.clone());
            }
            Command::CheckForward(account, change, reply) => {
                let _ = reply.send(self.check_forward(account.as_deref(), &change));
            }
            Command::ApplyForward(account, change, reply) => {
                let _ = reply.send(self.apply_forward(&account, change));
            }
            Command::Shutdown { reason, done } => {
                tracing::info!("shutting down: {reason}");
                self.events.emit(EventKind::ShuttingDown { reason });
                return Some(done);
            }
        }
        None
    }

    fn call_context(&self) -> Option<CallContext> {
        Some(CallContext {
            ep: self.endpoint.clone()?,
            audio: self.config.audio.clone(),
            updates: self.call_updates.clone(),
            media: self.media.clone(),
            recordings: self.store.recordings_dir(),
            video: self.config.video.0.clone(),
            video_asked: false,
            ring_timeout: Duration::from_secs(u64::from(self.config.sip.ring_timeout_secs)),
        })
    }

    /// A call id never given before, not even before a restart: the history keeps it, and
    /// scripts follow a call by it. Ids are marked as given in the store a block ahead, so
    /// not every call waits on a write.
    fn new_call_id(&mut self) -> u64 {
        let id = self.next_call;
        self.next_call += 1;
        if id > self.calls_reserved {
            self.calls_reserved = id + crate::store::CALL_ID_BLOCK - 1;
            let (store, last) = (self.store.clone(), self.calls_reserved);
            tokio::spawn(async move {
                if let Err(e) = store.reserve_call_ids(last).await {
                    tracing::warn!("call ids not reserved: {e}");
                }
            });
        }
        id
    }

    fn on_call_update(&mut self, update: CallUpdate) {
        let info = match update {
            CallUpdate::Info(mut info) => {
                info.contact = self.presence.name_of(&info.remote_uri);
                *info
            }
            CallUpdate::Dtmf { id, digit } => {
                tracing::info!(call_id = id, "DTMF {digit} received");
                self.events
                    .emit(EventKind::DtmfReceived { call: id, digit });
                return;
            }
            CallUpdate::MessageChanged(mut m) => {
                m.contact = self.presence.name_of(&m.peer);
                self.events.emit(EventKind::MessageChanged(*m));
                return;
            }
            CallUpdate::MessageReceived(mut m) => {
                tracing::info!("message from {}", m.peer);
                m.contact = self.presence.name_of(&m.peer);
                self.events.emit(EventKind::MessageReceived(*m));
                return;
            }
            CallUpdate::Presence { address, presence } => {
                tracing::info!("presence of {address}: {}", presence.status.as_str());
                for info in self.presence.learnt(address, presence) {
                    self.events.emit(EventKind::ContactChanged(info));
                }
                return;
            }
            // Read at start: unless the user set another meanwhile.
            CallUpdate::OwnPresence(p) => {
                if !self.own_presence_set {
                    self.presence.set_own(p);
                }
                return;
            }
            CallUpdate::Contacts(n, list) => {
                if n > self.contacts_applied {
                    self.contacts_applied = n;
                    self.follow(Some(list));
                }
                return;
            }
            CallUpdate::Unread(count) => {
                self.events.emit(EventKind::UnreadMessages { count });
                return;
            }
            CallUpdate::VoicemailKept(kept) => {
                let unheard = kept.unheard;
                if !kept.removed.is_empty() {
                    tracing::info!(
                        "voicemail: {} heard message(s) removed to make room",
                        kept.removed.len()
                    );
                }
                self.events
                    .emit(EventKind::VoicemailReceived(kept.voicemail));
                self.events.emit(EventKind::VoicemailsChanged { unheard });
                return;
            }
            CallUpdate::MessageSummary { account, summary } => {
                self.message_summary(&account, summary);
                return;
            }
            CallUpdate::LiveForwarding(list) => {
                self.live_forwarding_read(list);
                return;
            }
            CallUpdate::Providers(found) => {
                self.providers_found(found);
                return;
            }
            CallUpdate::Referred {
                id,
                target,
                replaces,
                referred_by,
            } => {
                self.referred(id, target, replaces, referred_by);
                return;
            }
            CallUpdate::Recorded { missed_unseen } => {
                self.events
                    .emit(EventKind::HistoryChanged { missed_unseen });
                return;
            }
        };
        self.call_changed(info);
    }

    fn source(&self) -> ConfigSource {
        ConfigSource {
            path: self.location.path.clone(),
            embedded: self.embedded,
        }
    }

    fn status(&self) -> Status {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Status {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            started: self.started,
            uptime: self.started_at.elapsed(),
            config: self.source(),
            config_loaded: self.config_loaded,
            listening: self.listening.clone(),
            accounts: count(self.config.accounts.len()),
            accounts_registered: count(self.accounts.registered()),
            calls: count(self.calls.len()),
            watchers: count(self.events.sender().receiver_count()),
            strangers: self.inbound.stats(),
        }
    }

    fn reload(&mut self) -> Result<ReloadReport, CoreError> {
        let loaded = match self.location.load() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("configuration not reloaded, keeping the running one: {e}");
                self.events.emit(EventKind::ConfigReloadFailed {
                    config: self.source(),
                    error: e.to_string(),
                });
                return Err(e.into());
            }
        };
        let diff = loaded.config.diff(&self.config);
        if let Some(logging) = &self.logging {
            logging.apply(&loaded.config.log);
        }
        if let Some(ep) = &self.endpoint {
            ep.set_user_agent(loaded.config.sip.user_agent.clone());
        }
        let (removed, changed) = self.accounts.reconcile(&loaded.config.accounts);
        for id in &removed {
            self.inbound.set_registered(id, None);
        }
        self.inbound
            .configure(&loaded.config.sip, loaded.config.accounts.len());
        self.config = loaded.config;
        self.hooks.send_if_modified(|h| {
            let now = HookSet::of(&self.config);
            let changed = **h != *now;
            *h = now;
            changed
        });
        self.resolve_providers();
        self.follow(None);
        self.follow_mwi(true);
        // An account added (or back) finds what was set live for it.
        self.read_forwarding();
        self.embedded = loaded.embedded;
        self.config_loaded = SystemTime::now();
        tracing::info!(
            "configuration reloaded from {}{}: {} change(s){}",
            self.location.path.display(),
            if self.embedded {
                " (absent: embedded default)"
            } else {
                ""
            },
            diff.applied.len(),
            if diff.restart_required.is_empty() {
                String::new()
            } else {
                format!("; needs a restart: {}", diff.restart_required.join(", "))
            }
        );
        let report = ReloadReport {
            config: self.source(),
            applied: diff.applied,
            restart_required: diff.restart_required,
        };
        self.events.emit(EventKind::ConfigReloaded {
            config: report.config.clone(),
            applied: report.applied.clone(),
            restart_required: report.restart_required.clone(),
        });
        for id in removed {
            self.events.emit(EventKind::AccountRemoved { id });
        }
        for info in changed {
            self.events.emit(EventKind::AccountChanged(info));
        }
        Ok(report)
    }
}

/// How many list entries one request may ask for.
pub(super) fn check_limit(limit: u32) -> Result<(), CoreError> {
    const MAX: u32 = 10_000;
    if limit > MAX {
        return Err(CoreError::InvalidArgument {
            field: "limit",
            message: format!("{limit} is more than {MAX}"),
        });
    }
    Ok(())
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
