//! SIP signalling. For now only what the configuration needs; the message, transport,
//! transaction and dialog layers grow here.

pub mod message;
pub mod uri;
