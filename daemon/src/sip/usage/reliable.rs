//! Reliable provisional responses (RFC 3262, `100rel`): the option tags an INVITE carries,
//! the PRACK a UAC owes each one, and the retransmission of ours until it is PRACKed.

use serde::Deserialize;
use tokio::time::{Duration, Instant};

use crate::sip::capabilities::lists_option;
use crate::sip::message::{Method, Name, Request, Response, SipHeaders};
use crate::sip::transaction::{ServerTx, Timers};

/// Whether an account uses reliable provisional responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rel100 {
    Off,
    /// Offered, and used when the far side wants it.
    #[default]
    Supported,
    /// Calls with peers that cannot do it fail (420/421).
    Required,
}

impl Rel100 {
    /// The option tag on an INVITE of ours.
    pub fn ask(self, req: &mut Request) {
        match self {
            Rel100::Off => {}
            Rel100::Supported => append(req, Name::Supported),
            Rel100::Required => append(req, Name::Require),
        }
    }

    /// For an INVITE of theirs: whether our provisional responses go reliably, or the
    /// refusal (420 when they require it and we do not do it, 421 when we require it and
    /// they do not) with the header that says why.
    pub fn for_request(self, req: &Request) -> Result<bool, (u16, Name)> {
        let required = lists_option(&req.headers, &Name::Require, "100rel");
        let supported = required || lists_option(&req.headers, &Name::Supported, "100rel");
        match self {
            Rel100::Off if required => Err((420, Name::Unsupported)),
            Rel100::Off => Ok(false),
            Rel100::Supported => Ok(supported),
            Rel100::Required if supported => Ok(true),
            Rel100::Required => Err((421, Name::Require)),
        }
    }
}

fn append(req: &mut Request, name: Name) {
    let v = match req.headers.get(&name) {
        Some(v) if !v.is_empty() => format!("{v}, 100rel"),
        _ => "100rel".into(),
    };
    req.headers.set(name, v);
}

/// The RSeq of a reliable provisional response; None for an unreliable one.
pub fn rseq(resp: &Response) -> Option<u32> {
    if !(101..200).contains(&resp.code) || !lists_option(&resp.headers, &Name::Require, "100rel") {
        return None;
    }
    resp.headers.get(&Name::RSeq)?.trim().parse().ok()
}

/// The RAck value a PRACK for `resp` (a reliable provisional with RSeq `rseq`) carries.
pub fn rack(resp: &Response, rseq: u32) -> Option<String> {
    let c = resp.cseq()?;
    Some(format!("{rseq} {} {}", c.seq, c.method))
}

/// A reliable provisional response of ours, sent again (T1, doubling) until its PRACK.
pub struct Reliable1xx {
    response: Response,
    rseq: u32,
    invite_cseq: u32,
    next: Option<Instant>,
    interval: Duration,
    give_up: Instant,
}

impl Reliable1xx {
    /// Makes `resp` (a 1xx to `invite`) reliable: Require: 100rel and a fresh RSeq.
    pub fn new(invite: &Request, mut response: Response, timers: Timers) -> Reliable1xx {
        let rseq = fastrand::u32(1..1 << 31);
        response.headers.push(Name::Require, "100rel");
        response.headers.push(Name::RSeq, rseq.to_string());
        let now = Instant::now();
        Reliable1xx {
            response,
            rseq,
            invite_cseq: invite.cseq().map_or(0, |c| c.seq),
            next: Some(now + timers.t1),
            interval: timers.t1,
            give_up: now + 64 * timers.t1,
        }
    }

    pub fn response(&self) -> &Response {
        &self.response
    }

    /// When it is due again; None once PRACKed.
    pub fn due(&self) -> Option<Instant> {
        self.next
    }

    /// Sends it again; false when 64·T1 passed without a PRACK (RFC 3262 §3: the INVITE
    /// is then to be refused with a 5xx).
    pub async fn retransmit(&mut self, tx: &ServerTx) -> bool {
        if Instant::now() >= self.give_up {
            self.next = None;
            return false;
        }
        tx.respond(self.response.clone()).await;
        self.interval *= 2;
        self.next = Some(Instant::now() + self.interval);
        true
    }

    /// Takes a PRACK: true (and no more retransmissions) when its RAck names this response.
    pub fn prack(&mut self, req: &Request) -> bool {
        let ok = req.method == Method::Prack
            && req.headers.get(&Name::RAck).is_some_and(|v| {
                let mut f = v.split_whitespace();
                f.next().and_then(|r| r.parse::<u32>().ok()) == Some(self.rseq)
                    && f.next().and_then(|c| c.parse::<u32>().ok()) == Some(self.invite_cseq)
                    && f.next().is_some_and(|m| m.eq_ignore_ascii_case("INVITE"))
            });
        if ok {
            self.next = None;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::request;

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@a.example>;tag=a\r\nTo: <sip:bob@b.example>\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        request(&text)
    }

    #[test]
    fn the_policy_meets_the_peer() {
        let plain = invite("");
        let sup = invite("Supported: timer, 100rel\r\n");
        let req = invite("Require: 100rel\r\n");
        assert_eq!(Rel100::Off.for_request(&req), Err((420, Name::Unsupported)));
        assert_eq!(Rel100::Off.for_request(&sup), Ok(false));
        assert_eq!(Rel100::Supported.for_request(&sup), Ok(true));
        assert_eq!(Rel100::Supported.for_request(&plain), Ok(false));
        assert_eq!(
            Rel100::Required.for_request(&plain),
            Err((421, Name::Require))
        );
        let mut r = invite("Supported: timer\r\n");
        Rel100::Supported.ask(&mut r);
        assert_eq!(r.headers.get(&Name::Supported), Some("timer, 100rel"));
    }

    #[test]
    fn a_prack_must_name_the_response() {
        let inv = invite("Supported: 100rel\r\n");
        let mut r = Reliable1xx::new(&inv, inv.response(180, "Ringing"), Timers::default());
        assert_eq!(rseq(r.response()), Some(r.rseq));
        assert_eq!(
            rack(r.response(), r.rseq).unwrap(),
            format!("{} 7 INVITE", r.rseq)
        );
        let mut prack = invite("");
        prack.method = Method::Prack;
        prack
            .headers
            .push(Name::RAck, format!("{} 6 INVITE", r.rseq));
        assert!(!r.prack(&prack));
        assert!(r.due().is_some());
        prack
            .headers
            .set(Name::RAck, format!("{} 7 INVITE", r.rseq));
        assert!(r.prack(&prack));
        assert!(r.due().is_none());
    }
}
