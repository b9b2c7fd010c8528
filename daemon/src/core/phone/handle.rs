//! The one API every face uses: each call is a command to the core task and its answer.

use super::*;

impl PhoneHandle {
    pub(super) async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CoreError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| CoreError::Stopped)?;
        rx.await.map_err(|_| CoreError::Stopped)
    }

    pub async fn status(&self) -> Result<Status, CoreError> {
        self.ask(Command::Status).await
    }

    /// Emits `daemon_started`: once, when the faces that follow events are listening.
    pub async fn started(&self) -> Result<(), CoreError> {
        self.ask(Command::Started).await
    }

    /// Re-reads the configuration file. On error the running configuration stays.
    pub async fn reload(&self) -> Result<ReloadReport, CoreError> {
        self.ask(Command::Reload).await?
    }

    pub async fn shutdown(&self, reason: impl Into<String>) -> Result<(), CoreError> {
        let reason = reason.into();
        self.ask(|done| Command::Shutdown { reason, done }).await
    }

    pub async fn accounts(&self) -> Result<Vec<AccountInfo>, CoreError> {
        self.ask(Command::ListAccounts).await
    }

    pub async fn account(&self, id: &str) -> Result<AccountInfo, CoreError> {
        let id = id.to_string();
        self.ask(|r| Command::GetAccount(id, r)).await?
    }

    pub async fn register(&self, id: &str) -> Result<AccountInfo, CoreError> {
        let id = id.to_string();
        self.ask(|r| Command::Register(id, r)).await?
    }

    pub async fn unregister(&self, id: &str) -> Result<AccountInfo, CoreError> {
        let id = id.to_string();
        self.ask(|r| Command::Unregister(id, r)).await?
    }

    pub async fn dial(
        &self,
        account: Option<&str>,
        uri: &str,
        endpoints: Endpoints,
    ) -> Result<CallInfo, CoreError> {
        let target = self.resolve("uri", uri).await?;
        let account = account.map(str::to_string);
        self.ask(|reply| Command::Dial {
            account,
            target,
            endpoints,
            reply,
        })
        .await?
    }

    pub async fn call(&self, id: u64, action: CallAction) -> Result<CallInfo, CoreError> {
        self.ask(|r| Command::CallAction(id, action, r)).await?
    }

    /// The call `id` names; without one, the only call that fits `pick` (the one ringing
    /// here, the established one, any): an error when there is none, or several.
    pub async fn pick_call(&self, id: Option<u64>, pick: CallPick) -> Result<u64, CoreError> {
        if let Some(id) = id {
            return Ok(id);
        }
        let fits: Vec<u64> = self
            .calls()
            .await?
            .into_iter()
            .filter(|c| match pick {
                CallPick::Ringing => {
                    c.state == CallState::Ringing && c.direction == calls::CallDirection::Incoming
                }
                CallPick::Established => matches!(c.state, CallState::Active | CallState::Held),
                CallPick::Any => !matches!(c.state, CallState::Ending | CallState::Ended { .. }),
            })
            .map(|c| c.id)
            .collect();
        match fits.as_slice() {
            [one] => Ok(*one),
            [] => Err(CoreError::FailedPrecondition(format!(
                "no call {}; name one with its id",
                match pick {
                    CallPick::Ringing => "is ringing here",
                    CallPick::Established => "is established",
                    CallPick::Any => "is going on",
                }
            ))),
            many => Err(CoreError::InvalidArgument {
                field: "call",
                message: format!(
                    "{} calls could be meant ({}); name one",
                    many.len(),
                    many.iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    pub async fn send_dtmf(&self, id: u64, digits: &str) -> Result<CallInfo, CoreError> {
        let digits = digits.to_string();
        self.ask(|r| Command::SendDtmf(id, digits, r)).await?
    }

    /// The cameras the daemon can open, with their formats.
    pub async fn video_devices(
        &self,
    ) -> Result<Vec<crate::media::video::camera::DeviceInfo>, CoreError> {
        tokio::task::spawn_blocking(crate::media::video::camera::devices)
            .await
            .map_err(|_| CoreError::Stopped)
    }

    /// The latest picture of call `id`'s received video, as PNG.
    pub async fn snapshot(&self, id: u64) -> Result<Vec<u8>, CoreError> {
        let frame = self.ask(|r| Command::Snapshot(id, r)).await??;
        let Some(frame) = frame else {
            return Err(CoreError::FailedPrecondition(format!(
                "call {id} has no video picture (yet)"
            )));
        };
        tokio::task::spawn_blocking(move || crate::media::video::snapshot::to_png(&frame))
            .await
            .map_err(|_| CoreError::Stopped)
    }

    pub async fn calls(&self) -> Result<Vec<CallInfo>, CoreError> {
        self.ask(Command::ListCalls).await
    }

    /// Ended calls, newest first, and the number of missed calls not yet seen.
    pub async fn history(&self, q: HistoryQuery) -> Result<(Vec<HistoryEntry>, u32), CoreError> {
        check_limit(q.limit)?;
        let (mut entries, missed) = self.store.history(q).await.map_err(CoreError::Store)?;
        let uris = entries.iter().map(|e| e.call.remote_uri.clone()).collect();
        let names = self.ask(|r| Command::ContactNames(uris, r)).await?;
        for (e, name) in entries.iter_mut().zip(names) {
            e.contact = name;
        }
        Ok((entries, missed))
    }

    /// Queues a text message to `to` (a URI, user@host, or a user at the account's domain)
    /// from `account` (or the first registered one); delivery follows as events.
    pub async fn send_message(
        &self,
        account: Option<&str>,
        to: &str,
        text: &str,
    ) -> Result<MessageEntry, CoreError> {
        let to = self.resolve_target("to", to, true).await?;
        let (account, text) = (account.map(str::to_string), text.to_string());
        self.ask(|reply| Command::SendMessage {
            account,
            to,
            text,
            reply,
        })
        .await?
    }

    /// Text messages, newest first: all, or those with `with` (an address, or a contact's
    /// name meaning all its addresses); at most `limit`. With `mark_read` the unread ones
    /// among them are read from now on. Also: how many were unread in all, before.
    pub async fn messages(
        &self,
        with: Option<String>,
        limit: u32,
        mark_read: bool,
    ) -> Result<(Vec<MessageEntry>, u32), CoreError> {
        check_limit(limit)?;
        let peers = match with.filter(|w| !w.trim().is_empty()) {
            Some(w) => self.peers_of(&w).await?,
            None => Vec::new(),
        };
        let (mut list, before, after) = self
            .store
            .messages(peers, limit, mark_read)
            .await
            .map_err(CoreError::Store)?;
        if after != before {
            self.ask(|done| {
                Command::Emit(Box::new(EventKind::UnreadMessages { count: after }), done)
            })
            .await?;
        }
        let peers = list.iter().map(|m| m.peer.clone()).collect();
        let names = self.ask(|r| Command::ContactNames(peers, r)).await?;
        for (m, name) in list.iter_mut().zip(names) {
            m.contact = name;
        }
        Ok((list, before))
    }

    /// Incoming messages not read yet.
    pub async fn unread_messages(&self) -> Result<u32, CoreError> {
        self.store.unread_messages().await.map_err(CoreError::Store)
    }

    /// Announces a change to the address book (already stored) and follows it.
    pub(in crate::core) async fn contacts_event(&self, kind: EventKind) -> Result<(), CoreError> {
        self.ask(|done| Command::ContactsChanged(Box::new(kind), done))
            .await
    }

    pub(in crate::core) async fn with_presence(
        &self,
        list: Vec<Contact>,
    ) -> Result<Vec<ContactInfo>, CoreError> {
        self.ask(|r| Command::WithPresence(list, r)).await
    }

    pub(in crate::core) async fn complete(
        &self,
        addresses: Vec<String>,
    ) -> Result<Vec<String>, CoreError> {
        self.ask(|r| Command::Complete(addresses, r)).await
    }

    /// Sets the presence others see of us.
    pub async fn set_presence(&self, status: &str, note: &str) -> Result<Presence, CoreError> {
        let status =
            PresenceStatus::settable(status).ok_or_else(|| CoreError::InvalidArgument {
                field: "status",
                message: format!("{status:?}: use online, away, busy or offline"),
            })?;
        // It goes into every NOTIFY and PUBLISH: short, and text only (XML has no place
        // for control characters).
        const MAX_NOTE: usize = 256;
        if note.chars().count() > MAX_NOTE || note.chars().any(char::is_control) {
            return Err(CoreError::InvalidArgument {
                field: "note",
                message: format!("up to {MAX_NOTE} characters, no control characters"),
            });
        }
        let note = note.to_string();
        // Kept first, so that what is in force is what a restart brings back.
        self.store
            .set_setting(OWN_PRESENCE, format!("{}\t{note}", status.as_str()))
            .await
            .map_err(CoreError::Store)?;
        let p = Presence::now(status, note);
        self.ask(|r| Command::SetPresence(p, r)).await
    }

    /// The presence others see of us.
    pub async fn own_presence(&self) -> Result<Presence, CoreError> {
        self.ask(Command::OwnPresence).await
    }

    pub async fn missed_unseen(&self) -> Result<u32, CoreError> {
        self.store.missed_unseen().await.map_err(CoreError::Store)
    }

    /// Events from now on. See [`super::EVENT_QUEUE`] for what happens to a slow reader.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Resolves once shutdown has begun.
    pub async fn stopped(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }
}
