//! Transfers as the core sees them: ours passed to the call's task as a REFER to send;
//! the far side's turned into a new call whose progress goes back to the call it came
//! from; an INVITE with Replaces taking over the call it names (RFC 3891 §3).

use super::*;
use crate::core::calls::{DialogIds, EndReason, Replaces, refer_to_replacing};
use crate::sip::message::Name;

/// The calls that belong together while a transfer runs.
#[derive(Default)]
pub(super) struct Transfers {
    /// A call placed because the far side of another asked (REFER) → that other call.
    referred: HashMap<u64, u64>,
    /// A call of ours being transferred with Replaces → the call it replaces (ended with
    /// it when the transfer goes through).
    consults: HashMap<u64, u64>,
    /// A call that came with Replaces → the call it takes over (ended once it is up).
    replacing: HashMap<u64, u64>,
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
        let uri = match &account {
            Some(a) => crate::core::forward::resolve(target, a, &self.presence)?,
            None => dial_target("target", target, None)?,
        };
        self.transfers.consults.remove(&id);
        Ok(CallCommand::Transfer {
            refer_to: format!("<{uri}>"),
            target: uri.to_string(),
        })
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
        self.transfers.consults.insert(id, other);
        Ok(CallCommand::Transfer {
            refer_to: refer_to_replacing(&target, &ids),
            target: target.to_string(),
        })
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
        let account = self
            .calls
            .get(&id)
            .and_then(|c| c.info.account.clone())
            .and_then(|a| self.accounts.for_dialing(Some(&a)).ok().flatten());
        let Some(ctx) = self.call_context() else {
            return;
        };
        let mut extra = Vec::new();
        if let Some(by) = referred_by {
            extra.push((Name::ReferredBy, by));
        }
        if let Some(r) = replaces {
            extra.push((Name::Replaces, r));
        }
        let info = self.start_call(ctx, account, target, extra, None);
        self.transfers.referred.insert(info.id, id);
    }

    /// Follows what a call's change means for the transfers it is part of.
    pub(super) fn transfer_follow(&mut self, info: &CallInfo) {
        let ended = matches!(info.state, CallState::Ended { .. });
        if let Some(&from) = self.transfers.referred.get(&info.id) {
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
            if let Some((code, reason)) = progress {
                if code >= 200 {
                    self.transfers.referred.remove(&info.id);
                }
                let _ = self.command_call(from, CallCommand::ReferProgress { code, reason });
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
        let named = |c: &&CallEntry| {
            c.info
                .dialog
                .as_ref()
                .is_some_and(|d: &DialogIds| d.named_by(&r))
                || (c.info.dialog.is_none()
                    && c.info.direction == calls::CallDirection::Outgoing
                    && c.sip_call_id() == Some(r.call_id.as_str()))
        };
        let c = self.calls.values().find(named).ok_or(481u16)?;
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
