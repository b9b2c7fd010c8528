//! Three-way (and larger) conferences mixed here (`voipctl conference`, `split`): the
//! calls stay calls; their media streams share a mixer (`media/mixer.rs`) on the engine's
//! ticks. A conference is known by the id of the call it began with.

use super::*;
use crate::media::mixer::Conference;

/// More legs than this is a bridge's job, not a phone's.
const MAX_LEGS: usize = 8;

impl Phone {
    /// Mixes `ids` together: held calls are taken off hold; a call in a conference brings
    /// the others into it. Nothing changes when one of them cannot take part.
    pub(super) fn conference(&mut self, ids: &[u64]) -> Result<Vec<CallInfo>, CoreError> {
        let bad = |message: String| CoreError::InvalidArgument {
            field: "ids",
            message,
        };
        if ids.len() > MAX_LEGS {
            return Err(bad(format!(
                "{} calls; a conference here takes up to {MAX_LEGS}",
                ids.len()
            )));
        }
        let mut legs: Vec<u64> = Vec::new();
        for id in ids {
            if !legs.contains(id) {
                legs.push(*id);
            }
        }
        // The conferences they are in already are joined into one.
        let joined: Vec<u64> = legs
            .iter()
            .filter_map(|id| self.calls.get(id).and_then(|c| c.info.conference))
            .collect();
        for c in self.calls.values() {
            if c.info.conference.is_some_and(|f| joined.contains(&f)) && !legs.contains(&c.info.id)
            {
                legs.push(c.info.id);
            }
        }
        if legs.len() < 2 {
            return Err(bad("name two calls or more to mix together".into()));
        }
        if legs.len() > MAX_LEGS {
            return Err(bad(format!(
                "{} calls; a conference here takes up to {MAX_LEGS}",
                legs.len()
            )));
        }
        for id in &legs {
            let c = self.calls.get(id).ok_or_else(|| CoreError::NotFound {
                what: "call",
                id: id.to_string(),
            })?;
            if !matches!(c.info.state, CallState::Active | CallState::Held) {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not established"
                )));
            }
            if c.info.sound_test {
                return Err(bad(format!("call {id} is the sound test")));
            }
            // Room for both commands, so that none is left half done.
            if c.room() < 2 {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is busy; try again"
                )));
            }
        }
        legs.sort_unstable();
        let conf_id = joined.iter().copied().min().unwrap_or(legs[0]);
        let conf = Conference::new();
        tracing::info!("conference {conf_id}: calls {legs:?}");
        for id in &legs {
            if self
                .calls
                .get(id)
                .is_some_and(|c| c.info.state == CallState::Held)
            {
                self.command_call(*id, CallCommand::Resume)?;
            }
            self.command_call(
                *id,
                CallCommand::Conference(Some(Box::new((conf_id, conf.join(*id))))),
            )?;
            // Shown at once; the call's own report follows.
            if let Some(c) = self.calls.get_mut(id) {
                c.info.conference = Some(conf_id);
            }
        }
        Ok(self.views(&legs))
    }

    /// Takes the conference `id` is in apart: each call goes on alone.
    pub(super) fn split(&mut self, id: u64) -> Result<Vec<CallInfo>, CoreError> {
        let c = self.calls.get(&id).ok_or_else(|| CoreError::NotFound {
            what: "call",
            id: id.to_string(),
        })?;
        let conf = c.info.conference.ok_or_else(|| {
            CoreError::FailedPrecondition(format!("call {id} is not in a conference"))
        })?;
        let legs = self.legs_of(conf);
        if let Some(busy) = legs
            .iter()
            .find(|l| self.calls.get(l).is_some_and(|c| c.room() == 0))
        {
            return Err(CoreError::FailedPrecondition(format!(
                "call {busy} is busy; try again"
            )));
        }
        for leg in &legs {
            self.command_call(*leg, CallCommand::Conference(None))?;
            if let Some(c) = self.calls.get_mut(leg) {
                c.info.conference = None;
            }
        }
        tracing::info!("conference {conf} split");
        Ok(self.views(&legs))
    }

    /// A call of conference `conf` ended: the last one left is a plain call again.
    pub(super) fn conference_left(&mut self, conf: u64) {
        if let [last] = self.legs_of(conf).as_slice() {
            tracing::info!("conference {conf} over; call {last} goes on alone");
            let _ = self.command_call(*last, CallCommand::Conference(None));
        }
    }

    fn legs_of(&self, conf: u64) -> Vec<u64> {
        let mut legs: Vec<u64> = self
            .calls
            .values()
            .filter(|c| {
                c.info.conference == Some(conf) && !matches!(c.info.state, CallState::Ended { .. })
            })
            .map(|c| c.info.id)
            .collect();
        legs.sort_unstable();
        legs
    }

    fn views(&self, ids: &[u64]) -> Vec<CallInfo> {
        ids.iter()
            .filter_map(|id| self.calls.get(id).map(|c| c.view()))
            .collect()
    }
}

impl PhoneHandle {
    /// Mixes calls together, each hearing the others and us.
    pub async fn conference(&self, ids: Vec<u64>) -> Result<Vec<CallInfo>, CoreError> {
        self.ask(|r| Command::Conference(ids, r)).await?
    }

    /// Takes apart the conference call `id` is in.
    pub async fn split(&self, id: u64) -> Result<Vec<CallInfo>, CoreError> {
        self.ask(|r| Command::Split(id, r)).await?
    }
}
