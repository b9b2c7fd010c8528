//! Call forwarding: an incoming INVITE answered 302 with the target in Contact (RFC 3261
//! §8.3.1). Which rule applies to a call, and where it sends it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::CoreError;
use super::contacts::looks_like_name;
use super::phone::dial_target;
use super::presence::Presences;
use crate::config::{Account, ForwardRule, ForwardTarget};
use crate::sip::uri::SipUri;

/// An account's forwarding set through the API, per rule: a target, or None for "off".
pub(super) type Live = BTreeMap<ForwardRule, Option<ForwardTarget>>;

/// One rule of an account as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSetting {
    pub rule: ForwardRule,
    /// Where it sends calls; None when the rule is off.
    pub target: Option<ForwardTarget>,
    /// Set through the API (kept in the store), rather than by the configuration.
    pub live: bool,
}

/// What an incoming call does about forwarding, with each target resolved when it came.
#[derive(Debug, Clone, Default)]
pub(super) struct ForwardPlan {
    /// Forwarded before it rings.
    pub now: Option<(ForwardRule, SipUri)>,
    /// Forwarded after ringing this long.
    pub no_answer: Option<(SipUri, Duration)>,
    /// Forwarded if voipd stops while it rings.
    pub unavailable: Option<SipUri>,
}

/// Why a call would be forwarded at once, as the core sees it when the call comes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Situation {
    /// In another call, or in do-not-disturb.
    pub busy: bool,
    /// Nobody can answer by hand: a manual answer and no sound device.
    pub nobody_here: bool,
}

impl ForwardPlan {
    /// The plan for a call to `account`: `target` gives each rule's target as it stands.
    pub(super) fn for_call(
        account: &Account,
        situation: Situation,
        target: impl Fn(ForwardRule) -> Option<ForwardTarget>,
        presence: &Presences,
    ) -> ForwardPlan {
        let resolved = |rule: ForwardRule| {
            let t = target(rule)?;
            match resolve("forward", &t.to, Some(account), presence) {
                Ok(uri) => Some((uri, t.after_secs)),
                Err(e) => {
                    tracing::warn!(
                        account = %account.id,
                        "forwarding ({}) to {:?} skipped: {e}",
                        rule.name(),
                        t.to
                    );
                    None
                }
            }
        };
        let unavailable = resolved(ForwardRule::Unavailable).map(|(u, _)| u);
        let now = resolved(ForwardRule::Always)
            .map(|(u, _)| (ForwardRule::Always, u))
            .or_else(|| {
                situation
                    .busy
                    .then(|| resolved(ForwardRule::Busy))
                    .flatten()
                    .map(|(u, _)| (ForwardRule::Busy, u))
            })
            .or_else(|| {
                situation
                    .nobody_here
                    .then(|| unavailable.clone())
                    .flatten()
                    .map(|u| (ForwardRule::Unavailable, u))
            });
        ForwardPlan {
            now,
            no_answer: resolved(ForwardRule::NoAnswer)
                .map(|(u, secs)| (u, Duration::from_secs(u64::from(secs)))),
            unavailable,
        }
    }
}

/// A target as typed (`field` names it in errors), made a URI: a contact's first address,
/// or an address completed with the account's domain.
pub(super) fn resolve(
    field: &'static str,
    to: &str,
    account: Option<&Account>,
    presence: &Presences,
) -> Result<SipUri, CoreError> {
    if looks_like_name(to)
        && let Some(address) = presence
            .named(to)
            .and_then(|c| c.addresses.first().cloned())
    {
        return dial_target(field, &address, account);
    }
    dial_target(field, to, account)
}
