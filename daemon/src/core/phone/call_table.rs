//! The calls the core follows: starting them, acting on them, and writing them to the
//! history when they end.

use super::*;
use crate::core::contacts::Resolved;

pub(super) struct CallEntry {
    pub(super) info: CallInfo,
    sip_call_id: Option<String>,
    pub(super) commands: flume::Sender<CallCommand>,
    live: Arc<crate::media::session::LiveStats>,
    /// Its first report went out (as `call_incoming` or `call_outgoing`).
    announced: bool,
    /// It was told to play the call-waiting tone.
    waiting: bool,
    /// A transfer was sent to it that its reports do not show yet.
    transfer_sent: bool,
}

impl CallEntry {
    /// How many more commands the call's queue takes now.
    pub(super) fn room(&self) -> usize {
        let cap = self.commands.capacity().unwrap_or(usize::MAX);
        cap.saturating_sub(self.commands.len())
    }
}

/// The name of a call's change, from what the core knew of it before (whether it was
/// announced, and its state) and what it is now.
fn change_name(before: Option<(bool, &CallInfo)>, now: &CallInfo) -> &'static str {
    use voipd_proto::events as n;
    if now.transfer_asked.is_some()
        && !matches!(now.state, CallState::Ended { .. })
        && before.is_some_and(|(_, b)| b.transfer_asked != now.transfer_asked)
    {
        return n::TRANSFER_REQUESTED;
    }
    match (&now.state, before.map(|(a, b)| (a, &b.state))) {
        (CallState::Ended { .. }, _) => n::CALL_ENDED,
        (_, Some((false, _))) => match now.direction {
            calls::CallDirection::Incoming => n::CALL_INCOMING,
            calls::CallDirection::Outgoing => n::CALL_OUTGOING,
        },
        (
            CallState::Active,
            Some((_, CallState::Ringing | CallState::Early | CallState::Dialing)),
        ) => n::CALL_ANSWERED,
        (CallState::Held, Some((_, CallState::Active))) => n::CALL_HELD,
        (CallState::Active, Some((_, CallState::Held))) => n::CALL_RESUMED,
        _ => n::CALL_CHANGED,
    }
}

impl Phone {
    /// Starts following a call task: commands go to it, and requests carrying its
    /// Call-ID (when it has one) reach it.
    pub(super) fn track(
        &mut self,
        id: u64,
        sip_call_id: Option<String>,
        h: calls::CallHandle,
    ) -> CallInfo {
        let info = h.info;
        self.follow_ringing(&info);
        if let Some(c) = &sip_call_id {
            self.by_sip_call_id.insert(c.clone(), id);
        }
        self.calls.insert(
            id,
            Box::new(CallEntry {
                info: info.clone(),
                sip_call_id,
                commands: h.commands,
                live: h.live,
                announced: false,
                waiting: false,
                transfer_sent: false,
            }),
        );
        info
    }

    /// A call task's report: the call as it is now; ended, it is written to the history
    /// and let go.
    pub(super) fn call_changed(&mut self, mut info: CallInfo) {
        let left_conference = matches!(info.state, CallState::Ended { .. })
            .then_some(info.conference)
            .flatten();
        let mut name = change_name(None, &info);
        let tracked = if let Some(c) = self.calls.get_mut(&info.id) {
            // A report the task sent before it took our hang-up must not bring the call
            // back: it is ending until it has ended.
            if c.info.state == CallState::Ending && !matches!(info.state, CallState::Ended { .. }) {
                info.state = CallState::Ending;
            }
            name = change_name(Some((c.announced, &c.info)), &info);
            c.announced = true;
            if info.transfer_pending {
                c.transfer_sent = false;
            }
            c.info = info.clone();
            true
        } else {
            false
        };
        // (A reaped call's late report must not come back into the set.)
        if tracked {
            self.follow_ringing(&info);
        }
        if matches!(info.state, CallState::Ended { .. }) {
            // Once: a reaped call's own last report may still come.
            if !self.untrack(info.id) {
                return;
            }
            self.record(&info);
        }
        self.transfer_follow(&info);
        {
            use voipd_proto::events as n;
            if [
                n::CALL_INCOMING,
                n::CALL_ANSWERED,
                n::CALL_ENDED,
                n::CALL_HELD,
                n::CALL_RESUMED,
            ]
            .contains(&name)
            {
                self.follow_waiting();
            }
        }
        self.events.emit_call(name, info);
        if let Some(conf) = left_conference {
            self.conference_left(conf);
        }
    }

    /// Keeps the set of ringing incoming calls as `info` says.
    fn follow_ringing(&mut self, info: &CallInfo) {
        if info.direction == calls::CallDirection::Incoming
            && matches!(info.state, CallState::Ringing | CallState::Early)
        {
            self.ringing.insert(info.id);
        } else {
            self.ringing.remove(&info.id);
        }
    }

    /// Call waiting: while a call rings for someone, the active calls play its tone.
    fn follow_waiting(&mut self) {
        let ringing = self.ringing.iter().any(|id| {
            self.calls.get(id).is_some_and(|c| {
                c.info.state == CallState::Ringing
                    && self.rings_for_someone(c.info.account.as_deref())
            })
        });
        // Under call load nothing rings for anyone and no tone plays: every call's every
        // change looked at all calls here, which made the core's time per call grow with
        // the number of calls.
        if !ringing && self.waiting_tone.is_empty() {
            return;
        }
        for c in self.calls.values_mut() {
            let want = ringing && c.info.state == CallState::Active;
            if c.waiting != want && c.commands.try_send(CallCommand::WaitingTone(want)).is_ok() {
                c.waiting = want;
            }
            if c.waiting {
                self.waiting_tone.insert(c.info.id);
            } else {
                self.waiting_tone.remove(&c.info.id);
            }
        }
    }

    /// Lets a call go; false when it was gone already.
    fn untrack(&mut self, id: u64) -> bool {
        let Some(c) = self.calls.remove(&id) else {
            return false;
        };
        self.ringing.remove(&id);
        self.waiting_tone.remove(&id);
        // A newer call may have the same Call-ID (a caller's retry after our 422).
        if let Some(sip) = c.sip_call_id
            && self.by_sip_call_id.get(&sip) == Some(&id)
        {
            self.by_sip_call_id.remove(&sip);
        }
        true
    }

    /// Hands a request inside a dialog to the call it belongs to; back when none does. A
    /// call whose task is gone without saying so is ended here (reported and written to
    /// the history), not left as a ghost.
    pub(super) fn route_to_call(&mut self, req: TuRequest) -> Option<TuRequest> {
        let Some(id) = req
            .request
            .call_id()
            .and_then(|c| self.by_sip_call_id.get(c))
            .copied()
        else {
            return Some(req);
        };
        let Some(c) = self.calls.get(&id) else {
            return Some(req);
        };
        match c.commands.try_send(CallCommand::Request(Box::new(req))) {
            Ok(()) => None,
            Err(flume::TrySendError::Disconnected(CallCommand::Request(r))) => {
                self.reap(id);
                Some(*r)
            }
            // Far behind: the far side retransmits, or the transaction times out.
            Err(_) => None,
        }
    }

    /// Ends a call whose task stopped without ending it.
    pub(super) fn reap(&mut self, id: u64) {
        let Some(c) = self.calls.get(&id) else { return };
        let mut info = c.view();
        tracing::error!(call_id = id, "the call's task stopped; ending the call");
        info.state = CallState::Ended {
            code: 500,
            reason: calls::EndReason::Internal("the call's task stopped".into()),
        };
        self.call_changed(info);
    }

    /// Writes an ended call to the history, off the core task; the sound test is not a
    /// call anyone wants to find again.
    pub(super) fn record(&self, info: &CallInfo) {
        if info.account.is_none() && info.remote_uri == "echo" {
            return;
        }
        let (store, info, updates) = (self.store.clone(), info.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            let CallState::Ended { code, reason } = &info.state else {
                return;
            };
            let incoming = info.direction == calls::CallDirection::Incoming;
            let record = crate::store::CallRecord {
                id: info.id,
                incoming,
                account: info.account.clone(),
                remote_uri: info.remote_uri.clone(),
                remote_name: info.remote_name.clone(),
                started: info.started,
                answered: info.answered,
                ended: SystemTime::now(),
                end_code: *code,
                // Came in, and was neither answered nor refused by us.
                missed: incoming
                    && (info.answered.is_none()
                        || matches!(reason, calls::EndReason::AnsweringMachine(_)))
                    && !matches!(
                        reason,
                        calls::EndReason::Rejected
                            | calls::EndReason::Refused(_)
                            | calls::EndReason::Forwarded { .. }
                    ),
                end_reason: reason.to_string(),
                media_encryption: info.media_encryption.name().into(),
                transport: info.transport.param().into(),
                recordings: info
                    .recordings
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect(),
            };
            match store.record_call(record).await {
                Ok(missed_unseen) => {
                    let _ = updates.send(CallUpdate::Recorded { missed_unseen }).await;
                }
                Err(e) => {
                    tracing::error!(call_id = info.id, "call not written to the history: {e}")
                }
            }
        });
    }

    pub(super) fn dial(
        &mut self,
        account: Option<&str>,
        target: &Resolved,
        endpoints: &Endpoints,
    ) -> Result<CallInfo, CoreError> {
        let mut ctx = self
            .call_context()
            .ok_or_else(|| CoreError::FailedPrecondition("SIP is not running".into()))?;
        endpoints.apply(&mut ctx);
        if target.contact.is_none()
            && let [typed] = target.addresses.as_slice()
            && typed.trim().eq_ignore_ascii_case("echo")
        {
            let id = self.new_call_id();
            tracing::info!(call_id = id, "sound test call");
            return Ok(self.track(id, None, calls::echo(ctx, id)));
        }
        let account = self.accounts.for_dialing(account)?;
        // The provider's voicemail box, unless a contact is called so.
        let voicemail = target.contact.is_none()
            && matches!(target.addresses.as_slice(), [t] if t.trim().eq_ignore_ascii_case("voicemail"));
        if voicemail {
            let a = account.as_ref().ok_or_else(|| {
                CoreError::FailedPrecondition("voicemail is an account's: configure one".into())
            })?;
            let uri = a.voicemail_uri.as_ref().ok_or_else(|| {
                CoreError::FailedPrecondition(format!(
                    "account {} has no voicemail_uri (e.g. voicemail_uri = \"sip:*98@{}\")",
                    a.id, a.aor.0.host
                ))
            })?;
            let target = Resolved {
                contact: None,
                addresses: vec![uri.0.to_string()],
            };
            return self.dial(Some(a.id.as_str()), &target, endpoints);
        }
        // A contact's number cannot be called without an account; its SIP address can.
        let mut tried = Vec::new();
        let mut uri = None;
        for a in &target.addresses {
            match dial_target("uri", a, account.as_ref()) {
                Ok(u) => {
                    uri = Some(u);
                    break;
                }
                Err(e) => tried.push(e),
            }
        }
        let target_uri = match (uri, &target.contact) {
            (Some(u), _) => u,
            (None, None) => {
                return Err(tried.pop().unwrap_or_else(|| CoreError::InvalidArgument {
                    field: "uri",
                    message: "whom to reach is missing".into(),
                }));
            }
            (None, Some((name, id))) => {
                let why: Vec<String> = tried
                    .iter()
                    .map(|e| match e {
                        CoreError::InvalidArgument { message, .. } => message.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                return Err(CoreError::FailedPrecondition(if why.is_empty() {
                    format!("contact {name} (id {id}) has no address")
                } else {
                    format!(
                        "contact {name} (id {id}) has no address that can be called: {}",
                        why.join("; ")
                    )
                }));
            }
        };
        let contact = target.contact.as_ref().map(|(name, _)| name.as_str());
        Ok(self.start_call(ctx, account, target_uri, Vec::new(), contact))
    }

    /// Places a call to `uri`, with `extra` headers on its INVITE.
    pub(super) fn start_call(
        &mut self,
        ctx: CallContext,
        account: Option<crate::config::Account>,
        uri: SipUri,
        extra: Vec<(crate::sip::message::Name, String)>,
        contact: Option<&str>,
    ) -> CallInfo {
        let id = self.new_call_id();
        match contact {
            Some(name) => tracing::info!(call_id = id, "calling {name} at {uri}"),
            None => tracing::info!(call_id = id, "calling {uri}"),
        }
        let sip_call_id = format!("{}@voipd", crate::sip::transaction::random_token(20));
        let handle = calls::dial(ctx, id, account, uri, sip_call_id.clone(), extra);
        let mut info = self.track(id, Some(sip_call_id), handle);
        info.contact = self.presence.name_of(&info.remote_uri);
        if let Some(c) = self.calls.get_mut(&id) {
            c.info.contact.clone_from(&info.contact);
        }
        info
    }

    pub(super) fn call_action(
        &mut self,
        id: u64,
        action: CallAction,
    ) -> Result<CallInfo, CoreError> {
        let c = self.calls.get(&id).ok_or_else(|| CoreError::NotFound {
            what: "call",
            id: id.to_string(),
        })?;
        let ringing_here = c.info.state == CallState::Ringing
            && c.info.direction == calls::CallDirection::Incoming;
        if c.info.state == CallState::Ending && action != CallAction::Get {
            return Err(CoreError::FailedPrecondition(format!(
                "call {id} is already ending"
            )));
        }
        // Kept for after the command reached the call: a refused one changes nothing.
        let transfer = match &action {
            CallAction::Transfer(_) => Some(None),
            CallAction::TransferTo(other) => Some(Some(*other)),
            _ => None,
        };
        let answers_transfer = matches!(action, CallAction::AnswerTransfer(_));
        let cmd = match action {
            CallAction::Get => return Ok(c.view()),
            CallAction::Play(_)
            | CallAction::Record(_)
            | CallAction::Transfer(_)
            | CallAction::TransferTo(_)
            | CallAction::Hold
            | CallAction::Resume
                if c.info.sound_test =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is the sound test: it has no far side"
                )));
            }
            CallAction::Reject { .. } if !ringing_here => {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not ringing here"
                )));
            }
            CallAction::Reject { busy } => CallCommand::Reject(if busy { 486 } else { 603 }),
            CallAction::Forward(_) | CallAction::Proceed if !ringing_here => {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not ringing here"
                )));
            }
            CallAction::Forward(to) => {
                let account = match c.info.account.as_deref() {
                    Some(a) => self.accounts.for_dialing(Some(a))?,
                    None => None,
                };
                CallCommand::Forward(Box::new(crate::core::forward::resolve(
                    "forward",
                    &to,
                    account.as_ref(),
                    &self.presence,
                )?))
            }
            CallAction::Proceed => CallCommand::Proceed,
            CallAction::Play(_) if !matches!(c.info.state, CallState::Active | CallState::Held) => {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not established"
                )));
            }
            CallAction::Play(p) => CallCommand::Play(p),
            CallAction::Record(_)
                if !matches!(c.info.state, CallState::Active | CallState::Held) =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not established"
                )));
            }
            CallAction::Record(None) if c.info.recording.is_none() => {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not being recorded"
                )));
            }
            CallAction::Record(r) => CallCommand::Record(r),
            CallAction::Transfer(_) | CallAction::TransferTo(_)
                if !matches!(c.info.state, CallState::Active | CallState::Held) =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not established"
                )));
            }
            CallAction::Transfer(_) | CallAction::TransferTo(_)
                if c.info.transfer_asked.is_some() =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id}: the far side's transfer waits for an answer"
                )));
            }
            CallAction::Transfer(_) | CallAction::TransferTo(_)
                if c.info.transfer_pending || c.transfer_sent =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is being transferred already"
                )));
            }
            CallAction::Transfer(target) => self.transfer_command(id, &target)?,
            CallAction::TransferTo(other) => self.transfer_to_call_command(id, other)?,
            CallAction::AnswerTransfer(_) if c.info.transfer_asked.is_none() => {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id}: no transfer asked of us"
                )));
            }
            CallAction::AnswerTransfer(accept) => CallCommand::AnswerTransfer(accept),
            CallAction::Hold | CallAction::Resume
                if !matches!(c.info.state, CallState::Active | CallState::Held) =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not established"
                )));
            }
            CallAction::Video(_)
                if !matches!(c.info.state, CallState::Active | CallState::Held)
                    || c.info.sound_test =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not established with a far side"
                )));
            }
            CallAction::Video(Some(a))
                if c.info.video.is_some() && (a.size.is_some() || a.fps.is_some()) =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} has video already; turn it off first to change its size or rate"
                )));
            }
            CallAction::Video(ask) => CallCommand::Video(ask.map(Box::new)),
            CallAction::Hold => CallCommand::Hold,
            CallAction::Resume => CallCommand::Resume,
            CallAction::Mute(on) => CallCommand::Mute(on),
            CallAction::Answer(_)
                if c.info.state != CallState::Ringing
                    || c.info.direction != calls::CallDirection::Incoming =>
            {
                return Err(CoreError::FailedPrecondition(format!(
                    "call {id} is not ringing here"
                )));
            }
            CallAction::Answer(e) => CallCommand::Answer(Box::new(e)),
            CallAction::Hangup => CallCommand::Hangup,
        };
        let hangup = matches!(cmd, CallCommand::Hangup | CallCommand::Reject(_));
        // Shown at once, as the call's task will report it.
        let recording = match &cmd {
            CallCommand::Record(r) => Some(r.as_ref().map(|h| h.path().to_path_buf())),
            _ => None,
        };
        // Call waiting: the call taken up (answered, resumed) is the one we talk to; the
        // others are held first, as a phone's line keys do.
        let others = matches!(cmd, CallCommand::Answer(_) | CallCommand::Resume)
            .then(|| self.others_to_hold(id))
            .unwrap_or_default();
        self.command_call(id, cmd)?;
        for other in others {
            tracing::info!(call_id = other, "held: call {id} is taken up");
            let _ = self.command_call(other, CallCommand::Hold);
        }
        let Some(c) = self.calls.get_mut(&id) else {
            return Err(CoreError::FailedPrecondition(format!(
                "call {id} has ended"
            )));
        };
        if let Some(r) = recording {
            c.info.recording = r;
        }
        if answers_transfer {
            c.info.transfer_asked = None;
        }
        if let Some(consult) = transfer {
            c.transfer_sent = true;
            self.transfers.sent(id, consult);
        }
        if hangup {
            // Shown at once: `calls` right after `hangup` must not say the call is active.
            c.info.state = CallState::Ending;
            let info = c.view();
            self.events
                .emit_call(voipd_proto::events::CALL_CHANGED, info.clone());
            return Ok(info);
        }
        Ok(c.info.clone())
    }

    /// The active calls other than `id` and its conference's.
    fn others_to_hold(&self, id: u64) -> Vec<u64> {
        let conf = self.calls.get(&id).and_then(|c| c.info.conference);
        self.calls
            .values()
            .filter(|c| {
                c.info.id != id
                    && c.info.state == CallState::Active
                    && (conf.is_none() || c.info.conference != conf)
            })
            .map(|c| c.info.id)
            .collect()
    }

    /// Gives a call task a command; a task that is gone is reaped.
    pub(super) fn command_call(&mut self, id: u64, cmd: CallCommand) -> Result<(), CoreError> {
        let Some(c) = self.calls.get(&id) else {
            return Err(CoreError::NotFound {
                what: "call",
                id: id.to_string(),
            });
        };
        match c.commands.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(flume::TrySendError::Full(_)) => Err(CoreError::FailedPrecondition(format!(
                "call {id} is busy; try again"
            ))),
            Err(flume::TrySendError::Disconnected(_)) => {
                self.reap(id);
                Err(CoreError::FailedPrecondition(format!(
                    "call {id} has ended"
                )))
            }
        }
    }

    pub(super) fn send_dtmf(&mut self, id: u64, digits: &str) -> Result<CallInfo, CoreError> {
        if digits.is_empty()
            || digits
                .chars()
                .any(|d| crate::media::dtmf::event_code(d).is_none())
        {
            return Err(CoreError::InvalidArgument {
                field: "digits",
                message: format!("{digits:?}: use 0-9, *, # and A-D"),
            });
        }
        let c = self.calls.get(&id).ok_or_else(|| CoreError::NotFound {
            what: "call",
            id: id.to_string(),
        })?;
        if !matches!(c.info.state, CallState::Active | CallState::Held) {
            return Err(CoreError::FailedPrecondition(format!(
                "call {id} is not established"
            )));
        }
        let info = c.info.clone();
        self.command_call(id, CallCommand::Dtmf(digits.to_string()))?;
        Ok(info)
    }

    /// Ends every call before shutdown, waiting a little for the BYEs to be answered.
    pub(super) async fn hang_up_all(&mut self, call_rx: &mut mpsc::Receiver<CallUpdate>) {
        for c in self.calls.values() {
            let _ = c.commands.try_send(CallCommand::Stop);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !self.calls.is_empty() {
            match tokio::time::timeout_at(deadline, call_rx.recv()).await {
                Ok(Some(update)) => self.on_call_update(update),
                _ => break,
            }
        }
    }
}

impl CallEntry {
    /// The Call-ID of the call's INVITE, once it has one.
    pub(super) fn sip_call_id(&self) -> Option<&str> {
        self.sip_call_id.as_deref()
    }

    /// The call with its packet counts as they are now.
    pub(super) fn view(&self) -> CallInfo {
        let mut info = self.info.clone();
        self.live.read_into(&mut info.stats);
        if let Some(v) = &mut info.video {
            v.stats = self.live.video.read();
        }
        info
    }

    /// The latest picture the call's video brought, if any.
    pub(super) fn snapshot(&self) -> Option<std::sync::Arc<crate::media::video::Frame>> {
        self.live.video.snapshot()
    }
}
