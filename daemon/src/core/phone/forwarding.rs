//! Call forwarding as the core keeps it: the plan for each incoming call, and the live
//! settings the API makes (written to the store first, then applied).

use super::*;
use crate::config::{
    AnswerMode, DEFAULT_AFTER_SECS, ForwardRule, ForwardTarget, check_after, check_target,
};
use crate::core::forward::{ForwardPlan, Situation};
use crate::store::LiveForward;

/// A live change: one rule set (`Some(Some(target))`) or turned off (`Some(None)`), or
/// rules cleared (`None`) so that the configuration applies again.
#[derive(Debug, Clone)]
pub(super) struct ForwardChange {
    pub rule: Option<ForwardRule>,
    pub setting: Option<Option<ForwardTarget>>,
}

impl Phone {
    /// What forwarding does with a call to `a` coming now.
    pub(super) fn forward_plan(&self, a: &crate::config::Account) -> ForwardPlan {
        let situation = Situation {
            busy: self.busy(a),
            nobody_here: a.answer.mode == AnswerMode::Manual
                && calls::audio_note(&self.config.audio).is_some(),
        };
        ForwardPlan::for_call(
            a,
            situation,
            |rule| self.accounts.forward(a.id.as_str(), rule),
            &self.presence,
        )
    }

    /// Whether a call to `a` finds us busy: in another call, or in do-not-disturb.
    pub(super) fn busy(&self, a: &crate::config::Account) -> bool {
        a.answer.mode == AnswerMode::Dnd
            || self.calls.values().any(|c| {
                c.info.answered.is_some()
                    && !c.info.answered_by_machine
                    && !matches!(c.info.state, CallState::Ended { .. })
            })
    }

    /// The account a forwarding command is for, and the change checked against the
    /// configuration; nothing is changed yet.
    pub(super) fn check_forward(
        &self,
        account: Option<&str>,
        change: &ForwardChange,
    ) -> Result<String, CoreError> {
        let a = self
            .accounts
            .for_dialing(account)?
            .ok_or_else(|| CoreError::FailedPrecondition("no account is configured".into()))?;
        if let Some(Some(t)) = &change.setting
            && change.rule == Some(ForwardRule::NoAnswer)
            && t.after_secs >= self.config.sip.ring_timeout_secs
        {
            return Err(CoreError::InvalidArgument {
                field: "after_secs",
                message: format!(
                    "{} is not below sip.ring_timeout_secs ({}): the call would be answered \
                     480 first",
                    t.after_secs, self.config.sip.ring_timeout_secs
                ),
            });
        }
        Ok(a.id.to_string())
    }

    /// Applies a change the store holds already.
    pub(super) fn apply_forward(
        &mut self,
        account: &str,
        change: ForwardChange,
    ) -> Result<AccountInfo, CoreError> {
        let info = self
            .accounts
            .set_live(account, change.rule, change.setting)?;
        tracing::info!(account, "call forwarding: {}", describe(&info));
        self.events.emit(EventKind::AccountChanged(info.clone()));
        Ok(info)
    }

    /// Reads the live settings kept in the store.
    pub(super) fn read_forwarding(&self) {
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            match store.live_forwarding().await {
                Ok(list) if !list.is_empty() => {
                    let _ = updates.send(CallUpdate::LiveForwarding(list)).await;
                }
                Ok(_) => {}
                Err(e) => tracing::error!("call forwarding set live not read: {e}"),
            }
        });
    }

    /// The live settings read at start, applied over the configuration's.
    pub(super) fn live_forwarding_read(&mut self, list: Vec<LiveForward>) {
        for f in list {
            let Some(rule) = ForwardRule::from_name(&f.rule) else {
                tracing::warn!("call forwarding: unknown rule {:?} in the store", f.rule);
                continue;
            };
            if rule == ForwardRule::NoAnswer
                && f.target.is_some()
                && f.after_secs >= self.config.sip.ring_timeout_secs
            {
                tracing::warn!(
                    account = f.account,
                    "call forwarding set live: no-answer after {} s never comes, calls are \
                     answered 480 after sip.ring_timeout_secs ({} s)",
                    f.after_secs,
                    self.config.sip.ring_timeout_secs
                );
            }
            let setting = Some(f.target.map(|to| ForwardTarget {
                to,
                after_secs: f.after_secs,
            }));
            let change = ForwardChange {
                rule: Some(rule),
                setting,
            };
            // An account no longer configured keeps its settings for when it comes back.
            if let Ok(info) = self
                .accounts
                .set_live(&f.account, change.rule, change.setting)
            {
                self.events.emit(EventKind::AccountChanged(info));
            }
        }
    }
}

/// The rules in force, for the log.
fn describe(info: &AccountInfo) -> String {
    let on: Vec<String> = info
        .forwarding
        .iter()
        .filter_map(|f| {
            let t = f.target.as_ref()?;
            Some(match f.rule {
                ForwardRule::NoAnswer => {
                    format!("{} after {} s to {}", f.rule.name(), t.after_secs, t.to)
                }
                _ => format!("{} to {}", f.rule.name(), t.to),
            })
        })
        .collect();
    if on.is_empty() {
        "off".into()
    } else {
        on.join(", ")
    }
}

impl PhoneHandle {
    /// Sets one forwarding rule of `account` (the default one when None) live: calls go
    /// to `to`, or nowhere by this rule when `to` is None ("off", which wins over the
    /// configuration too). `after_secs` is for `no-answer` (20 unless given).
    pub async fn set_forward(
        &self,
        account: Option<&str>,
        rule: &str,
        to: Option<&str>,
        after_secs: Option<u32>,
    ) -> Result<AccountInfo, CoreError> {
        let rule = rule_named(rule)?;
        let bad = |field, message| CoreError::InvalidArgument { field, message };
        let target = match to {
            None => None,
            Some(to) => {
                let to = check_target(to).map_err(|m| bad("to", m))?;
                let after_secs = match rule {
                    ForwardRule::NoAnswer => {
                        let secs = after_secs.unwrap_or(DEFAULT_AFTER_SECS);
                        check_after(secs).map_err(|m| bad("after_secs", m))?;
                        secs
                    }
                    _ if after_secs.is_some_and(|s| s > 0) => {
                        return Err(bad(
                            "after_secs",
                            format!("only no-answer waits; {} does not", rule.name()),
                        ));
                    }
                    _ => 0,
                };
                Some(ForwardTarget { to, after_secs })
            }
        };
        let change = ForwardChange {
            rule: Some(rule),
            setting: Some(target.clone()),
        };
        let _one_at_a_time = self.forwarding.lock().await;
        let id = self.forward_account(account, &change).await?;
        self.store
            .set_forward(LiveForward {
                account: id.clone(),
                rule: rule.name().into(),
                after_secs: target.as_ref().map_or(0, |t| t.after_secs),
                target: target.map(|t| t.to),
            })
            .await
            .map_err(CoreError::Store)?;
        self.ask(|r| Command::ApplyForward(id, change, r)).await?
    }

    /// Forgets what was set live for one rule of `account`, or for all when `rule` is
    /// None: the configuration's forwarding applies again.
    pub async fn clear_forward(
        &self,
        account: Option<&str>,
        rule: Option<&str>,
    ) -> Result<AccountInfo, CoreError> {
        let rule = rule.map(rule_named).transpose()?;
        let change = ForwardChange {
            rule,
            setting: None,
        };
        let _one_at_a_time = self.forwarding.lock().await;
        let id = self.forward_account(account, &change).await?;
        self.store
            .clear_forward(id.clone(), rule.map(|r| r.name().to_string()))
            .await
            .map_err(CoreError::Store)?;
        self.ask(|r| Command::ApplyForward(id, change, r)).await?
    }

    async fn forward_account(
        &self,
        account: Option<&str>,
        change: &ForwardChange,
    ) -> Result<String, CoreError> {
        let (account, change) = (account.map(str::to_string), change.clone());
        self.ask(|r| Command::CheckForward(account, change, r))
            .await?
    }
}

fn rule_named(name: &str) -> Result<ForwardRule, CoreError> {
    ForwardRule::from_name(name).ok_or_else(|| CoreError::InvalidArgument {
        field: "rule",
        message: format!(
            "{name:?} is not a forwarding rule; use {}",
            ForwardRule::ALL.map(ForwardRule::name).join(", ")
        ),
    })
}
