//! Who may reach us from the network. Out-of-dialog requests come from the accounts'
//! providers (their registrars and outbound proxies as DNS names them, and where each
//! account is registered), from those `sip.accept_direct` lets in, and from no one else:
//! a scanner on the network must not ring the phone, find its users or fill its history.
//! Strangers get one answer whatever they name (or none), a rate limit, and one log line
//! per source a minute in a form fail2ban matches (`systemd/fail2ban/`).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{AcceptDirect, StrangerReply};
use crate::core::presence::Sharing;
use crate::sip::message::{Method, Request, SipHeaders};
use crate::sip::transaction::{Admission, Admit};
use crate::sip::transport::{Target, lock};
use crate::sip::uri::Uri;

/// A stranger's requests, taken or answered: this many a second, in bursts of `BURST`.
const RATE: f64 = 10.0;
const BURST: f64 = 20.0;
/// Sources followed at once; past it, new ones are dropped unanswered until old ones age.
const MAX_SOURCES: usize = 4096;
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
    /// The providers' addresses as DNS gave them at the last look.
    resolved: HashSet<IpAddr>,
    /// Where each account registered last.
    registered: HashMap<String, IpAddr>,
    contacts: Option<Sharing>,
    sources: HashMap<IpAddr, Source>,
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
    pub(super) fn new(accept: AcceptDirect, reply: StrangerReply) -> Inbound {
        Inbound {
            state: Mutex::new(State {
                accept,
                reply,
                resolved: HashSet::new(),
                registered: HashMap::new(),
                contacts: None,
                sources: HashMap::new(),
                refused: 0,
            }),
        }
    }

    pub(super) fn configure(&self, accept: AcceptDirect, reply: StrangerReply) {
        let mut s = lock(&self.state);
        s.accept = accept;
        s.reply = reply;
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
        let ip = from.addr.ip();
        let mut s = lock(&self.state);
        if s.accept == AcceptDirect::Everyone
            || s.resolved.contains(&ip)
            || s.registered.values().any(|r| *r == ip)
        {
            return Admit::Take;
        }
        let now = Instant::now();
        let within_rate = s.spend(ip, now);
        // Inside a dialog the Call-ID and tags are the proof; the core answers 481 to
        // those it does not have. CANCEL follows an INVITE that was taken.
        let welcome = matches!(req.method, Method::Ack | Method::Cancel)
            || req.to().is_some_and(|t| t.tag().is_some())
            || (s.accept == AcceptDirect::Contacts && s.is_contact(req));
        if welcome && within_rate {
            return Admit::Take;
        }
        s.refused += 1;
        s.log_refusal(ip, &req.method, now);
        match (within_rate, s.reply) {
            (true, StrangerReply::Forbidden) => Admit::Refuse,
            _ => Admit::Drop,
        }
    }
}

impl State {
    /// Takes one of `ip`'s tokens; false when it has none left (or cannot be followed).
    fn spend(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
            self.sources
                .retain(|_, src| now.duration_since(src.at) < FORGET_AFTER);
            if self.sources.len() >= MAX_SOURCES {
                return false;
            }
        }
        let src = self.sources.entry(ip).or_insert(Source {
            tokens: BURST,
            at: now,
            logged: None,
            unlogged: 0,
        });
        let refill = now.duration_since(src.at).as_secs_f64() * RATE;
        src.tokens = (src.tokens + refill).min(BURST);
        src.at = now;
        if src.tokens < 1.0 {
            return false;
        }
        src.tokens -= 1.0;
        true
    }

    fn is_contact(&self, req: &Request) -> bool {
        let from = req.from().and_then(|f| match f.uri {
            Uri::Sip(u) => Some(u),
            _ => None,
        });
        self.contacts
            .as_ref()
            .is_some_and(|c| c.allows(from.as_ref()))
    }

    /// One line per source a minute. Only the method (a token: no spaces) comes from the
    /// request, so nothing a stranger sends can make the line match for another address.
    fn log_refusal(&mut self, ip: IpAddr, method: &Method, now: Instant) {
        let Some(src) = self.sources.get_mut(&ip) else {
            return;
        };
        src.unlogged += 1;
        if src
            .logged
            .is_some_and(|at| now.duration_since(at) < LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            "refused SIP {method} from stranger {ip} ({} refused since the last line)",
            src.unlogged
        );
        src.logged = Some(now);
        src.unlogged = 0;
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

    fn from(ip: &str) -> Target {
        Target {
            proto: Proto::Udp,
            addr: (ip.parse::<IpAddr>().unwrap(), 5060).into(),
        }
    }

    #[test]
    fn strangers_are_refused_and_providers_taken() {
        let gate = Inbound::new(AcceptDirect::None, StrangerReply::Forbidden);
        gate.set_resolved(["192.0.2.10".parse().unwrap()].into());
        gate.set_registered("a", Some("192.0.2.11".parse().unwrap()));
        let req = invite("");
        assert_eq!(gate.admit(&req, from("192.0.2.10")), Admit::Take);
        assert_eq!(gate.admit(&req, from("192.0.2.11")), Admit::Take);
        assert_eq!(gate.admit(&req, from("198.51.100.7")), Admit::Refuse);
        // Inside a dialog: taken, the core knows whether it has it.
        assert_eq!(
            gate.admit(&invite(";tag=x"), from("198.51.100.7")),
            Admit::Take
        );
        gate.configure(AcceptDirect::None, StrangerReply::Drop);
        assert_eq!(gate.admit(&req, from("198.51.100.7")), Admit::Drop);
        gate.set_registered("a", None);
        assert_eq!(gate.admit(&req, from("192.0.2.11")), Admit::Drop);
        assert_eq!(gate.stats().refused, 3);
        gate.configure(AcceptDirect::Everyone, StrangerReply::Drop);
        assert_eq!(gate.admit(&req, from("198.51.100.7")), Admit::Take);
    }

    #[test]
    fn a_flooding_stranger_is_answered_at_a_bounded_rate() {
        let gate = Inbound::new(AcceptDirect::None, StrangerReply::Forbidden);
        let req = invite("");
        let answered = (0..1000)
            .filter(|_| gate.admit(&req, from("198.51.100.7")) == Admit::Refuse)
            .count();
        // The burst, and what trickled in while the loop ran.
        assert!((20..30).contains(&answered), "{answered}");
        assert_eq!(gate.stats().refused, 1000);
        // Another source has its own budget.
        assert_eq!(gate.admit(&req, from("198.51.100.8")), Admit::Refuse);
    }

    #[test]
    fn the_source_table_is_bounded() {
        let gate = Inbound::new(AcceptDirect::None, StrangerReply::Forbidden);
        let req = invite("");
        for i in 0..(MAX_SOURCES as u32 + 100) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            gate.admit(
                &req,
                Target {
                    proto: Proto::Udp,
                    addr: (ip, 5060).into(),
                },
            );
        }
        assert_eq!(gate.stats().sources as usize, MAX_SOURCES);
    }
}
