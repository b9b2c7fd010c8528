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
                    for (to, why) in drain_errors(&sock) {
                        let _ = shared.unreachable.send((Target { proto: Proto::Udp, addr: to }, why));
                    }
                }
                continue;
            }
        };
        let (n, from) = match got {
            Ok(r) => r,
            // With IP_RECVERR an ICMP error also fails the next receive once; the error
            // queue has said what it concerns.
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

/// The destinations the queued ICMP errors are about, with what each error says; only
/// the errors that mean nobody is there (a closed port, no route) are kept.
fn drain_errors(sock: &UdpSocket) -> Vec<(SocketAddr, String)> {
    let mut found = Vec::new();
    // Bounded: the queue holds what the kernel kept, but a flood must not keep us here.
    for _ in 0..64 {
        match sock.try_io(Interest::ERROR, || read_error(sock.as_raw_fd())) {
            Ok(Some(e)) => found.push(e),
            Ok(None) => {}
            Err(_) => break,
        }
    }
    found
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
