//! The answering machine as an account's configuration sets it, and where messages are
//! kept (`[voicemail]`).

use std::path::PathBuf;

use serde::Deserialize;

use crate::media::record::Prompt;

/// An account's answering machine: `answering_machine = { after_secs = 20, … }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawMachine")]
pub struct AnsweringMachine {
    /// Seconds of ringing before it answers (0: at once).
    pub after_secs: u32,
    /// Also answers at once when busy: in another call, or in do-not-disturb.
    pub when_busy: bool,
    /// The user's greeting, a WAV file (16-bit PCM); the built-in one when None.
    pub greeting: Option<PathBuf>,
    /// A message ends after this long.
    pub max_secs: u32,
    /// A message ends after this long without speech (0: never).
    pub silence_secs: u32,
    /// Messages shorter than this are not kept (a caller who hung up at the beep).
    pub min_secs: u32,
    /// What it plays: the greeting, read with the configuration, then the beep.
    pub prompt: Prompt,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    #[serde(default = "default_after")]
    after_secs: u32,
    #[serde(default)]
    when_busy: bool,
    greeting: Option<PathBuf>,
    #[serde(default = "default_max")]
    max_secs: u32,
    #[serde(default = "default_silence")]
    silence_secs: u32,
    #[serde(default = "default_min")]
    min_secs: u32,
}

fn default_after() -> u32 {
    20
}
fn default_max() -> u32 {
    120
}
fn default_silence() -> u32 {
    10
}
fn default_min() -> u32 {
    2
}

impl TryFrom<RawMachine> for AnsweringMachine {
    type Error = String;

    fn try_from(r: RawMachine) -> Result<Self, String> {
        if r.after_secs > 3600 {
            return Err(format!("after_secs: {} is more than an hour", r.after_secs));
        }
        if !(1..=3600).contains(&r.max_secs) {
            return Err(format!(
                "max_secs: {} is not between 1 and 3600 seconds",
                r.max_secs
            ));
        }
        if r.min_secs >= r.max_secs {
            return Err(format!(
                "min_secs: {} is not below max_secs ({}): no message would be kept",
                r.min_secs, r.max_secs
            ));
        }
        Ok(AnsweringMachine {
            after_secs: r.after_secs,
            when_busy: r.when_busy,
            greeting: r.greeting,
            max_secs: r.max_secs,
            silence_secs: r.silence_secs,
            min_secs: r.min_secs,
            // The user's greeting is read once the whole file is known good (checks.rs).
            prompt: Prompt::machine(None),
        })
    }
}

/// Where messages are kept, and how many: `[voicemail]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoicemailConfig {
    /// At most this many messages are kept…
    #[serde(default = "default_count")]
    pub max_count: u32,
    /// …taking at most this many MiB together. Past either, the oldest heard ones go;
    /// unheard ones are never removed to make room (the machine stops taking messages).
    #[serde(default = "default_mib")]
    pub max_mib: u32,
}

fn default_count() -> u32 {
    200
}
fn default_mib() -> u32 {
    500
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        VoicemailConfig {
            max_count: default_count(),
            max_mib: default_mib(),
        }
    }
}
