//! ICE (RFC 8445) for one media stream: host, server-reflexive and relayed (TURN, RFC
//! 8656) candidates, connectivity checks and nomination, by rice-proto, a sans-IO agent:
//! its owner does the I/O and keeps the time. Candidates are gathered before the offer or
//! answer; then the engine's tick moves the checks on and the media goes over the pair
//! nominated. Consent freshness (RFC 7675), which rice-proto leaves to its user, is kept
//! here: a pair whose far end stops answering is not sent to.
//!
//! Components are 1 (RTP) and, when RTCP has its own port, 2 (RTCP). Each runs in a
//! rice-proto agent of its own with the same credentials and role (to the far side it is
//! one stream with two components): rice-proto 0.4 reports only one selected pair per
//! stream, a second stream's checks wait frozen on the first's, and a relayed pair can
//! be sent on only once it is installed as the component's own.
//! The host sockets stay with their owner (`transport.rs`) and are lent for each call;
//! the sockets to the TURN server (one per component, as rice-proto wants) are kept here.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rice_proto::agent::{Agent, AgentPoll};
use rice_proto::candidate::{Candidate, CandidateType, TransportType};
use rice_proto::component::ComponentConnectionState;
use rice_proto::stream::Credentials;
use rice_proto::turn::{TurnConfig, TurnCredentials};
use rice_stun_types::attribute::{IceControlled, IceControlling, Priority};
use stun_proto::Instant as IceInstant;
use stun_proto::agent::Transmit;
use stun_proto::types::attribute::Username;
use stun_proto::types::message::{
    BINDING, IntegrityAlgorithm, Message, MessageClass, MessageWrite, MessageWriteExt,
    MessageWriteVec, ShortTermCredentials, TransactionId,
};

use super::stun::is_stun;

/// How long a call's setup waits for its candidates: a STUN or TURN server that does not
/// answer costs this, not the call, which goes on with what was gathered.
pub const GATHER_LIMIT: Duration = Duration::from_secs(2);
/// RFC 7675: a consent check about every 5 s; consent is lost after 30 s unanswered.
const CONSENT_EVERY: Duration = Duration::from_secs(5);
const CONSENT_LIFETIME: Duration = Duration::from_secs(30);
/// Datagrams read from one TURN socket in one go: a bound, as for RTP.
const MAX_READ: usize = 512;

/// The servers a stream gathers from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServers {
    pub stun: Option<SocketAddr>,
    pub turn: Option<TurnServer>,
}

/// A TURN server and the long-term credentials it takes (RFC 8656 §9.2).
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    pub addr: SocketAddr,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TurnServer({} as {})", self.addr, self.username)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IceError {
    #[error("ICE: {0}")]
    Agent(String),
    #[error("ICE socket: {0}")]
    Io(#[from] std::io::Error),
}

/// The pair a component sends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// The far end of the pair.
    pub remote: SocketAddr,
    /// Through our TURN allocation, rather than from the host socket.
    pub relayed: bool,
    /// How the pair gets across the NATs between us.
    pub path: IcePath,
}

/// Whether `ip` is one no NAT is needed to reach: private, shared (CGNAT), link-local,
/// loopback or unique-local.
fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64)
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xFE00) == 0xFC00
                || (v6.segments()[0] & 0xFFC0) == 0xFE80
        }
    }
}

/// How a nominated pair reaches the far side, in the words linphone shows its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcePath {
    /// Host to host: no NAT between us, or the same one.
    Host,
    /// Through a NAT's mapping (a server- or peer-reflexive candidate at either end).
    Reflexive,
    /// Through a TURN relay, ours or the far side's.
    Relay,
}

impl IcePath {
    /// The path of a pair between candidates of these types, to `remote`. rice-proto
    /// keeps our side of a pair that works through our NAT a host candidate (the far side
    /// sees a peer-reflexive one): `behind_nat` (STUN saw us at another address) makes a
    /// host pair to a public address reflexive; to a private one it stays on the LAN.
    fn of(
        local: CandidateType,
        remote: CandidateType,
        remote_ip: std::net::IpAddr,
        behind_nat: bool,
    ) -> IcePath {
        let any = |t: CandidateType| local == t || remote == t;
        if any(CandidateType::Relayed) {
            IcePath::Relay
        } else if any(CandidateType::ServerReflexive)
            || any(CandidateType::PeerReflexive)
            || (behind_nat && !is_private(remote_ip))
        {
            IcePath::Reflexive
        } else {
            IcePath::Host
        }
    }

    /// Its short name: "host", "reflexive" or "relay".
    pub fn name(self) -> &'static str {
        match self {
            IcePath::Host => "host",
            IcePath::Reflexive => "reflexive",
            IcePath::Relay => "relay",
        }
    }
}

/// What changed at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceEvent {
    /// A component's pair was nominated (component 1: RTP, 2: RTCP), `after` the checks
    /// began (the far side's candidates were set).
    Selected {
        component: usize,
        pair: Selected,
        after: Duration,
    },
    /// A component's checks failed: no pair works.
    Failed { component: usize },
    /// The far end of a component's pair stopped answering consent checks.
    ConsentLost { component: usize },
}

/// One component: its rice-proto agent and stream, TURN socket and state.
struct Comp {
    agent: Agent,
    stream: usize,
    turn: Option<UdpSocket>,
    gathered: bool,
    selected: Option<Selected>,
    failed: bool,
    /// Consent freshness on the selected pair: the check in flight, when the next is
    /// due, and when consent was last given.
    consent: Option<TransactionId>,
    consent_next: Instant,
    consented: Instant,
    consent_lost: bool,
}

/// One media stream's ICE agent.
pub struct Ice {
    controlling: bool,
    comps: Vec<Comp>,
    local: Credentials,
    remote: Option<Credentials>,
    turn_server: Option<SocketAddr>,
    tie_breaker: u64,
    /// Our candidates as gathered, in order, with their SDP component ids.
    candidates: Vec<Candidate>,
    /// No more local candidates: the SDP is made.
    local_done: bool,
    /// rice-proto's clock counts from here.
    base: Instant,
    /// How long gathering took.
    gathering: Duration,
    /// When the far side's candidates were set: the checks began.
    checks_from: Option<Instant>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Ice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ice")
            .field("components", &self.comps.len())
            .field("candidates", &self.candidates.len())
            .finish_non_exhaustive()
    }
}

impl Ice {
    /// An agent for a stream whose components are reached at `hosts` (RTP, then RTCP if
    /// it has its own port), gathering from `servers`. The offerer controls.
    pub fn new(
        controlling: bool,
        hosts: &[&UdpSocket],
        servers: &IceServers,
    ) -> Result<Ice, IceError> {
        let local = Credentials {
            ufrag: rice_proto::random_string(8),
            passwd: rice_proto::random_string(24),
        };
        let turn_cfg = servers.turn.as_ref().map(|t| {
            TurnConfig::new(
                TransportType::Udp,
                t.addr,
                TurnCredentials::new(&t.username, &t.password),
            )
        });
        let stun: Vec<(TransportType, SocketAddr)> = servers
            .stun
            .iter()
            .map(|a| (TransportType::Udp, *a))
            .collect();
        let now = Instant::now();
        let mut comps = Vec::new();
        let mut candidates = Vec::new();
        for (i, host) in hosts.iter().enumerate() {
            let component = i + 1;
            let base = host.local_addr()?;
            let turn = match &turn_cfg {
                Some(_) => {
                    let t = UdpSocket::bind(SocketAddr::new(base.ip(), 0))?;
                    t.set_nonblocking(true)?;
                    Some(t)
                }
                None => None,
            };
            let turn_local = turn.as_ref().map(UdpSocket::local_addr).transpose()?;
            let turns: Vec<(SocketAddr, &TurnConfig)> = match (&turn_cfg, turn_local) {
                (Some(cfg), Some(at)) => vec![(at, cfg)],
                _ => Vec::new(),
            };
            let mut agent = Agent::builder().controlling(controlling).build();
            let id = agent.add_stream();
            let mut s = agent.mut_stream(id).ok_or_else(|| agent_err("no stream"))?;
            s.set_local_credentials(local.clone());
            let cid = s.add_component().map_err(|e| agent_err(&e.to_string()))?;
            s.mut_component(cid)
                .ok_or_else(|| agent_err("no component"))?
                .gather_candidates(&[(TransportType::Udp, base)], &stun, &turns)
                .map_err(|e| agent_err(&e.to_string()))?;
            // rice-proto makes no host candidate of a loopback address; a daemon bound
            // there (a test, a local bridge) still has one.
            if base.ip().is_loopback() {
                let prio = Candidate::calculate_priority(
                    CandidateType::Host,
                    TransportType::Udp,
                    None,
                    2,
                    component,
                );
                let c = Candidate::builder(cid, CandidateType::Host, TransportType::Udp, "0", base)
                    .priority(prio)
                    .base_address(base)
                    .build();
                if s.add_local_candidate(c.clone()) {
                    candidates.push(Candidate {
                        component_id: component,
                        ..c
                    });
                }
            }
            comps.push(Comp {
                agent,
                stream: id,
                turn,
                gathered: false,
                selected: None,
                failed: false,
                consent: None,
                consent_next: now,
                consented: now,
                consent_lost: false,
            });
        }
        Ok(Ice {
            controlling,
            comps,
            local,
            remote: None,
            turn_server: servers.turn.as_ref().map(|t| t.addr),
            tie_breaker: fastrand::u64(..),
            candidates,
            local_done: false,
            base: now,
            gathering: Duration::ZERO,
            checks_from: None,
            buf: vec![0; 1500],
        })
    }

    fn clock(&self, at: Instant) -> IceInstant {
        let nanos = at.saturating_duration_since(self.base).as_nanos();
        IceInstant::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
    }

    /// Whether every component has its candidates.
    pub fn gathered(&self) -> bool {
        self.comps.iter().all(|c| c.gathered)
    }

    /// Gathers: moves the agent on with what comes to the sockets until every component
    /// has its candidates, or [`GATHER_LIMIT`] passes (then it goes on with what it has,
    /// at least the host candidates). Media that comes meanwhile is dropped: the stream
    /// has not started.
    pub async fn gather(&mut self, hosts: &[&UdpSocket]) -> Result<(), IceError> {
        let started = Instant::now();
        let r = self.gather_until_done(hosts).await;
        self.gathering = started.elapsed();
        r
    }

    /// How long [`Ice::gather`] took: STUN's answers and TURN's allocation, or the limit.
    pub fn gathering_time(&self) -> Duration {
        self.gathering
    }

    async fn gather_until_done(&mut self, hosts: &[&UdpSocket]) -> Result<(), IceError> {
        let deadline = tokio::time::Instant::now() + GATHER_LIMIT;
        // Second descriptors watched by tokio while this lasts; the engine reads the
        // originals later.
        let mut watched = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            watched.push((i, false, tokio::net::UdpSocket::from_std(h.try_clone()?)?));
        }
        for (i, c) in self.comps.iter().enumerate() {
            if let Some(t) = &c.turn {
                watched.push((i, true, tokio::net::UdpSocket::from_std(t.try_clone()?)?));
            }
        }
        loop {
            let (next, _) = self.step(Instant::now(), hosts);
            if self.gathered() {
                return Ok(());
            }
            let wake = tokio::time::Instant::from_std(next).min(deadline);
            let ready = std::future::poll_fn(|cx| {
                for (k, (_, _, s)) in watched.iter().enumerate() {
                    if s.poll_recv_ready(cx).is_ready() {
                        return std::task::Poll::Ready(k);
                    }
                }
                std::task::Poll::Pending
            });
            tokio::select! {
                k = ready => {
                    // Read through tokio's descriptor, so that its readiness is cleared.
                    let (comp, turn, sock) = &watched[k];
                    let (comp, turn) = (*comp, *turn);
                    let mut buf = [0u8; 1500];
                    let mut got = Vec::new();
                    while let Ok((n, from)) = sock.try_recv_from(&mut buf) {
                        got.push((buf[..n].to_vec(), from));
                    }
                    for (data, from) in got {
                        self.input(comp, turn, &data, from, Instant::now(), hosts, &mut |_, _| {});
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= deadline {
                        tracing::info!("ICE: gathering cut short after {GATHER_LIMIT:?}");
                        self.end_of_candidates();
                        return Ok(());
                    }
                }
            }
        }
    }

    fn end_of_candidates(&mut self) {
        if self.local_done {
            return;
        }
        self.local_done = true;
        for c in &mut self.comps {
            c.gathered = true;
            if let Some(mut s) = c.agent.mut_stream(c.stream) {
                s.end_of_local_candidates();
            }
        }
    }

    /// Our ufrag and password.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.local.ufrag, &self.local.passwd)
    }

    /// Our candidates as SDP attribute values (`candidate:…`, without `a=`).
    pub fn candidate_attrs(&self) -> Vec<String> {
        self.candidates
            .iter()
            .map(|c| c.to_sdp_string().trim_start_matches("a=").to_string())
            .collect()
    }

    /// The address an SDP names for `component` (its default candidate, RFC 8445 §5.1.1.3):
    /// server-reflexive if there is one (what a NAT's far side reaches), else host. Relayed
    /// ones are for ICE: a far side without ICE could not pass our TURN server's
    /// permissions.
    pub fn default_address(&self, component: usize) -> Option<SocketAddr> {
        let of = |t: CandidateType| {
            self.candidates
                .iter()
                .find(|c| c.component_id == component && c.candidate_type == t)
                .map(|c| c.address)
        };
        of(CandidateType::ServerReflexive).or_else(|| of(CandidateType::Host))
    }

    /// The far side's credentials and candidates (`candidate:…` values). Candidates that
    /// do not parse are skipped and counted; TCP ones and components we lack are not ours.
    pub fn set_remote(&mut self, ufrag: &str, pwd: &str, candidates: &[String]) -> usize {
        self.checks_from = Some(Instant::now());
        let creds = Credentials {
            ufrag: ufrag.to_string(),
            passwd: pwd.to_string(),
        };
        let mut bad = 0;
        let mut parsed = Vec::new();
        for line in candidates {
            match format!("a={}", line.trim()).parse::<Candidate>() {
                Ok(c) => parsed.push(c),
                Err(_) => bad += 1,
            }
        }
        for (i, comp) in self.comps.iter_mut().enumerate() {
            let Some(mut s) = comp.agent.mut_stream(comp.stream) else {
                continue;
            };
            s.set_remote_credentials(creds.clone());
            for c in parsed.iter().filter(|c| c.component_id == i + 1) {
                if c.transport_type == TransportType::Udp {
                    s.add_remote_candidate(Candidate {
                        component_id: 1,
                        ..c.clone()
                    });
                }
            }
            s.end_of_remote_candidates();
        }
        self.remote = Some(creds);
        bad
    }

    /// The pair component `component` sends on, once nominated and while consent lasts.
    pub fn selected(&self, component: usize) -> Option<Selected> {
        let c = self.comps.get(component.checked_sub(1)?)?;
        c.selected.filter(|_| !c.consent_lost)
    }

    /// Moves the agent on at `now`: handles what it asks and sends what it has to, from
    /// `hosts` or our TURN sockets. Returns when it next wants to run, and what changed.
    pub fn step(&mut self, now: Instant, hosts: &[&UdpSocket]) -> (Instant, Vec<IceEvent>) {
        let mut events = Vec::new();
        let t = self.clock(now);
        let mut next = now + Duration::from_secs(1);
        for i in 0..self.comps.len() {
            next = next.min(self.poll_comp(i, now, &mut events));
            let c = &mut self.comps[i];
            let mut out = Vec::new();
            while let Some(tx) = c.agent.poll_transmit(t) {
                out.push(tx.transmit);
            }
            for tx in out {
                self.transmit(tx.from, tx.to, &tx.data, hosts);
            }
        }
        self.consent(now, hosts, &mut events);
        for c in &self.comps {
            if c.selected.is_some() && !c.consent_lost {
                next = next
                    .min(c.consent_next.max(now))
                    .min((c.consented + CONSENT_LIFETIME).max(now));
            }
        }
        (next, events)
    }

    /// What component `i`'s agent asks for at `now`; when it next wants to run.
    fn poll_comp(&mut self, i: usize, now: Instant, events: &mut Vec<IceEvent>) -> Instant {
        let t = self.clock(now);
        // A bound, so that an agent that keeps asking cannot hold the engine; it goes on
        // at the next step.
        let mut next = now;
        for _ in 0..64 {
            let c = &mut self.comps[i];
            match c.agent.poll(t) {
                AgentPoll::WaitUntil(at) => {
                    next = now + at.saturating_duration_since(t).min(Duration::from_secs(1));
                    break;
                }
                AgentPoll::Closed => {
                    next = now + Duration::from_secs(1);
                    break;
                }
                // One that comes after gathering was cut short is too late for the SDP
                // (and rice-proto takes none after the end of candidates).
                AgentPoll::GatheredCandidate(_) if self.local_done => {}
                AgentPoll::GatheredCandidate(g) => {
                    let mut cand = g.gathered.candidate.clone();
                    if let Some(mut s) = c.agent.mut_stream(g.stream_id)
                        && s.add_local_gathered_candidate(g.gathered)
                    {
                        cand.component_id = i + 1;
                        // RFC 8839: a reflexive candidate's related address is its base
                        // (rice-proto gives the server's).
                        if cand.candidate_type == CandidateType::ServerReflexive {
                            cand.related_address = Some(cand.base_address);
                        }
                        self.candidates.push(cand);
                    }
                }
                AgentPoll::GatheringComplete(_) => {
                    c.gathered = true;
                    if self.gathered() {
                        self.end_of_candidates();
                    }
                }
                AgentPoll::SelectedPair(p) => {
                    let pair = p.selected.candidate_pair().clone();
                    let behind_nat = self.candidates.iter().any(|c| {
                        c.component_id == i + 1
                            && c.candidate_type == CandidateType::ServerReflexive
                            && c.address != c.base_address
                    });
                    let sel = Selected {
                        remote: pair.remote.address,
                        relayed: pair.local.candidate_type == CandidateType::Relayed,
                        path: IcePath::of(
                            pair.local.candidate_type,
                            pair.remote.candidate_type,
                            pair.remote.address.ip(),
                            behind_nat,
                        ),
                    };
                    // Installed as the component's own, or a relayed one cannot be sent on.
                    if let Some(mut s) = c.agent.mut_stream(p.stream_id)
                        && let Some(mut comp) = s.mut_component(p.component_id)
                        && let Err(e) = comp.set_selected_pair(pair)
                    {
                        tracing::warn!("ICE: cannot use the selected pair: {e}");
                        continue;
                    }
                    if c.selected == Some(sel) {
                        continue;
                    }
                    c.selected = Some(sel);
                    c.consented = now;
                    c.consent_next = now + CONSENT_EVERY;
                    c.consent = None;
                    c.consent_lost = false;
                    events.push(IceEvent::Selected {
                        component: i + 1,
                        pair: sel,
                        after: self
                            .checks_from
                            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
                    });
                }
                AgentPoll::ComponentStateChange(ch) => {
                    if ch.state == ComponentConnectionState::Failed && !c.failed {
                        c.failed = true;
                        events.push(IceEvent::Failed { component: i + 1 });
                    }
                }
                // UDP only: no sockets to make or drop.
                AgentPoll::AllocateSocket(_) | AgentPoll::RemoveSocket(_) => {}
            }
        }
        next
    }

    /// Sends from whichever of our sockets has the address `from`.
    fn transmit(&self, from: SocketAddr, to: SocketAddr, data: &[u8], hosts: &[&UdpSocket]) {
        let turns = self.comps.iter().filter_map(|c| c.turn.as_ref());
        for s in hosts.iter().copied().chain(turns) {
            if s.local_addr().is_ok_and(|a| a == from) {
                let _ = s.send_to(data, to);
                return;
            }
        }
    }

    /// Whether the agent has TURN sockets, to be read every tick.
    pub fn has_turn(&self) -> bool {
        self.comps.iter().any(|c| c.turn.is_some())
    }

    /// Reads what waits at component `comp`'s TURN socket (0: RTP), handing `media` what
    /// the far side sent through the relay. How many datagrams came.
    pub fn read_turn(
        &mut self,
        comp: usize,
        now: Instant,
        hosts: &[&UdpSocket],
        media: &mut dyn FnMut(&[u8], SocketAddr),
    ) -> usize {
        let mut buf = std::mem::take(&mut self.buf);
        let mut read = 0;
        for _ in 0..MAX_READ {
            let Some(Some(sock)) = self.comps.get(comp).map(|c| c.turn.as_ref()) else {
                break;
            };
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            self.input(comp, true, &buf[..n], from, now, hosts, media);
            read += 1;
        }
        self.buf = buf;
        read
    }

    /// One datagram that came to component `comp` (0: RTP) from `from`, at its host socket
    /// or (`via_turn`) its TURN socket. STUN and TURN are ICE's; anything else is handed
    /// to `media`.
    #[allow(clippy::too_many_arguments)]
    pub fn input(
        &mut self,
        comp: usize,
        via_turn: bool,
        data: &[u8],
        from: SocketAddr,
        now: Instant,
        hosts: &[&UdpSocket],
        media: &mut dyn FnMut(&[u8], SocketAddr),
    ) {
        let Some(c) = self.comps.get(comp) else {
            return;
        };
        // Only the TURN server speaks at the TURN socket.
        if via_turn && Some(from) != self.turn_server {
            return;
        }
        let local = if via_turn {
            c.turn.as_ref().and_then(|t| t.local_addr().ok())
        } else {
            hosts.get(comp).and_then(|h| h.local_addr().ok())
        };
        let Some(local) = local else { return };
        let stream = c.stream;
        if !via_turn && !is_stun(data) {
            return media(data, from);
        }
        if !via_turn && self.consent_answer(comp, data, now) {
            return;
        }
        let t = self.clock(now);
        let Some(mut s) = self.comps[comp].agent.mut_stream(stream) else {
            return;
        };
        let reply =
            s.handle_incoming_data(1, Transmit::new(data, TransportType::Udp, from, local), t);
        let peer = self.comps[comp].selected.map_or(from, |p| p.remote);
        if let Some(d) = reply.data {
            self.delivered(comp, d.as_ref(), peer, now, media);
        }
        if reply.have_more_data {
            while let Some(p) = self.comps[comp]
                .agent
                .mut_stream(stream)
                .and_then(|mut s| s.poll_recv())
            {
                self.delivered(comp, &p.data, peer, now, media);
            }
        }
    }

    /// Data that came through the relay: an answer to our consent check, or media.
    fn delivered(
        &mut self,
        comp: usize,
        data: &[u8],
        peer: SocketAddr,
        now: Instant,
        media: &mut dyn FnMut(&[u8], SocketAddr),
    ) {
        if !(is_stun(data) && self.consent_answer(comp, data, now)) {
            media(data, peer);
        }
    }

    /// Sends `data` (RTP, RTCP, DTLS) on component `component`'s selected pair, from its
    /// host socket in `hosts` or through the relay. False before a pair is nominated, and
    /// once consent is lost.
    pub fn send(
        &mut self,
        component: usize,
        data: &[u8],
        now: Instant,
        hosts: &[&UdpSocket],
    ) -> bool {
        let Some(sel) = self.selected(component) else {
            return false;
        };
        if !sel.relayed {
            return hosts
                .get(component - 1)
                .is_some_and(|h| h.send_to(data, sel.remote).is_ok());
        }
        let Some(stream) = self.comps.get(component - 1).map(|c| c.stream) else {
            return false;
        };
        let t = self.clock(now);
        let tx = self.comps[component - 1]
            .agent
            .mut_stream(stream)
            .and_then(|mut s| s.mut_component(1).map(|mut c| c.send(data, t)));
        match tx {
            Some(Ok(tx)) => {
                self.transmit(tx.from, tx.to, &tx.data, hosts);
                true
            }
            _ => false,
        }
    }

    /// Consent freshness (RFC 7675) on each selected pair.
    fn consent(&mut self, now: Instant, hosts: &[&UdpSocket], events: &mut Vec<IceEvent>) {
        let Some(remote) = self.remote.clone() else {
            return;
        };
        let controlling = self.controlling;
        for i in 0..self.comps.len() {
            let c = &mut self.comps[i];
            let Some(sel) = c.selected else { continue };
            if c.consent_lost {
                continue;
            }
            if now.saturating_duration_since(c.consented) >= CONSENT_LIFETIME {
                c.consent_lost = true;
                tracing::warn!(
                    "ICE: {} stopped answering consent checks; nothing more goes to it",
                    sel.remote
                );
                events.push(IceEvent::ConsentLost { component: i + 1 });
                continue;
            }
            if now < c.consent_next {
                continue;
            }
            // Jittered, 0.8 to 1.2 of the interval (RFC 7675 §5.1).
            c.consent_next = now + CONSENT_EVERY.mul_f64(0.8 + fastrand::f64() * 0.4);
            let Some((id, bytes)) =
                consent_request(&self.local, &remote, controlling, self.tie_breaker)
            else {
                continue;
            };
            c.consent = Some(id);
            self.send(i + 1, &bytes, now, hosts);
        }
    }

    /// Whether `data` answers our consent check on component `comp`: then it is taken
    /// (and renews consent when it is a success with the far side's integrity).
    fn consent_answer(&mut self, comp: usize, data: &[u8], now: Instant) -> bool {
        let Some(c) = self.comps.get_mut(comp) else {
            return false;
        };
        let Some(id) = c.consent else { return false };
        let Ok(msg) = Message::from_bytes(data) else {
            return false;
        };
        if msg.transaction_id() != id || msg.method() != BINDING {
            return false;
        }
        c.consent = None;
        if let Some(remote) = &self.remote {
            let creds = ShortTermCredentials::new(remote.passwd.clone()).into();
            if msg.has_class(MessageClass::Success) && msg.validate_integrity(&creds).is_ok() {
                c.consented = now;
            }
        }
        true
    }
}

impl Drop for Ice {
    /// Releases the TURN allocations (a refresh with lifetime 0, RFC 8656 §7): the server
    /// would otherwise hold them, and count them against the account, until they expire.
    fn drop(&mut self) {
        if self.turn_server.is_none() {
            return;
        }
        let now = Instant::now();
        let t = self.clock(now);
        let mut out = Vec::new();
        for c in &mut self.comps {
            c.agent.close(t);
            // What closing asks to send is due at once; a few polls take it all.
            for _ in 0..8 {
                if matches!(c.agent.poll(t), AgentPoll::Closed) {
                    break;
                }
                while let Some(tx) = c.agent.poll_transmit(t) {
                    out.push(tx.transmit);
                }
            }
        }
        for tx in out {
            // Only from our TURN sockets: the host ones are gone or not ours to use.
            self.transmit(tx.from, tx.to, &tx.data, &[]);
        }
    }
}

fn agent_err(why: &str) -> IceError {
    IceError::Agent(why.to_string())
}

/// A consent check: a Binding request as ICE's own checks are (USERNAME, PRIORITY, our
/// role, MESSAGE-INTEGRITY with the far side's password, FINGERPRINT), and its id.
fn consent_request(
    local: &Credentials,
    remote: &Credentials,
    controlling: bool,
    tie_breaker: u64,
) -> Option<(TransactionId, Vec<u8>)> {
    let mut msg = Message::builder_request(BINDING, MessageWriteVec::new());
    let user = Username::new(&format!("{}:{}", remote.ufrag, local.ufrag)).ok()?;
    msg.add_attribute(&user).ok()?;
    msg.add_attribute(&Priority::new(0x6e00_01ff)).ok()?;
    if controlling {
        msg.add_attribute(&IceControlling::new(tie_breaker)).ok()?;
    } else {
        msg.add_attribute(&IceControlled::new(tie_breaker)).ok()?;
    }
    let creds = ShortTermCredentials::new(remote.passwd.clone()).into();
    msg.add_message_integrity(&creds, IntegrityAlgorithm::Sha1)
        .ok()?;
    msg.add_fingerprint().ok()?;
    let id = msg.transaction_id();
    Some((id, msg.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    struct Side {
        ice: Ice,
        hosts: Vec<UdpSocket>,
        got: Vec<Vec<u8>>,
    }

    impl Side {
        async fn new(controlling: bool) -> Side {
            let hosts = vec![host(), host()];
            let refs: Vec<&UdpSocket> = hosts.iter().collect();
            let mut ice = Ice::new(controlling, &refs, &IceServers::default()).unwrap();
            ice.gather(&refs).await.unwrap();
            Side {
                ice,
                hosts,
                got: Vec::new(),
            }
        }

        /// A controlling and a controlled agent, each told of the other.
        async fn pair() -> (Side, Side) {
            let mut a = Side::new(true).await;
            let mut b = Side::new(false).await;
            let (ua, pa) = (a.ice.local.ufrag.clone(), a.ice.local.passwd.clone());
            let (ub, pb) = (b.ice.local.ufrag.clone(), b.ice.local.passwd.clone());
            a.ice.set_remote(&ub, &pb, &b.ice.candidate_attrs());
            b.ice.set_remote(&ua, &pa, &a.ice.candidate_attrs());
            (a, b)
        }

        fn turn(&mut self) {
            let refs: Vec<&UdpSocket> = self.hosts.iter().collect();
            self.ice.step(Instant::now(), &refs);
            let mut buf = [0u8; 1500];
            for (i, h) in self.hosts.iter().enumerate() {
                while let Ok((n, from)) = h.recv_from(&mut buf) {
                    let got = &mut self.got;
                    self.ice.input(
                        i,
                        false,
                        &buf[..n],
                        from,
                        Instant::now(),
                        &refs,
                        &mut |d, _| got.push(d.to_vec()),
                    );
                }
            }
        }

        fn send(&mut self, component: usize, data: &[u8]) -> bool {
            let refs: Vec<&UdpSocket> = self.hosts.iter().collect();
            self.ice.send(component, data, Instant::now(), &refs)
        }
    }

    fn run(a: &mut Side, b: &mut Side, done: impl Fn(&Side, &Side) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(a, b) {
            assert!(Instant::now() < deadline, "ICE did not get there");
            a.turn();
            b.turn();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[tokio::test]
    async fn two_agents_nominate_a_pair_per_component_and_carry_media() {
        let mut a = Side::new(true).await;
        let mut b = Side::new(false).await;
        let attrs = a.ice.candidate_attrs();
        assert_eq!(attrs.len(), 2, "{attrs:?}");
        assert!(attrs[0].starts_with("candidate:0 1 UDP "), "{attrs:?}");
        assert!(attrs[1].starts_with("candidate:0 2 UDP "), "{attrs:?}");
        let (ua, pa) = (a.ice.local.ufrag.clone(), a.ice.local.passwd.clone());
        let (ub, pb) = (b.ice.local.ufrag.clone(), b.ice.local.passwd.clone());
        assert_eq!(a.ice.set_remote(&ub, &pb, &b.ice.candidate_attrs()), 0);
        let mut junk = b.ice.candidate_attrs();
        junk.push("candidate:x y z".into());
        assert_eq!(b.ice.set_remote(&ua, &pa, &junk), 1);
        run(&mut a, &mut b, |a, b| {
            (1..=2).all(|c| a.ice.selected(c).is_some() && b.ice.selected(c).is_some())
        });
        for c in 1..=2 {
            assert_eq!(
                a.ice.selected(c).unwrap().remote,
                b.hosts[c - 1].local_addr().unwrap()
            );
            assert!(!a.ice.selected(c).unwrap().relayed);
        }
        assert!(a.send(1, b"\x80rtp from a"));
        assert!(b.send(2, b"\x81rtcp from b"));
        run(&mut a, &mut b, |a, b| {
            !a.got.is_empty() && !b.got.is_empty()
        });
        assert_eq!(b.got, [b"\x80rtp from a".to_vec()]);
        assert_eq!(a.got, [b"\x81rtcp from b".to_vec()]);
    }

    #[tokio::test]
    async fn consent_is_lost_when_the_far_side_stops_answering() {
        let (mut a, mut b) = Side::pair().await;
        run(&mut a, &mut b, |a, _| a.ice.selected(1).is_some());
        // b goes silent: a's checks go unanswered past the lifetime.
        let refs: Vec<&UdpSocket> = a.hosts.iter().collect();
        let later = Instant::now() + CONSENT_LIFETIME + Duration::from_secs(1);
        let (_, events) = a.ice.step(later, &refs);
        assert!(
            events.contains(&IceEvent::ConsentLost { component: 1 }),
            "{events:?}"
        );
        assert!(a.ice.selected(1).is_none());
        assert!(!a.send(1, b"no"));
    }

    /// Every call's media tick (20 ms) could step the agent; once the pairs are nominated
    /// it wants to run far less often, and the transport steps it only then.
    #[tokio::test]
    async fn a_nominated_agent_sleeps_between_ticks() {
        let (mut a, mut b) = Side::pair().await;
        run(&mut a, &mut b, |a, b| {
            (1..=2).all(|c| a.ice.selected(c).is_some() && b.ice.selected(c).is_some())
        });
        // Let the last answers in.
        for _ in 0..20 {
            a.turn();
            b.turn();
            std::thread::sleep(Duration::from_millis(5));
        }
        let refs: Vec<&UdpSocket> = a.hosts.iter().collect();
        let now = Instant::now();
        let (next, events) = a.ice.step(now, &refs);
        assert!(events.is_empty(), "{events:?}");
        assert!(
            next >= now + Duration::from_millis(500),
            "wants to run again in {:?}",
            next - now
        );
    }

    #[test]
    fn a_host_pair_from_behind_our_nat_to_a_public_address_is_reflexive() {
        use CandidateType::{Host, PeerReflexive, Relayed, ServerReflexive};
        let public = "203.0.113.7".parse().unwrap();
        let lan = "192.168.1.20".parse().unwrap();
        assert_eq!(IcePath::of(Host, Host, public, false), IcePath::Host);
        assert_eq!(IcePath::of(Host, Host, lan, true), IcePath::Host);
        assert_eq!(IcePath::of(Host, Host, public, true), IcePath::Reflexive);
        assert_eq!(
            IcePath::of(Host, ServerReflexive, public, false),
            IcePath::Reflexive
        );
        assert_eq!(
            IcePath::of(PeerReflexive, Host, lan, false),
            IcePath::Reflexive
        );
        assert_eq!(IcePath::of(Host, Relayed, lan, true), IcePath::Relay);
        assert_eq!(IcePath::of(Relayed, Host, public, false), IcePath::Relay);
        assert!(is_private("100.64.0.1".parse().unwrap()));
        assert!(is_private("fd00::1".parse().unwrap()));
        assert!(!is_private("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn consent_checks_carry_the_far_sides_credentials() {
        let local = Credentials {
            ufrag: "loc".into(),
            passwd: "localpassword123456789".into(),
        };
        let remote = Credentials {
            ufrag: "rem".into(),
            passwd: "remotepassword12345678".into(),
        };
        let (_, bytes) = consent_request(&local, &remote, true, 7).unwrap();
        let msg = Message::from_bytes(&bytes).unwrap();
        assert_eq!(msg.attribute::<Username>().unwrap().username(), "rem:loc");
        let creds = ShortTermCredentials::new(remote.passwd.clone()).into();
        assert!(msg.validate_integrity(&creds).is_ok());
        assert!(msg.attribute::<IceControlling>().is_ok());
    }
}
