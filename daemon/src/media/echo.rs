//! The far end of the sound test call: it sends every RTP packet back to where it came
//! from, a fixed delay later, so users hear themselves as others would.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{Instant, sleep_until};

/// How long the echo lags: long enough to tell one's own voice from the echo.
pub const DELAY: Duration = Duration::from_millis(1000);
/// More than two seconds of 20 ms packets waiting is not an echo any more; drop.
const MAX_QUEUED: usize = 100;

/// Reflects packets until the task is aborted.
pub async fn reflect(sock: UdpSocket) {
    let mut queue: VecDeque<(Instant, SocketAddr, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 2048];
    loop {
        let due = queue.front().map(|(t, _, _)| *t);
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                if queue.len() < MAX_QUEUED {
                    queue.push_back((Instant::now() + DELAY, from, buf[..n].to_vec()));
                }
            }
            () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if let Some((_, to, p)) = queue.pop_front() {
                    let _ = sock.send_to(&p, to).await;
                }
            }
        }
    }
}
