//! SIP over TLS (RFC 3261 §26.2, RFC 5922): rustls with the ring provider. A server is
//! checked against the system's trust store, or an account's own CA, and against the name
//! its address was found under (the SIP domain, RFC 5922 §4.1): the locator notes that
//! name for every TLS target it returns. A certificate that does not verify is never
//! accepted anyway; the request fails with a reason that says why.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{CONNECT_TIMEOUT, Target, TransportError, lock};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a certificate, key or CA cannot be used, and which setting named it (`ca`,
/// `client_cert`, `client_key`, `tls_certificate`, `tls_key`; empty for the system's
/// trust store), so that the configuration can point at the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct TlsSetupError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl std::fmt::Display) -> TlsSetupError {
    TlsSetupError {
        field,
        message: message.to_string(),
    }
}

fn certs(pem: &[u8], field: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(field, e))?;
    if certs.is_empty() {
        return Err(bad(field, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn key(pem: &[u8], field: &'static str) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad(field, e))
}

/// What to trust and how to show ourselves to a server: the CA certificates in `ca_pem`
/// (none: the system's trust store), and a client certificate chain and key if given.
pub fn client_config(
    ca_pem: Option<&[u8]>,
    identity: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for c in certs(pem, "ca")? {
                roots
                    .add(c)
                    .map_err(|e| bad("ca", format!("not a usable CA certificate: {e}")))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                // One odd certificate in the system's store must not cost all the others.
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(bad(
                    "",
                    format!(
                        "no trusted CA certificates on this system ({}); install the \
                     ca-certificates package, or name the provider's CA in the account's tls.ca",
                        found
                            .errors
                            .first()
                            .map_or_else(|| "none found".to_string(), |e| e.to_string())
                    ),
                ));
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("", e))?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, k)) => builder
            .with_client_auth_cert(certs(cert, "client_cert")?, key(k, "client_key")?)
            .map_err(|e| {
                bad(
                    "client_key",
                    format!("it does not go with client_cert: {e}"),
                )
            })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Our certificate chain and key, for `tls:` listeners.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("", e))?
        .with_no_client_auth()
        .with_single_cert(
            certs(cert_pem, "tls_certificate")?,
            key(key_pem, "tls_key")?,
        )
        .map_err(|e| {
            bad(
                "tls_key",
                format!("it does not go with tls_certificate: {e}"),
            )
        })?;
    Ok(Arc::new(config))
}

/// The transport's TLS state: which name each server address is checked against, which
/// servers have an account's own CA or client certificate, and our server side.
#[derive(Default)]
pub struct TlsContext {
    names: Mutex<HashMap<SocketAddr, String>>,
    clients: Mutex<HashMap<String, Arc<ClientConfig>>>,
    /// The system's trust store, loaded (off the runtime's threads: it reads and parses
    /// files) at the first connection that needs it.
    system: tokio::sync::OnceCell<Result<Arc<ClientConfig>, String>>,
    pub(super) acceptor: Option<TlsAcceptor>,
}

impl TlsContext {
    pub(super) fn new(server: Option<Arc<ServerConfig>>) -> TlsContext {
        TlsContext {
            acceptor: server.map(TlsAcceptor::from),
            ..TlsContext::default()
        }
    }

    /// A server at `addr` is to be checked against `name` (where it was found under).
    pub fn name_for(&self, addr: SocketAddr, name: &str) {
        let mut names = lock(&self.names);
        // Bounded: a name per server address, and a phone talks to few servers.
        if names.len() >= 4096 && !names.contains_key(&addr) {
            names.clear();
        }
        names.insert(addr, name.to_ascii_lowercase());
    }

    /// Connections to `name` use `config` (an account's own CA or client certificate).
    pub fn client_for(&self, name: &str, config: Arc<ClientConfig>) {
        lock(&self.clients).insert(name.to_ascii_lowercase(), config);
    }

    async fn config_for(&self, name: &str) -> Result<Arc<ClientConfig>, String> {
        if let Some(c) = lock(&self.clients).get(name) {
            return Ok(c.clone());
        }
        self.system
            .get_or_init(|| async {
                tokio::task::spawn_blocking(|| client_config(None, None).map_err(|e| e.to_string()))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
            })
            .await
            .clone()
    }

    /// TLS over a fresh connection to `target`, the server checked against the name its
    /// address was found under (its IP address when it was given as one).
    pub(super) async fn connect(
        &self,
        tcp: TcpStream,
        target: Target,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TransportError> {
        let name = lock(&self.names)
            .get(&target.addr)
            .cloned()
            .unwrap_or_else(|| target.addr.ip().to_string());
        let fail = |why: String| {
            tracing::warn!("TLS with {target} ({name}) failed: {why}");
            TransportError::Tls {
                target,
                name: name.clone(),
                why,
            }
        };
        let server = ServerName::try_from(name.clone())
            .map_err(|_| fail(format!("{name:?} is not a name a certificate can be for")))?;
        let config = self.config_for(&name).await.map_err(&fail)?;
        let handshake = TlsConnector::from(config).connect(server, tcp);
        match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(fail(describe(&e, &name))),
            Err(_) => Err(fail("the handshake timed out".into())),
        }
    }
}

/// Why a handshake failed, in words: what a person must fix is on which side.
pub(super) fn describe(e: &std::io::Error, name: &str) -> String {
    let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return e.to_string();
    };
    match err {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                CertificateError::UnknownIssuer => {
                    "it is not signed by a CA we trust (set the account's tls.ca to the provider's CA if it has its own)".to_string()
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "it has expired".to_string()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "it is not valid yet (is this machine's clock right?)".to_string()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!("it is not for {name}")
                }
                CertificateError::Revoked => "it has been revoked".to_string(),
                other => format!("{other:?}"),
            };
            format!("the server's certificate does not verify: {why}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_what_they_should_be_are_named() {
        let e = client_config(Some(b"not pem"), None).unwrap_err();
        assert_eq!(e.field, "ca");
        assert_eq!(e.to_string(), "ca: no PEM certificate in it");
        let e = server_config(b"", b"").unwrap_err();
        assert_eq!(e.field, "tls_certificate", "{e}");
    }

    #[test]
    fn the_reasons_say_what_is_wrong_with_the_certificate() {
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let why = describe(
            &io(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            "sip.example.com",
        );
        assert!(why.contains("not signed by a CA we trust"), "{why}");
        let why = describe(
            &io(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            )),
            "sip.example.com",
        );
        assert!(why.ends_with("it is not for sip.example.com"), "{why}");
    }
}
