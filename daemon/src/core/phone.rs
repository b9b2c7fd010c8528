use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::store::{Contact, HistoryEntry, HistoryQuery, MessageEntry, Store};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::accounts::Accounts;
use super::calls::{self, CallCommand, CallContext, CallInfo, CallState, CallUpdate, Endpoints};
use super::contacts::ContactInfo;
use super::events::EventBus;
use super::presence::{Presence, PresenceStatus, Presences};
use super::{AccountInfo, ConfigSource, CoreError, Event, EventKind, ReloadReport, Status, uas};
use crate::config::{AccountId, Config, ConfigLocation, Loaded};
use crate::logging::Logging;
use crate::sip::message::{Method, SipHeaders};
use crate::sip::registration::{RegCommand, RegState};
use crate::sip::transaction::{Endpoint, TuRequest};
use crate::sip::uri::{SipUri, Uri};

/// The settings key of our presence: "STATUS\tNOTE".
const OWN_PRESENCE: &str = "presence";

/// Commands queue here; callers wait (not fail) when it is full, which bounds memory.
const COMMAND_QUEUE: usize = 64;

enum Command {
    Status(oneshot::Sender<Status>),
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
        uri: String,
        endpoints: Endpoints,
        reply: oneshot::Sender<Result<CallInfo, CoreError>>,
    },
    CallAction(
        u64,
        CallAction,
        oneshot::Sender<Result<CallInfo, CoreError>>,
    ),
    ListCalls(oneshot::Sender<Vec<CallInfo>>),
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
    Get,
}

struct CallEntry {
    info: CallInfo,
    sip_call_id: Option<String>,
    commands: mpsc::Sender<CallCommand>,
    live: Arc<crate::media::session::LiveStats>,
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
    accounts: Accounts,
    endpoint: Option<Endpoint>,
    calls: HashMap<u64, CallEntry>,
    next_call: u64,
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
}

/// The one API every face uses. Cheap to clone.
#[derive(Clone)]
pub struct PhoneHandle {
    commands: mpsc::Sender<Command>,
    pub(super) store: Store,
    events: broadcast::Sender<Arc<Event>>,
    stop: watch::Receiver<bool>,
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
        let (endpoint, requests, instance) = match sip {
            Some(s) => (Some(s.endpoint), Some(s.requests), s.instance),
            None => (None, None, String::new()),
        };
        let (accounts, reg_updates) =
            Accounts::new(endpoint.clone(), instance, &loaded.config.accounts);
        let (call_updates, call_rx) = mpsc::channel(256);
        let mut phone = Phone {
            accounts,
            endpoint,
            calls: HashMap::new(),
            next_call: 1,
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
        };
        let handle = PhoneHandle {
            commands,
            store,
            events: phone.events.sender(),
            stop: stop_rx,
        };
        phone.events.emit(EventKind::DaemonStarted {
            version: env!("CARGO_PKG_VERSION").into(),
        });
        phone.resume_outbox();
        phone.read_contacts();
        phone.read_own_presence();
        let task = tokio::spawn(phone.run(rx, reg_updates, requests, call_rx));
        (handle, task)
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut reg_updates: mpsc::Receiver<(AccountId, RegState)>,
        mut requests: Option<mpsc::Receiver<TuRequest>>,
        mut call_rx: mpsc::Receiver<CallUpdate>,
    ) {
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return };
                    if let Some(done) = self.command(cmd) {
                        self.hang_up_all(&mut call_rx).await;
                        self.presence.shutdown().await;
                        self.accounts.shutdown().await;
                        let _ = self.stop.send(true);
                        let _ = done.send(());
                        return;
                    }
                }
                Some((id, state)) = reg_updates.recv() => {
                    if let Some(info) = self.accounts.update(&id, state) {
                        self.events.emit(EventKind::AccountChanged(info));
                        // Presence subscriptions go from the first registered account, and
                        // what we publish goes through every registered one.
                        self.follow(None);
                    }
                }
                Some(req) = recv_opt(&mut requests) => self.on_request(req),
                Some(update) = call_rx.recv() => self.on_call_update(update),
            }
        }
    }

    /// Handles one command; returns the reply channel when it is a shutdown.
    fn command(&mut self, cmd: Command) -> Option<oneshot::Sender<()>> {
        match cmd {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
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
                uri,
                endpoints,
                reply,
            } => {
                let _ = reply.send(self.dial(account.as_deref(), &uri, &endpoints));
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
            Command::ListCalls(reply) => {
                let mut list: Vec<CallInfo> = self.calls.values().map(CallEntry::view).collect();
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
        })
    }

    fn new_call_id(&mut self) -> u64 {
        let id = self.next_call;
        self.next_call += 1;
        id
    }

    /// Requests from the network: new calls, requests inside calls, and the rest.
    fn on_request(&mut self, req: TuRequest) {
        let in_dialog = req.request.to().is_some_and(|t| t.tag().is_some())
            || req.request.method == Method::Ack;
        if req.request.method == Method::Subscribe
            && let Some(ep) = self.endpoint.clone()
        {
            return self.presence_subscribe(req, &ep);
        }
        if req.request.method == Method::Notify {
            return self.presence.route(req);
        }
        if in_dialog {
            let call_id = req.request.call_id().map(str::to_string);
            if let Some(c) = self
                .calls
                .values()
                .find(|c| c.sip_call_id.is_some() && c.sip_call_id == call_id)
            {
                let _ = c.commands.try_send(CallCommand::Request(Box::new(req)));
                return;
            }
        } else if req.request.method == Method::Invite
            && matches!(req.request.uri, Uri::Sip(_))
            && let Some(ctx) = self.call_context()
        {
            let account = self.accounts.for_request_uri(&req.request.uri);
            let id = self.new_call_id();
            let sip_call_id = req.request.call_id().map(str::to_string);
            tracing::info!(
                call_id = id,
                "incoming call from {}",
                req.request
                    .from()
                    .map_or_else(String::new, |f| f.uri.to_string())
            );
            let handle = calls::incoming(ctx, id, account, req);
            self.track(id, sip_call_id, handle);
            return;
        }
        if req.request.method == Method::Message
            && !in_dialog
            && matches!(req.request.uri, Uri::Sip(_))
        {
            let account = self
                .accounts
                .for_request_uri(&req.request.uri)
                .map(|a| a.id.as_str().to_string());
            let (store, updates) = (self.store.clone(), self.call_updates.clone());
            tokio::spawn(receive_message(req, account, store, updates));
            return;
        }
        if let Some(resp) = uas::answer(&req) {
            tokio::spawn(async move { req.tx.respond(resp).await });
        }
    }

    /// Starts following a call task: commands go to it, and requests carrying its
    /// Call-ID (when it has one) reach it.
    fn track(&mut self, id: u64, sip_call_id: Option<String>, h: calls::CallHandle) -> CallInfo {
        let info = placeholder(id);
        self.calls.insert(
            id,
            CallEntry {
                info: info.clone(),
                sip_call_id,
                commands: h.commands,
                live: h.live,
            },
        );
        info
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
            CallUpdate::Recorded { missed_unseen } => {
                self.events
                    .emit(EventKind::HistoryChanged { missed_unseen });
                return;
            }
        };
        let ended = matches!(info.state, CallState::Ended { .. });
        if let Some(c) = self.calls.get_mut(&info.id) {
            c.info = info.clone();
        }
        if ended {
            self.calls.remove(&info.id);
            self.record(&info);
        }
        self.events.emit(EventKind::CallChanged(info));
    }

    /// Queues a text message and starts sending it; answers once it is stored.
    fn send_message(
        &mut self,
        account: Option<&str>,
        to: &str,
        text: String,
        reply: oneshot::Sender<Result<MessageEntry, CoreError>>,
    ) {
        let checked = (|| {
            if text.is_empty() || text.len() > super::messages::MAX_BODY {
                return Err(CoreError::InvalidArgument {
                    field: "text",
                    message: format!("{} bytes; 1 to 32768 can be sent", text.len()),
                });
            }
            let ep = self
                .endpoint
                .clone()
                .ok_or_else(|| CoreError::FailedPrecondition("SIP is not running".into()))?;
            let account = self.accounts.for_dialing(account)?;
            let uri = dial_target("to", to, account.as_ref())?;
            Ok((ep, account, uri))
        })();
        let (ep, account, uri) = match checked {
            Ok(c) => c,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            let sip_call_id = format!("{}@voipd", crate::sip::transaction::random_token(20));
            let queued = store
                .queue_message(
                    account.as_ref().map(|a| a.id.as_str().to_string()),
                    uri.to_string(),
                    text,
                    sip_call_id.clone(),
                )
                .await;
            let entry = match queued {
                Ok(e) => e,
                Err(e) => {
                    let _ = reply.send(Err(CoreError::Store(e)));
                    return;
                }
            };
            let _ = reply.send(Ok(entry.clone()));
            let _ = updates
                .send(CallUpdate::MessageChanged(Box::new(entry.clone())))
                .await;
            super::outbox::deliver(super::outbox::Outgoing {
                ep,
                store,
                updates,
                account,
                entry,
                sip_call_id,
            })
            .await;
        });
    }

    /// Reads our presence as the user last set it.
    fn read_own_presence(&self) {
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            match store.setting(OWN_PRESENCE).await {
                Ok(Some(v)) => {
                    let (status, note) = v.split_once('\t').unwrap_or((v.as_str(), ""));
                    if let Some(status) = PresenceStatus::settable(status) {
                        let p = Presence::now(status, note.to_string());
                        let _ = updates.send(CallUpdate::OwnPresence(p)).await;
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!("our presence not read: {e}"),
            }
        });
    }

    /// Reads the address book; the core follows it once it arrives.
    fn read_contacts(&mut self) {
        self.contacts_reads += 1;
        let n = self.contacts_reads;
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            match store.contacts(None, false, 0).await {
                Ok(list) => {
                    let _ = updates.send(CallUpdate::Contacts(n, list)).await;
                }
                Err(e) => tracing::error!("contacts not read: {e}"),
            }
        });
    }

    /// Follows the contacts' presence as configured, from the account to dial from, and
    /// publishes ours through the registered accounts.
    fn follow(&mut self, contacts: Option<Vec<crate::store::Contact>>) {
        let registered = self.accounts.registered_accounts();
        self.presence.publish(
            self.endpoint.as_ref(),
            registered.clone(),
            self.config.presence.publish,
        );
        // The account subscriptions go from stays while it is registered: another account
        // coming and going does not make them all again.
        let account = match self.presence.from() {
            Some(current) if registered.contains(current) => Some(current.clone()),
            _ => self.accounts.for_dialing(None).ok().flatten(),
        };
        self.presence.follow(
            contacts,
            self.config.presence.subscribe,
            self.endpoint.as_ref(),
            account,
            &self.call_updates,
        );
        self.presence.recheck_followers(self.config.presence.share);
    }

    /// Someone asks to follow our presence: granted per `presence.share`.
    fn presence_subscribe(&mut self, req: TuRequest, ep: &crate::sip::transaction::Endpoint) {
        let from = req.request.from().and_then(|f| match f.uri {
            Uri::Sip(u) => Some(u),
            _ => None,
        });
        let allowed = self
            .presence
            .sharing(self.config.presence.share)
            .allows(from.as_ref());
        // The entity is us: the account the request names, else what it asked for.
        let entity = self
            .accounts
            .for_request_uri(&req.request.uri)
            .map(|a| a.aor.0.to_string())
            .unwrap_or_else(|| req.request.uri.to_string());
        let msg = super::presence::notifier::Msg::Subscribe {
            req: Box::new(req),
            allowed,
            entity,
        };
        if let Err(e) = self.presence.notifier(ep).try_send(msg) {
            // Far behind: told to try again later rather than left without an answer.
            tracing::warn!("presence SUBSCRIBE refused: the notifier is behind");
            if let super::presence::notifier::Msg::Subscribe { req, .. } = e.into_inner() {
                tokio::spawn(async move { super::presence::answer(&req, 503).await });
            }
        }
    }

    /// Sends what was still queued when the daemon last stopped.
    fn resume_outbox(&self) {
        let Some(ep) = self.endpoint.clone() else {
            return;
        };
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        let accounts: Vec<crate::config::Account> = self.config.accounts.clone();
        tokio::spawn(async move {
            let queued = match store.queued_messages().await {
                Ok(q) => q,
                Err(e) => return tracing::error!("queued messages not read: {e}"),
            };
            for (entry, sip_call_id) in queued {
                let account = entry
                    .account
                    .as_ref()
                    .and_then(|id| accounts.iter().find(|a| a.id.as_str() == id))
                    .cloned();
                tracing::info!("message {} to {}: sending again", entry.id, entry.peer);
                tokio::spawn(super::outbox::deliver(super::outbox::Outgoing {
                    ep: ep.clone(),
                    store: store.clone(),
                    updates: updates.clone(),
                    account,
                    entry,
                    sip_call_id,
                }));
            }
        });
    }

    /// Writes an ended call to the history, off the core task; the sound test is not a
    /// call anyone wants to find again.
    fn record(&self, info: &CallInfo) {
        if info.account.is_none() && info.remote_uri == "echo" {
            return;
        }
        let (store, info, updates) = (self.store.clone(), info.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            match store.record_call(&info, SystemTime::now()).await {
                Ok(missed_unseen) => {
                    let _ = updates.send(CallUpdate::Recorded { missed_unseen }).await;
                }
                Err(e) => {
                    tracing::error!(call_id = info.id, "call not written to the history: {e}")
                }
            }
        });
    }

    fn dial(
        &mut self,
        account: Option<&str>,
        uri: &str,
        endpoints: &Endpoints,
    ) -> Result<CallInfo, CoreError> {
        let mut ctx = self
            .call_context()
            .ok_or_else(|| CoreError::FailedPrecondition("SIP is not running".into()))?;
        endpoints.apply(&mut ctx.audio);
        if uri.trim().eq_ignore_ascii_case("echo") {
            let id = self.new_call_id();
            tracing::info!(call_id = id, "sound test call");
            return Ok(self.track(id, None, calls::echo(ctx, id)));
        }
        let account = self.accounts.for_dialing(account)?;
        let target = dial_target("uri", uri, account.as_ref())?;
        let id = self.new_call_id();
        tracing::info!(call_id = id, "calling {target}");
        let sip_call_id = format!("{}@voipd", crate::sip::transaction::random_token(20));
        let handle = calls::dial(ctx, id, account, target, sip_call_id.clone());
        Ok(self.track(id, Some(sip_call_id), handle))
    }

    fn call_action(&mut self, id: u64, action: CallAction) -> Result<CallInfo, CoreError> {
        let c = self.calls.get(&id).ok_or_else(|| CoreError::NotFound {
            what: "call",
            id: id.to_string(),
        })?;
        let ringing_here = c.info.state == CallState::Ringing
            && c.info.direction == calls::CallDirection::Incoming;
        let cmd = match action {
            CallAction::Get => return Ok(c.view()),
            CallAction::Reject { .. } if !ringing_here => {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not ringing here"
                )));
            }
            CallAction::Reject { busy } => CallCommand::Reject(if busy { 486 } else { 603 }),
            CallAction::Hold | CallAction::Resume
                if !matches!(c.info.state, CallState::Active | CallState::Held) =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not established"
                )));
            }
            CallAction::Hold => CallCommand::Hold,
            CallAction::Resume => CallCommand::Resume,
            CallAction::Mute(on) => CallCommand::Mute(on),
            CallAction::Answer(_)
                if c.info.state != CallState::Ringing
                    || c.info.direction != calls::CallDirection::Incoming =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not ringing here"
                )));
            }
            CallAction::Answer(e) => CallCommand::Answer(e),
            CallAction::Hangup => CallCommand::Hangup,
        };
        c.commands
            .try_send(cmd)
            .map_err(|_| CoreError::FailedPrecondition(format!("call {id} is busy; try again")))?;
        Ok(c.info.clone())
    }

    fn send_dtmf(&mut self, id: u64, digits: &str) -> Result<CallInfo, CoreError> {
        if digits.is_empty()
            || digits
                .chars()
                .any(|d| crate::media::dtmf::event_code(d).is_none())
        {
            return Err(CoreError::InvalidArgument {
                field: "digits",
                message: format!("{digits:?}: use 0-9, *, # and A-D"),
            });
        }
        let c = self.calls.get(&id).ok_or_else(|| CoreError::NotFound {
            what: "call",
            id: id.to_string(),
        })?;
        if !matches!(c.info.state, CallState::Active | CallState::Held) {
            return Err(CoreError::FailedPrecondition(format!(
                "call {id} is not established"
            )));
        }
        c.commands
            .try_send(CallCommand::Dtmf(digits.to_string()))
            .map_err(|_| CoreError::FailedPrecondition(format!("call {id} is busy; try again")))?;
        Ok(c.info.clone())
    }

    /// Ends every call before shutdown, waiting a little for the BYEs to be answered.
    async fn hang_up_all(&mut self, call_rx: &mut mpsc::Receiver<CallUpdate>) {
        for c in self.calls.values() {
            let _ = c.commands.try_send(CallCommand::Hangup);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !self.calls.is_empty() {
            match tokio::time::timeout_at(deadline, call_rx.recv()).await {
                Ok(Some(update)) => self.on_call_update(update),
                _ => break,
            }
        }
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
        self.config = loaded.config;
        self.follow(None);
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

impl PhoneHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CoreError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| CoreError::Stopped)?;
        rx.await.map_err(|_| CoreError::Stopped)
    }

    pub async fn status(&self) -> Result<Status, CoreError> {
        self.ask(Command::Status).await
    }

    /// Re-reads the configuration file. On error the running configuration stays.
    pub async fn reload(&self) -> Result<ReloadReport, CoreError> {
        self.ask(Command::Reload).await?
    }

    pub async fn shutdown(&self, reason: impl Into<String>) -> Result<(), CoreError> {
        let reason = reason.into();
        self.ask(|done| Command::Shutdown { reason, done }).await
    }

    pub async fn accounts(&self) -> Result<Vec<AccountInfo>, CoreError> {
        self.ask(Command::ListAccounts).await
    }

    pub async fn account(&self, id: &str) -> Result<AccountInfo, CoreError> {
        let id = id.to_string();
        self.ask(|r| Command::GetAccount(id, r)).await?
    }

    pub async fn register(&self, id: &str) -> Result<AccountInfo, CoreError> {
        let id = id.to_string();
        self.ask(|r| Command::Register(id, r)).await?
    }

    pub async fn unregister(&self, id: &str) -> Result<AccountInfo, CoreError> {
        let id = id.to_string();
        self.ask(|r| Command::Unregister(id, r)).await?
    }

    pub async fn dial(
        &self,
        account: Option<&str>,
        uri: &str,
        endpoints: Endpoints,
    ) -> Result<CallInfo, CoreError> {
        let uri = self.resolve_target("uri", uri, false).await?;
        let account = account.map(str::to_string);
        self.ask(|reply| Command::Dial {
            account,
            uri,
            endpoints,
            reply,
        })
        .await?
    }

    pub async fn call(&self, id: u64, action: CallAction) -> Result<CallInfo, CoreError> {
        self.ask(|r| Command::CallAction(id, action, r)).await?
    }

    pub async fn send_dtmf(&self, id: u64, digits: &str) -> Result<CallInfo, CoreError> {
        let digits = digits.to_string();
        self.ask(|r| Command::SendDtmf(id, digits, r)).await?
    }

    pub async fn calls(&self) -> Result<Vec<CallInfo>, CoreError> {
        self.ask(Command::ListCalls).await
    }

    /// Ended calls, newest first, and the number of missed calls not yet seen.
    pub async fn history(&self, q: HistoryQuery) -> Result<(Vec<HistoryEntry>, u32), CoreError> {
        check_limit(q.limit)?;
        let (mut entries, missed) = self.store.history(q).await.map_err(CoreError::Store)?;
        let uris = entries.iter().map(|e| e.remote_uri.clone()).collect();
        let names = self.ask(|r| Command::ContactNames(uris, r)).await?;
        for (e, name) in entries.iter_mut().zip(names) {
            e.contact = name;
        }
        Ok((entries, missed))
    }

    /// Queues a text message to `to` (a URI, user@host, or a user at the account's domain)
    /// from `account` (or the first registered one); delivery follows as events.
    pub async fn send_message(
        &self,
        account: Option<&str>,
        to: &str,
        text: &str,
    ) -> Result<MessageEntry, CoreError> {
        let to = self.resolve_target("to", to, true).await?;
        let (account, text) = (account.map(str::to_string), text.to_string());
        self.ask(|reply| Command::SendMessage {
            account,
            to,
            text,
            reply,
        })
        .await?
    }

    /// Text messages, newest first: all, or those with `with` (an address, or a contact's
    /// name meaning all its addresses); at most `limit`. With `mark_read` the unread ones
    /// among them are read from now on. Also: how many were unread in all, before.
    pub async fn messages(
        &self,
        with: Option<String>,
        limit: u32,
        mark_read: bool,
    ) -> Result<(Vec<MessageEntry>, u32), CoreError> {
        check_limit(limit)?;
        let peers = match with.filter(|w| !w.trim().is_empty()) {
            Some(w) => self.peers_of(&w).await?,
            None => Vec::new(),
        };
        let (mut list, before, after) = self
            .store
            .messages(peers, limit, mark_read)
            .await
            .map_err(CoreError::Store)?;
        if after != before {
            self.ask(|done| {
                Command::Emit(Box::new(EventKind::UnreadMessages { count: after }), done)
            })
            .await?;
        }
        let peers = list.iter().map(|m| m.peer.clone()).collect();
        let names = self.ask(|r| Command::ContactNames(peers, r)).await?;
        for (m, name) in list.iter_mut().zip(names) {
            m.contact = name;
        }
        Ok((list, before))
    }

    /// Incoming messages not read yet.
    pub async fn unread_messages(&self) -> Result<u32, CoreError> {
        self.store.unread_messages().await.map_err(CoreError::Store)
    }

    /// Announces a change to the address book (already stored) and follows it.
    pub(super) async fn contacts_event(&self, kind: EventKind) -> Result<(), CoreError> {
        self.ask(|done| Command::ContactsChanged(Box::new(kind), done))
            .await
    }

    pub(super) async fn with_presence(
        &self,
        list: Vec<Contact>,
    ) -> Result<Vec<ContactInfo>, CoreError> {
        self.ask(|r| Command::WithPresence(list, r)).await
    }

    pub(super) async fn complete(&self, addresses: Vec<String>) -> Result<Vec<String>, CoreError> {
        self.ask(|r| Command::Complete(addresses, r)).await
    }

    /// Sets the presence others see of us.
    pub async fn set_presence(&self, status: &str, note: &str) -> Result<Presence, CoreError> {
        let status =
            PresenceStatus::settable(status).ok_or_else(|| CoreError::InvalidArgument {
                field: "status",
                message: format!("{status:?}: use online, away, busy or offline"),
            })?;
        // It goes into every NOTIFY and PUBLISH: short, and text only (XML has no place
        // for control characters).
        const MAX_NOTE: usize = 256;
        if note.chars().count() > MAX_NOTE || note.chars().any(char::is_control) {
            return Err(CoreError::InvalidArgument {
                field: "note",
                message: format!("up to {MAX_NOTE} characters, no control characters"),
            });
        }
        let note = note.to_string();
        // Kept first, so that what is in force is what a restart brings back.
        self.store
            .set_setting(OWN_PRESENCE, format!("{}\t{note}", status.as_str()))
            .await
            .map_err(CoreError::Store)?;
        let p = Presence::now(status, note);
        self.ask(|r| Command::SetPresence(p, r)).await
    }

    /// The presence others see of us.
    pub async fn own_presence(&self) -> Result<Presence, CoreError> {
        self.ask(Command::OwnPresence).await
    }

    pub async fn missed_unseen(&self) -> Result<u32, CoreError> {
        self.store.missed_unseen().await.map_err(CoreError::Store)
    }

    /// Events from now on. See [`super::EVENT_QUEUE`] for what happens to a slow reader.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Resolves once shutdown has begun.
    pub async fn stopped(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }
}

impl CallEntry {
    /// The call with its packet counts as they are now.
    fn view(&self) -> CallInfo {
        let mut info = self.info.clone();
        (info.stats.sent, info.stats.received) = self.live.snapshot();
        info
    }
}

/// What a call is until its task first reports.
fn placeholder(id: u64) -> CallInfo {
    calls::new_info(
        id,
        &None,
        calls::CallDirection::Outgoing,
        CallState::Dialing,
    )
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

/// Whom to reach, completed as a user types it; errors name `field` (the argument it came in).
fn dial_target(
    field: &'static str,
    input: &str,
    account: Option<&crate::config::Account>,
) -> Result<SipUri, CoreError> {
    let input = input.trim();
    let bad = |message: String| CoreError::InvalidArgument { field, message };
    if input.is_empty() {
        return Err(bad("whom to reach is missing".into()));
    }
    let text = if input.contains(':') && (input.starts_with("sip:") || input.starts_with("sips:")) {
        input.to_string()
    } else if input.contains('@') {
        format!("sip:{input}")
    } else {
        let a = account.ok_or_else(|| {
            bad(format!(
                "{input:?} needs an account to complete it; give a full sip: URI"
            ))
        })?;
        let aor = &a.aor.0;
        match aor.port {
            Some(p) => format!("sip:{input}@{}:{p}", aor.host),
            None => format!("sip:{input}@{}", aor.host),
        }
    };
    text.parse::<SipUri>()
        .map_err(|e| bad(format!("{text:?} is not a SIP URI: {e}")))
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Stores an incoming MESSAGE, then answers it: 200 only once it is on disk, 500 (so the
/// sender tries again) if it could not be kept, and the refusal if it is not one we take.
async fn receive_message(
    req: TuRequest,
    account: Option<String>,
    store: Store,
    updates: mpsc::Sender<CallUpdate>,
) {
    let incoming = match super::messages::check(&req.request, account) {
        Ok(m) => m,
        Err(resp) => {
            tracing::info!("MESSAGE refused with {}: {:?}", resp.code, resp.reason);
            return req.tx.respond(resp).await;
        }
    };
    let code = match store.receive_message(incoming).await {
        Ok((entry, new, unread)) => {
            if new {
                let _ = updates
                    .send(CallUpdate::MessageReceived(Box::new(entry)))
                    .await;
                let _ = updates.send(CallUpdate::Unread(unread)).await;
            }
            200
        }
        Err(e) => {
            tracing::error!("incoming MESSAGE not kept, answered 500: {e}");
            500
        }
    };
    let mut resp = req
        .request
        .response(code, crate::sip::message::reason_phrase(code));
    crate::sip::capabilities::add_to_tag(&mut resp);
    req.tx.respond(resp).await;
}
