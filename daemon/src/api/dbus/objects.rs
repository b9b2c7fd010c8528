//! The D-Bus interfaces: `org.voipd.Manager1` at the root (with `org.voipd.Contacts1`, in
//! `contacts.rs`), `org.voipd.Account1` and
//! `org.voipd.Call1` per object. Properties are read from the last state the core announced;
//! methods go to the core, and its events update the objects (see `mirror.rs`).

use std::collections::HashMap;
use std::time::SystemTime;

use zbus::object_server::SignalEmitter;
use zbus::{DBusError, Variant, interface};

use crate::core::{
    AccountInfo, CallAction, CallDirection, CallInfo, CallState, CoreError, Endpoints, PhoneHandle,
    RegState,
};
use crate::store::HistoryQuery;

pub(super) const ROOT: &str = "/org/voipd/Voipd";

#[derive(Debug, DBusError)]
#[zbus(prefix = "org.voipd.Error")]
pub(super) enum VoipdError {
    #[zbus(error)]
    ZBus(zbus::Error),
    NotFound(String),
    InvalidArgument(String),
    Failed(String),
}

impl From<CoreError> for VoipdError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound { .. } => VoipdError::NotFound(e.to_string()),
            CoreError::InvalidArgument { .. } => VoipdError::InvalidArgument(e.to_string()),
            _ => VoipdError::Failed(e.to_string()),
        }
    }
}

/// Object path elements allow only `[A-Za-z0-9_]`; account ids may also hold '-'.
pub(super) fn account_path(id: &str) -> String {
    let mut p = format!("{ROOT}/account/");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() {
            p.push(char::from(b));
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

pub(super) fn call_path(id: u64) -> String {
    format!("{ROOT}/call/{id}")
}

pub(super) fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub(super) struct Manager {
    pub phone: PhoneHandle,
    pub missed: u32,
    pub unread: u32,
}

#[interface(name = "org.voipd.Manager1")]
impl Manager {
    /// Calls `uri` (or a bare user/number, completed with the account's domain) from
    /// `account` ("" for the first registered one); returns the new call's object.
    #[zbus(out_args("call"))]
    async fn dial(&self, uri: &str, account: &str) -> Result<zbus::OwnedObjectPath, VoipdError> {
        let account = (!account.is_empty()).then_some(account);
        let call = self.phone.dial(account, uri, Endpoints::default()).await?;
        zbus::OwnedObjectPath::try_from(call_path(call.id))
            .map_err(|e| VoipdError::Failed(e.to_string()))
    }

    /// Mixes established calls together (each far side hears the others and us); returns
    /// their objects.
    #[zbus(out_args("calls"))]
    async fn conference(&self, ids: Vec<u64>) -> Result<Vec<zbus::OwnedObjectPath>, VoipdError> {
        let calls = self.phone.conference(ids).await?;
        calls
            .iter()
            .map(|c| {
                zbus::OwnedObjectPath::try_from(call_path(c.id))
                    .map_err(|e| VoipdError::Failed(e.to_string()))
            })
            .collect()
    }

    /// The objects of the calls that run now.
    #[zbus(out_args("calls"))]
    async fn list_calls(&self) -> Result<Vec<zbus::OwnedObjectPath>, VoipdError> {
        let calls = self.phone.calls().await?;
        calls
            .iter()
            .map(|c| {
                zbus::OwnedObjectPath::try_from(call_path(c.id))
                    .map_err(|e| VoipdError::Failed(e.to_string()))
            })
            .collect()
    }

    /// Re-reads the configuration; returns what changed (and what needs a restart).
    #[zbus(out_args("applied", "restart_required"))]
    async fn reload(&self) -> Result<(Vec<String>, Vec<String>), VoipdError> {
        let r = self.phone.reload().await?;
        Ok((r.applied, r.restart_required))
    }

    /// Ended calls, newest first: at most `limit` (0: 100), only missed ones if
    /// `missed_only`; `mark_seen` counts the missed ones as seen. Each entry: Id, Incoming,
    /// Account, RemoteUri, RemoteName, Contact, StartedAt, AnsweredAt, EndedAt (µs since the epoch,
    /// 0 for never), EndCode, EndReason, Missed, MediaEncryption (none, sdes, dtls),
    /// Transport (udp, tcp, tls; "" for calls kept before it was noted).
    #[zbus(out_args("entries"))]
    async fn list_history(
        &self,
        limit: u32,
        missed_only: bool,
        mark_seen: bool,
    ) -> Result<Vec<HashMap<String, Variant<'static>>>, VoipdError> {
        let (entries, _) = self
            .phone
            .history(HistoryQuery {
                limit,
                missed_only,
                mark_seen,
            })
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| {
                HashMap::from([
                    ("Id".to_string(), Variant::from(e.id)),
                    ("Incoming".into(), Variant::from(e.call.incoming)),
                    (
                        "Account".into(),
                        Variant::from(e.call.account.unwrap_or_default()),
                    ),
                    ("RemoteUri".into(), Variant::from(e.call.remote_uri)),
                    (
                        "RemoteName".into(),
                        Variant::from(e.call.remote_name.unwrap_or_default()),
                    ),
                    (
                        "Contact".into(),
                        Variant::from(e.contact.unwrap_or_default()),
                    ),
                    ("StartedAt".into(), Variant::from(unix_us(e.call.started))),
                    (
                        "AnsweredAt".into(),
                        Variant::from(e.call.answered.map_or(0, unix_us)),
                    ),
                    ("EndedAt".into(), Variant::from(unix_us(e.call.ended))),
                    ("EndCode".into(), Variant::from(e.call.end_code)),
                    ("EndReason".into(), Variant::from(e.call.end_reason)),
                    ("Missed".into(), Variant::from(e.call.missed)),
                    (
                        "MediaEncryption".into(),
                        Variant::from(e.call.media_encryption),
                    ),
                    ("Transport".into(), Variant::from(e.call.transport)),
                ])
            })
            .collect())
    }

    /// A text message came in (and is stored): its id, the sender's URI and name, the text.
    #[zbus(signal)]
    pub(super) async fn message_received(
        emitter: &SignalEmitter<'_>,
        id: i64,
        peer: &str,
        peer_name: &str,
        body: &str,
    ) -> zbus::Result<()>;

    /// Sends a text message to `to` (as Dial takes it) from `account` ("" for the first
    /// registered one); returns its id. MessageChanged follows as it is delivered or fails.
    #[zbus(out_args("id"))]
    async fn send_message(&self, to: &str, account: &str, text: &str) -> Result<i64, VoipdError> {
        let account = (!account.is_empty()).then_some(account);
        Ok(self.phone.send_message(account, to, text).await?.id)
    }

    /// Text messages, newest first: all, or those with `with` (a SIP URI, or a contact's
    /// name meaning all its addresses); at most `limit` (0: 100); `mark_read` makes the
    /// unread ones among them read (UnreadMessages follows). Each entry: Id, Account,
    /// Incoming, Read, Peer, PeerName, Contact (the contact's name, if the peer is one),
    /// Body, At (µs since the epoch), Status (received, queued, delivered, failed), Code
    /// (the SIP status of the delivery, 0 if none yet).
    #[zbus(out_args("messages"))]
    async fn list_messages(
        &self,
        with: &str,
        limit: u32,
        mark_read: bool,
    ) -> Result<Vec<HashMap<String, Variant<'static>>>, VoipdError> {
        let with = (!with.is_empty()).then(|| with.to_string());
        let (list, _) = self.phone.messages(with, limit, mark_read).await?;
        Ok(list
            .into_iter()
            .map(|m| {
                HashMap::from([
                    ("Id".to_string(), Variant::from(m.id)),
                    (
                        "Account".into(),
                        Variant::from(m.account.unwrap_or_default()),
                    ),
                    ("Incoming".into(), Variant::from(m.incoming)),
                    ("Read".into(), Variant::from(m.read)),
                    ("Peer".into(), Variant::from(m.peer)),
                    (
                        "PeerName".into(),
                        Variant::from(m.peer_name.unwrap_or_default()),
                    ),
                    (
                        "Contact".into(),
                        Variant::from(m.contact.unwrap_or_default()),
                    ),
                    ("Body".into(), Variant::from(m.body)),
                    ("At".into(), Variant::from(unix_us(m.at))),
                    ("Status".into(), Variant::from(m.status)),
                    ("Code".into(), Variant::from(m.code.unwrap_or_default())),
                ])
            })
            .collect())
    }

    /// A message we send changed: status queued, delivered or failed, and the SIP code.
    #[zbus(signal)]
    pub(super) async fn message_changed(
        emitter: &SignalEmitter<'_>,
        id: i64,
        status: &str,
        code: u16,
    ) -> zbus::Result<()>;

    /// Incoming messages not read yet (ListMessages with mark_read reads them).
    #[zbus(property)]
    fn unread_messages(&self) -> u32 {
        self.unread
    }

    /// Missed calls nobody has looked at yet (ListHistory with mark_seen resets it).
    #[zbus(property)]
    fn missed_calls(&self) -> u32 {
        self.missed
    }

    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").into()
    }

    /// "running"; the name goes away when the daemon stops.
    #[zbus(property)]
    fn status(&self) -> String {
        "running".into()
    }
}

pub(super) struct Account {
    pub phone: PhoneHandle,
    pub info: AccountInfo,
}

#[interface(name = "org.voipd.Account1")]
impl Account {
    async fn register(&self) -> Result<(), VoipdError> {
        self.phone.register(&self.info.id).await?;
        Ok(())
    }

    async fn unregister(&self) -> Result<(), VoipdError> {
        self.phone.unregister(&self.info.id).await?;
        Ok(())
    }

    /// Sets one call-forwarding rule (always, busy, no-answer, unavailable) live: to a SIP
    /// URI, number, user or contact's name; an empty `to` turns the rule off. `after_secs`
    /// is for no-answer (0: 20).
    async fn set_forward(&self, rule: &str, to: &str, after_secs: u32) -> Result<(), VoipdError> {
        self.phone
            .set_forward(
                Some(&self.info.id),
                rule,
                Some(to).filter(|t| !t.is_empty()),
                Some(after_secs).filter(|s| *s > 0),
            )
            .await?;
        Ok(())
    }

    /// Forgets what was set live for `rule` (empty: every rule); the configuration applies.
    async fn clear_forward(&self, rule: &str) -> Result<(), VoipdError> {
        self.phone
            .clear_forward(Some(&self.info.id), Some(rule).filter(|r| !r.is_empty()))
            .await?;
        Ok(())
    }

    /// New voice messages in the provider's box (RFC 3842; with mwi = true), 0 until its
    /// first summary.
    #[zbus(property)]
    fn voicemail_new(&self) -> u32 {
        self.info.voicemail.map_or(0, |v| v.new)
    }

    /// Old (heard) voice messages in the provider's box.
    #[zbus(property)]
    fn voicemail_old(&self) -> u32 {
        self.info.voicemail.map_or(0, |v| v.old)
    }

    /// Each forwarding rule: its name, where calls go (empty: off), seconds of ringing
    /// first (no-answer), and whether it was set live rather than by the configuration.
    #[zbus(property)]
    fn forwarding(&self) -> Vec<(String, String, u32, bool)> {
        self.info
            .forwarding
            .iter()
            .map(|f| {
                (
                    f.rule.name().to_string(),
                    f.target.as_ref().map(|t| t.to.clone()).unwrap_or_default(),
                    f.target.as_ref().map_or(0, |t| t.after_secs),
                    f.live,
                )
            })
            .collect()
    }

    #[zbus(property)]
    fn id(&self) -> String {
        self.info.id.clone()
    }

    #[zbus(property)]
    fn aor(&self) -> String {
        self.info.aor.clone()
    }

    #[zbus(property)]
    fn display_name(&self) -> String {
        self.info.display_name.clone().unwrap_or_default()
    }

    #[zbus(property)]
    fn enabled(&self) -> bool {
        self.info.enabled
    }

    /// unregistered, registering, registered, failed or backing_off.
    #[zbus(property)]
    fn state(&self) -> String {
        self.info.state.name().into()
    }

    /// When the registration runs out unless refreshed, in µs since the Unix epoch; 0 when
    /// not registered.
    #[zbus(property)]
    fn expires(&self) -> u64 {
        match &self.info.state {
            RegState::Registered { until, .. } => unix_us(*until),
            _ => 0,
        }
    }

    /// Why the last attempt failed ("403 Forbidden", "timeout"…); empty when it did not.
    #[zbus(property)]
    fn last_error(&self) -> String {
        match &self.info.state {
            RegState::Failed { code, reason, .. } => format!("{code} {reason}"),
            RegState::BackingOff {
                code: Some(code),
                reason,
                ..
            } => format!("{code} {reason}"),
            RegState::BackingOff { reason, .. } => reason.clone(),
            _ => String::new(),
        }
    }
}

pub(super) struct Call {
    pub phone: PhoneHandle,
    pub info: CallInfo,
}

impl Call {
    async fn act(&self, action: CallAction) -> Result<(), VoipdError> {
        self.phone.call(self.info.id, action).await?;
        Ok(())
    }
}

#[interface(name = "org.voipd.Call1")]
impl Call {
    async fn answer(&self) -> Result<(), VoipdError> {
        self.act(CallAction::Answer(Endpoints::default())).await
    }

    /// Refuses a ringing call: 486 Busy Here when `busy`, else 603 Decline.
    async fn reject(&self, busy: bool) -> Result<(), VoipdError> {
        self.act(CallAction::Reject { busy }).await
    }

    async fn hangup(&self) -> Result<(), VoipdError> {
        self.act(CallAction::Hangup).await
    }

    async fn hold(&self) -> Result<(), VoipdError> {
        self.act(CallAction::Hold).await
    }

    async fn resume(&self) -> Result<(), VoipdError> {
        self.act(CallAction::Resume).await
    }

    async fn mute(&self, muted: bool) -> Result<(), VoipdError> {
        self.act(CallAction::Mute(muted)).await
    }

    /// Sends digits (0-9, *, #, A-D) as RFC 4733 telephone events.
    async fn send_dtmf(&self, digits: &str) -> Result<(), VoipdError> {
        self.phone.send_dtmf(self.info.id, digits).await?;
        Ok(())
    }

    /// Plays `file:/path.wav` or `tone:HZ` into the call once, in place of its input
    /// (`stop` stops it); `secs` cuts it (0: all of a file, a second of a tone).
    async fn play(&self, what: &str, secs: f64) -> Result<(), VoipdError> {
        self.phone.play(self.info.id, what, secs).await?;
        Ok(())
    }

    /// Records the call, both directions, into `file` (an absolute path to a new .wav file,
    /// or .opus/.ogg for Ogg/Opus; "": recordings/call-ID.wav in the state directory):
    /// stereo, ours left and theirs right, or mixed when `mono`.
    async fn record(&self, file: &str, mono: bool) -> Result<(), VoipdError> {
        let layout = if mono {
            crate::media::recording::Layout::Mono
        } else {
            crate::media::recording::Layout::Stereo
        };
        self.phone.record(self.info.id, file, layout).await?;
        Ok(())
    }

    /// Stops the recording; the file is kept.
    async fn stop_recording(&self) -> Result<(), VoipdError> {
        self.phone.stop_recording(self.info.id).await?;
        Ok(())
    }

    /// Blind transfer: asks the far side to call `target` instead; the call ends when it
    /// has (Transfer shows how it goes).
    async fn transfer(&self, target: &str) -> Result<(), VoipdError> {
        self.phone.transfer(self.info.id, target).await?;
        Ok(())
    }

    /// Attended transfer: the far side takes the place of call `other` (ours to the
    /// target); both calls end when it has.
    async fn transfer_to_call(&self, other: u64) -> Result<(), VoipdError> {
        self.phone.transfer_to_call(self.info.id, other).await?;
        Ok(())
    }

    /// Accepts or declines the far side's request to transfer this call (TransferAsked).
    async fn answer_transfer(&self, accept: bool) -> Result<(), VoipdError> {
        self.phone.answer_transfer(self.info.id, accept).await?;
        Ok(())
    }

    /// Takes apart the conference this call is in.
    async fn split(&self) -> Result<(), VoipdError> {
        self.phone.split(self.info.id).await?;
        Ok(())
    }

    /// Adds video to the call (or takes it up again), or removes it, by re-INVITE.
    async fn set_video(&self, on: bool) -> Result<(), VoipdError> {
        self.act(CallAction::Video(on.then(crate::core::VideoAsk::default)))
            .await
    }

    /// The latest picture of the call's received video, as PNG: for a widget that shows
    /// who is at the door.
    async fn snapshot(&self) -> Result<Vec<u8>, VoipdError> {
        Ok(self.phone.snapshot(self.info.id).await?)
    }

    /// The video's figures now: width, height, fps (received), send_kbps (sent in the last
    /// second), target_kbps (the encoder's aim), frames_sent,
    /// frames_received, packets_lost, malformed, key_frames_asked, nacks_sent,
    /// retransmitted, key_frames_sent_on_request. Empty when the call has no video.
    async fn video_stats(&self) -> Result<std::collections::HashMap<String, u64>, VoipdError> {
        let info = self.phone.call(self.info.id, CallAction::Get).await?;
        let Some(v) = info.video else {
            return Ok(Default::default());
        };
        let s = v.stats;
        Ok([
            ("width", u64::from(s.width)),
            ("height", u64::from(s.height)),
            ("fps", u64::from(s.fps)),
            ("send_kbps", u64::from(s.send_kbps)),
            ("target_kbps", u64::from(s.target_kbps)),
            ("frames_sent", s.frames_sent),
            ("frames_received", s.frames_received),
            ("packets_lost", s.packets_lost),
            ("malformed", s.malformed),
            ("key_frames_asked", s.key_frames_asked),
            ("nacks_sent", s.nacks_sent),
            ("retransmitted", s.retransmitted),
            ("key_frames_sent_on_request", s.key_frames_sent_on_request),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
    }

    /// The video codec, VP8 or H264 ("" when the call has no video).
    #[zbus(property)]
    fn video(&self) -> String {
        self.info
            .video
            .as_ref()
            .map(|v| v.codec)
            .unwrap_or_default()
            .into()
    }

    /// Which ways the video goes: sendrecv, sendonly, recvonly or inactive ("" when none).
    #[zbus(property)]
    fn video_direction(&self) -> String {
        self.info
            .video
            .as_ref()
            .map(|v| v.direction)
            .unwrap_or_default()
            .into()
    }

    /// The file the call is being recorded into ("" when it is not).
    #[zbus(property)]
    fn recording(&self) -> String {
        self.info
            .recording
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The conference the call is mixed into (its id; 0: none).
    #[zbus(property)]
    fn conference(&self) -> u64 {
        self.info.conference.unwrap_or_default()
    }

    /// A transfer under way, either way: whom and how far ("" when none).
    #[zbus(property)]
    fn transfer_state(&self) -> String {
        self.info.transfer.clone().unwrap_or_default()
    }

    /// The far side asks us to call this party instead ("" when it does not): see
    /// AnswerTransfer.
    #[zbus(property)]
    fn transfer_asked(&self) -> String {
        self.info.transfer_asked.clone().unwrap_or_default()
    }

    #[zbus(signal)]
    pub(super) async fn dtmf_received(emitter: &SignalEmitter<'_>, digit: &str)
    -> zbus::Result<()>;

    #[zbus(property)]
    fn id(&self) -> u64 {
        self.info.id
    }

    /// The account's id; empty for the sound test.
    #[zbus(property)]
    fn account(&self) -> String {
        self.info.account.clone().unwrap_or_default()
    }

    #[zbus(property)]
    fn remote_uri(&self) -> String {
        self.info.remote_uri.clone()
    }

    #[zbus(property)]
    fn remote_name(&self) -> String {
        self.info.remote_name.clone().unwrap_or_default()
    }

    /// The name of the contact the far side is, if it is one ("" if not).
    #[zbus(property)]
    fn contact(&self) -> String {
        self.info.contact.clone().unwrap_or_default()
    }

    /// Before the answer, what the far side said beyond ringing, e.g. "181 Call Is Being
    /// Forwarded" or "182 Queued" ("" if nothing).
    #[zbus(property)]
    fn progress(&self) -> String {
        self.info.progress.clone().unwrap_or_default()
    }

    /// Why the call has no sound, when a sound device was wanted and there is none ("" if
    /// it has).
    #[zbus(property)]
    fn audio_note(&self) -> String {
        self.info.audio_note.clone().unwrap_or_default()
    }

    /// How the media is protected, as negotiated: none, sdes or dtls (none until media
    /// runs).
    #[zbus(property)]
    fn media_encryption(&self) -> String {
        self.info.media_encryption.name().into()
    }

    /// The SIP transport the signalling goes over: udp, tcp or tls.
    #[zbus(property)]
    fn transport(&self) -> String {
        self.info.transport.param().into()
    }

    /// The answering machine took the call: it is recording the caller's message.
    #[zbus(property)]
    fn answered_by_machine(&self) -> bool {
        self.info.answered_by_machine
    }

    /// ICE on the media, when both sides have it ("" otherwise): checking, then the
    /// nominated pair's path, host, reflexive (through a NAT's mapping) or relay (through
    /// a TURN server), or failed.
    #[zbus(property)]
    fn ice(&self) -> String {
        self.info
            .ice
            .map(|i| i.state.name())
            .unwrap_or_default()
            .into()
    }

    /// incoming or outgoing.
    #[zbus(property)]
    fn direction(&self) -> String {
        match self.info.direction {
            CallDirection::Incoming => "incoming",
            CallDirection::Outgoing => "outgoing",
        }
        .into()
    }

    /// dialing, ringing, early, active, held, ending (we hung up) or ended.
    #[zbus(property)]
    fn state(&self) -> String {
        self.info.state.name().into()
    }

    #[zbus(property)]
    fn held(&self) -> bool {
        self.info.state == CallState::Held
    }

    #[zbus(property)]
    fn muted(&self) -> bool {
        self.info.muted
    }

    /// µs since the Unix epoch.
    #[zbus(property)]
    fn started_at(&self) -> u64 {
        unix_us(self.info.started)
    }

    /// µs since the Unix epoch; 0 until answered.
    #[zbus(property)]
    fn answered_at(&self) -> u64 {
        self.info.answered.map_or(0, unix_us)
    }

    #[zbus(property)]
    fn codec(&self) -> String {
        self.info.codec.clone().unwrap_or_default()
    }

    /// The SIP code and reason the call ended with (200 for a normal hang-up); 0 and empty
    /// while it runs.
    #[zbus(property)]
    fn end_code(&self) -> u16 {
        match &self.info.state {
            CallState::Ended { code, .. } => *code,
            _ => 0,
        }
    }

    #[zbus(property)]
    fn end_reason(&self) -> String {
        match &self.info.state {
            CallState::Ended { reason, .. } => reason.to_string(),
            _ => String::new(),
        }
    }
}
