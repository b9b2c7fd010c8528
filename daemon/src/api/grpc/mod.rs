//! gRPC over the control socket, with server reflection so that clients need no .proto.

mod accounts;
mod auth;
mod calls;
mod contacts;
mod convert;
mod daemon;
mod events;
mod history;
mod messages;
mod reflection;
mod voicemail;

use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::service::{InterceptorLayer, Routes};
use tonic::transport::{Identity, Server, ServerTlsConfig};
use voipd_proto::v1::accounts_server::AccountsServer;
use voipd_proto::v1::calls_server::CallsServer;
use voipd_proto::v1::contacts_server::ContactsServer;
use voipd_proto::v1::daemon_server::DaemonServer;
use voipd_proto::v1::events_server::EventsServer;
use voipd_proto::v1::history_server::HistoryServer;
use voipd_proto::v1::messages_server::MessagesServer;
use voipd_proto::v1::voicemail_server::VoicemailServer;

use crate::config::TcpControl;
use crate::core::{CoreError, PhoneHandle};

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("control.tcp: the certificate or key cannot be used: {0}")]
    Tls(String),
}

/// Every service, for each listener.
fn routes(phone: &PhoneHandle) -> Routes {
    Routes::new(reflection::v1())
        .add_service(reflection::v1alpha())
        .add_service(DaemonServer::new(daemon::DaemonService::new(phone.clone())))
        .add_service(AccountsServer::new(accounts::AccountsService::new(
            phone.clone(),
        )))
        .add_service(CallsServer::new(calls::CallsService::new(phone.clone())))
        .add_service(EventsServer::new(events::EventsService::new(phone.clone())))
        .add_service(HistoryServer::new(history::HistoryService::new(
            phone.clone(),
        )))
        .add_service(MessagesServer::new(messages::MessagesService::new(
            phone.clone(),
        )))
        .add_service(VoicemailServer::new(voicemail::VoicemailService::new(
            phone.clone(),
        )))
        // An address book with photos in it is larger than gRPC's default 4 MiB.
        .add_service(
            ContactsServer::new(contacts::ContactsService::new(phone.clone()))
                .max_decoding_message_size(64 << 20),
        )
}

fn stopped(phone: &PhoneHandle) -> impl Future<Output = ()> + use<> {
    let phone = phone.clone();
    async move { phone.stopped().await }
}

/// Serves the Unix socket until the core begins shutdown, then lets running calls finish.
/// Who may connect is settled by the socket's file permissions.
pub async fn serve(
    listener: tokio::net::UnixListener,
    phone: PhoneHandle,
) -> Result<(), GrpcError> {
    Server::builder()
        .add_routes(routes(&phone))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stopped(&phone))
        .await?;
    Ok(())
}

fn tls(tcp: &TcpControl) -> ServerTlsConfig {
    ServerTlsConfig::new().identity(Identity::from_pem(&tcp.cert, tcp.key.expose()))
}

/// Tries the TLS identity, so that a bad certificate or key stops the start, not a client.
pub fn check_tls(tcp: &TcpControl) -> Result<(), GrpcError> {
    Server::builder().tls_config(tls(tcp)).map_err(|e| {
        GrpcError::Tls(
            std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string()),
        )
    })?;
    Ok(())
}

/// Serves TCP with TLS, and only to requests that carry the bearer token.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    tcp: TcpControl,
    phone: PhoneHandle,
) -> Result<(), GrpcError> {
    let tls = tls(&tcp);
    let token = tcp.token;
    Server::builder()
        .tls_config(tls)?
        .layer(InterceptorLayer::new(move |req: tonic::Request<()>| {
            auth::check(&req, &token)?;
            Ok(req)
        }))
        .add_routes(routes(&phone))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopped(&phone))
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
        CoreError::Store(_) => tonic::Status::internal(e.to_string()),
    }
}
