//! Who may reach us from the network. Out-of-dialog requests come from the accounts'
//! providers (their registrars and outbound proxies as DNS names them, and where each
//! account is registered), from those `sip.accept_direct` lets in, and from no one else:
//! a scanner on the network must not ring the phone, find its users or fill its history.
//! Strangers get one answer whatever they name (or none), a rate limit, and one log line
//! per source a minute in a form fail2ban matches (`systemd/fail2ban/`).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{AcceptDirect, Network, SipConfig, StrangerReply};
use crate::core::presence::Sharing;
use crate::sip::message::{Method, Request, SipHeaders};
use crate::sip::transaction::{Admission, Admit};
use crate::sip::transport::{ErrorGate, Target, lock, source_key};
use crate::sip::uri::Uri;

/// A stranger's requests, taken or answered: this many a second, in bursts of `BURST`.
const RATE: f64 = 10.0;
const BURST: f64 = 20.0;
/// Sources followed each on its own; past it, new ones share one budget until old ones
/// age, so that filling the table shuts no one out for good.
const MAX_SOURCES: usize = 4096;
/// A full table is swept for aged sources at most this often (a sweep walks it all).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// A source quiet this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(120);
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The gate the transaction layer asks; the core keeps it up to date.
pub(super) struct Inbound {
    state: Mutex<State>,
}

struct State {
    accept: AcceptDirect,
    reply: StrangerReply,
    /// Networks the configuration names as the providers' too.
    trusted: Vec<Network>,
    /// The providers' addresses as DNS gave them at the last look.
    resolved: HashSet<IpAddr>,
    /// Where each account registered last.
    registered: HashMap<String, IpAddr>,
    contacts: Option<Sharing>,
    sources: HashMap<IpAddr, Source>,
    /// The budget new sources share while the table is full.
    overflow: Source,
    swept: Instant,
    refused: u64,
}

struct Source {
    tokens: f64,
    at: Instant,
    logged: Option<Instant>,
    /// Refused since the last log line.
    unlogged: u64,
}

/// Figures for `voipctl status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrangerStats {
    /// Requests from strangers refused or dropped since the start.
    pub refused: u64,
    /// Sources heard from lately that are not providers.
    pub sources: u32,
}

impl Inbound {
    /// The gate as `sip` sets it, for a configuration with `accounts` accounts.
    pub(super) fn new(sip: &SipConfig, accounts: usize) -> Inbound {
        Inbound {
            state: Mutex::new(State {
                accept: sip.accept_direct(accounts),
                reply: sip.stranger_reply,
                trusted: sip.trusted.clone(),
                resolved: HashSet::new(),
                registered: HashMap::new(),
                contacts: None,
                sources: HashMap::new(),
                overflow: Source::new(Instant::now()),
                swept: Instant::now(),
                refused: 0,
            }),
        }
    }

    /// Applies a reloaded configuration.
    pub(super) fn configure(&self, sip: &SipConfig, accounts: usize) {
        let mut s = lock(&self.state);
        s.accept = sip.accept_direct(accounts);
        s.reply = sip.stranger_reply;
        s.trusted = sip.trusted.clone();
    }

    /// The providers' addresses, freshly resolved.
    pub(super) fn set_resolved(&self, ips: HashSet<IpAddr>) {
        lock(&self.state).resolved = ips;
    }

    /// Where `account` is registered now; None when the account is gone.
    pub(super) fn set_registered(&self, account: &str, ip: Option<IpAddr>) {
        let mut s = lock(&self.state);
        match ip {
            Some(ip) => s.registered.insert(account.to_string(), ip),
            None => s.registered.remove(account),
        };
    }

    /// The address book as it is now, for `accept_direct = "contacts"`.
    pub(super) fn set_contacts(&self, contacts: Sharing) {
        lock(&self.state).contacts = Some(contacts);
    }

    /// Refusals so far, and the sources followed now.
    pub(super) fn stats(&self) -> StrangerStats {
        let mut s = lock(&self.state);
        let now = Instant::now();
        s.sources
            .retain(|_, src| now.duration_since(src.at) < FORGET_AFTER);
        StrangerStats {
            refused: s.refused,
            sources: u32::try_from(s.sources.len()).unwrap_or(u32::MAX),
        }
    }
}

impl Admission for Inbound {
    fn admit(&self, req: &Request, from: Target) -> Admit {
        self.admit_at(req, from, Instant::now())
    }
}

impl ErrorGate for Inbound {
    /// A stranger's garbage is answered as its requests are: within its budget, and not
    /// at all with `stranger_reply = "drop"` (a malformed probe must not find us either).
    fn may_answer(&self, from: Target) -> bool {
        let ip = from.addr.ip().to_canonical();
        let now = Instant::now();
        let mut s = lock(&self.state);
        if s.trusts(ip) {
            return true;
        }
        let reply = s.reply;
        let src = s.source(source_key(ip), now);
        src.take(now) && reply == StrangerReply::Forbidden
    }
}

impl Inbound {
    fn admit_at(&self, req: &Request, from: Target, now: Instant) -> Admit {
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        let ip = from.addr.ip().to_canonical();
        let mut s = lock(&self.state);
        if s.trusts(ip) {
            return Admit::Take;
        }
        // Inside a dialog the Call-ID and tags are the proof; the core answers 481 to
        // those it does not have. CANCEL follows an INVITE that was taken.
        let welcome = matches!(req.method, Method::Ack | Method::Cancel)
            || req.to().is_some_and(|t| t.tag().is_some())
            || (s.accept == AcceptDirect::Contacts && s.is_contact(req, ip));
        let reply = s.reply;
        let src = s.source(source_key(ip), now);
        let within_rate = src.take(now);
        if welcome && within_rate {
            return Admit::Take;
        }
        src.log_refusal(ip, &req.method, now);
        s.refused += 1;
        match (within_rate, reply) {
            (true, StrangerReply::Forbidden) => Admit::Refuse,
            _ => Admit::Drop,
        }
    }
}

impl State {
    /// Everyone is let in, or `ip` is a provider's.
    fn trusts(&self, ip: IpAddr) -> bool {
        self.accept == AcceptDirect::Everyone
            || self.resolved.contains(&ip)
            || self.registered.values().any(|r| *r == ip)
            || self.trusted.iter().any(|n| n.contains(ip))
    }

    /// `key`'s budget: its own, or the shared one while the table is full.
    fn source(&mut self, key: IpAddr, now: Instant) -> &mut Source {
        if self.sources.len() >= MAX_SOURCES
            && !self.sources.contains_key(&key)
            && now.duration_since(self.swept) >= SWEEP_EVERY
        {
            self.swept = now;
            self.sources
                .retain(|_, src| now.duration_since(src.at) < FORGET_AFTER);
        }
        let full = self.sources.len() >= MAX_SOURCES;
        match self.sources.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) if !full => e.insert(Source::new(now)),
            Entry::Vacant(_) => &mut self.overflow,
        }
    }

    /// From someone in the address book. From is not authenticated: when it names an
    /// address rather than a host name, it must at least be the one the request came from.
    fn is_contact(&self, req: &Request, ip: IpAddr) -> bool {
        let Some(Uri::Sip(from)) = req.from().map(|f| f.uri) else {
            return false;
        };
        let host = from.host.to_string();
        let literal: Option<IpAddr> = host.trim_matches(['[', ']']).parse().ok();
        if literal.is_some_and(|l| l.to_canonical() != ip) {
            return false;
        }
        self.contacts
            .as_ref()
            .is_some_and(|c| c.allows(Some(&from)))
    }
}

impl Source {
    fn new(now: Instant) -> Source {
        Source {
            tokens: BURST,
            at: now,
            logged: None,
            unlogged: 0,
        }
    }

    /// Takes a token; false when none is left.
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.duration_since(self.at).as_secs_f64() * RATE;
        self.tokens = (self.tokens + refill).min(BURST);
        self.at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// One line per source a minute. Only the method (a token: no spaces) comes from the
    /// request, so nothing a stranger sends can make the line match for another address.
    fn log_refusal(&mut self, ip: IpAddr, method: &Method, now: Instant) {
        self.unlogged += 1;
        if self
            .logged
            .is_some_and(|at| now.duration_since(at) < LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            "refused SIP {method} from stranger {ip} ({} refused since the last line)",
            self.unlogged
        );
        self.logged = Some(now);
        self.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::request;
    use crate::sip::transport::Proto;

    fn invite(to_tag: &str) -> Request {
        request(&format!(
            "INVITE sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1\r\n\
             From: <sip:scanner@198.51.100.7>;tag=1\r\nTo: <sip:100@192.0.2.1>{to_tag}\r\n\
             Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:s@198.51.100.7>\r\n\r\n"
        ))
    }

    fn gate(accept: AcceptDirect, reply: StrangerReply, trusted: &[&str]) -> Inbound {
        let sip = SipConfig {
            accept_direct: Some(accept),
            stranger_reply: reply,
            trusted: trusted
                .iter()
                .map(|t| Network::try_from(t.to_string()).unwrap())
                .collect(),
            ..SipConfig::default()
        };
        Inbound::new(&sip, 1)
    }

    fn from(ip: &str) -> Target {
        Target {
            proto: Proto::Udp,
            addr: (ip.parse::<IpAddr>().unwrap(), 5060).into(),
        }
    }

    #[test]
    fn strangers_are_refused_and_providers_taken() {
        let gate = gate(
            AcceptDirect::None,
            StrangerReply::Forbidden,
            &["203.0.113.0/24", "2001:db8::1"],
        );
        gate.set_resolved(["192.0.2.10".parse().unwrap()].into());
        gate.set_registered("a", Some("192.0.2.11".parse().unwrap()));
        let req = invite("");
        assert_eq!(gate.admit(&req, from("192.0.2.10")), Admit::Take);
        assert_eq!(gate.admit(&req, from("192.0.2.11")), Admit::Take);
        assert_eq!(gate.admit(&req, from("203.0.113.200")), Admit::Take);
        assert_eq!(gate.admit(&req, from("2001:db8::1")), Admit::Take);
        assert_eq!(gate.admit(&req, from("203.0.114.1")), Admit::Refuse);
        assert_eq!(gate.admit(&req, from("198.51.100.7")), Admit::Refuse);
        // Inside a dialog: taken, the core knows whether it has it.
        assert_eq!(
            gate.admit(&invite(";tag=x"), from("198.51.100.7")),
            Admit::Take
        );
        let drop = |accept| SipConfig {
            accept_direct: Some(accept),
            stranger_reply: StrangerReply::Drop,
            ..SipConfig::default()
        };
        gate.configure(&drop(AcceptDirect::None), 1);
        assert_eq!(gate.admit(&req, from("198.51.100.7")), Admit::Drop);
        gate.set_registered("a", None);
        assert_eq!(gate.admit(&req, from("192.0.2.11")), Admit::Drop);
        assert_eq!(gate.stats().refused, 4);
        assert_eq!(
            gate.admit(&req, from("203.0.113.200")),
            Admit::Drop,
            "reloaded"
        );
        gate.configure(&drop(AcceptDirect::Everyone), 1);
        assert_eq!(gate.admit(&req, from("198.51.100.7")), Admit::Take);
    }

    #[test]
    fn a_strangers_garbage_is_answered_as_its_requests_are() {
        let silent = gate(AcceptDirect::None, StrangerReply::Drop, &[]);
        let gate = gate(
            AcceptDirect::None,
            StrangerReply::Forbidden,
            &["192.0.2.10"],
        );
        assert!(gate.may_answer(from("192.0.2.10")));
        let answered = (0..100)
            .filter(|_| gate.may_answer(from("198.51.100.7")))
            .count();
        assert!((20..25).contains(&answered), "{answered}");
        assert!(!silent.may_answer(from("198.51.100.7")));
    }

    #[test]
    fn a_flooding_stranger_is_answered_at_a_bounded_rate() {
        let gate = gate(AcceptDirect::None, StrangerReply::Forbidden, &[]);
        let req = invite("");
        let t0 = Instant::now();
        let answered = |at: Instant| {
            (0..1000)
                .filter(|_| gate.admit_at(&req, from("198.51.100.7"), at) == Admit::Refuse)
                .count()
        };
        assert_eq!(answered(t0), BURST as usize, "the burst, then nothing");
        assert_eq!(answered(t0 + Duration::from_secs(1)), RATE as usize);
        assert_eq!(gate.stats().refused, 2000);
        // Another source has its own budget, also when it comes as ::ffff:a.b.c.d.
        assert_eq!(gate.admit_at(&req, from("198.51.100.8"), t0), Admit::Refuse);
        assert_eq!(
            gate.admit_at(
                &req,
                from("::ffff:198.51.100.7"),
                t0 + Duration::from_secs(1)
            ),
            Admit::Drop
        );
        // An IPv6 host is its /64.
        for _ in 0..BURST as usize {
            gate.admit_at(&req, from("2001:db8:1:2::1"), t0);
        }
        assert_eq!(
            gate.admit_at(&req, from("2001:db8:1:2::ffff"), t0),
            Admit::Drop
        );
        assert_eq!(
            gate.admit_at(&req, from("2001:db8:1:3::1"), t0),
            Admit::Refuse
        );
    }

    #[test]
    fn a_full_source_table_shuts_no_one_out() {
        let gate = gate(AcceptDirect::None, StrangerReply::Forbidden, &[]);
        let req = invite("");
        let t0 = Instant::now();
        let v4 = |i: u32| Target {
            proto: Proto::Udp,
            addr: (
                IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
                5060,
            )
                .into(),
        };
        for i in 0..MAX_SOURCES as u32 {
            gate.admit_at(&req, v4(i), t0);
        }
        assert_eq!(gate.stats().sources as usize, MAX_SOURCES);
        // Newcomers share a budget: still answered, and inside a dialog still taken.
        assert_eq!(gate.admit_at(&req, v4(1 << 20), t0), Admit::Refuse);
        assert_eq!(
            gate.admit_at(&invite(";tag=x"), v4(1 << 21), t0),
            Admit::Take
        );
        // Aged sources make room again.
        let later = t0 + FORGET_AFTER + SWEEP_EVERY;
        assert_eq!(gate.admit_at(&req, v4(1 << 22), later), Admit::Refuse);
        assert_eq!(lock(&gate.state).sources.len(), 1);
    }
}
