//! The seam between a stream's packets and its sockets: RTP and RTCP go out and come in
//! here, in clear or as SRTP/SRTCP, so that the stream above packs and unpacks frames
//! without knowing which. (DTLS-SRTP keys the same contexts; ICE will choose the path.)

use std::borrow::Cow;
use std::net::{SocketAddr, UdpSocket};

use super::srtp::{Srtp, SrtpError, SrtpKeys};
use super::udp::{Datagram, RecvBuf};

/// How the stream's packets are protected on the wire.
enum Protection {
    Clear,
    Srtp { keys: SrtpKeys, srtp: Box<Srtp> },
}

/// One stream's sockets and protection.
pub(super) struct RtpTransport {
    rtp: UdpSocket,
    /// RTCP on the next port (RFC 3550 §11), best effort: without it the call still works.
    rtcp: Option<UdpSocket>,
    protection: Protection,
}

impl RtpTransport {
    pub(super) fn new(rtp: UdpSocket) -> RtpTransport {
        let rtcp = match rtp.local_addr() {
            Ok(a) if a.port() % 2 == 0 => UdpSocket::bind(SocketAddr::new(a.ip(), a.port() + 1))
                .ok()
                .filter(|s| s.set_nonblocking(true).is_ok()),
            _ => None,
        };
        RtpTransport {
            rtp,
            rtcp,
            protection: Protection::Clear,
        }
    }

    /// Protects the stream with `keys` from now on (None: in clear). A direction whose key
    /// is unchanged keeps its context: its rollover counter and replay window go on.
    pub(super) fn set_keys(&mut self, keys: Option<&SrtpKeys>) -> Result<(), SrtpError> {
        self.protection = match (keys, &mut self.protection) {
            (None, _) => Protection::Clear,
            (Some(new), Protection::Srtp { keys, .. }) if new == keys => return Ok(()),
            (Some(new), Protection::Srtp { keys, srtp }) if new.suite == keys.suite => {
                srtp.rekey(keys, new)?;
                *keys = new.clone();
                return Ok(());
            }
            (Some(new), _) => Protection::Srtp {
                srtp: Box::new(Srtp::new(new)?),
                keys: new.clone(),
            },
        };
        Ok(())
    }

    /// The next datagram at the RTP port, as it came.
    pub(super) fn recv_rtp<'b>(&self, rx: &'b mut RecvBuf) -> std::io::Result<Datagram<'b>> {
        rx.recv(&self.rtp)
    }

    /// The RTP packet a datagram carries (its header `header_len` long, read in clear):
    /// as it is, or decrypted and authenticated.
    pub(super) fn open_rtp<'a>(
        &mut self,
        bytes: &'a [u8],
        header_len: usize,
    ) -> Result<Cow<'a, [u8]>, SrtpError> {
        match &mut self.protection {
            Protection::Clear => Ok(Cow::Borrowed(bytes)),
            Protection::Srtp { srtp, .. } => srtp
                .unprotect_rtp(bytes, header_len)
                .map(|b| Cow::Owned(b.into())),
        }
    }

    /// Sends an RTP packet, protected as the stream is. False when it could not go.
    pub(super) fn send_rtp(&mut self, packet: &[u8], to: SocketAddr) -> bool {
        match &mut self.protection {
            Protection::Clear => self.rtp.send_to(packet, to).is_ok(),
            Protection::Srtp { srtp, .. } => match srtp.protect_rtp(packet) {
                Ok(sealed) => self.rtp.send_to(&sealed, to).is_ok(),
                Err(e) => {
                    tracing::warn!("cannot protect an RTP packet: {e}");
                    false
                }
            },
        }
    }

    /// The next datagram at the RTCP port, as it came; None when nothing is waiting.
    pub(super) fn recv_rtcp<'b>(&self, rx: &'b mut RecvBuf) -> Option<Datagram<'b>> {
        rx.recv(self.rtcp.as_ref()?).ok()
    }

    /// The RTCP compound packet a datagram carries: as it is, or decrypted and
    /// authenticated.
    pub(super) fn open_rtcp<'a>(&mut self, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, SrtpError> {
        match &mut self.protection {
            Protection::Clear => Ok(Cow::Borrowed(bytes)),
            Protection::Srtp { srtp, .. } => {
                srtp.unprotect_rtcp(bytes).map(|b| Cow::Owned(b.into()))
            }
        }
    }

    /// Sends an RTCP compound packet to the port after `rtp_to`'s.
    pub(super) fn send_rtcp(&mut self, packet: &[u8], rtp_to: SocketAddr) {
        let Some(sock) = &self.rtcp else { return };
        let to = SocketAddr::new(rtp_to.ip(), rtp_to.port().wrapping_add(1));
        let _ = match &mut self.protection {
            Protection::Clear => sock.send_to(packet, to),
            Protection::Srtp { srtp, .. } => match srtp.protect_rtcp(packet) {
                Ok(sealed) => sock.send_to(&sealed, to),
                Err(_) => return,
            },
        };
    }
}
