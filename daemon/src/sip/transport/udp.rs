use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::{Proto, Shared, Target, accept};
use crate::sip::message::MAX_MESSAGE;

/// Binds `addr`; if it is taken and `may_move`, any free port on the same IP.
pub(super) async fn bind(addr: SocketAddr, may_move: bool) -> std::io::Result<UdpSocket> {
    match UdpSocket::bind(addr).await {
        Err(e) if may_move && e.kind() == std::io::ErrorKind::AddrInUse => {
            let sock = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).await?;
            tracing::warn!(
                "udp:{addr} is in use; listening on udp:{} instead",
                sock.local_addr()?
            );
            Ok(sock)
        }
        other => other,
    }
}

pub(super) async fn recv_loop(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors from earlier sends surface here on some systems; not fatal.
            Err(e) => {
                tracing::debug!("udp receive: {e}");
                continue;
            }
        };
        let data = &buf[..n];
        // CRLF keepalives over UDP carry nothing to answer.
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
        {
            continue;
        }
        let from = Target {
            proto: Proto::Udp,
            addr: from,
        };
        if let Some(answer) = accept(&shared, data, from)
            && let Err(e) = sock.send_to(&answer, from.addr).await
        {
            tracing::debug!("udp send to {}: {e}", from.addr);
        }
    }
}
