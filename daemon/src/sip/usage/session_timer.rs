//! Session timers (RFC 4028): how long a call lives without a refresh, who refreshes it,
//! and the headers that negotiate both. The call keeps the [`SessionTimer`] and refreshes
//! (re-INVITE or UPDATE) or ends the call when it runs out.

use std::time::Duration;

use super::super::capabilities::lists_option;
use crate::sip::message::{Headers, Name, Request, Response};

/// What we ask for and accept, per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerPolicy {
    /// The interval we ask for, in seconds; 0: we ask for none (a peer's is still kept).
    pub expires: u32,
    /// The shortest interval we accept (RFC 4028's floor is 90).
    pub min_se: u32,
}

impl Default for TimerPolicy {
    fn default() -> Self {
        TimerPolicy {
            expires: 1800,
            min_se: 90,
        }
    }
}

/// Who sends the refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Us,
    Them,
}

/// A session timer in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    pub interval: u32,
    pub refresher: Refresher,
}

/// `delta-seconds[;refresher=uac|uas]`.
fn session_expires(h: &Headers) -> Option<(u32, Option<bool>)> {
    let v = h.get(&Name::SessionExpires)?;
    let mut parts = v.split(';');
    let delta = parts.next()?.trim().parse().ok()?;
    let uac = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().eq_ignore_ascii_case("uac"))
    });
    Some((delta, uac))
}

fn min_se(h: &Headers) -> Option<u32> {
    h.get(&Name::MinSe)?.split(';').next()?.trim().parse().ok()
}

impl SessionTimer {
    /// When we refresh, counted from the last refresh: half way (RFC 4028 §10).
    pub fn refresh_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.interval) / 2)
    }

    /// When the session is over without a refresh from them: the interval less a third
    /// or 32 s, whichever is smaller (RFC 4028 §10).
    pub fn expire_after(&self) -> Duration {
        let i = u64::from(self.interval);
        Duration::from_secs(i - (i / 3).min(32))
    }

    /// The headers of a request of ours that asks for (or refreshes) this timer.
    pub fn ask(&self, policy: TimerPolicy, req: &mut Request) {
        let who = match self.refresher {
            Refresher::Us => "uac",
            Refresher::Them => "uas",
        };
        req.headers.set(
            Name::SessionExpires,
            format!("{};refresher={who}", self.interval),
        );
        req.headers.set(Name::MinSe, policy.min_se.to_string());
    }

    /// The timer the 2xx to our INVITE, re-INVITE or UPDATE set: none when it names none.
    /// An interval below our `min_se` (a 2xx may not name one: RFC 4028 §7.2) is taken as
    /// `min_se`, so a far side cannot make us refresh in a loop.
    pub fn from_answer(resp: &Response, min_se: u32) -> Option<SessionTimer> {
        let (interval, uac) = session_expires(&resp.headers)?;
        Some(SessionTimer {
            interval: interval.max(min_se).max(1),
            // The UAS must name the refresher; one that does not leaves it to us.
            refresher: if uac.unwrap_or(true) {
                Refresher::Us
            } else {
                Refresher::Them
            },
        })
    }

    /// The timer for a request of theirs we are about to take (INVITE, re-INVITE, UPDATE),
    /// or the Min-SE to answer 422 with when it asks for less than we accept.
    pub fn for_request(policy: TimerPolicy, req: &Request) -> Result<Option<SessionTimer>, u32> {
        let supports = lists_option(&req.headers, &Name::Supported, "timer")
            || lists_option(&req.headers, &Name::Require, "timer");
        let (interval, uac) = match session_expires(&req.headers) {
            // 422 only to those who know timers (RFC 4028 §9); the others get our floor.
            Some((delta, _)) if delta < policy.min_se && supports => {
                return Err(policy.min_se.max(min_se(&req.headers).unwrap_or(0)));
            }
            Some((delta, uac)) => (delta.max(policy.min_se), uac),
            None if policy.expires > 0 => {
                let floor = min_se(&req.headers).unwrap_or(0);
                (policy.expires.max(floor), None)
            }
            None => return Ok(None),
        };
        // Unless they chose, the one who can refreshes: they when they know timers. One
        // that does not know them cannot be the refresher, whatever it says.
        let refresher = match uac {
            Some(true) | None if supports => Refresher::Them,
            _ => Refresher::Us,
        };
        Ok(Some(SessionTimer {
            interval,
            refresher,
        }))
    }

    /// Puts the timer in our 2xx to `req` (refresher named from its sender's side).
    pub fn answer(&self, req: &Request, resp: &mut Response) {
        let who = match self.refresher {
            Refresher::Them => "uac",
            Refresher::Us => "uas",
        };
        resp.headers.set(
            Name::SessionExpires,
            format!("{};refresher={who}", self.interval),
        );
        if lists_option(&req.headers, &Name::Supported, "timer")
            || lists_option(&req.headers, &Name::Require, "timer")
        {
            resp.headers.push(Name::Require, "timer");
        }
    }
}

/// The headers of an initial INVITE of ours under `policy`.
pub fn ask_initial(policy: TimerPolicy, req: &mut Request) {
    if policy.expires > 0 {
        req.headers
            .set(Name::SessionExpires, policy.expires.to_string());
        req.headers.set(Name::MinSe, policy.min_se.to_string());
    }
}

/// After a 422 to a request of ours: the request asks for the interval the 422 names
/// (and says so in Min-SE). False when the 422 names none or no more than we asked.
pub fn raise_for_422(resp: &Response, req: &mut Request) -> bool {
    let Some(floor) = min_se(&resp.headers) else {
        return false;
    };
    let asked = session_expires(&req.headers).map_or(0, |(d, _)| d);
    if floor <= asked {
        return false;
    }
    let refresher = session_expires(&req.headers)
        .and_then(|(_, uac)| uac)
        .map(|uac| {
            if uac {
                ";refresher=uac"
            } else {
                ";refresher=uas"
            }
        })
        .unwrap_or_default();
    req.headers
        .set(Name::SessionExpires, format!("{floor}{refresher}"));
    req.headers.set(Name::MinSe, floor.to_string());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::request;

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@a.example>;tag=a\r\nTo: <sip:bob@b.example>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        request(&text)
    }

    const POLICY: TimerPolicy = TimerPolicy {
        expires: 1800,
        min_se: 90,
    };

    #[test]
    fn a_short_interval_gets_422_with_our_floor() {
        let r = invite("Supported: timer\r\nSession-Expires: 60\r\nMin-SE: 30\r\n");
        assert_eq!(SessionTimer::for_request(POLICY, &r), Err(90));
    }

    #[test]
    fn the_refresher_is_theirs_when_they_know_timers_and_ours_otherwise() {
        let r = invite("Supported: timer\r\nSession-Expires: 600\r\n");
        let t = SessionTimer::for_request(POLICY, &r).unwrap().unwrap();
        assert_eq!((t.interval, t.refresher), (600, Refresher::Them));
        let mut resp = r.response(200, "OK");
        t.answer(&r, &mut resp);
        assert_eq!(
            resp.headers.get(&Name::SessionExpires),
            Some("600;refresher=uac")
        );
        assert_eq!(resp.headers.get(&Name::Require), Some("timer"));
        // No timer support, no Session-Expires: we refresh our own asking.
        let r = invite("");
        let t = SessionTimer::for_request(POLICY, &r).unwrap().unwrap();
        assert_eq!((t.interval, t.refresher), (1800, Refresher::Us));
        let mut resp = r.response(200, "OK");
        t.answer(&r, &mut resp);
        assert_eq!(resp.headers.get(&Name::Require), None);
        // refresher=uas in their request: us.
        let r = invite("Supported: timer\r\nSession-Expires: 300;refresher=uas\r\n");
        let t = SessionTimer::for_request(POLICY, &r).unwrap().unwrap();
        assert_eq!(t.refresher, Refresher::Us);
        // A caller without timer support: no 422, our floor, and we refresh.
        let r = invite("Session-Expires: 30;refresher=uac\r\n");
        let t = SessionTimer::for_request(POLICY, &r).unwrap().unwrap();
        assert_eq!((t.interval, t.refresher), (90, Refresher::Us));
    }

    #[test]
    fn answers_and_422s_to_our_requests() {
        let mut r = invite("");
        ask_initial(POLICY, &mut r);
        let mut resp = r.response(422, "Session Interval Too Small");
        resp.headers.push(Name::MinSe, "3600");
        assert!(raise_for_422(&resp, &mut r));
        assert_eq!(r.headers.get(&Name::SessionExpires), Some("3600"));
        assert!(!raise_for_422(&resp, &mut r), "once is enough");
        let mut ok = r.response(200, "OK");
        ok.headers.push(Name::SessionExpires, "3600;refresher=uas");
        let t = SessionTimer::from_answer(&ok, 90).unwrap();
        assert_eq!(t.refresher, Refresher::Them);
        assert_eq!(t.refresh_after(), Duration::from_secs(1800));
        assert_eq!(t.expire_after(), Duration::from_secs(3600 - 32));
        let short = SessionTimer {
            interval: 90,
            refresher: Refresher::Us,
        };
        assert_eq!(short.expire_after(), Duration::from_secs(60));
        // A 2xx naming less than our floor cannot make us refresh in a loop.
        ok.headers.set(Name::SessionExpires, "0;refresher=uac");
        assert_eq!(SessionTimer::from_answer(&ok, 90).unwrap().interval, 90);
    }
}
