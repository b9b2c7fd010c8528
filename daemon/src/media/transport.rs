//! The seam between a stream's packets and its sockets: RTP and RTCP go out and come in
//! here, in clear or as SRTP/SRTCP keyed by SDES or by a DTLS handshake on the same ports,
//! so that the stream above packs and unpacks frames without knowing which. Below the
//! protection, the path: straight from our ports to the far side's, or the pair ICE
//! nominated (`ice.rs`), which may run through a TURN relay.

use std::borrow::Cow;
use std::net::{SocketAddr, UdpSocket};

use super::dtls::{DtlsError, DtlsParams, DtlsSession};
use super::ice::{Ice, IceEvent, Selected};
use super::srtp::{Srtp, SrtpError, SrtpKeys, SrtpSuite};
use super::stun::MappingWatch;
use super::udp::{Datagram, RecvBuf};

/// How the stream's packets are protected on the wire.
enum Protection {
    Clear,
    Srtp {
        keys: SrtpKeys,
        srtp: Box<Srtp>,
    },
    /// A handshake per port (RFC 5764 §4.1.2: RTCP on its own port has its own), each
    /// keying its port's SRTP once done.
    Dtls {
        rtp: Box<Keyed>,
        rtcp: Option<Box<Keyed>>,
    },
}

/// One port's DTLS association and, once it is done, its SRTP.
struct Keyed {
    session: DtlsSession,
    srtp: Option<Srtp>,
    /// The handshake failed (on the RTCP port: the call goes on without RTCP).
    failed: bool,
}

impl Keyed {
    fn new(params: &DtlsParams) -> Result<Box<Keyed>, DtlsError> {
        Ok(Box::new(Keyed {
            session: DtlsSession::new(params.clone())?,
            srtp: None,
            failed: false,
        }))
    }

    /// Moves the handshake on and sends what it wrote with `send`; Some once it ends.
    fn drive(&mut self, send: &mut dyn FnMut(&[u8])) -> Option<Result<SrtpSuite, DtlsError>> {
        if self.failed {
            return None;
        }
        let ended = self.session.drive();
        for d in self.session.outgoing() {
            send(&d);
        }
        match ended? {
            Ok(keys) => match Srtp::new(&keys) {
                Ok(s) => {
                    self.srtp = Some(s);
                    Some(Ok(keys.suite))
                }
                Err(e) => {
                    self.failed = true;
                    Some(Err(DtlsError::Keys(e.to_string())))
                }
            },
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// One stream's sockets and protection.
pub(super) struct RtpTransport {
    rtp: UdpSocket,
    /// RTCP on the next port (RFC 3550 §11), best effort: without it the call still works.
    rtcp: Option<UdpSocket>,
    protection: Protection,
    /// The NAT mapping of the RTP port, kept open and watched by STUN.
    mapping: Option<MappingWatch>,
    /// ICE, when the far side runs it too: it chooses the path.
    ice: Option<IceLink>,
    /// RTCP goes on the RTP port, both ways (RFC 5761).
    muxed: bool,
}

/// ICE's agent, with what every tick and packet reads of it kept beside it: the agent
/// lives behind a pointer, cold in the cache when a thousand calls share a tick.
struct IceLink {
    agent: Box<Ice>,
    /// When the agent next wants a step; None: at the next tick (something came for it).
    due: Option<std::time::Instant>,
    /// It has TURN sockets, read every tick.
    turn: bool,
    /// Each component's (RTP, RTCP) nominated pair while consent lasts: what it sends on.
    route: [Option<Selected>; 2],
}

/// What came to a stream's RTP port.
pub(super) enum Incoming<'b> {
    /// A datagram for the stream: RTP (or what claims to be).
    Rtp(Datagram<'b>),
    /// The NAT moved the port to this public address (a STUN answer said so).
    Mapped(SocketAddr),
    /// RTCP, on the RTP port with rtcp-mux.
    Rtcp(Datagram<'b>),
    /// The transport's own (DTLS, STUN), taken.
    Taken,
}

/// A packet that came through the TURN relay, for the stream to take as if it had come
/// to its own port.
pub(super) struct Relayed {
    pub(super) rtcp: bool,
    pub(super) bytes: Vec<u8>,
    pub(super) from: SocketAddr,
}

/// Whether a datagram at the RTP port is RTCP (RFC 5761 §4): its second byte is an RTCP
/// packet type (192–223), which RTP's marker and payload type never are in practice
/// (payload types 64–95 are not used).
fn is_rtcp(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0] >> 6 == 2 && (192..=223).contains(&bytes[1])
}

/// The host sockets as ICE numbers its components (RTP, then RTCP), and how many.
fn host_refs<'a>(rtp: &'a UdpSocket, rtcp: &'a Option<UdpSocket>) -> ([&'a UdpSocket; 2], usize) {
    match rtcp {
        Some(r) => ([rtp, r], 2),
        None => ([rtp, rtp], 1),
    }
}

/// Sends on the stream's path: ICE's pair for `component` (1: RTP, 2: RTCP), nothing
/// before one is nominated; or straight from `sock` to `to`.
fn send_on(
    ice: &mut Option<IceLink>,
    hosts: &[&UdpSocket],
    component: usize,
    sock: &UdpSocket,
    data: &[u8],
    to: SocketAddr,
) -> bool {
    let Some(link) = ice else {
        return sock.send_to(data, to).is_ok();
    };
    match link.route.get(component - 1).copied().flatten() {
        None => false,
        Some(pair) if !pair.relayed => hosts
            .get(component - 1)
            .is_some_and(|h| h.send_to(data, pair.remote).is_ok()),
        Some(_) => link
            .agent
            .send(component, data, std::time::Instant::now(), hosts),
    }
}

impl RtpTransport {
    pub(super) fn new(
        rtp: UdpSocket,
        rtcp: Option<UdpSocket>,
        mapping: Option<MappingWatch>,
        ice: Option<Box<Ice>>,
    ) -> RtpTransport {
        RtpTransport {
            rtp,
            rtcp,
            protection: Protection::Clear,
            mapping,
            ice: ice.map(|agent| IceLink {
                turn: agent.has_turn(),
                agent,
                due: None,
                route: [None; 2],
            }),
            muxed: false,
        }
    }

    /// Puts RTCP on the RTP port (RFC 5761), for good: the RTCP port is closed, and with
    /// DTLS-SRTP one handshake keys both. Not with ICE, whose agent has RTCP's component.
    pub(super) fn mux(&mut self) {
        if self.muxed || self.ice.is_some() {
            return;
        }
        self.muxed = true;
        self.rtcp = None;
        if let Protection::Dtls { rtcp, .. } = &mut self.protection {
            *rtcp = None;
        }
    }

    /// Protects the stream as signalling agreed: SRTP with SDES `keys`, or keyed by a DTLS
    /// handshake with `dtls`, or neither (clear). Unchanged DTLS parameters keep the
    /// association that runs; an unchanged SDES key keeps its direction's context (its
    /// rollover counter and replay window go on).
    pub(super) fn configure(
        &mut self,
        keys: Option<&SrtpKeys>,
        dtls: Option<&DtlsParams>,
    ) -> Result<(), String> {
        if let Some(params) = dtls {
            if let Protection::Dtls { rtp, .. } = &self.protection
                && rtp.session.params() == params
            {
                return Ok(());
            }
            let rtcp = match &self.rtcp {
                Some(_) => Some(Keyed::new(params).map_err(|e| e.to_string())?),
                None => None,
            };
            self.protection = Protection::Dtls {
                rtp: Keyed::new(params).map_err(|e| e.to_string())?,
                rtcp,
            };
            return Ok(());
        }
        self.protection = match (keys, &mut self.protection) {
            (None, _) => Protection::Clear,
            (Some(new), Protection::Srtp { keys, .. }) if new == keys => return Ok(()),
            (Some(new), Protection::Srtp { keys, srtp }) if new.suite == keys.suite => {
                srtp.rekey(keys, new).map_err(|e| e.to_string())?;
                *keys = new.clone();
                return Ok(());
            }
            (Some(new), _) => Protection::Srtp {
                srtp: Box::new(Srtp::new(new).map_err(|e| e.to_string())?),
                keys: new.clone(),
            },
        };
        Ok(())
    }

    /// A DTLS datagram that came to the RTP port (with `rtcp`, to the RTCP port); dropped
    /// when the stream does not run DTLS.
    pub(super) fn dtls_in(&mut self, rtcp: bool, datagram: &[u8]) {
        if let Protection::Dtls { rtp, rtcp: r } = &mut self.protection {
            let keyed = match r {
                Some(r) if rtcp => r,
                _ => rtp,
            };
            keyed.session.input(datagram);
        }
    }

    /// Moves the DTLS handshakes on, sending what they write to the far side (`rtp_to`,
    /// and the port after it for RTCP). Some when the RTP port's handshake ends, or when
    /// either fails: the suite the stream is keyed with, or why not.
    pub(super) fn drive(&mut self, rtp_to: SocketAddr) -> Option<Result<SrtpSuite, DtlsError>> {
        let Protection::Dtls { rtp, rtcp } = &mut self.protection else {
            return None;
        };
        if rtp_to.port() == 0 || rtp_to.ip().is_unspecified() {
            return None;
        }
        let (refs, n) = host_refs(&self.rtp, &self.rtcp);
        let hosts = &refs[..n];
        let ice = &mut self.ice;
        if let (Some(keyed), Some(sock)) = (rtcp, &self.rtcp) {
            let to = SocketAddr::new(rtp_to.ip(), rtp_to.port().wrapping_add(1));
            // RTCP is best effort: a far side that does not answer on its port (RTCP off,
            // an a=rtcp elsewhere) costs the reports, not the call.
            let mut send = |d: &[u8]| {
                send_on(ice, hosts, 2, sock, d, to);
            };
            if let Some(Err(e)) = keyed.drive(&mut send) {
                tracing::info!("DTLS on the RTCP port: {e}; the call goes on without RTCP");
            }
        }
        let sock = &self.rtp;
        rtp.drive(&mut |d: &[u8]| {
            send_on(ice, hosts, 1, sock, d, rtp_to);
        })
    }

    /// A STUN datagram that came to the RTP port (with `rtcp`, the RTCP port): ICE's
    /// checks; or the STUN server's answer, and then the port's new public address when
    /// the NAT moved it.
    pub(super) fn stun_in(
        &mut self,
        rtcp: bool,
        datagram: &[u8],
        from: SocketAddr,
    ) -> Option<SocketAddr> {
        if let Some(link) = &mut self.ice {
            let (refs, n) = host_refs(&self.rtp, &self.rtcp);
            let comp = usize::from(rtcp && n == 2);
            link.due = None;
            // No media comes out of a STUN datagram at a host port.
            link.agent.input(
                comp,
                false,
                datagram,
                from,
                std::time::Instant::now(),
                &refs[..n],
                &mut |_, _| {},
            );
            return None;
        }
        if rtcp {
            return None;
        }
        self.mapping.as_mut()?.input(datagram, from)
    }

    /// Asks the STUN server again when it is time: the NAT keeps the mapping open, and a
    /// moved one shows.
    pub(super) fn keep_mapping(&mut self, now: std::time::Instant) {
        if let Some(m) = &mut self.mapping {
            let server = m.server();
            if let Some(req) = m.due(now) {
                let _ = self.rtp.send_to(req, server);
            }
        }
    }

    /// The next datagram at the RTP port, with what is the transport's own taken here: a
    /// DTLS record from the far side's host `peer` (a stranger's handshake is not ours),
    /// STUN (ICE's checks, the mapping's answers). None when nothing more waits.
    pub(super) fn next_rtp<'b>(
        &mut self,
        rx: &'b mut RecvBuf,
        peer: std::net::IpAddr,
    ) -> Option<Incoming<'b>> {
        // WouldBlock, or an ICMP error for an earlier send: either way, done here.
        let d = rx.recv(&self.rtp).ok()?;
        if crate::media::dtls::is_dtls(d.bytes) {
            if d.from.ip() == peer {
                self.dtls_in(false, d.bytes);
            }
            return Some(Incoming::Taken);
        }
        if crate::media::stun::is_stun(d.bytes) {
            return Some(match self.stun_in(false, d.bytes, d.from) {
                Some(at) => Incoming::Mapped(at),
                None => Incoming::Taken,
            });
        }
        if self.muxed && is_rtcp(d.bytes) {
            return Some(Incoming::Rtcp(d));
        }
        Some(Incoming::Rtp(d))
    }

    /// The RTP packet a datagram carries (its header `header_len` long, read in clear):
    /// as it is, or decrypted and authenticated.
    pub(super) fn open_rtp<'a>(
        &mut self,
        bytes: &'a [u8],
        header_len: usize,
    ) -> Result<Cow<'a, [u8]>, SrtpError> {
        let srtp = match &mut self.protection {
            Protection::Clear => return Ok(Cow::Borrowed(bytes)),
            Protection::Srtp { srtp, .. } => srtp,
            Protection::Dtls { rtp, .. } => rtp.srtp.as_mut().ok_or(SrtpError::NotKeyed)?,
        };
        srtp.unprotect_rtp(bytes, header_len)
            .map(|b| Cow::Owned(b.into()))
    }

    /// Sends an RTP packet, protected as the stream is. False when it could not go.
    pub(super) fn send_rtp(&mut self, packet: &[u8], to: SocketAddr) -> bool {
        let (refs, n) = host_refs(&self.rtp, &self.rtcp);
        let hosts = &refs[..n];
        let srtp = match &mut self.protection {
            Protection::Clear => return send_on(&mut self.ice, hosts, 1, &self.rtp, packet, to),
            Protection::Srtp { srtp, .. } => srtp,
            // Nothing goes out before the handshake is done: never in clear.
            Protection::Dtls { rtp, .. } => match rtp.srtp.as_mut() {
                Some(s) => s,
                None => return false,
            },
        };
        match srtp.protect_rtp(packet) {
            Ok(sealed) => send_on(&mut self.ice, hosts, 1, &self.rtp, &sealed, to),
            Err(e) => {
                tracing::warn!("cannot protect an RTP packet: {e}");
                false
            }
        }
    }

    /// The SRTP context RTCP goes through: None in clear, NotKeyed before a handshake is
    /// done.
    fn rtcp_srtp(&mut self) -> Result<Option<&mut Srtp>, SrtpError> {
        match &mut self.protection {
            Protection::Clear => Ok(None),
            Protection::Srtp { srtp, .. } => Ok(Some(srtp)),
            Protection::Dtls { rtp, rtcp } => {
                let keyed = rtcp.as_mut().unwrap_or(rtp);
                keyed.srtp.as_mut().map(Some).ok_or(SrtpError::NotKeyed)
            }
        }
    }

    /// Whether the RTCP port carries what must be read at once: ICE's checks, or a DTLS
    /// handshake under way.
    pub(super) fn rtcp_urgent(&self) -> bool {
        self.ice.is_some()
            || matches!(&self.protection, Protection::Dtls { rtcp: Some(k), .. }
                if k.srtp.is_none() && !k.failed)
    }

    /// The next datagram at the RTCP port, as it came; None when nothing is waiting.
    pub(super) fn recv_rtcp<'b>(&self, rx: &'b mut RecvBuf) -> Option<Datagram<'b>> {
        rx.recv(self.rtcp.as_ref()?).ok()
    }

    /// The RTCP compound packet a datagram carries: as it is, or decrypted and
    /// authenticated.
    pub(super) fn open_rtcp<'a>(&mut self, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, SrtpError> {
        match self.rtcp_srtp()? {
            None => Ok(Cow::Borrowed(bytes)),
            Some(srtp) => srtp.unprotect_rtcp(bytes).map(|b| Cow::Owned(b.into())),
        }
    }

    /// Sends an RTCP compound packet to the port after `rtp_to`'s (to `rtp_to` itself with
    /// rtcp-mux), protected as the stream is (nothing before its keys are agreed).
    pub(super) fn send_rtcp(&mut self, packet: &[u8], rtp_to: SocketAddr) {
        if self.rtcp.is_none() && !self.muxed {
            return;
        }
        let to = SocketAddr::new(rtp_to.ip(), rtp_to.port().wrapping_add(1));
        let sealed = match self.rtcp_srtp() {
            Ok(None) => None,
            Ok(Some(srtp)) => match srtp.protect_rtcp(packet) {
                Ok(sealed) => Some(sealed),
                Err(_) => return,
            },
            Err(_) => return,
        };
        let (refs, n) = host_refs(&self.rtp, &self.rtcp);
        let data = sealed.as_deref().unwrap_or(packet);
        if self.muxed {
            send_on(&mut self.ice, &refs[..n], 1, &self.rtp, data, rtp_to);
        } else if let Some(sock) = &self.rtcp {
            send_on(&mut self.ice, &refs[..n], 2, sock, data, to);
        }
    }

    /// Moves ICE on: its checks and consent, and what came through the TURN relay (put
    /// in `relayed` for the stream to take). What changed, for the stream to act on.
    pub(super) fn ice_tick(
        &mut self,
        now: std::time::Instant,
        relayed: &mut Vec<Relayed>,
    ) -> Vec<IceEvent> {
        let Some(link) = &mut self.ice else {
            return Vec::new();
        };
        let (refs, n) = host_refs(&self.rtp, &self.rtcp);
        let hosts = &refs[..n];
        if link.turn {
            for comp in 0..n {
                let read = link.agent.read_turn(comp, now, hosts, &mut |bytes, from| {
                    relayed.push(Relayed {
                        rtcp: comp == 1,
                        bytes: bytes.to_vec(),
                        from,
                    });
                });
                if read > 0 {
                    link.due = None;
                }
            }
        }
        if link.due.is_some_and(|due| now < due) {
            return Vec::new();
        }
        let (next, events) = link.agent.step(now, hosts);
        link.due = Some(next);
        for ev in &events {
            match *ev {
                IceEvent::Selected {
                    component, pair, ..
                } => {
                    if let Some(r) = link.route.get_mut(component - 1) {
                        *r = Some(pair);
                    }
                }
                IceEvent::Failed { component } | IceEvent::ConsentLost { component } => {
                    if let Some(r) = link.route.get_mut(component - 1) {
                        *r = None;
                    }
                }
            }
        }
        events
    }

    /// Whether ICE chooses the path.
    pub(super) fn has_ice(&self) -> bool {
        self.ice.is_some()
    }

    /// Where RTCP comes from and goes to with ICE: its nominated pair's far end.
    pub(super) fn ice_peer(&self, component: usize) -> Option<SocketAddr> {
        self.ice
            .as_ref()?
            .route
            .get(component - 1)
            .copied()
            .flatten()
            .map(|s| s.remote)
    }
}

#[cfg(test)]
mod tests {
    use super::is_rtcp;

    #[test]
    fn rtcp_is_told_from_rtp_by_its_packet_type() {
        // A receiver report (201) and a sender report (200).
        assert!(is_rtcp(&[0x81, 201, 0, 7, 1, 2, 3, 4]));
        assert!(is_rtcp(&[0x80, 200, 0, 6, 1, 2, 3, 4, 0, 0]));
        // RTP: PCMU, PCMA, telephone-event, dynamic 96, with and without the marker.
        for b1 in [0u8, 8, 101, 96, 0x80, 0x88, 0x80 | 101, 0x80 | 96] {
            assert!(!is_rtcp(&[0x80, b1, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4]), "{b1}");
        }
        // Too short, or not version 2.
        assert!(!is_rtcp(&[0x81, 201, 0]));
        assert!(!is_rtcp(&[0x41, 201, 0, 7, 1, 2, 3, 4]));
    }
}
