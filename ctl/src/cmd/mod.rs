//! One file per verb.

pub mod accounts;
pub mod calls;
pub mod contacts;
pub mod forward;
pub mod history;
pub mod messages;
pub mod reload;
pub mod shutdown;
pub mod status;
pub mod voicemail;
pub mod watch;
