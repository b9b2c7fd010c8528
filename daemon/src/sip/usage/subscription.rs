//! The subscriber's side of SIP events (RFC 6665), generic over the event package:
//! SUBSCRIBE headers, the dialog a NOTIFY makes or continues (the first NOTIFY may come
//! before the 200; other forks' NOTIFYs are not ours; old CSeqs are refused), the
//! Subscription-State it carries, and when to refresh. Presence (RFC 3856) uses it;
//! message-summary (RFC 3842) and refer (RFC 3515) are packages of the same kind.

use std::time::Duration;

use crate::sip::dialog::Dialog;
use crate::sip::message::{Name, NameAddr, Request, SipHeaders};

/// An event package: what goes in Event and Accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    pub event: &'static str,
    pub accept: &'static str,
}

/// Presence (RFC 3856) with PIDF bodies.
pub const PRESENCE: Package = Package {
    event: "presence",
    accept: "application/pidf+xml",
};

/// Message waiting (RFC 3842): an account's voicemail summary.
pub const MESSAGE_SUMMARY: Package = Package {
    event: "message-summary",
    accept: "application/simple-message-summary",
};

impl Package {
    /// Event, Accept and Expires on a SUBSCRIBE (Expires 0 ends the subscription).
    pub fn subscribe_headers(&self, req: &mut Request, expires: u32) {
        req.headers.push(Name::Event, self.event);
        req.headers.push(Name::Accept, self.accept);
        req.headers.push(Name::Expires, expires.to_string());
    }

    /// Whether a NOTIFY body of this content type is one we read (none at all is fine).
    pub fn takes(&self, notify: &Request) -> bool {
        notify.body.is_empty()
            || notify
                .headers
                .get(&Name::ContentType)
                .is_some_and(|c| c.to_ascii_lowercase().starts_with(self.accept))
    }
}

/// A NOTIFY's Subscription-State (RFC 6665 §8.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    Active {
        expires: Option<u32>,
    },
    Pending {
        expires: Option<u32>,
    },
    Terminated {
        /// deactivated, probation, rejected, timeout, giveup, noresource, invariant…
        reason: String,
        retry_after: Option<u64>,
    },
}

impl SubState {
    /// The state a NOTIFY carries; one without the header counts as active.
    pub fn of(notify: &Request) -> SubState {
        let value = notify
            .headers
            .get(&Name::SubscriptionState)
            .unwrap_or("active");
        let (kind, params) = value.split_once(';').unwrap_or((value, ""));
        let param = |name: &str| {
            params.split(';').find_map(|p| {
                let (n, v) = p.split_once('=')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let expires = param("expires").and_then(|e| e.parse().ok());
        match kind.trim().to_ascii_lowercase().as_str() {
            "terminated" => SubState::Terminated {
                reason: param("reason").unwrap_or_default().to_ascii_lowercase(),
                retry_after: param("retry-after").and_then(|r| r.parse().ok()),
            },
            "pending" => SubState::Pending { expires },
            _ => SubState::Active { expires },
        }
    }
}

/// Takes a NOTIFY for the subscription `subscribe` started: makes the dialog from it when
/// none exists yet (a NOTIFY may overtake the 200 through a proxy), checks it belongs
/// (our From tag, the fork we keep) and is not older than one taken; follows a new
/// Contact. Err: the status to answer it with (481, 500).
pub fn take_notify(
    dialog: &mut Option<Dialog>,
    subscribe: &Request,
    contact: &str,
    notify: &Request,
) -> Result<(), u16> {
    let ours = subscribe.from().and_then(|f| f.tag().map(str::to_string));
    let to_tag = notify.to().and_then(|t| t.tag().map(str::to_string));
    if ours.is_none() || to_tag != ours {
        return Err(481);
    }
    if dialog.is_none()
        && let Some(tag) = &ours
        && let Some(mut d) = Dialog::from_request(notify, tag, contact.to_string())
    {
        d.local_cseq = subscribe.cseq().map_or(1, |c| c.seq);
        // This very NOTIFY is checked against it below: not yet taken.
        d.remote_cseq = None;
        *dialog = Some(d);
    }
    let Some(d) = dialog.as_mut() else {
        return Ok(());
    };
    // Another fork of a forked SUBSCRIBE: not the dialog we keep (RFC 6665 §4.1.3).
    if notify.from().and_then(|f| f.tag().map(str::to_string)) != d.remote.tag().map(str::to_string)
    {
        return Err(481);
    }
    let seq = notify.cseq().map(|c| c.seq);
    if let (Some(seq), Some(last)) = (seq, d.remote_cseq)
        && seq <= last
    {
        // Older than one already taken (out of order over UDP).
        return Err(500);
    }
    d.remote_cseq = seq.or(d.remote_cseq);
    if let Some(target) = notify
        .headers
        .get(&Name::Contact)
        .and_then(|c| NameAddr::parse(c).ok())
    {
        d.remote_target = target.uri;
    }
    Ok(())
}

/// When to refresh a subscription granted for `expires` seconds: a fifth before the end
/// (at least 5 s, never at once).
pub fn refresh_at(expires: u32) -> tokio::time::Instant {
    let secs = u64::from(expires);
    let lead = (secs / 5).max(5).min(secs.saturating_sub(1));
    tokio::time::Instant::now() + Duration::from_secs(secs - lead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Method, request};

    fn notify(state: &str) -> Request {
        let text = format!(
            "NOTIFY sip:a@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1\r\nFrom: <sip:b@b.example>;tag=b1\r\nTo: <sip:a@a.example>;tag=a1\r\nCall-ID: c\r\nCSeq: 5 NOTIFY\r\nContact: <sip:b@10.0.0.2>\r\nEvent: presence\r\nSubscription-State: {state}\r\nContent-Length: 0\r\n\r\n"
        );
        request(&text)
    }

    #[test]
    fn subscription_states() {
        assert_eq!(
            SubState::of(&notify("active;expires=300")),
            SubState::Active { expires: Some(300) }
        );
        assert_eq!(
            SubState::of(&notify("Terminated;reason=Rejected;retry-after=60")),
            SubState::Terminated {
                reason: "rejected".into(),
                retry_after: Some(60)
            }
        );
        assert_eq!(
            SubState::of(&notify("pending")),
            SubState::Pending { expires: None }
        );
    }

    #[test]
    fn a_notify_before_the_200_makes_the_dialog_and_old_or_foreign_ones_are_refused() {
        let mut sub = notify("active");
        sub.method = Method::Subscribe;
        sub.headers.set(Name::From, "<sip:a@a.example>;tag=a1");
        sub.headers.set(Name::To, "<sip:b@b.example>");
        sub.headers.set(Name::CSeq, "2 SUBSCRIBE");
        let mut dialog = None;
        let n = notify("active");
        assert_eq!(
            take_notify(&mut dialog, &sub, "<sip:a@10.0.0.1>", &n),
            Ok(())
        );
        let d = dialog.as_ref().unwrap();
        assert_eq!((d.local_cseq, d.remote_cseq), (2, Some(5)));
        assert_eq!(
            take_notify(&mut dialog, &sub, "<sip:a@10.0.0.1>", &n),
            Err(500)
        );
        let mut other = notify("active");
        other.headers.set(Name::From, "<sip:b@b.example>;tag=fork2");
        other.headers.set(Name::CSeq, "9 NOTIFY");
        assert_eq!(
            take_notify(&mut dialog, &sub, "<sip:a@10.0.0.1>", &other),
            Err(481)
        );
    }
}
