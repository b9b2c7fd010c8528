//! RTP sockets for the media engine: non-blocking, read once per tick, and stamped by the
//! kernel on arrival (SO_TIMESTAMPNS). The engine reads a socket up to 20 ms after a packet
//! came, so its own clock would say nothing about network jitter; the kernel's stamp does.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;

/// Makes a bound socket fit for the engine: non-blocking, with arrival stamps.
pub fn prepare(sock: &UdpSocket) -> io::Result<()> {
    sock.set_nonblocking(true)?;
    setsockopt(sock, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// One shard's receive buffers, shared by all the calls it runs.
pub struct RecvBuf {
    data: Vec<u8>,
    cmsg: Vec<u8>,
}

pub struct Datagram<'a> {
    pub bytes: &'a [u8],
    pub from: SocketAddr,
    /// Arrival, in ns since the Unix epoch (the kernel's stamp, else now).
    pub at_ns: u128,
}

impl Default for RecvBuf {
    fn default() -> RecvBuf {
        RecvBuf {
            // One Ethernet MTU: RTP is not fragmented in practice; a longer datagram is cut.
            data: vec![0; 1500],
            cmsg: nix::cmsg_space!(TimeSpec),
        }
    }
}

impl RecvBuf {
    /// The next waiting datagram; `WouldBlock` when there is none.
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<Datagram<'_>> {
        let mut iov = [IoSliceMut::new(&mut self.data)];
        let msg = recvmsg::<SockaddrStorage>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut self.cmsg),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        let mut at_ns = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmTimestampns(t) = c {
                    at_ns = u128::try_from(t.tv_sec())
                        .ok()
                        .zip(u128::try_from(t.tv_nsec()).ok())
                        .map(|(s, n)| s * 1_000_000_000 + n);
                }
            }
        }
        let from = msg.address.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::V4(SocketAddrV4::from(*v4)))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
                })
        });
        let len = msg.bytes;
        let Some(from) = from else {
            return Err(io::Error::other("datagram without a sender address"));
        };
        let at_ns = at_ns.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        });
        Ok(Datagram {
            bytes: &self.data[..len.min(self.data.len())],
            from,
            at_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_carry_sender_and_a_kernel_stamp() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        prepare(&a).unwrap();
        // The kernel turns stamping on in deferred work when the first socket asks for it;
        // until then, packets are stamped when read. (In the daemon that touches only the
        // first packets after start.)
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut buf = RecvBuf::default();
        assert_eq!(
            buf.recv(&a).err().map(|e| e.kind()),
            Some(io::ErrorKind::WouldBlock)
        );
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        b.send_to(b"hello", a.local_addr().unwrap()).unwrap();
        // Loopback delivers within send_to, so the stamp is older than this.
        let sent = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let d = buf.recv(&a).unwrap();
        assert_eq!(d.bytes, b"hello");
        assert_eq!(d.from, b.local_addr().unwrap());
        // Stamped on arrival, not when read 30 ms later.
        assert!(
            d.at_ns >= before && d.at_ns <= sent,
            "{before} {} {sent}",
            d.at_ns
        );
    }
}
