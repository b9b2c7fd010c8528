//! gRPC over the control socket, with server reflection so that clients need no .proto.

mod accounts;
mod calls;
mod convert;
mod daemon;
mod events;

use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;
use voipd_proto::v1::FILE_DESCRIPTOR_SET;
use voipd_proto::v1::accounts_server::AccountsServer;
use voipd_proto::v1::calls_server::CallsServer;
use voipd_proto::v1::daemon_server::DaemonServer;
use voipd_proto::v1::events_server::EventsServer;

use crate::core::{CoreError, PhoneHandle};

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves until the core begins shutdown, then lets running calls finish.
pub async fn serve(
    listener: tokio::net::UnixListener,
    phone: PhoneHandle,
) -> Result<(), GrpcError> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // grpcio's reflection client and grpcurl before 1.8 still speak v1alpha.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let stopped = {
        let phone = phone.clone();
        async move { phone.stopped().await }
    };
    Server::builder()
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(DaemonServer::new(daemon::DaemonService::new(phone.clone())))
        .add_service(AccountsServer::new(accounts::AccountsService::new(
            phone.clone(),
        )))
        .add_service(CallsServer::new(calls::CallsService::new(phone.clone())))
        .add_service(EventsServer::new(events::EventsService::new(phone)))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stopped)
        .await?;
    Ok(())
}

fn status_of(e: CoreError) -> tonic::Status {
    match e {
        CoreError::Stopped => tonic::Status::unavailable(e.to_string()),
        CoreError::Config(_) | CoreError::FailedPrecondition(_) => {
            tonic::Status::failed_precondition(e.to_string())
        }
        CoreError::InvalidArgument { .. } => tonic::Status::invalid_argument(e.to_string()),
        CoreError::NotFound { .. } => tonic::Status::not_found(e.to_string()),
    }
}
