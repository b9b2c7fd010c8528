//! SIP signalling. For now only what the configuration needs; the message, transport,
//! transaction and dialog layers grow here.

pub mod auth;
pub mod capabilities;
pub mod dialog;
pub mod message;
pub mod registration;
pub mod resolve;
pub mod transaction;
pub mod transport;
pub mod uri;
pub mod usage;
