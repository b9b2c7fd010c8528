//! Transfers as the core sees them: ours passed to the call's task as a REFER to send;
//! the far side's turned into a new call whose progress goes back to the call it came
//! from; an INVITE with Replaces taking over the call it names (RFC 3891 §3).

use super::*;
use crate::core::calls::{DialogIds, EndReason, Replaces, refer_to_replacing};
use crate::sip::message::Name;

/// The calls that belong together while a transfer runs.
#[derive(Default)]
pub(super) struct Transfers {
    /// A call placed because the far side of another asked (REFER) → that other call, and
    /// the progress told to it last (each is told once).
    referred: HashMap<u64, (u64, u16)>,
    /// A call of ours being transferred with Replaces → the call it replaces (ended with
    /// it when the transfer goes through).
    consults: HashMap<u64, u64>,
    /// A call that came with Replaces → the call it takes over (ended once it is up).
    replacing: HashMap<u64, u64>,
}

impl Transfers {
    /// Our transfer of `id` reached its call: attended (with Replaces) of call `other`,
    /// which ends with it, or blind.
    pub(super) fn sent(&mut self, id: u64, other: Option<u64>) {
        match other {
            Some(other) => self.consults.insert(id, other),
            None => self.consults.remove(&id),
        };
    }
}

impl Phone {
    /// Our blind transfer of `id` to `target` (checked already).
    pub(super) fn transfer_command(
        &mut self,
        id: u64,
        target: &str,
    ) -> Result<CallCommand, CoreError> {
        let c = self.calls.get(&id).ok_or_else(|| CoreError::NotFound {
            what: "call",
            id: id.to_string(),
        })?;
        let account = match c.info.account.as_deref() {
            Some(a) => self.accounts.for_dialing(Some(a))?,
            None => None,
        };
        let uri =
            crate::core::forward::resolve("target", target, account.as_ref(), &self.presence)?;
        Ok(CallCommand::Transfer(Box::new((
            format!("<{uri}>"),
            uri.to_string(),
        ))))
    }

    /// Our attended transfer: the far side of `id` takes the place of call `other`.
    pub(super) fn transfer_to_call_command(
        &mut self,
        id: u64,
        other: u64,
    ) -> Result<CallCommand, CoreError> {
        let bad = |message: String| CoreError::InvalidArgument {
            field: "to_call",
            message,
        };
        if other == id {
            return Err(bad("a call cannot replace itself".into()));
        }
        let o = self.calls.get(&other).ok_or_else(|| CoreError::NotFound {
            what: "call",
            id: other.to_string(),
        })?;
        let ids = match (&o.info.state, &o.info.dialog) {
            (CallState::Active | CallState::Held, Some(d)) => d.clone(),
            _ => return Err(bad(format!("call {other} is not established"))),
        };
        let target = o
            .info
            .remote_uri
            .parse::<crate::sip::uri::SipUri>()
            .map_err(|_| bad(format!("call {other} has no SIP address")))?
            .bare();
        Ok(CallCommand::Transfer(Box::new((
            refer_to_replacing(&target, &ids),
            target.to_string(),
        ))))
    }

    /// The far side of `id` asked it to be passed to `target`: the new call is placed from
    /// the same account, saying who referred it (and what it replaces).
    pub(super) fn referred(
        &mut self,
        id: u64,
        target: crate::sip::uri::SipUri,
        replaces: Option<String>,
        referred_by: Option<String>,
    ) {
        let account = match self.calls.get(&id).map(|c| c.info.account.clone()) {
            Some(Some(a)) => match self.accounts.for_dialing(Some(&a)) {
                Ok(Some(a)) => Some(a),
                // Not from somewhere else: the REFER came to this account.
                _ => return self.refer_failed(id, 503, &format!("account {a} is unavailable")),
            },
            _ => None,
        };
        if let Some(full) = self.calls_full(account.as_ref(), Some(id)) {
            return self.refer_failed(id, 486, &full);
        }
        let Some(ctx) = self.call_context() else {
            return self.refer_failed(id, 503, "the daemon is stopping");
        };
        let mut extra = Vec::new();
        if let Some(by) = referred_by {
            extra.push((Name::ReferredBy, by));
        }
        if let Some(r) = replaces {
            extra.push((Name::Replaces, r));
        }
        let info = self.start_call(ctx, account, target, extra, None);
        self.transfers.referred.insert(info.id, (id, 100));
    }

    /// The call the far side of `id` asked for could not be placed: it is told so.
    fn refer_failed(&mut self, id: u64, code: u16, why: &str) {
        tracing::warn!(call_id = id, "not placing the transfer's call: {why}");
        let reason = crate::sip::message::reason_phrase(code).to_string();
        if let Err(e) = self.command_call(id, CallCommand::ReferProgress { code, reason }) {
            tracing::warn!(call_id = id, "the far side cannot be told: {e}");
        }
    }

    /// Follows what a call's change means for the transfers it is part of.
    pub(super) fn transfer_follow(&mut self, info: &CallInfo) {
        let ended = matches!(info.state, CallState::Ended { .. });
        if let Some(&(from, told)) = self.transfers.referred.get(&info.id) {
            let progress = match &info.state {
                CallState::Ringing => Some((180, "Ringing".to_string())),
                CallState::Early => Some((183, "Session Progress".to_string())),
                CallState::Active | CallState::Held => Some((200, "OK".to_string())),
                CallState::Ended { code, .. } if *code >= 300 => {
                    Some((*code, crate::sip::message::reason_phrase(*code).to_string()))
                }
                CallState::Ended { .. } => Some((487, "Request Terminated".to_string())),
                CallState::Dialing | CallState::Ending => None,
            };
            if let Some((code, reason)) = progress.filter(|(c, _)| *c != told) {
                match self.command_call(from, CallCommand::ReferProgress { code, reason }) {
                    Ok(()) if code >= 200 => {
                        self.transfers.referred.remove(&info.id);
                    }
                    Ok(()) => {
                        self.transfers.referred.insert(info.id, (from, code));
                    }
                    // Told with the call's next report, or the transfer's call is over.
                    Err(e) => {
                        tracing::warn!(call_id = from, "transfer progress {code} not told: {e}");
                        if ended {
                            self.transfers.referred.remove(&info.id);
                        }
                    }
                }
            }
        }
        if ended {
            if let Some(other) = self.transfers.consults.remove(&info.id)
                && matches!(
                    info.state,
                    CallState::Ended {
                        reason: EndReason::Transferred(_),
                        ..
                    }
                )
            {
                tracing::info!(
                    call_id = other,
                    "transferred with call {}; hanging up",
                    info.id
                );
                let _ = self.call_action(other, CallAction::Hangup);
            }
            self.transfers.replacing.remove(&info.id);
            self.transfers.replacing.retain(|_, old| *old != info.id);
        } else if matches!(info.state, CallState::Active)
            && let Some(old) = self.transfers.replacing.remove(&info.id)
        {
            tracing::info!(call_id = old, "replaced by call {}; hanging up", info.id);
            let _ = self.call_action(old, CallAction::Hangup);
        }
    }

    /// An INVITE with Replaces: which call it takes over, or the status that refuses it
    /// (RFC 3891 §3).
    pub(super) fn replaced_call(
        &self,
        req: &crate::sip::message::Request,
    ) -> Result<Option<u64>, u16> {
        let mut all = req.headers.all(&Name::Replaces);
        let Some(first) = all.next() else {
            return Ok(None);
        };
        if all.next().is_some() {
            return Err(400);
        }
        let r = Replaces::parse(first).ok_or(400u16)?;
        let named = |c: &CallEntry| {
            c.info
                .dialog
                .as_ref()
                .is_some_and(|d: &DialogIds| d.named_by(&r))
                || (c.info.dialog.is_none()
                    && c.info.direction == calls::CallDirection::Outgoing
                    && c.sip_call_id() == Some(r.call_id.as_str()))
        };
        let c = self.calls.values().find(|c| named(c)).ok_or(481u16)?;
        let who = |n: Name| {
            req.headers
                .get(&n)
                .and_then(|v| crate::sip::message::NameAddr::parse(v).ok())
        };
        if !may_replace(
            &c.info.remote_uri,
            &[who(Name::From), who(Name::ReferredBy)],
        ) {
            tracing::warn!(
                call_id = c.info.id,
                "an INVITE with Replaces from a party of neither this call nor its transfer"
            );
            return Err(403);
        }
        match (&c.info.state, c.info.direction) {
            (CallState::Active | CallState::Held, _) if r.early_only => Err(486),
            (CallState::Active | CallState::Held, _) => Ok(Some(c.info.id)),
            // Ringing here: not ours to hand over (RFC 3891 §3).
            (_, calls::CallDirection::Incoming) => Err(481),
            (CallState::Ending | CallState::Ended { .. }, _) => Err(603),
            (_, calls::CallDirection::Outgoing) => Ok(Some(c.info.id)),
        }
    }

    /// Call `new` takes over call `old` once it is up.
    pub(super) fn replaces(&mut self, new: u64, old: u64) {
        tracing::info!(call_id = new, "replaces call {old}");
        self.transfers.replacing.insert(new, old);
    }
}

/// Whether an INVITE with Replaces may take over the call with `remote` (RFC 3891 §7):
/// Call-ID and tags cross every proxy on the way, so knowing them is not enough. It must
/// come from that party (another of its devices) or be referred by it (the far side's
/// attended transfer: the new party's INVITE carries the Referred-By of its REFER).
fn may_replace(remote: &str, who: &[Option<crate::sip::message::NameAddr>]) -> bool {
    let party =
        |u: &crate::sip::uri::SipUri| (u.user.clone(), u.host.to_string().to_ascii_lowercase());
    let Ok(remote) = remote.parse::<crate::sip::uri::SipUri>() else {
        return false;
    };
    who.iter().flatten().any(|a| match &a.uri {
        crate::sip::uri::Uri::Sip(u) => party(u) == party(&remote),
        _ => false,
    })
}

impl PhoneHandle {
    /// Blind transfer (RFC 3515): asks the far side of established call `id` to call
    /// `target` (a URI, number, user or contact) instead; our leg ends when it has.
    pub async fn transfer(&self, id: u64, target: &str) -> Result<CallInfo, CoreError> {
        if target.trim().is_empty() {
            return Err(CoreError::InvalidArgument {
                field: "target",
                message: "whom to transfer to is missing".into(),
            });
        }
        self.call(id, CallAction::Transfer(target.to_string()))
            .await
    }

    /// Attended transfer (RFC 3891): the far side of call `id` takes the place of call
    /// `other` (our call to the target); both our calls end when it has.
    pub async fn transfer_to_call(&self, id: u64, other: u64) -> Result<CallInfo, CoreError> {
        self.call(id, CallAction::TransferTo(other)).await
    }

    /// Accepts or declines the far side's request to transfer call `id`.
    pub async fn answer_transfer(&self, id: u64, accept: bool) -> Result<CallInfo, CoreError> {
        self.call(id, CallAction::AnswerTransfer(accept)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::NameAddr;

    #[test]
    fn only_the_party_or_whom_it_referred_replaces_a_call() {
        let a = |v: &str| NameAddr::parse(v).ok();
        let bob = "sip:bob@Example.com:5062";
        assert!(may_replace(bob, &[a("<sip:bob@example.com>;tag=1"), None]));
        assert!(may_replace(
            bob,
            &[
                a("<sip:carol@example.com>;tag=1"),
                a("<sip:bob@example.com>")
            ]
        ));
        assert!(!may_replace(
            bob,
            &[a("<sip:mallory@example.com>;tag=1"), None]
        ));
        assert!(!may_replace(bob, &[a("<sip:bob@evil.example>"), None]));
        assert!(!may_replace("not a uri", &[a("<sip:bob@example.com>")]));
        assert!(!may_replace(bob, &[None, None]));
    }
}
