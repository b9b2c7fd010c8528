//! STUN Binding (RFC 8489) from an RTP port: the address a NAT shows that port as, asked
//! of the account's STUN server before an offer or answer is made, and asked again through
//! the call to keep the mapping open and to notice when the NAT moves it.
//!
//! Messages are written and read by stun-proto's types (the STUN layer under ICE and
//! TURN, `ice.rs`): attribute bounds, FINGERPRINT and XOR-MAPPED-ADDRESS done by a crate
//! made for them.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use stun_proto::types::attribute::{ErrorCode, XorMappedAddress};
pub use stun_proto::types::message::TransactionId;
use stun_proto::types::message::{
    BINDING, Message, MessageClass, MessageType, MessageWrite, MessageWriteExt, MessageWriteVec,
};

/// When a binding request is sent again without an answer (RFC 8489 §6.2.1's RTO of
/// 500 ms, doubling), and when the asker gives up: a call's setup waits at most this.
const RETRANSMITS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_millis(1000),
    Duration::from_millis(1000),
];

/// Why no public address came back.
#[derive(Debug, thiserror::Error)]
pub enum StunError {
    #[error("no answer from the STUN server {0}")]
    Timeout(SocketAddr),
    #[error("the STUN server refused: {code} {reason}")]
    Refused { code: u16, reason: String },
    #[error("the STUN server's answer has no mapped address")]
    NoAddress,
    #[error("STUN: {0}")]
    Io(#[from] std::io::Error),
}

/// Whether a datagram is STUN (RFC 7983 §7: a first byte of 0-3) with the magic cookie,
/// rather than RTP, RTCP or DTLS on the same port.
pub fn is_stun(b: &[u8]) -> bool {
    b.len() >= 20 && b[0] < 4 && b[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

/// One binding request, kept to match its answer.
#[derive(Debug, Clone)]
pub struct BindingRequest {
    id: TransactionId,
    bytes: Vec<u8>,
}

impl BindingRequest {
    pub fn new() -> BindingRequest {
        let mut msg = Message::builder_request(BINDING, MessageWriteVec::new());
        // A FINGERPRINT tells our request apart from RTP at a server that shares the port.
        let _ = msg.add_fingerprint();
        BindingRequest {
            id: msg.transaction_id(),
            bytes: msg.finish(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What a datagram says of this request: None when it is not its answer; else the
    /// address the server saw us at, or why not.
    pub fn answer(&self, datagram: &[u8]) -> Option<Result<SocketAddr, StunError>> {
        read_answer(datagram)
            .filter(|(id, _)| *id == self.id)
            .map(|(_, r)| r)
    }
}

/// A Binding answer: the transaction it answers, and the address the server saw (or why
/// not). None for anything else: not STUN, a request, another method.
pub fn read_answer(datagram: &[u8]) -> Option<(TransactionId, Result<SocketAddr, StunError>)> {
    let msg = Message::from_bytes(datagram).ok()?;
    if msg.method() != BINDING {
        return None;
    }
    let id = msg.transaction_id();
    if msg.has_class(MessageClass::Error) {
        let (code, reason) = msg
            .attribute::<ErrorCode>()
            .map_or((0, String::new()), |e| (e.code(), e.reason().to_string()));
        return Some((id, Err(StunError::Refused { code, reason })));
    }
    if !msg.has_class(MessageClass::Success) {
        return None;
    }
    // (RFC 3489 servers, which give MAPPED-ADDRESS only, are long gone.)
    let addr = msg
        .attribute::<XorMappedAddress>()
        .map(|x| x.addr(id))
        .map_err(|_| StunError::NoAddress);
    Some((id, addr))
}

/// A Binding success answer to transaction `id` saying `seen` (a STUN server's part: for
/// tests and the fuzz target's round trip).
pub fn success_answer(id: TransactionId, seen: SocketAddr) -> Vec<u8> {
    let mtype = MessageType::from_class_method(MessageClass::Success, BINDING);
    let mut msg = Message::builder(mtype, id, MessageWriteVec::new());
    let _ = msg.add_attribute(&XorMappedAddress::new(seen, id));
    let _ = msg.add_fingerprint();
    msg.finish()
}

impl Default for BindingRequest {
    fn default() -> Self {
        BindingRequest::new()
    }
}

/// Asks `server` from `sock` (an RTP port, non-blocking) which address it sees. What
/// else arrives meanwhile (early RTP, a stranger's junk) is read and dropped: the call's
/// stream has not started yet.
pub async fn discover(sock: &UdpSocket, server: SocketAddr) -> Result<SocketAddr, StunError> {
    // A second descriptor for the same socket, watched by tokio for as long as this
    // takes; the stream later reads the original.
    let watched = tokio::net::UdpSocket::from_std(sock.try_clone()?)?;
    let req = BindingRequest::new();
    let mut buf = [0u8; 1500];
    for wait in RETRANSMITS {
        watched.send_to(req.bytes(), server).await?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = tokio::time::timeout_at(deadline, watched.recv_from(&mut buf)).await;
            let Ok(got) = got else { break };
            let (n, from) = match got {
                Ok(r) => r,
                // An ICMP error for an earlier send: the server may still answer a resend.
                Err(_) => continue,
            };
            if from != server || !is_stun(&buf[..n]) {
                continue;
            }
            if let Some(answer) = req.answer(&buf[..n]) {
                return answer;
            }
        }
    }
    Err(StunError::Timeout(server))
}

/// A call's mapping kept open and watched: a binding request every `every`, and the
/// address each answer shows compared with the one the far side was given.
#[derive(Debug)]
pub struct MappingWatch {
    server: SocketAddr,
    mapped: SocketAddr,
    every: Duration,
    next: std::time::Instant,
    pending: Option<BindingRequest>,
}

impl MappingWatch {
    /// Watches the mapping `mapped` that `server` reported.
    pub fn new(server: SocketAddr, mapped: SocketAddr, every: Duration) -> MappingWatch {
        MappingWatch {
            server,
            mapped,
            every,
            next: std::time::Instant::now() + every,
            pending: None,
        }
    }

    /// A request to send now, if one is due: to [`MappingWatch::server`].
    pub fn due(&mut self, now: std::time::Instant) -> Option<&[u8]> {
        if now < self.next {
            return None;
        }
        self.next = now + self.every;
        // An unanswered request is forgotten: the NAT or the server lost it.
        self.pending = Some(BindingRequest::new());
        self.pending.as_ref().map(BindingRequest::bytes)
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// A STUN datagram from the server: the new address when the mapping moved.
    pub fn input(&mut self, datagram: &[u8], from: SocketAddr) -> Option<SocketAddr> {
        if from != self.server {
            return None;
        }
        let answer = self.pending.as_ref()?.answer(datagram)?;
        self.pending = None;
        match answer {
            Ok(addr) if addr != self.mapped => {
                self.mapped = addr;
                Some(addr)
            }
            Ok(_) => None,
            Err(why) => {
                tracing::debug!("STUN server {}: {why}", self.server);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn success(req: &BindingRequest, seen: SocketAddr) -> Vec<u8> {
        success_answer(req.id, seen)
    }

    #[test]
    fn a_request_is_stun_and_its_answer_gives_the_address() {
        let req = BindingRequest::new();
        assert!(is_stun(req.bytes()));
        let seen: SocketAddr = "203.0.113.10:40000".parse().unwrap();
        assert_eq!(req.answer(&success(&req, seen)).unwrap().unwrap(), seen);
        // Another request's answer is not this one's.
        let other = BindingRequest::new();
        assert!(other.answer(&success(&req, seen)).is_none());
    }

    #[test]
    fn rtp_dtls_and_junk_are_not_stun() {
        assert!(!is_stun(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]));
        assert!(!is_stun(&[
            22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ]));
        assert!(!is_stun(&[0; 19]));
        let req = BindingRequest::new();
        for cut in 0..req.bytes().len() {
            assert!(req.answer(&req.bytes()[..cut]).is_none());
        }
    }

    #[test]
    fn an_error_answer_says_why() {
        let req = BindingRequest::new();
        let parsed = Message::from_bytes(req.bytes()).unwrap();
        let mut msg = Message::builder_error(&parsed, MessageWriteVec::new());
        msg.add_attribute(&ErrorCode::builder(420).reason("Unknown").build().unwrap())
            .unwrap();
        let got = req.answer(&msg.finish()).unwrap().unwrap_err();
        assert_eq!(got.to_string(), "the STUN server refused: 420 Unknown");
    }

    #[test]
    fn a_watch_asks_when_due_and_reports_a_moved_mapping_once() {
        let server: SocketAddr = "203.0.113.1:3478".parse().unwrap();
        let first: SocketAddr = "203.0.113.10:40000".parse().unwrap();
        let moved: SocketAddr = "203.0.113.10:40002".parse().unwrap();
        let mut w = MappingWatch::new(server, first, Duration::from_secs(5));
        let now = std::time::Instant::now();
        assert!(w.due(now).is_none());
        let later = now + Duration::from_secs(6);
        let req = w.pending_for_test(later);
        assert_eq!(w.input(&success(&req, first), server), None);
        let req = w.pending_for_test(later + Duration::from_secs(6));
        // From anyone else than the server, the answer is not taken.
        let stranger: SocketAddr = "198.51.100.9:3478".parse().unwrap();
        assert_eq!(w.input(&success(&req, moved), stranger), None);
        assert_eq!(w.input(&success(&req, moved), server), Some(moved));
        assert_eq!(w.input(&success(&req, moved), server), None);
    }

    impl MappingWatch {
        fn pending_for_test(&mut self, now: std::time::Instant) -> BindingRequest {
            assert!(self.due(now).is_some());
            self.pending.clone().unwrap()
        }
    }
}
