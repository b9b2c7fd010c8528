//! voipd: a headless VoIP daemon. The binary in `main.rs` only parses flags and calls
//! [`daemon::run`].

pub mod api;
pub mod config;
pub mod control_socket;
pub mod core;
pub mod daemon;
pub mod logging;
pub mod media;
pub mod memory;
pub mod paths;
pub mod sdnotify;
pub mod sdp;
pub mod sip;
pub mod store;
