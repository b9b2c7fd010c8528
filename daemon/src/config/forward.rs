//! Call forwarding as an account's configuration sets it: `forward = { always = "…",
//! busy = "…", no_answer = { to = "…", after_secs = 20 }, unavailable = "…" }`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sip::uri::SipUri;

/// When an incoming call is sent on elsewhere (with 302, RFC 3261 §8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ForwardRule {
    /// Every call, before it rings.
    Always,
    /// While we are in a call, or in do-not-disturb.
    Busy,
    /// After ringing `after_secs` unanswered.
    NoAnswer,
    /// When no one could answer: no sound device for a manual answer, or voipd stopping.
    Unavailable,
}

impl ForwardRule {
    /// Every rule, in the order they are looked at.
    pub const ALL: [ForwardRule; 4] = [
        ForwardRule::Always,
        ForwardRule::Busy,
        ForwardRule::NoAnswer,
        ForwardRule::Unavailable,
    ];

    /// The rule's name as voipctl, gRPC and D-Bus take and show it.
    pub fn name(self) -> &'static str {
        match self {
            ForwardRule::Always => "always",
            ForwardRule::Busy => "busy",
            ForwardRule::NoAnswer => "no-answer",
            ForwardRule::Unavailable => "unavailable",
        }
    }

    /// A rule by its name; `no_answer`, as the configuration spells it, too.
    pub fn from_name(name: &str) -> Option<ForwardRule> {
        let n = name.trim().to_ascii_lowercase().replace('_', "-");
        ForwardRule::ALL.into_iter().find(|r| r.name() == n)
    }
}

/// Where a rule sends calls, as the user gave it: a SIP URI, a number or user name at the
/// account's domain, or a contact's name (looked up when a call comes, so an edited
/// contact is followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardTarget {
    pub to: String,
    /// For `no-answer`: how long the call rings first.
    pub after_secs: u32,
}

/// How long a call rings before `no_answer` forwards it, unless set.
pub const DEFAULT_AFTER_SECS: u32 = 20;
/// The longest `after_secs` taken: a call rings at most an hour.
const MAX_AFTER_SECS: u32 = 3600;

/// An account's forwarding rules as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawForwarding")]
pub struct Forwarding(pub BTreeMap<ForwardRule, ForwardTarget>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForwarding {
    always: Option<String>,
    busy: Option<String>,
    no_answer: Option<RawNoAnswer>,
    unavailable: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoAnswer {
    to: String,
    #[serde(default = "default_after")]
    after_secs: u32,
}

fn default_after() -> u32 {
    DEFAULT_AFTER_SECS
}

impl TryFrom<RawForwarding> for Forwarding {
    type Error = String;

    fn try_from(r: RawForwarding) -> Result<Self, String> {
        let mut rules = BTreeMap::new();
        let plain = [
            (ForwardRule::Always, r.always, "always"),
            (ForwardRule::Busy, r.busy, "busy"),
            (ForwardRule::Unavailable, r.unavailable, "unavailable"),
        ];
        for (rule, to, field) in plain {
            if let Some(to) = to {
                let to = check_target(&to).map_err(|m| format!("{field}: {m}"))?;
                rules.insert(rule, ForwardTarget { to, after_secs: 0 });
            }
        }
        if let Some(n) = r.no_answer {
            let to = check_target(&n.to).map_err(|m| format!("no_answer.to: {m}"))?;
            check_after(n.after_secs).map_err(|m| format!("no_answer.after_secs: {m}"))?;
            rules.insert(
                ForwardRule::NoAnswer,
                ForwardTarget {
                    to,
                    after_secs: n.after_secs,
                },
            );
        }
        Ok(Forwarding(rules))
    }
}

/// A forwarding target as typed, trimmed; what cannot name anyone is refused with why.
pub fn check_target(to: &str) -> Result<String, String> {
    let to = to.trim();
    if to.is_empty() {
        return Err("empty; give a SIP URI, a number, a user name or a contact's name".into());
    }
    if to.len() > 256 || to.chars().any(char::is_control) {
        return Err(format!(
            "{:?} is not an address: too long, or control characters",
            to.chars().take(40).collect::<String>()
        ));
    }
    let lower = to.to_ascii_lowercase();
    if (lower.starts_with("sip:") || lower.starts_with("sips:"))
        && let Err(e) = to.parse::<SipUri>()
    {
        return Err(format!("{to:?} is not a valid SIP URI: {e}"));
    }
    Ok(to.to_string())
}

/// How long a call rings before `no-answer` forwards it: 1 s to an hour.
pub fn check_after(secs: u32) -> Result<(), String> {
    if (1..=MAX_AFTER_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(format!(
            "{secs} is not between 1 and {MAX_AFTER_SECS} seconds"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_named_as_the_faces_take_them() {
        for r in ForwardRule::ALL {
            assert_eq!(ForwardRule::from_name(r.name()), Some(r));
        }
        assert_eq!(
            ForwardRule::from_name("no_answer"),
            Some(ForwardRule::NoAnswer)
        );
        assert_eq!(ForwardRule::from_name("sometimes"), None);
    }

    #[test]
    fn targets_are_checked() {
        assert_eq!(check_target(" bob ").unwrap(), "bob");
        assert!(check_target("").is_err());
        assert!(check_target("sip:").is_err());
        assert!(check_target("a\nb").is_err());
        assert!(check_after(0).is_err());
        assert!(check_after(15).is_ok());
    }
}
