//! Connecting to the daemon's control socket.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};
use voipd_proto::socket::{SYSTEM_SOCKET, user_socket};

use crate::exit::Failure;

/// The socket to use: the one given, else the user daemon's if it exists, else the system
/// service's if it exists, else the user daemon's (for the error message).
fn choose(given: Option<PathBuf>) -> PathBuf {
    if let Some(p) = given {
        return p;
    }
    let user = user_socket();
    if user.exists() {
        return user;
    }
    let system = PathBuf::from(SYSTEM_SOCKET);
    if system.exists() { system } else { user }
}

fn unreachable(path: &Path, why: &str) -> Failure {
    Failure::Unreachable(format!(
        "cannot reach voipd at {}: {why}.\n\
         Is it running? Start it with `voipd` (or `systemctl --user start voipd`, or \
         `systemctl start voipd` for the system service), or point voipctl at its socket \
         with --socket PATH or VOIPD_SOCKET.",
        path.display()
    ))
}

pub async fn connect(given: Option<PathBuf>) -> Result<Channel, Failure> {
    let path = choose(given);
    // Connect once by hand so that a missing socket is reported as such, with the path.
    let stream = tokio::net::UnixStream::connect(&path).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such socket".to_string(),
            std::io::ErrorKind::ConnectionRefused => {
                "nobody is listening (a stale socket?)".to_string()
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (the system service's socket is for the voipd group)".to_string()
            }
            _ => e.to_string(),
        };
        unreachable(&path, &why)
    })?;
    let mut first = Some(stream);
    let again = path.clone();
    // The URI is not used for a Unix socket, but tonic needs one; "localhost" is also the
    // :authority the server sees.
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let stream = first.take();
            let path = again.clone();
            async move {
                let s = match stream {
                    Some(s) => s,
                    None => tokio::net::UnixStream::connect(path).await?,
                };
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
        .await
        .map_err(|e| unreachable(&path, &e.to_string()))
}
