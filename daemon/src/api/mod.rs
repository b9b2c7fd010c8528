//! The faces of the core: thin adapters, no behaviour of their own.

pub mod dbus;
pub mod grpc;
pub mod hooks;
pub mod mqtt;
pub mod webhooks;

/// An event as `voipctl watch --json` prints it: what hooks, webhooks and MQTT send. None
/// (logged) in the unlikely case it cannot be written.
fn event_json(ev: &crate::core::Event) -> Option<String> {
    serde_json::to_string(&voipd_proto::v1::Event::from(ev))
        .map_err(|e| tracing::error!("event {} could not be put in JSON: {e}", ev.seq))
        .ok()
}

/// The next event of a subscription that exists only while its adapter has something
/// configured (`status` counts watchers): never, without one.
async fn next_event(
    events: &mut Option<tokio::sync::broadcast::Receiver<std::sync::Arc<crate::core::Event>>>,
) -> Result<std::sync::Arc<crate::core::Event>, tokio::sync::broadcast::error::RecvError> {
    match events {
        Some(e) => e.recv().await,
        None => std::future::pending().await,
    }
}
