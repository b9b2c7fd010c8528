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
        let event = Event {
            seq: self.next_seq,
            at: SystemTime::now(),
            kind,
        };
        self.next_seq += 1;
        tracing::debug!(seq = event.seq, "event {:?}", event.kind);
        // No receivers is normal: nobody is watching.
        let _ = self.tx.send(Arc::new(event));
    }
}
