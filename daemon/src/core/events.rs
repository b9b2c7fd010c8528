//! What the core tells its faces. Every face (gRPC Watch, D-Bus signals, hooks) reads the
//! same stream.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::{AccountInfo, CallInfo, ConfigSource};

/// How many events a watcher may fall behind before it is cut off. Bounded so that a
/// stuck client cannot make the daemon's memory grow.
pub const EVENT_QUEUE: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// One more than the previous event's; a gap tells a watcher it missed some.
    pub seq: u64,
    pub at: SystemTime,
    /// What happened, in one word (`voipd_proto::events`): hooks, webhooks and MQTT
    /// topics go by it. A call's changes have several names, so it is given when emitted.
    pub name: &'static str,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    DaemonStarted {
        version: String,
    },
    ConfigReloaded {
        config: ConfigSource,
        applied: Vec<String>,
        restart_required: Vec<String>,
    },
    ConfigReloadFailed {
        config: ConfigSource,
        error: String,
    },
    ShuttingDown {
        reason: String,
    },
    AccountChanged(AccountInfo),
    AccountRemoved {
        id: String,
    },
    /// A call started, changed state, or ended (then with its media figures).
    CallChanged(Box<CallInfo>),
    DtmfReceived {
        call: u64,
        digit: char,
    },
    /// A call was written to the history (after its CallChanged with state ended).
    HistoryChanged {
        missed_unseen: u32,
    },
    /// A text message came in (and is stored).
    MessageReceived(crate::store::MessageEntry),
    /// A message we send was queued, delivered, or failed (with the SIP status).
    MessageChanged(crate::store::MessageEntry),
    /// How many incoming messages are unread, when it changed (one came, some were read).
    UnreadMessages {
        count: u32,
    },
    /// A contact was added or changed, or its presence changed.
    ContactChanged(super::ContactInfo),
    ContactRemoved {
        id: i64,
    },
    /// Many contacts changed at once (an import).
    ContactsImported {
        added: u32,
        updated: u32,
    },
    /// The answering machine kept a message.
    VoicemailReceived(crate::store::Voicemail),
    /// Messages were kept, heard or removed: how many are unheard now.
    VoicemailsChanged {
        unheard: u32,
    },
}

impl EventKind {
    /// The event's name, for every kind but a call's (see [`EventBus::emit_call`]).
    fn name(&self) -> &'static str {
        use voipd_proto::events as n;
        match self {
            EventKind::DaemonStarted { .. } => n::DAEMON_STARTED,
            EventKind::ConfigReloaded { .. } => n::CONFIG_RELOADED,
            EventKind::ConfigReloadFailed { .. } => n::CONFIG_RELOAD_FAILED,
            EventKind::ShuttingDown { .. } => n::SHUTTING_DOWN,
            EventKind::AccountChanged(_) => n::ACCOUNT_CHANGED,
            EventKind::AccountRemoved { .. } => n::ACCOUNT_REMOVED,
            EventKind::CallChanged(_) => n::CALL_CHANGED,
            EventKind::DtmfReceived { .. } => n::DTMF,
            EventKind::HistoryChanged { .. } => n::HISTORY_CHANGED,
            EventKind::MessageReceived(_) => n::MESSAGE_RECEIVED,
            EventKind::MessageChanged(_) => n::MESSAGE_CHANGED,
            EventKind::UnreadMessages { .. } => n::UNREAD_MESSAGES,
            EventKind::ContactChanged(_) => n::CONTACT_CHANGED,
            EventKind::ContactRemoved { .. } => n::CONTACT_REMOVED,
            EventKind::ContactsImported { .. } => n::CONTACTS_IMPORTED,
            EventKind::VoicemailReceived(_) => n::VOICEMAIL_RECEIVED,
            EventKind::VoicemailsChanged { .. } => n::VOICEMAILS_CHANGED,
        }
    }
}

/// The sending side, owned by the core task alone, so numbering needs no lock.
pub(super) struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    next_seq: u64,
}

impl EventBus {
    pub(super) fn new() -> EventBus {
        EventBus {
            tx: broadcast::Sender::new(EVENT_QUEUE),
            next_seq: 1,
        }
    }

    pub(super) fn sender(&self) -> broadcast::Sender<Arc<Event>> {
        self.tx.clone()
    }

    pub(super) fn emit(&mut self, kind: EventKind) {
        self.emit_named(kind.name(), kind);
    }

    /// A call's change, named for what changed (`call_incoming`, `call_answered`, …).
    pub(super) fn emit_call(&mut self, name: &'static str, info: CallInfo) {
        self.emit_named(name, EventKind::CallChanged(Box::new(info)));
    }

    fn emit_named(&mut self, name: &'static str, kind: EventKind) {
        let event = Event {
            seq: self.next_seq,
            at: SystemTime::now(),
            name,
            kind,
        };
        self.next_seq += 1;
        tracing::debug!(seq = event.seq, "event {:?}", event.kind);
        // No receivers is normal: nobody is watching.
        let _ = self.tx.send(Arc::new(event));
    }
}
