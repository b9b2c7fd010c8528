//! Call transfer, both ways. Ours (RFC 3515): the call is held, the far side gets a REFER,
//! its NOTIFYs (message/sipfrag) say how the new call goes; a 2xx ends our leg, a failure
//! takes the call off hold again. Attended (RFC 3891): the Refer-To carries `Replaces`
//! naming our other call. Theirs: a REFER is taken per the account's `transfer` policy,
//! the core places the new call, and its progress goes back as NOTIFYs.

use std::time::Duration;

use tokio::time::Instant;

use super::{Call, CallState, CallUpdate, DialogGone, EndReason, Media};
use crate::config::TransferPolicy;
use crate::sdp::Direction;
use crate::sip::dialog::Dialog;
use crate::sip::message::{Method, Name, NameAddr, SipHeaders, reason_phrase};
use crate::sip::transaction::TuRequest;
use crate::sip::uri::{SipUri, Uri};

/// How long the far side has to tell how our transfer went before we take the call back.
const TRANSFER_WAIT: Duration = Duration::from_secs(60);
/// How long the user has to decide on the far side's transfer (`transfer = "ask"`).
const ASK_WAIT: Duration = Duration::from_secs(32);

/// Our transfer under way: the far side accepted the REFER.
pub(super) struct Transferring {
    target: String,
    until: Instant,
    /// The transfer put the call on hold (it was active): a failure takes it off again;
    /// a call the user held stays held.
    held_here: bool,
}

/// The far side's transfer of this call: asked of the user, or being placed.
pub(super) struct Referred {
    /// The REFER's CSeq: the `id` of the NOTIFYs' Event (RFC 3515 §2.4.6).
    event_id: u32,
    target: SipUri,
    replaces: Option<Replaces>,
    referred_by: Option<String>,
    /// Waiting for the user until then (`ask`); None once placed.
    asked_until: Option<Instant>,
}

/// A dialog's ids as the other end of a Replaces names them (RFC 3891 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialogIds {
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
    pub(crate) remote_tag: String,
}

impl DialogIds {
    /// The ids of an established dialog (None before both tags are known).
    pub(super) fn of(d: &Dialog) -> Option<DialogIds> {
        Some(DialogIds {
            call_id: d.call_id.clone(),
            local_tag: d.local.tag()?.to_string(),
            remote_tag: d.remote.tag()?.to_string(),
        })
    }

    /// The Replaces value that names this dialog to its far side: its to-tag is the far
    /// side's own tag, the from-tag ours.
    pub(crate) fn replaces(&self) -> String {
        format!(
            "{};to-tag={};from-tag={}",
            self.call_id, self.remote_tag, self.local_tag
        )
    }

    /// Whether a Replaces received here (`call-id;to-tag=…;from-tag=…`) names this dialog.
    pub(crate) fn named_by(&self, r: &Replaces) -> bool {
        r.call_id == self.call_id && r.to_tag == self.local_tag && r.from_tag == self.remote_tag
    }
}

/// A Replaces header as received (RFC 3891 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replaces {
    pub(crate) call_id: String,
    pub(crate) to_tag: String,
    pub(crate) from_tag: String,
    pub(crate) early_only: bool,
}

impl Replaces {
    /// Reads `call-id;to-tag=…;from-tag=…[;early-only]`; None when a part is missing or
    /// holds what a Call-ID or tag cannot (spaces, control characters: the value goes
    /// into a request of ours, rebuilt by [`Replaces::value`]).
    pub(crate) fn parse(v: &str) -> Option<Replaces> {
        let word = |w: &str| {
            (!w.is_empty() && w.bytes().all(|b| b.is_ascii_graphic() && b != b';'))
                .then(|| w.to_string())
        };
        let mut parts = v.split(';').map(str::trim);
        let call_id = parts.next().and_then(word)?;
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for p in parts {
            match p.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("to-tag") => {
                    to_tag = Some(word(v.trim())?)
                }
                Some((k, v)) if k.trim().eq_ignore_ascii_case("from-tag") => {
                    from_tag = Some(word(v.trim())?)
                }
                None if p.eq_ignore_ascii_case("early-only") => early_only = true,
                _ => {}
            }
        }
        Some(Replaces {
            call_id,
            to_tag: to_tag?,
            from_tag: from_tag?,
            early_only,
        })
    }

    /// The header value, as this was read.
    pub(crate) fn value(&self) -> String {
        let early = if self.early_only { ";early-only" } else { "" };
        format!(
            "{};to-tag={};from-tag={}{early}",
            self.call_id, self.to_tag, self.from_tag
        )
    }
}

/// `s` escaped for a URI header value (RFC 3261 §25.1 hnv-unreserved and unreserved).
fn escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')'
            | b'['
            | b']'
            | b'/'
            | b':'
            | b'+'
            | b'$' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The Refer-To of an attended transfer: `target`, told to replace `dialog`.
pub(crate) fn refer_to_replacing(target: &SipUri, dialog: &DialogIds) -> String {
    let mut t = target.clone();
    t.headers = Some(format!("Replaces={}", escape(&dialog.replaces())));
    format!("<{t}>")
}

/// A Refer-To's target without its headers, and the Replaces among them; None when the
/// target or its Replaces cannot be read. Other headers of the URI are left out: they
/// would be the far side's words in our request.
fn read_refer_to(v: &str) -> Option<(SipUri, Option<Replaces>)> {
    let Uri::Sip(mut u) = NameAddr::parse(v).ok()?.uri else {
        return None;
    };
    let headers = u.headers.take();
    let replaces = headers.as_deref().and_then(|h| {
        h.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.eq_ignore_ascii_case("replaces").then(|| unescape(v))
        })
    });
    match replaces {
        Some(r) => Some((u, Some(Replaces::parse(&r)?))),
        None => Some((u, None)),
    }
}

/// A Referred-By the new call may carry: one name-addr, rebuilt, so that nothing but an
/// address of the far side's reaches our request.
fn read_referred_by(v: &str) -> Option<String> {
    let a = NameAddr::parse(v).ok()?;
    Some(format!("<{}>", a.uri))
}

/// The status line of a message/sipfrag body: code and reason.
fn sipfrag(body: &[u8]) -> Option<(u16, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let code: u16 = code.parse().ok().filter(|c| (100..700).contains(c))?;
    Some((code, reason.trim().to_string()))
}

/// What a transfer's outcome says to the user.
pub(super) fn status(code: u16, reason: &str) -> String {
    if reason.is_empty() {
        format!("{code} {}", reason_phrase(code))
    } else {
        format!("{code} {reason}")
    }
}

impl Call {
    /// The earliest moment a transfer is to be given up: ours unanswered, or the user's
    /// decision on theirs.
    pub(super) fn transfer_due(&self) -> Option<Instant> {
        let ours = self.transferring.as_ref().map(|t| t.until);
        let asked = self.referred.as_ref().and_then(|r| r.asked_until);
        match (ours, asked) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Passes the call on: holds it, sends the REFER. Err ends the call (the far side is
    /// gone).
    pub(super) async fn transfer(
        &mut self,
        dialog: &mut Dialog,
        media: &mut Media,
        refer_to: String,
        target: String,
    ) -> Result<(), DialogGone> {
        if self.transferring.is_some() {
            // The core refuses a second; one that crossed it in flight is logged.
            tracing::warn!(
                call_id = self.info.id,
                "a transfer is under way; {target} ignored"
            );
            return Ok(());
        }
        tracing::info!(call_id = self.info.id, "transferring to {target}");
        // Reported at once: the core counts the transfer as ours from here on.
        self.info.transfer_pending = true;
        self.info.transfer = Some(format!("to {target}: asking"));
        self.report().await;
        // Held first (RFC 5589 §6): the far side does not hear us while it calls on.
        let held_here = self.info.state == CallState::Active
            && Box::pin(self.reinvite(dialog, media, Direction::SendOnly)).await?;
        if held_here {
            self.set(CallState::Held).await;
        }
        let mut refer = dialog.request(Method::Refer, None);
        refer.headers.push(Name::ReferTo, refer_to);
        refer
            .headers
            .push(Name::ReferredBy, format!("<{}>", dialog.local.uri));
        refer.headers.push(Name::Contact, dialog.contact.clone());
        let answer = dialog.transact(&self.ctx.ep, refer).await;
        match answer {
            Ok(x) if (200..300).contains(&x.response.code) => {
                self.transferring = Some(Transferring {
                    target: target.clone(),
                    until: Instant::now() + TRANSFER_WAIT,
                    held_here,
                });
                self.info.transfer = Some(format!("to {target}: accepted"));
                self.report().await;
                Ok(())
            }
            Ok(x) => {
                let why = format!("refused ({})", status(x.response.code, &x.response.reason));
                self.transfer_failed(dialog, media, &target, held_here, why)
                    .await
            }
            Err(e) => {
                self.transfer_failed(dialog, media, &target, held_here, e.to_string())
                    .await
            }
        }
    }

    /// Our transfer did not happen: the call is ours again, off hold if the transfer held
    /// it, saying why.
    async fn transfer_failed(
        &mut self,
        dialog: &mut Dialog,
        media: &mut Media,
        target: &str,
        held_here: bool,
        why: String,
    ) -> Result<(), DialogGone> {
        tracing::info!(call_id = self.info.id, "transfer to {target} failed: {why}");
        self.transferring = None;
        self.info.transfer_pending = false;
        self.info.transfer = Some(format!("to {target}: failed, {why}"));
        if held_here
            && self.info.state == CallState::Held
            && Box::pin(self.reinvite(dialog, media, Direction::SendRecv)).await?
        {
            self.info.state = CallState::Active;
        }
        self.report().await;
        Ok(())
    }

    /// A NOTIFY in the dialog: how our transfer goes. Some when the call is over (the
    /// transfer went through).
    pub(super) async fn transfer_notify(
        &mut self,
        tu: &TuRequest,
        dialog: &mut Dialog,
        media: &mut Media,
    ) -> Result<Option<EndReason>, DialogGone> {
        let req = &tu.request;
        let refer_event = req
            .headers
            .get(&Name::Event)
            .and_then(|e| e.split(';').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("refer"));
        let Some(t) = self.transferring.as_ref().filter(|_| refer_event) else {
            tu.tx.respond(req.response(481, reason_phrase(481))).await;
            return Ok(None);
        };
        let Some((code, reason)) = sipfrag(&req.body) else {
            tu.tx.respond(req.response(400, "Bad sipfrag")).await;
            return Ok(None);
        };
        tu.tx.respond(req.response(200, "OK")).await;
        let (target, held_here) = (t.target.clone(), t.held_here);
        match code {
            100..=199 => {
                self.info.transfer = Some(format!("to {target}: {}", status(code, &reason)));
                self.report().await;
                Ok(None)
            }
            200..=299 => {
                tracing::info!(call_id = self.info.id, "transferred to {target}");
                self.bye(dialog).await;
                Ok(Some(EndReason::Transferred(target)))
            }
            _ => {
                let why = status(code, &reason);
                self.transfer_failed(dialog, media, &target, held_here, why)
                    .await?;
                Ok(None)
            }
        }
    }

    /// A REFER from the far side: taken per the account's policy.
    pub(super) async fn refer_in(&mut self, tu: &TuRequest, dialog: &mut Dialog) {
        let req = &tu.request;
        let Some((target, replaces)) = req.headers.get(&Name::ReferTo).and_then(read_refer_to)
        else {
            return tu.tx.respond(req.response(400, "Bad Refer-To")).await;
        };
        if self.referred.is_some() || self.transferring.is_some() {
            return tu.tx.respond(req.response(491, reason_phrase(491))).await;
        }
        if self.transfer_policy == TransferPolicy::Refuse {
            tracing::info!(
                call_id = self.info.id,
                "refused a transfer to {target} (transfer = \"refuse\")"
            );
            return tu.tx.respond(req.response(603, reason_phrase(603))).await;
        }
        let mut ok = req.response(202, "Accepted");
        ok.headers.push(Name::Contact, dialog.contact.clone());
        tu.tx.respond(ok).await;
        let ask = self.transfer_policy == TransferPolicy::Ask;
        self.referred = Some(Box::new(Referred {
            event_id: req.cseq().map_or(0, |c| c.seq),
            target: target.clone(),
            replaces,
            referred_by: req
                .headers
                .get(&Name::ReferredBy)
                .and_then(read_referred_by),
            asked_until: ask.then(|| Instant::now() + ASK_WAIT),
        }));
        self.notify_refer(dialog, 100, "Trying");
        if ask {
            tracing::info!(
                call_id = self.info.id,
                "the far side asks us to call {target}"
            );
            self.info.transfer_asked = Some(target.to_string());
            self.report().await;
        } else {
            self.place_referred().await;
        }
    }

    /// The user decided on the far side's transfer.
    pub(super) async fn answer_transfer(&mut self, dialog: &mut Dialog, accept: bool) {
        if self
            .referred
            .as_ref()
            .is_none_or(|r| r.asked_until.is_none())
        {
            return;
        }
        self.info.transfer_asked = None;
        if accept {
            self.place_referred().await;
        } else {
            tracing::info!(call_id = self.info.id, "transfer declined");
            self.notify_refer(dialog, 603, "Declined");
            self.referred = None;
            self.report().await;
        }
    }

    /// The user did not decide in time: declined.
    pub(super) async fn transfer_timeout(
        &mut self,
        dialog: &mut Dialog,
        media: &mut Media,
    ) -> Result<(), DialogGone> {
        let now = Instant::now();
        if self
            .referred
            .as_ref()
            .and_then(|r| r.asked_until)
            .is_some_and(|t| t <= now)
        {
            tracing::info!(
                call_id = self.info.id,
                "no one decided on the transfer; declined"
            );
            self.answer_transfer(dialog, false).await;
        }
        if let Some(t) = self.transferring.as_ref().filter(|t| t.until <= now) {
            let (target, held_here) = (t.target.clone(), t.held_here);
            let why = "the far side did not say how it went".to_string();
            self.transfer_failed(dialog, media, &target, held_here, why)
                .await?;
        }
        Ok(())
    }

    /// Hands the far side's transfer to the core, which places the new call.
    async fn place_referred(&mut self) {
        let Some(r) = self.referred.as_mut() else {
            return;
        };
        r.asked_until = None;
        tracing::info!(call_id = self.info.id, "transferred: calling {}", r.target);
        self.info.transfer = Some(format!("to {}: calling", r.target));
        let update = CallUpdate::Referred {
            id: self.info.id,
            target: r.target.clone(),
            replaces: r.replaces.as_ref().map(Replaces::value),
            referred_by: r.referred_by.clone(),
        };
        let _ = self.ctx.updates.send(update).await;
        self.report().await;
    }

    /// How the call the far side asked for goes: told to it as a NOTIFY.
    pub(super) async fn refer_progress(&mut self, dialog: &mut Dialog, code: u16, reason: &str) {
        let Some(r) = &self.referred else { return };
        let target = r.target.to_string();
        self.notify_refer(dialog, code, reason);
        if code >= 200 {
            self.referred = None;
            self.info.transfer = Some(format!("to {target}: {}", status(code, reason)));
            self.report().await;
        }
    }

    /// A NOTIFY of the refer subscription with `code` as its sipfrag; final codes end it.
    fn notify_refer(&self, dialog: &mut Dialog, code: u16, reason: &str) {
        let Some(r) = &self.referred else { return };
        let mut n = dialog.request(Method::Notify, None);
        n.headers
            .push(Name::Event, format!("refer;id={}", r.event_id));
        n.headers.push(
            Name::SubscriptionState,
            if code >= 200 {
                "terminated;reason=noresource".to_string()
            } else {
                "active;expires=60".to_string()
            },
        );
        n.headers.push(Name::Contact, dialog.contact.clone());
        n.headers
            .push(Name::ContentType, "message/sipfrag;version=2.0");
        n.body = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
        dialog.send_detached(&self.ctx.ep, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_names_the_dialog_from_the_far_side_and_comes_back() {
        let ours = DialogIds {
            call_id: "a%b@h".into(),
            local_tag: "L1".into(),
            remote_tag: "R1".into(),
        };
        let target: SipUri = "sip:carol@example.com".parse().unwrap();
        let v = refer_to_replacing(&target, &ours);
        assert_eq!(
            v,
            "<sip:carol@example.com?Replaces=a%25b%40h%3Bto-tag%3DR1%3Bfrom-tag%3DL1>"
        );
        let (u, r) = read_refer_to(&v).unwrap();
        assert_eq!(u.to_string(), "sip:carol@example.com");
        // What the far side receives in its INVITE names its own dialog to carol…
        let r = r.unwrap();
        assert_eq!(r.value(), "a%b@h;to-tag=R1;from-tag=L1");
        let carols = DialogIds {
            call_id: "a%b@h".into(),
            local_tag: "R1".into(),
            remote_tag: "L1".into(),
        };
        assert!(carols.named_by(&r));
        assert!(!ours.named_by(&r));
        assert!(
            Replaces::parse("x;to-tag=1;from-tag=2;early-only")
                .unwrap()
                .early_only
        );
        assert_eq!(Replaces::parse("x;to-tag=1"), None);
        // Nothing of the far side's but the ids reaches our INVITE.
        for bad in [
            "<sip:x@h?Replaces=a%0D%0AEvil:%20y%3Bto-tag%3D1%3Bfrom-tag%3D2>",
            "<sip:x@h?Replaces=a%3Bto-tag%3D1%0D%0AEvil:y%3Bfrom-tag%3D2>",
            "<sip:x@h?Replaces=a%20b%3Bto-tag%3D1%3Bfrom-tag%3D2>",
            "<sip:x@h?Replaces=a%3Bto-tag%3D1>",
        ] {
            assert_eq!(read_refer_to(bad), None, "{bad}");
        }
        let (u, r) =
            read_refer_to("<sip:x@h?Subject=hi&Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2>").unwrap();
        assert_eq!(
            (u.to_string().as_str(), r.unwrap().value().as_str()),
            ("sip:x@h", "a;to-tag=1;from-tag=2")
        );
        assert_eq!(
            read_referred_by("\"Bob\" <sip:bob@h>;cid=1").as_deref(),
            Some("<sip:bob@h>")
        );
        assert_eq!(read_referred_by("<sip:bob@h\r\nEvil: x>"), None);
    }

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(
            sipfrag(b"SIP/2.0 180 Ringing\r\n"),
            Some((180, "Ringing".into()))
        );
        assert_eq!(sipfrag(b"SIP/2.0 200 OK"), Some((200, "OK".into())));
        assert_eq!(sipfrag(b"SIP/2.0 503"), Some((503, String::new())));
        for bad in [
            &b""[..],
            b"hello",
            b"SIP/2.0 99 x",
            b"SIP/2.0 abc",
            b"\xff\xfe",
        ] {
            assert_eq!(sipfrag(bad), None);
        }
        assert_eq!(read_refer_to("nonsense"), None);
        assert_eq!(unescape("a%3Bb%zz%4"), "a;b%zz%4");
    }
}
