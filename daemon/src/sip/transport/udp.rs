use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::{Proto, Shared, Target, accept};
use crate::sip::message::MAX_MESSAGE;

pub(super) async fn recv_loop(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    loop {
        let got = tokio::select! {
            r = sock.recv_from(&mut buf) => r,
            r = sock.ready(Interest::ERROR) => {
                if r.is_ok() {
                    report_errors_queued(&sock, &shared);
                }
                continue;
            }
        };
        let (n, from) = match got {
            Ok(r) => r,
            // With IP_RECVERR an ICMP error also fails the next receive once, and that
            // may come before the error readiness: the queue is read here too.
            Err(e) => {
                if unreachable_kind(&e) {
                    report_errors_queued(&sock, &shared);
                } else {
                    tracing::debug!("udp receive: {e}");
                }
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
            && let Err(e) = send_to(&sock, &answer, from.addr).await
        {
            tracing::debug!("udp send to {}: {e}", from.addr);
        }
    }
}

/// Sends one datagram. With IP_RECVERR on, an ICMP error about an earlier datagram (to
/// anyone) fails the next send once, whoever it is for: that send is made again, as the
/// error was not its own. The error also leaves tokio's readiness for the socket marked
/// writable for good (EPOLLERR with EPOLLOUT reads as write-closed), so a full send buffer
/// is waited out with short sleeps (for up to about two seconds) rather than spun on.
pub(super) async fn send_to(sock: &UdpSocket, bytes: &[u8], to: SocketAddr) -> std::io::Result<()> {
    let (mut stale, mut full) = (0, 0);
    loop {
        match sock.try_send_to(bytes, to) {
            Ok(_) => return Ok(()),
            Err(e) if unreachable_kind(&e) && stale < 4 => stale += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && full < 2000 => {
                full += 1;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The errors an ICMP report leaves on the socket.
fn unreachable_kind(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
    )
}

/// Asks the kernel to queue ICMP errors about what we send, with the destination each
/// concerns: an unconnected socket hears of a closed port no other way, and a call to
/// one would wait out Timer B (32 s) instead of failing at once.
pub(super) fn report_errors(sock: &UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    let v6 = sock.local_addr().is_ok_and(|a| a.is_ipv6());
    let set = if v6 {
        setsockopt(sock, sockopt::Ipv6RecvErr, &true)
            .and_then(|()| setsockopt(sock, sockopt::Ipv4RecvErr, &true).or(Ok(())))
    } else {
        setsockopt(sock, sockopt::Ipv4RecvErr, &true)
    };
    if let Err(e) = set {
        tracing::debug!("no ICMP error reports on the SIP socket: {e}");
    }
}

/// Reads the queued ICMP errors and tells the layer above of the destinations that
/// cannot be reached (a closed port, no route).
fn report_errors_queued(sock: &UdpSocket, shared: &Shared) {
    // Bounded: the queue holds what the kernel kept, but a flood must not keep us here.
    for _ in 0..64 {
        match read_error(sock.as_raw_fd()) {
            Ok(Some((to, why))) => {
                let target = Target {
                    proto: Proto::Udp,
                    addr: to,
                };
                let _ = shared.unreachable.send((target, why));
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
    // The queue is read directly, as it may be before tokio has seen the error readiness;
    // this clears that readiness so that the next error wakes the loop again.
    let _ = sock.try_io(Interest::ERROR, || {
        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
    });
}

/// One entry of the socket's error queue (recvmsg with MSG_ERRQUEUE).
fn read_error(fd: std::os::fd::RawFd) -> std::io::Result<Option<(SocketAddr, String)>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    let mut data = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_ERRQUEUE)
        .map_err(std::io::Error::from)?;
    // The original destination of the datagram the error is about.
    let Some(to) = msg.address.as_ref().and_then(std_addr) else {
        return Ok(None);
    };
    let mut errno = 0;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _) => {
                errno = e.ee_errno as i32;
            }
            _ => {}
        }
    }
    let why = match errno {
        libc::ECONNREFUSED => "port unreachable",
        libc::EHOSTUNREACH => "host unreachable",
        libc::ENETUNREACH => "network unreachable",
        // Too big, TTL exceeded and the like: the destination may well be there.
        _ => return Ok(None),
    };
    Ok(Some((to, why.to_string())))
}

fn std_addr(a: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(std::net::SocketAddrV4::from(*v4)));
    }
    let v6 = std::net::SocketAddrV6::from(*a.as_sockaddr_in6()?);
    // A v4 peer reached through a dual-stack socket is sent to as IPv4.
    Some(SocketAddr::new(v6.ip().to_canonical(), v6.port()))
}
