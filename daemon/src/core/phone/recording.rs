//! Recording a call (`voipctl record`): the file is checked and opened here, on the
//! caller's task, so that a bad path is the caller's error and neither the core nor the
//! media engine waits on a disk.

use super::*;
use crate::media::recording::{CallRecording, Handover, Layout, free_path};

impl PhoneHandle {
    /// Records an established call, both directions, into `file` (an absolute path to a new
    /// `.wav` or `.opus` file; empty: the state directory's `recordings/call-ID.wav`), in
    /// place of a recording that runs. A bad argument changes nothing.
    pub async fn record(&self, id: u64, file: &str, layout: Layout) -> Result<CallInfo, CoreError> {
        let call = self.call(id, CallAction::Get).await?;
        if !matches!(call.state, CallState::Active | CallState::Held) {
            return Err(CoreError::FailedPrecondition(format!(
                "call {id} is not established"
            )));
        }
        let bad = |message: String| CoreError::InvalidArgument {
            field: "file",
            message,
        };
        let path = if file.trim().is_empty() {
            None
        } else {
            let p = std::path::PathBuf::from(file);
            // The history keeps a call's files one per line.
            if file.chars().any(char::is_control) {
                return Err(bad(format!("{file:?} holds a control character")));
            }
            if !p.is_absolute() {
                return Err(bad(format!("{file:?} is not an absolute path")));
            }
            if !p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"))
                && !crate::media::recording::is_opus(&p)
            {
                return Err(bad(format!(
                    "{file:?}: name it .wav (WAV) or .opus (Ogg/Opus)"
                )));
            }
            Some(p)
        };
        let (dir, rate) = (self.store.recordings_dir(), super::play::codec_rate(&call));
        let r = tokio::task::spawn_blocking(move || {
            let path = match path {
                Some(p) => p,
                None => {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| bad(format!("{}: {e}", dir.display())))?;
                    free_path(&dir, id)
                }
            };
            CallRecording::create(&path, rate, layout)
                .map_err(|e| bad(format!("{}: {e}", path.display())))
        })
        .await
        .map_err(|_| CoreError::Stopped)??;
        let path = r.path().to_path_buf();
        let done = self
            .call(id, CallAction::Record(Some(Handover::new(r))))
            .await;
        if done.is_err() {
            // The call ended meanwhile: no empty file is left behind.
            let _ = std::fs::remove_file(&path);
        }
        done
    }

    /// Stops recording a call; the file is closed and kept.
    pub async fn stop_recording(&self, id: u64) -> Result<CallInfo, CoreError> {
        self.call(id, CallAction::Record(None)).await
    }
}
