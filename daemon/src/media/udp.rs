//! RTP sockets for the media engine: non-blocking, read once per tick, and stamped by the
//! kernel on arrival (SO_TIMESTAMPNS). The engine reads a socket up to 20 ms after a packet
//! came, so its own clock would say nothing about network jitter; the kernel's stamp does.
//!
//! A socket is read with `recvmmsg`: whatever waited comes in one call, and a short batch
//! says the socket is empty, so that a call's tick costs one read, not one per packet and
//! one more to hear "nothing left" (at 10,000 calls that second read was a third of the
//! daemon's system calls).

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;

/// Datagrams one read takes at most.
const BATCH: usize = 8;
/// One Ethernet MTU per datagram: RTP is not fragmented in practice; a longer one is cut.
const SLOT: usize = 1500;

/// Makes a bound socket fit for the engine: non-blocking, with arrival stamps.
pub fn prepare(sock: &UdpSocket) -> io::Result<()> {
    sock.set_nonblocking(true)?;
    setsockopt(sock, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// One shard's receive buffers for one tick, shared by all the calls it runs. (Made per
/// tick: the kernel's headers point into it, which keeps it on one thread.)
pub struct RecvBuf {
    data: Vec<u8>,
    headers: MultiHeaders<SockaddrStorage>,
    got: [Got; BATCH],
    /// How many of `got` the last read filled, and the next to hand out.
    filled: usize,
    next: usize,
    /// The socket the last read was from, and whether it was empty after it.
    fd: Option<RawFd>,
    drained: bool,
}

/// What the kernel said of one datagram of a batch.
#[derive(Clone, Copy, Default)]
struct Got {
    len: usize,
    from: Option<SocketAddr>,
    at_ns: Option<u128>,
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
            data: vec![0; BATCH * SLOT],
            headers: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec))),
            got: [Got::default(); BATCH],
            filled: 0,
            next: 0,
            fd: None,
            drained: false,
        }
    }
}

impl RecvBuf {
    /// Forgets what the last socket had: the next stream's tick starts afresh (its socket
    /// may have the number a closed one had).
    pub fn next_stream(&mut self) {
        self.fd = None;
    }

    /// The next waiting datagram; `WouldBlock` when there is none.
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<Datagram<'_>> {
        let fd = sock.as_raw_fd();
        if self.fd != Some(fd) {
            self.fd = Some(fd);
            self.filled = 0;
            self.next = 0;
            self.drained = false;
        }
        if self.next == self.filled {
            if self.drained {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.fill(fd)?;
        }
        let i = self.next;
        self.next += 1;
        let got = self.got[i];
        let Some(from) = got.from else {
            return Err(io::Error::other("datagram without a sender address"));
        };
        let at_ns = got.at_ns.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        });
        let start = i * SLOT;
        Ok(Datagram {
            bytes: &self.data[start..start + got.len.min(SLOT)],
            from,
            at_ns,
        })
    }

    /// One read of whatever waits at `fd`, up to a batch.
    fn fill(&mut self, fd: RawFd) -> io::Result<()> {
        self.filled = 0;
        self.next = 0;
        let mut chunks = self.data.chunks_mut(SLOT);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let read = recvmmsg(
            fd,
            &mut self.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        );
        let msgs = match read {
            Ok(msgs) => msgs,
            Err(e) => {
                // Empty; or an ICMP error for an earlier send, reported once.
                self.drained = e == Errno::EAGAIN;
                return Err(e.into());
            }
        };
        for (slot, msg) in self.got.iter_mut().zip(msgs) {
            *slot = Got {
                len: msg.bytes,
                from: msg.address.as_ref().and_then(socket_addr),
                at_ns: msg.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|c| match c {
                        ControlMessageOwned::ScmTimestampns(t) => u128::try_from(t.tv_sec())
                            .ok()
                            .zip(u128::try_from(t.tv_nsec()).ok())
                            .map(|(s, n)| s * 1_000_000_000 + n),
                        _ => None,
                    })
                }),
            };
            self.filled += 1;
        }
        self.drained = self.filled < BATCH;
        Ok(())
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    a.as_sockaddr_in()
        .map(|v4| SocketAddr::V4(SocketAddrV4::from(*v4)))
        .or_else(|| {
            a.as_sockaddr_in6()
                .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
        })
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
        // The next tick.
        buf.next_stream();
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

    #[test]
    fn a_batch_is_read_in_one_call_and_a_short_one_ends_the_socket() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        prepare(&a).unwrap();
        prepare(&c).unwrap();
        let to = a.local_addr().unwrap();
        for i in 0..(BATCH + 3) as u8 {
            b.send_to(&[i; 3], to).unwrap();
        }
        let mut buf = RecvBuf::default();
        let mut seen = Vec::new();
        while let Ok(d) = buf.recv(&a) {
            seen.push(d.bytes[0]);
            assert_eq!(d.bytes.len(), 3);
        }
        assert_eq!(seen, (0..(BATCH + 3) as u8).collect::<Vec<_>>());
        // The short second batch said "empty": what comes now waits for the next stream
        // tick (the engine's next_stream), not for another read in this one.
        b.send_to(b"late", to).unwrap();
        assert_eq!(
            buf.recv(&a).err().map(|e| e.kind()),
            Some(io::ErrorKind::WouldBlock)
        );
        // Another socket in between reads afresh.
        c.send_to(b"c", c.local_addr().unwrap()).unwrap();
        assert_eq!(buf.recv(&c).unwrap().bytes, b"c");
        assert_eq!(buf.recv(&a).unwrap().bytes, b"late");
        buf.next_stream();
        assert_eq!(
            buf.recv(&a).err().map(|e| e.kind()),
            Some(io::ErrorKind::WouldBlock)
        );
    }
}
