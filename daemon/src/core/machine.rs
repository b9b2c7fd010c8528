//! The answering machine: when no one answers, it does, plays the greeting and the beep,
//! and records the caller until they hang up, `max_secs` passes or they fall silent.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::config::AnsweringMachine;
use crate::media::record::{Prompt, Recorder};
use crate::store::{NewVoicemail, Retention, Store, Voicemail};

/// What the machine will do for an incoming call, settled when the call comes.
#[derive(Clone)]
pub(super) struct MachinePlan {
    /// Ringing before it answers (zero: at once, as when busy with `when_busy`).
    pub after: Duration,
    pub prompt: Prompt,
    pub max: Duration,
    pub silence: Option<Duration>,
    pub min: Duration,
    pub retention: Retention,
    pub store: Store,
    pub new: NewVoicemail,
}

impl MachinePlan {
    pub(super) fn new(
        m: &AnsweringMachine,
        busy: bool,
        retention: Retention,
        store: Store,
        new: NewVoicemail,
    ) -> MachinePlan {
        MachinePlan {
            after: if busy && m.when_busy {
                Duration::ZERO
            } else {
                Duration::from_secs(u64::from(m.after_secs))
            },
            prompt: m.prompt.clone(),
            max: Duration::from_secs(u64::from(m.max_secs)),
            silence: (m.silence_secs > 0).then(|| Duration::from_secs(u64::from(m.silence_secs))),
            min: Duration::from_secs(u64::from(m.min_secs)),
            retention,
            store,
            new,
        }
    }

    /// Picks up: checks there is room for a message and makes its file ready. Err says
    /// why the machine cannot take this call (it rings on).
    pub(super) async fn pick_up(self) -> Result<Machine, String> {
        match self.store.reserve_voicemail(self.retention).await {
            Ok(true) => {}
            Ok(false) => {
                return Err("the voicemail box is full of unheard messages ([voicemail] max_count, max_mib)".into());
            }
            Err(e) => return Err(e.to_string()),
        }
        let part = match self.store.voicemail_part(&self.new).await {
            Ok(p) => p,
            Err(e) => {
                self.store.release_voicemail();
                return Err(e.to_string());
            }
        };
        Ok(Machine {
            recorder: Recorder::new(part.clone(), self.prompt.duration()),
            part,
            plan: self,
            kept: false,
        })
    }
}

/// A machine that picked up a call. Dropped without [`Machine::keep`]: a call that failed
/// before the message has its files removed; a message under way (the task dropped at
/// shutdown) is left for the next start to keep.
pub(super) struct Machine {
    pub recorder: Recorder,
    part: PathBuf,
    plan: MachinePlan,
    kept: bool,
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if self.recorder.recorded().is_zero() {
            self.plan.store.discard_voicemail(&self.part);
        } else {
            self.plan.store.release_voicemail();
        }
    }
}

impl Machine {
    /// What it plays.
    pub(super) fn prompt(&self) -> Prompt {
        self.plan.prompt.clone()
    }

    /// Why the message is over, if it is: long enough, silent, or the disk failed.
    pub(super) fn over(&self) -> Option<String> {
        let r = &self.recorder;
        if r.failed() {
            return Some("the disk refused the recording".into());
        }
        if r.recorded() >= self.plan.max {
            return Some(format!("{} s recorded (max_secs)", self.plan.max.as_secs()));
        }
        match self.plan.silence {
            Some(s) if r.started() && r.silent_for() >= s => {
                Some(format!("{} s of silence (silence_secs)", s.as_secs()))
            }
            _ => None,
        }
    }

    /// Keeps the message once the recording is closed; None when it was too short.
    pub(super) async fn keep(mut self) -> Option<Kept> {
        self.kept = true;
        let p = &self.plan;
        let kept = p
            .store
            .keep_voicemail(self.part.clone(), p.new.clone(), p.min, p.retention)
            .await;
        match kept {
            Ok(Some((voicemail, removed))) => Some(Kept {
                voicemail,
                removed,
                unheard: p.store.unheard_voicemails().await.unwrap_or(0),
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::error!("voicemail not kept: {e}");
                None
            }
        }
    }
}

/// A message kept, and what that changed.
#[derive(Debug)]
pub(super) struct Kept {
    pub voicemail: Voicemail,
    /// Heard messages retention removed to make room.
    pub removed: Vec<i64>,
    pub unheard: u32,
}

/// The account's details of a new message for a call from `caller`.
pub(super) fn new_voicemail(
    account: &str,
    caller: String,
    caller_name: Option<String>,
    call_id: u64,
) -> NewVoicemail {
    NewVoicemail {
        account: account.to_string(),
        caller,
        caller_name,
        at: SystemTime::now(),
        call_id,
    }
}
