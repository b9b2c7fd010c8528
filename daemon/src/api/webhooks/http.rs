//! One webhook's HTTP/1.1 connection: hyper's client over TCP or rustls, kept open between
//! events and made again when the receiver closed it.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::config::Webhook;

/// Why a POST got no answer, or which answer it got.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The receiver answered with this status.
    Status(u16),
    /// No answer: the connection, TLS or the request failed, or it took too long.
    Failed(String),
}

pub(super) struct Client {
    hook: Arc<Webhook>,
    tls: Option<TlsConnector>,
    conn: Option<(SendRequest<Full<Bytes>>, JoinHandle<()>)>,
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some((_, task)) = self.conn.take() {
            task.abort();
        }
    }
}

impl Client {
    pub(super) fn new(hook: Arc<Webhook>) -> Result<Client, String> {
        let tls = if hook.tls {
            let config = crate::sip::transport::tls::client_config(hook.ca_pem.as_deref(), None)
                .map_err(|e| e.to_string())?;
            // HTTP/1.1 only: that is what it speaks.
            let mut config = (*config).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(Client {
            hook,
            tls,
            conn: None,
        })
    }

    /// POSTs `body` with `headers`, within the webhook's timeout.
    pub(super) async fn post(
        &mut self,
        body: Bytes,
        headers: &[(&'static str, String)],
    ) -> Outcome {
        match tokio::time::timeout(self.hook.timeout, self.post_now(body, headers)).await {
            Ok(o) => o,
            Err(_) => {
                self.close();
                Outcome::Failed(format!("no answer in {} s", self.hook.timeout.as_secs()))
            }
        }
    }

    async fn post_now(&mut self, body: Bytes, headers: &[(&'static str, String)]) -> Outcome {
        // A kept connection the receiver has closed meanwhile fails at once: then once
        // more on a new one.
        let reused = self.conn.is_some();
        match self.send(body.clone(), headers).await {
            Ok(status) => Outcome::Status(status),
            Err(_) if reused => match self.send(body, headers).await {
                Ok(status) => Outcome::Status(status),
                Err(e) => Outcome::Failed(e),
            },
            Err(e) => Outcome::Failed(e),
        }
    }

    async fn send(
        &mut self,
        body: Bytes,
        headers: &[(&'static str, String)],
    ) -> Result<u16, String> {
        if self.conn.as_ref().is_none_or(|(s, _)| s.is_closed()) {
            self.close();
            self.conn = Some(self.connect().await?);
        }
        let Some((sender, _)) = self.conn.as_mut() else {
            return Err("no connection".into());
        };
        let h = &self.hook;
        let authority = if h.host.contains(':') {
            format!("[{}]:{}", h.host, h.port)
        } else {
            format!("{}:{}", h.host, h.port)
        };
        let mut req = hyper::Request::post(h.path.as_str())
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("voipd/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let result = async {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let status = resp.status().as_u16();
            // Read to its end, so that the connection can carry the next one.
            resp.into_body().collect().await?;
            Ok::<u16, hyper::Error>(status)
        }
        .await;
        result.map_err(|e| {
            self.close();
            e.to_string()
        })
    }

    fn close(&mut self) {
        if let Some((_, task)) = self.conn.take() {
            task.abort();
        }
    }

    async fn connect(&self) -> Result<(SendRequest<Full<Bytes>>, JoinHandle<()>), String> {
        let h = &self.hook;
        let tcp = TcpStream::connect((h.host.as_str(), h.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", h.host, h.port))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some(tls) => {
                let name =
                    ServerName::try_from(h.host.clone()).map_err(|e| format!("{}: {e}", h.host))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", h.host))?;
                handshake(stream).await
            }
            None => handshake(tcp).await,
        }
    }
}

async fn handshake<T>(io: T) -> Result<(SendRequest<Full<Bytes>>, JoinHandle<()>), String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    // Owned by the client, which aborts it when it lets the connection go.
    let task = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("webhook connection ended: {e}");
        }
    });
    Ok((sender, task))
}
