use std::sync::Arc;

use tokio::net::UdpSocket;

use super::{Proto, Shared, Target, accept};
use crate::sip::message::MAX_MESSAGE;

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
        if let Some(answer) = accept(&shared, data, from).answer
            && let Err(e) = sock.send_to(&answer, from.addr).await
        {
            tracing::debug!("udp send to {}: {e}", from.addr);
        }
    }
}
