//! Programs run on events: `[[hook]]` tables, and how many may run at once (`[hooks]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// One `[[hook]]`: a program started for every event it is `on`, when its filters match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawHook")]
pub struct Hook {
    /// What the log calls it: `name`, or the program's file name.
    pub name: String,
    /// Event names (`voipd_proto::events`).
    pub on: Vec<&'static str>,
    /// Only events of this account.
    pub account: Option<String>,
    /// Only calls and messages whose far side's URI or contact name holds this text
    /// (ignoring case).
    pub remote: Option<String>,
    /// Only these DTMF digits (for `dtmf`).
    pub digits: Option<String>,
    /// The program (an absolute path) and its arguments.
    pub exec: Vec<String>,
    /// It is killed after this long; a `call_incoming` hook's answer must come before.
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    name: Option<String>,
    on: Vec<String>,
    account: Option<String>,
    remote: Option<String>,
    digits: Option<String>,
    exec: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_secs: f64,
}

fn default_timeout() -> f64 {
    10.0
}

/// The event names of an `on` list: known, each once, at least one.
pub(super) fn event_names(names: &[String]) -> Result<Vec<&'static str>, String> {
    if names.is_empty() {
        return Err(format!(
            "on: the list is empty; name events such as {}",
            voipd_proto::events::ALL[..4].join(", ")
        ));
    }
    let mut on = Vec::new();
    for name in names {
        let known = voipd_proto::events::known(name).ok_or_else(|| {
            format!(
                "on: {name:?} is not an event; the events are {}",
                voipd_proto::events::ALL.join(", ")
            )
        })?;
        if on.contains(&known) {
            return Err(format!("on: {name:?} is listed twice"));
        }
        on.push(known);
    }
    Ok(on)
}

impl TryFrom<RawHook> for Hook {
    type Error = String;

    fn try_from(r: RawHook) -> Result<Self, String> {
        let on = event_names(&r.on)?;
        let Some(program) = r.exec.first() else {
            return Err("exec: the list is empty; give the program and its arguments".into());
        };
        let path = PathBuf::from(program);
        if !path.is_absolute() {
            // A service's PATH is not the user's shell's.
            return Err(format!(
                "exec: {program:?} is not an absolute path, e.g. /usr/local/bin/door"
            ));
        }
        if let Some(d) = &r.digits {
            if !on.contains(&voipd_proto::events::DTMF) {
                return Err("digits: filters dtmf events; add \"dtmf\" to `on`".into());
            }
            if d.is_empty() || !d.chars().all(|c| "0123456789*#ABCDabcd".contains(c)) {
                return Err(format!(
                    "digits: {d:?} is not a set of DTMF digits (0-9, *, #, A-D)"
                ));
            }
        }
        if !(r.timeout_secs > 0.0 && r.timeout_secs <= 3600.0) {
            return Err(format!(
                "timeout_secs: {} is not between 0 and 3600 seconds",
                r.timeout_secs
            ));
        }
        let name = r.name.unwrap_or_else(|| {
            path.file_name()
                .map_or_else(|| program.clone(), |f| f.to_string_lossy().into_owned())
        });
        Ok(Hook {
            name,
            on,
            account: r.account,
            remote: r.remote.map(|s| s.to_lowercase()),
            digits: r.digits.map(|d| d.to_uppercase()),
            exec: r.exec,
            timeout: Duration::from_secs_f64(r.timeout_secs),
        })
    }
}

/// What an event offers a hook's filters.
#[derive(Debug, Default, Clone, Copy)]
pub struct HookSubject<'a> {
    pub account: Option<&'a str>,
    /// The far side's URI and contact name, as known.
    pub remote: [Option<&'a str>; 2],
    pub digit: Option<char>,
}

impl Hook {
    /// Whether an event of this name and subject starts the hook.
    pub fn wants(&self, name: &str, s: &HookSubject<'_>) -> bool {
        if !self.on.contains(&name) {
            return false;
        }
        if let Some(a) = &self.account
            && s.account != Some(a.as_str())
        {
            return false;
        }
        if let Some(r) = &self.remote
            && !s
                .remote
                .iter()
                .flatten()
                .any(|x| x.to_lowercase().contains(r.as_str()))
        {
            return false;
        }
        if let Some(d) = &self.digits
            && !s.digit.is_some_and(|c| d.contains(c.to_ascii_uppercase()))
        {
            return false;
        }
        true
    }
}

/// `[hooks]`: how hooks run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawHooksConfig")]
pub struct HooksConfig {
    /// At most this many hook programs run at once; more wait their turn…
    pub max_running: u32,
    /// …and at most this many wait. Past it the oldest waiting one is dropped, with a
    /// counted warning, so a burst of events cannot make memory grow.
    pub queue: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHooksConfig {
    #[serde(default = "default_max_running")]
    max_running: u32,
    #[serde(default = "default_queue")]
    queue: u32,
}

impl TryFrom<RawHooksConfig> for HooksConfig {
    type Error = String;

    fn try_from(r: RawHooksConfig) -> Result<Self, String> {
        if !(1..=256).contains(&r.max_running) {
            return Err(format!(
                "max_running: {} is not between 1 and 256",
                r.max_running
            ));
        }
        if !(1..=100_000).contains(&r.queue) {
            return Err(format!("queue: {} is not between 1 and 100000", r.queue));
        }
        Ok(HooksConfig {
            max_running: r.max_running,
            queue: r.queue,
        })
    }
}

fn default_max_running() -> u32 {
    4
}
fn default_queue() -> u32 {
    256
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            max_running: default_max_running(),
            queue: default_queue(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(toml_text: &str) -> Result<Hook, String> {
        toml::from_str::<Hook>(toml_text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn a_hook_names_known_events_and_an_absolute_program() {
        let h = hook(
            r#"on = ["dtmf"]
exec = ["/usr/local/bin/door", "open"]
digits = "9#"
timeout_secs = 2.5"#,
        )
        .expect("valid");
        assert_eq!(h.name, "door");
        assert_eq!(h.on, vec!["dtmf"]);
        assert_eq!(h.timeout, Duration::from_millis(2500));
        let s = HookSubject {
            digit: Some('9'),
            ..Default::default()
        };
        assert!(h.wants("dtmf", &s));
        assert!(!h.wants("call_incoming", &s));
        assert!(!h.wants(
            "dtmf",
            &HookSubject {
                digit: Some('1'),
                ..Default::default()
            }
        ));
    }

    #[test]
    fn bad_hooks_are_refused_naming_the_field() {
        for (text, field) in [
            (
                r#"on = ["ring"]
exec = ["/bin/true"]"#,
                "on:",
            ),
            (
                r#"on = []
exec = ["/bin/true"]"#,
                "on:",
            ),
            (
                r#"on = ["dtmf"]
exec = ["true"]"#,
                "exec:",
            ),
            (
                r#"on = ["dtmf"]
exec = []"#,
                "exec:",
            ),
            (
                r#"on = ["call_incoming"]
exec = ["/bin/true"]
digits = "9""#,
                "digits:",
            ),
            (
                r#"on = ["dtmf"]
exec = ["/bin/true"]
digits = "x""#,
                "digits:",
            ),
            (
                r#"on = ["dtmf"]
exec = ["/bin/true"]
timeout_secs = 0"#,
                "timeout_secs:",
            ),
        ] {
            let e = hook(text).expect_err(text);
            assert!(e.starts_with(field), "{text}: {e}");
        }
    }

    #[test]
    fn filters_on_account_and_remote() {
        let h = hook(
            r#"on = ["call_incoming"]
exec = ["/bin/true"]
account = "home"
remote = "Door""#,
        )
        .expect("valid");
        let mut s = HookSubject {
            account: Some("home"),
            remote: [Some("sip:door@example.com"), None],
            digit: None,
        };
        assert!(h.wants("call_incoming", &s));
        s.remote = [Some("sip:1001@example.com"), Some("Front door")];
        assert!(h.wants("call_incoming", &s));
        s.remote = [Some("sip:bob@example.com"), None];
        assert!(!h.wants("call_incoming", &s));
        s.remote = [Some("sip:door@example.com"), None];
        s.account = Some("work");
        assert!(!h.wants("call_incoming", &s));
    }
}
