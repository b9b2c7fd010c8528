//! Voicemail as the faces see it: the answering machine's messages, listened to, marked
//! heard, exported and removed.

use std::path::PathBuf;

use super::*;
use crate::config::AudioEndpoint;
use crate::store::Voicemail;

impl Phone {
    /// At start: recordings a crash cut short are kept (or removed), and rows without
    /// their file dropped.
    pub(super) fn recover_voicemails(&self) {
        let keep = self.retention();
        // The shortest message any machine keeps: what a crash left is judged by it.
        let min = self
            .config
            .accounts
            .iter()
            .filter_map(|a| a.answering_machine.as_ref().map(|m| m.min_secs))
            .min()
            .unwrap_or(1);
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            match store
                .recover_voicemails(Duration::from_secs(u64::from(min)), keep)
                .await
            {
                Ok(kept) => {
                    let unheard = store.unheard_voicemails().await.unwrap_or(0);
                    for voicemail in kept {
                        let kept = crate::core::machine::Kept {
                            voicemail,
                            removed: Vec::new(),
                            unheard,
                        };
                        let _ = updates
                            .send(CallUpdate::VoicemailKept(Box::new(kept)))
                            .await;
                    }
                }
                Err(e) => tracing::error!("voicemail: recovery failed: {e}"),
            }
        });
    }
}

impl Phone {
    /// How many messages `[voicemail]` lets the store keep.
    fn retention(&self) -> crate::store::Retention {
        let v = &self.config.voicemail;
        crate::store::Retention {
            max_count: u64::from(v.max_count),
            max_bytes: u64::from(v.max_mib) << 20,
        }
    }

    /// What the answering machine will do for call `id` to `a`, if it has one.
    pub(super) fn machine_plan(
        &self,
        a: &crate::config::Account,
        req: &TuRequest,
        id: u64,
    ) -> Option<crate::core::machine::MachinePlan> {
        let m = a.answering_machine.as_ref()?;
        let caller = req
            .request
            .from()
            .map(|f| f.uri.to_string())
            .unwrap_or_default();
        let name = self.presence.name_of(&caller);
        Some(crate::core::machine::MachinePlan::new(
            m,
            self.busy(a),
            self.retention(),
            self.store.clone(),
            crate::core::machine::new_voicemail(a.id.as_str(), caller, name, id),
        ))
    }
}

impl PhoneHandle {
    /// Messages, newest first (at most `limit`; 0: 100), and how many are unheard.
    pub async fn voicemails(&self, limit: u32) -> Result<(Vec<Voicemail>, u32), CoreError> {
        check_limit(limit)?;
        let limit = if limit == 0 { 100 } else { limit };
        let list = self
            .store
            .voicemails(limit)
            .await
            .map_err(CoreError::Store)?;
        let unheard = self
            .store
            .unheard_voicemails()
            .await
            .map_err(CoreError::Store)?;
        Ok((list, unheard))
    }

    pub async fn voicemail(&self, id: i64) -> Result<Voicemail, CoreError> {
        self.store
            .voicemail(id)
            .await
            .map_err(CoreError::Store)?
            .ok_or_else(|| not_found(id))
    }

    /// Marks a message heard (or unheard again).
    pub async fn mark_heard(&self, id: i64, heard: bool) -> Result<Voicemail, CoreError> {
        let vm = self
            .store
            .set_heard(id, heard)
            .await
            .map_err(CoreError::Store)?
            .ok_or_else(|| not_found(id))?;
        self.voicemails_changed().await?;
        Ok(vm)
    }

    /// Removes a message and its audio.
    pub async fn delete_voicemail(&self, id: i64) -> Result<(), CoreError> {
        if !self
            .store
            .delete_voicemail(id)
            .await
            .map_err(CoreError::Store)?
        {
            return Err(not_found(id));
        }
        tracing::info!("voicemail {id} deleted");
        self.voicemails_changed().await
    }

    /// The file holding a message's audio.
    pub async fn voicemail_file(&self, id: i64) -> Result<PathBuf, CoreError> {
        Ok(self.voicemail(id).await?.file)
    }

    /// Plays a message to `output` (as [audio] output is written; None: the configured
    /// one), then marks it heard. A file endpoint receives the WAV.
    pub async fn play_voicemail(
        &self,
        id: i64,
        output: Option<&str>,
    ) -> Result<Voicemail, CoreError> {
        let bad = |message: String| CoreError::InvalidArgument {
            field: "output",
            message,
        };
        let endpoint = match output.filter(|o| !o.trim().is_empty()) {
            Some(o) => AudioEndpoint::try_from(o.to_string()).map_err(bad)?,
            None => self.ask(Command::AudioOutput).await?,
        };
        endpoint.check_absolute().map_err(bad)?;
        let vm = self.voicemail(id).await?;
        let file = vm.file.clone();
        let played = tokio::task::spawn_blocking(move || match endpoint {
            AudioEndpoint::File(to) | AudioEndpoint::FileOnce(to) => std::fs::copy(&file, &to)
                .map(|_| ())
                .map_err(|e| format!("cannot write {}: {e}", to.display())),
            AudioEndpoint::Default | AudioEndpoint::Device(_) => {
                let name = match endpoint {
                    AudioEndpoint::Device(n) => Some(n),
                    _ => None,
                };
                let (samples, rate) = crate::media::wav::read(&file)?;
                crate::media::playback::play(&samples, rate, name)
            }
            // Played nowhere is not heard: it would then be retention's to remove.
            AudioEndpoint::Null => Err(
                "the output is null: nothing would hear it; give --output (a device or file:)"
                    .to_string(),
            ),
            AudioEndpoint::Tone(_) | AudioEndpoint::Prompt(_) | AudioEndpoint::Record(_) => {
                Err("a tone is not somewhere to play to".into())
            }
        })
        .await
        .map_err(|e| CoreError::FailedPrecondition(e.to_string()))?;
        played.map_err(CoreError::FailedPrecondition)?;
        self.mark_heard(id, true).await
    }

    async fn voicemails_changed(&self) -> Result<(), CoreError> {
        let unheard = self
            .store
            .unheard_voicemails()
            .await
            .map_err(CoreError::Store)?;
        self.ask(|done| Command::Emit(Box::new(EventKind::VoicemailsChanged { unheard }), done))
            .await
    }
}

fn not_found(id: i64) -> CoreError {
    CoreError::NotFound {
        what: "voicemail",
        id: id.to_string(),
    }
}
