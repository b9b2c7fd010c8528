//! SIP over UDP, TCP and TLS (RFC 3261 §18, §26.2): listening sockets, connections reused
//! by peer address, `received`/`rport` stamping (RFC 3581), and the answer to a request
//! that does not parse.

mod conns;
pub mod framing;
mod listen;
mod tcp;
pub mod tls;
mod udp;

pub use listen::{ListenAddr, ListenProto};
pub use tls::TlsContext;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc};

use crate::sip::message::{Message, Request, SipHeaders, Via, parse};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Udp,
    Tcp,
    Tls,
}

impl Proto {
    pub fn via_name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
        }
    }

    /// The `transport=` URI parameter value.
    pub fn param(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
        }
    }

    /// Reliable transports need no retransmissions (RFC 3261 §17).
    pub fn reliable(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Tls)
    }

    /// The port a URI without one means (RFC 3261 §19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Proto::Tls => 5061,
            Proto::Udp | Proto::Tcp => 5060,
        }
    }
}

/// Where a message goes or came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub proto: Proto,
    pub addr: SocketAddr,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.proto.param(), self.addr)
    }
}

#[derive(Debug)]
pub struct Incoming {
    pub msg: Message,
    pub from: Target,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}: listening with TLS needs sip.tls_certificate and sip.tls_key")]
    TlsNeedsCertificate(String),
    /// The TLS handshake failed, or the server's certificate did not verify.
    #[error("TLS with {target} ({name}) failed: {why}")]
    Tls {
        target: Target,
        /// The name the server was checked against.
        name: String,
        why: String,
    },
    #[error("no {0:?} socket for {1}")]
    NoSocket(Proto, SocketAddr),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("sending to {target} failed: {source}")]
    Send {
        target: Target,
        source: std::io::Error,
    },
    #[error("the connection to {0} is closed")]
    Closed(Target),
    /// An ICMP error answered what we sent there.
    #[error("{target} is unreachable ({why})")]
    Unreachable {
        /// Where the datagram went.
        target: Target,
        /// What the ICMP error said: port, host or network unreachable.
        why: String,
    },
}

/// How many incoming messages may wait for the stack. Past it, datagrams are dropped (the
/// sender retransmits) and TCP readers wait, which pushes back on the peer.
const INCOMING_QUEUE: usize = 4096;
/// A connection silent this long is closed; registration keepalives keep ours busy.
const IDLE_TIMEOUT: Duration = Duration::from_secs(900);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Counters {
    malformed: AtomicU64,
    dropped: AtomicU64,
    /// Second (unix time) of the last malformed-message log line, for rate limiting.
    last_log: AtomicU64,
}

/// Whether a message that does not parse may be answered (400, 505, 513): the layer above
/// knows who is a stranger, and a stranger may be owed silence, or only so many answers.
pub trait ErrorGate: Send + Sync {
    /// True when an answer may go to `from`.
    fn may_answer(&self, from: Target) -> bool;
}

pub(crate) struct Shared {
    incoming: mpsc::Sender<Incoming>,
    error_gate: Mutex<Option<Arc<dyn ErrorGate>>>,
    conns: Mutex<conns::Connections>,
    closed: broadcast::Sender<Target>,
    /// Destinations an ICMP error said cannot be reached, and why.
    unreachable: broadcast::Sender<(Target, String)>,
    counters: Counters,
    tls: Arc<TlsContext>,
    /// Per peer, the turn to connect to it (see tcp::send).
    connecting: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<()>>>>,
}

/// The transport layer. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
    udp: Arc<Vec<Arc<tokio::net::UdpSocket>>>,
    tcp_listen: Arc<Vec<SocketAddr>>,
    tls_listen: Arc<Vec<SocketAddr>>,
    routes: Arc<Mutex<HashMap<IpAddr, IpAddr>>>,
    /// What a server told us it saw a UDP socket of ours as (Via received and rport), by
    /// our socket and that server: a NAT's public side towards it (another server, or one
    /// on our side of the NAT, may see us otherwise). Contacts say it, so that requests
    /// find their way back in.
    public: Arc<Mutex<HashMap<(SocketAddr, SocketAddr), SocketAddr>>>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Transport {
    /// Binds every address; with `fallback`, an address in use is replaced by a free port
    /// (for the embedded default, so a second daemon or another phone does not stop us).
    /// `tls:` listeners present `server_tls`.
    pub async fn start(
        listen: &[ListenAddr],
        fallback: bool,
        server_tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<(Transport, mpsc::Receiver<Incoming>), TransportError> {
        let (incoming, rx) = mpsc::channel(INCOMING_QUEUE);
        let limit = conns::connection_limit();
        tracing::debug!("up to {limit} SIP connections at once");
        let shared = Arc::new(Shared {
            incoming,
            error_gate: Mutex::new(None),
            conns: Mutex::new(conns::Connections::new(limit)),
            closed: broadcast::Sender::new(64),
            unreachable: broadcast::Sender::new(64),
            counters: Counters::default(),
            tls: Arc::new(TlsContext::new(server_tls)),
            connecting: Mutex::default(),
        });
        let mut udp = Vec::new();
        let mut tcp_listen = Vec::new();
        let mut tls_listen = Vec::new();
        let mut tasks = Vec::new();
        // UDP and TCP asked for on one IP and port get one port number for both, also when
        // it was 0 (any) or had to move: a peer that learnt one reaches us on the other.
        let mut chosen: HashMap<(IpAddr, u16), u16> = HashMap::new();
        for l in listen {
            let mut addr = l.addr;
            let asked = (addr.ip(), addr.port());
            if let Some(p) = chosen.get(&asked) {
                addr.set_port(*p);
            }
            let bind_err = |source| TransportError::Bind {
                addr: l.to_string(),
                source,
            };
            let may_move = fallback || l.addr.port() == 0;
            match l.transport {
                ListenProto::Udp => {
                    // Its TCP twin's port taken: both move, not UDP alone.
                    let twin = listen
                        .iter()
                        .any(|o| o.transport == ListenProto::Tcp && o.addr == l.addr);
                    // A twin bound already (listed first) holds the port itself.
                    if may_move
                        && twin
                        && !chosen.contains_key(&asked)
                        && addr.port() != 0
                        && std::net::TcpListener::bind(addr)
                            .is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
                    {
                        tracing::warn!(
                            "tcp:{addr} is in use; listening on a free port for UDP and TCP instead (voipctl status shows it)"
                        );
                        addr.set_port(0);
                    }
                    let sock = bind_or_move(addr, may_move, "udp", bind_udp_with_tcp_free)
                        .await
                        .map_err(bind_err)?;
                    udp::report_errors(&sock);
                    let sock = Arc::new(sock);
                    let local = sock.local_addr().map_err(bind_err)?;
                    chosen.entry(asked).or_insert(local.port());
                    tasks.push(
                        tokio::spawn(udp::recv_loop(sock.clone(), shared.clone())).abort_handle(),
                    );
                    udp.push(sock);
                }
                ListenProto::Tcp => {
                    let listener =
                        bind_or_move(addr, may_move, "tcp", tokio::net::TcpListener::bind)
                            .await
                            .map_err(bind_err)?;
                    let local = listener.local_addr().map_err(bind_err)?;
                    chosen.entry(asked).or_insert(local.port());
                    tasks.push(
                        tokio::spawn(tcp::accept_loop(listener, Proto::Tcp, shared.clone()))
                            .abort_handle(),
                    );
                    tcp_listen.push(local);
                }
                ListenProto::Tls => {
                    if shared.tls.acceptor.is_none() {
                        return Err(TransportError::TlsNeedsCertificate(l.to_string()));
                    }
                    let listener =
                        bind_or_move(addr, may_move, "tls", tokio::net::TcpListener::bind)
                            .await
                            .map_err(bind_err)?;
                    let local = listener.local_addr().map_err(bind_err)?;
                    tasks.push(
                        tokio::spawn(tcp::accept_loop(listener, Proto::Tls, shared.clone()))
                            .abort_handle(),
                    );
                    tls_listen.push(local);
                }
            }
        }
        Ok((
            Transport {
                shared,
                udp: Arc::new(udp),
                tcp_listen: Arc::new(tcp_listen),
                tls_listen: Arc::new(tls_listen),
                routes: Arc::new(Mutex::new(HashMap::new())),
                public: Arc::default(),
                tasks: Arc::new(Mutex::new(tasks)),
            },
            rx,
        ))
    }

    /// What we listen on, as "udp:IP:PORT" / "tcp:IP:PORT".
    pub fn listening(&self) -> Vec<String> {
        let udp = self
            .udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .map(|a| format!("udp:{a}"));
        let tcp = self.tcp_listen.iter().map(|a| format!("tcp:{a}"));
        let tls = self.tls_listen.iter().map(|a| format!("tls:{a}"));
        udp.chain(tcp).chain(tls).collect()
    }

    /// The TLS state: names servers are checked against, accounts' own CAs.
    pub fn tls(&self) -> Arc<TlsContext> {
        self.shared.tls.clone()
    }

    /// Stops listening and closes every connection.
    pub fn shutdown(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        lock(&self.shared.conns).clear();
    }

    /// A request on this flow was taken by the layer above: a TCP connection from a
    /// stranger that only ever sends what is refused stays unproven, and goes first.
    pub fn prove(&self, flow: Target) {
        if flow.proto.reliable()
            && let Some(c) = lock(&self.shared.conns).get(&flow.addr)
        {
            c.activity.valid.store(true, Ordering::Relaxed);
        }
    }

    /// Puts `gate` in front of the answers to messages that do not parse.
    pub fn set_error_gate(&self, gate: Arc<dyn ErrorGate>) {
        *lock(&self.shared.error_gate) = Some(gate);
    }

    /// Gives back the room the connection table grew to.
    pub fn compact(&self) {
        lock(&self.shared.conns).compact();
    }

    /// Destinations that ICMP said cannot be reached, as it comes.
    pub fn unreachable(&self) -> broadcast::Receiver<(Target, String)> {
        self.shared.unreachable.subscribe()
    }

    /// Connections that closed (for RFC 5626 flow recovery).
    pub fn closed_flows(&self) -> broadcast::Receiver<Target> {
        self.shared.closed.subscribe()
    }

    pub async fn send(&self, target: Target, bytes: Vec<u8>) -> Result<(), TransportError> {
        match target.proto {
            Proto::Udp => {
                let sock = self
                    .udp_for(target.addr)
                    .ok_or(TransportError::NoSocket(Proto::Udp, target.addr))?;
                udp::send_to(sock, &bytes, target.addr)
                    .await
                    .map_err(|source| TransportError::Send { target, source })
            }
            // Boxed: connecting and the TLS handshake make a future of kilobytes, which
            // every task that sends would otherwise carry for the whole call.
            Proto::Tcp | Proto::Tls => Box::pin(tcp::send(&self.shared, target, bytes)).await,
        }
    }

    fn udp_for(&self, dest: SocketAddr) -> Option<&Arc<tokio::net::UdpSocket>> {
        self.udp
            .iter()
            .find(|s| s.local_addr().is_ok_and(|a| a.is_ipv4() == dest.is_ipv4()))
    }

    /// Our address as `target` should see it, for Via sent-by and Contact. An unspecified
    /// bind address is resolved to the source address the kernel would route from.
    pub fn local_for(&self, target: Target) -> Option<SocketAddr> {
        let same_family = |a: &SocketAddr| a.is_ipv4() == target.addr.is_ipv4();
        let udp = self.udp_for(target.addr).and_then(|s| s.local_addr().ok());
        // Over TCP or TLS we are reached at our listener; without one, the UDP port stands
        // in (the connection's own ephemeral port is not known before it exists).
        let tcp = self.tcp_listen.iter().copied().find(same_family);
        let bound = match target.proto {
            Proto::Udp => udp?,
            Proto::Tcp => tcp.or(udp)?,
            Proto::Tls => self
                .tls_listen
                .iter()
                .copied()
                .find(same_family)
                .or(tcp)
                .or(udp)?,
        };
        let ip = if bound.ip().is_unspecified() {
            self.route_to(target.addr)?
        } else {
            bound.ip()
        };
        Some(SocketAddr::new(ip, bound.port()))
    }

    /// Our address as `target` sees it: the public address it reported for the UDP
    /// socket we reach it from (behind a NAT), else [`Transport::local_for`]. Over TCP
    /// and TLS the connection carries requests back, so the local address stands.
    pub fn public_for(&self, target: Target) -> Option<SocketAddr> {
        let local = self.local_for(target)?;
        if target.proto != Proto::Udp {
            return Some(local);
        }
        let key = (local, target.addr);
        Some(lock(&self.public).get(&key).copied().unwrap_or(local))
    }

    /// Takes note that `target` saw our UDP socket `local` as `public` (None: forget
    /// it). True when that changed what [`Transport::public_for`] says.
    pub fn learn_public(
        &self,
        local: SocketAddr,
        target: Target,
        public: Option<SocketAddr>,
    ) -> bool {
        let key = (local, target.addr);
        let mut map = lock(&self.public);
        let before = map.get(&key).copied();
        match public.filter(|p| *p != local) {
            Some(p) => map.insert(key, p),
            None => map.remove(&key),
        };
        map.get(&key).copied() != before
    }

    fn route_to(&self, dest: SocketAddr) -> Option<IpAddr> {
        if let Some(ip) = lock(&self.routes).get(&dest.ip()) {
            return Some(*ip);
        }
        // connect() on a UDP socket sends nothing; it only asks the kernel for a route.
        let any: SocketAddr = if dest.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let probe = std::net::UdpSocket::bind(any).ok()?;
        probe.connect(dest).ok()?;
        let ip = probe.local_addr().ok()?.ip();
        lock(&self.routes).insert(dest.ip(), ip);
        Some(ip)
    }
}

/// Binds UDP at `addr`; for port 0, a port whose TCP twin is free too (tried a few
/// times), so that TCP can follow it.
async fn bind_udp_with_tcp_free(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    if addr.port() != 0 {
        return tokio::net::UdpSocket::bind(addr).await;
    }
    let mut last = None;
    for _ in 0..16 {
        let sock = tokio::net::UdpSocket::bind(addr).await?;
        let port = sock.local_addr()?.port();
        match std::net::TcpListener::bind(SocketAddr::new(addr.ip(), port)) {
            Ok(_) => return Ok(sock),
            Err(e) => last = Some(sock).filter(|_| e.kind() == std::io::ErrorKind::AddrInUse),
        }
    }
    // Every try had its TCP twin taken: UDP alone it is; TCP moves on its own.
    match last {
        Some(sock) => Ok(sock),
        None => tokio::net::UdpSocket::bind(addr).await,
    }
}

/// Binds with `bind`; if the address is taken and `may_move`, binds a free port on the
/// same IP instead and says so.
async fn bind_or_move<S, F, Fut>(
    addr: SocketAddr,
    may_move: bool,
    name: &str,
    bind: F,
) -> std::io::Result<S>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<S>>,
{
    match bind(addr).await {
        Err(e) if may_move && e.kind() == std::io::ErrorKind::AddrInUse => {
            let s = bind(SocketAddr::new(addr.ip(), 0)).await?;
            tracing::warn!(
                "{name}:{addr} is in use; listening on a free {name} port instead (voipctl status shows it)"
            );
            Ok(s)
        }
        other => other,
    }
}

/// What a peer is known by for per-source limits: its address (an IPv4 peer on a
/// dual-stack socket as IPv4), or for IPv6 its /64, as one host may hold a whole /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these short locks cannot leave the maps inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// RFC 3261 §18.2.1 and RFC 3581: note where a request really came from in its top Via.
fn stamp_via(req: &mut Request, from: SocketAddr) {
    let Some(mut via) = req.top_via() else { return };
    let host_ip: Option<IpAddr> = via
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok();
    let wants_rport = via.rport() == Some(None);
    if host_ip != Some(from.ip()) || wants_rport {
        via.set_param("received", Some(from.ip().to_string()));
    }
    if wants_rport {
        via.set_param("rport", Some(from.port().to_string()));
    }
    req.set_top_via(&via);
}

/// Where the response to a request goes (RFC 3261 §18.2.2, RFC 3581 §4).
pub fn response_target(via: &Via, from: Target) -> Target {
    if from.proto.reliable() || via.rport().is_some() {
        return from;
    }
    let ip = via
        .received()
        .and_then(|r| r.parse().ok())
        .or_else(|| {
            via.host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        })
        .unwrap_or(from.addr.ip());
    Target {
        proto: from.proto,
        addr: SocketAddr::new(ip, via.port.unwrap_or(5060)),
    }
}

/// What became of a message read from the network.
pub(crate) struct Taken {
    /// It parsed (whether or not the stack had room for it).
    pub parsed: bool,
    /// Bytes to send back on the same flow.
    pub answer: Option<Vec<u8>>,
}

/// A message read from the network: parsed and handed up, or answered/dropped with a log
/// line.
pub(crate) fn accept(shared: &Shared, bytes: &[u8], from: Target) -> Taken {
    let answer = match parse(bytes) {
        Ok(mut msg) => {
            if let Message::Request(r) = &mut msg {
                stamp_via(r, from.addr);
            }
            if shared.incoming.try_send(Incoming { msg, from }).is_err() {
                shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("stack busy, dropped a message from {from}");
            }
            return Taken {
                parsed: true,
                answer: None,
            };
        }
        Err(e) => {
            let n = shared.counters.malformed.fetch_add(1, Ordering::Relaxed) + 1;
            let gate = lock(&shared.error_gate).clone();
            let answer = e
                .response()
                .filter(|_| gate.is_none_or(|g| g.may_answer(from)));
            // One line a second at most: a flood of garbage must not flood the journal.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if shared.counters.last_log.swap(now, Ordering::Relaxed) != now {
                tracing::warn!(
                    "malformed SIP from {from}: {e}; {} ({n} malformed so far)",
                    if answer.is_some() {
                        "answered"
                    } else {
                        "dropped"
                    }
                );
            }
            answer.map(|r| r.encode())
        }
    };
    Taken {
        parsed: false,
        answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_stamping_and_response_target() {
        let text = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let Ok(Message::Request(mut r)) = parse(text.as_bytes()) else {
            panic!()
        };
        let from: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        stamp_via(&mut r, from);
        let via = r.top_via().unwrap();
        assert_eq!(via.received(), Some("192.0.2.7"));
        assert_eq!(via.rport(), Some(Some(40000)));
        let t = response_target(
            &via,
            Target {
                proto: Proto::Udp,
                addr: from,
            },
        );
        assert_eq!(t.addr, from, "rport: back to the source port");

        let text = text.replace(";rport", "");
        let Ok(Message::Request(mut r)) = parse(text.as_bytes()) else {
            panic!()
        };
        stamp_via(&mut r, from);
        let via = r.top_via().unwrap();
        let t = response_target(
            &via,
            Target {
                proto: Proto::Udp,
                addr: from,
            },
        );
        assert_eq!(
            t.addr,
            "192.0.2.7:5070".parse().unwrap(),
            "received IP, Via port"
        );
    }

    fn listen(list: &[&str]) -> Vec<ListenAddr> {
        list.iter()
            .map(|l| ListenAddr::try_from(l.to_string()).unwrap())
            .collect()
    }

    fn ports(t: &Transport) -> Vec<u16> {
        t.listening()
            .iter()
            .filter_map(|l| l.rsplit(':').next()?.parse().ok())
            .collect()
    }

    #[tokio::test]
    async fn udp_and_tcp_share_a_port_in_either_order() {
        for order in [
            ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
            ["tcp:127.0.0.1:0", "udp:127.0.0.1:0"],
        ] {
            let (t, _rx) = Transport::start(&listen(&order), false, None)
                .await
                .unwrap();
            let p = ports(&t);
            assert_eq!(p.len(), 2, "{order:?}");
            assert_eq!(p[0], p[1], "{order:?}: {:?}", t.listening());
            t.shutdown();
        }
    }

    #[tokio::test]
    async fn an_icmp_error_is_reported_and_does_not_fail_a_send_to_someone_else() {
        let (t, _rx) = Transport::start(&listen(&["udp:127.0.0.1:0"]), false, None)
            .await
            .unwrap();
        let mut reports = t.unreachable();
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let live = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = |addr| Target {
            proto: Proto::Udp,
            addr,
        };
        t.send(to(dead), b"OPTIONS".to_vec()).await.unwrap();
        let (target, why) = tokio::time::timeout(Duration::from_secs(5), reports.recv())
            .await
            .expect("an ICMP report")
            .unwrap();
        assert_eq!(target, to(dead));
        assert_eq!(why, "port unreachable");
        // Another ICMP error pending on the socket when the next send goes out (to a
        // peer that is there) must not fail that send.
        for _ in 0..3 {
            t.send(to(dead), b"x".to_vec()).await.unwrap();
            t.send(to(live.local_addr().unwrap()), b"hello".to_vec())
                .await
                .unwrap();
        }
        let mut buf = [0u8; 16];
        let (n, _) = live.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        t.shutdown();
    }
}
