//! The faces of the core: thin adapters, no behaviour of their own.

pub mod dbus;
pub mod grpc;
pub mod hooks;
pub mod mqtt;
pub mod webhooks;
