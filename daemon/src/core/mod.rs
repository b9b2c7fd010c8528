//! The core: all behaviour lives here, behind one API ([`PhoneHandle`]). gRPC, D-Bus,
//! voipctl and hooks only translate to and from it.

mod accounts;
mod calls;
mod contacts;
mod events;
mod forward;
mod inbound;
mod machine;
mod messages;
mod mwi;
mod nat;
mod outbox;
mod phone;
pub mod pidf;
mod presence;
mod request;
mod subscriber;
mod uas;
pub mod vcard;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use events::{EVENT_QUEUE, Event, EventKind};
pub use phone::{CallAction, CallPick, HookSet, Phone, PhoneHandle, SipStack};

pub use calls::{
    CallDirection, CallInfo, CallState, EndReason, Endpoints, IceInfo, IceState, MediaEncryption,
    VideoAsk, VideoInfo,
};
pub use contacts::ContactInfo;
pub use forward::ForwardSetting;
pub use inbound::StrangerStats;
pub use mwi::MessageSummary;
pub use presence::{Presence, PresenceStatus};

pub use crate::sip::registration::RegState;

use crate::config::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    pub path: PathBuf,
    /// No file existed at `path`; the embedded default is in force.
    pub embedded: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub version: &'static str,
    pub pid: u32,
    pub started: SystemTime,
    pub uptime: Duration,
    pub config: ConfigSource,
    pub config_loaded: SystemTime,
    pub listening: Vec<String>,
    pub accounts: u32,
    pub accounts_registered: u32,
    pub calls: u32,
    pub watchers: u32,
    /// Requests from those not let in (`sip.accept_direct`).
    pub strangers: StrangerStats,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReloadReport {
    pub config: ConfigSource,
    pub applied: Vec<String>,
    pub restart_required: Vec<String>,
}

/// An account as the faces show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub id: String,
    pub aor: String,
    pub display_name: Option<String>,
    pub enabled: bool,
    pub state: RegState,
    /// Each forwarding rule, in `ForwardRule::ALL`'s order.
    pub forwarding: Vec<ForwardSetting>,
    /// The provider's voicemail summary (RFC 3842), once one came.
    pub voicemail: Option<MessageSummary>,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("the daemon is shutting down")]
    Stopped,
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error("no {what} {id:?}")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("configuration not reloaded, the running one stays in force: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(crate::store::StoreError),
}
