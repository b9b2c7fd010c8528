//! Calls: one task per call, joining a SIP dialog and a media session. The core's task
//! keeps the list and routes in-dialog requests by Call-ID; each call task reports its
//! state back, and the core turns reports into events.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

mod transfer;
mod video;
pub(crate) use transfer::{DialogIds, Replaces, refer_to_replacing};
pub use video::VideoInfo;

use super::forward::ForwardPlan;
use super::machine::{Machine, MachinePlan};
use super::nat::{self, NatPrefs};
use super::request::{Outbound, credentials, outbound};
use crate::config::{
    Account, AnswerMode, AudioConfig, AudioEndpoint, ForwardRule, MediaEncryptionPolicy,
};
use crate::media::codec::Codec;
use crate::media::engine::MediaEngine;
use crate::media::ice::Ice;
use crate::media::mixer::ConfLeg;
use crate::media::recording::{CallRecording, Handover, Layout};
use crate::media::session::{
    LiveStats, MediaEvent, MediaOptions, MediaParams, MediaSession, MediaStats, bind,
};
use crate::media::srtp::SrtpSuite;
use crate::media::stun::MappingWatch;
use crate::sdp::{self, Direction, IceDescription, Negotiated, NegotiationError, Sdp, Security};
use crate::sip::capabilities::{ALLOW, SUPPORTED_CALL, lists_option};
use crate::sip::dialog::{Dialog, DialogError, Exchange};
use crate::sip::message::{Method, Name, NameAddr, Request, SipHeaders, reason_phrase};
use crate::sip::transaction::{Endpoint, TuRequest, TxError, random_token};
use crate::sip::transport::Target;
use crate::sip::uri::SipUri;
use crate::sip::usage::initiator::{Initiator, Invitation, Progress, status_text};
use crate::sip::usage::reliable::{Rel100, Reliable1xx};
use crate::sip::usage::session_timer::{
    Refresher, SessionTimer, TimerPolicy, ask_initial, raise_for_422,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    Incoming,
    Outgoing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    Dialing,
    Ringing,
    /// Ringing with early media flowing (a 18x with SDP).
    Early,
    Active,
    /// On hold by us (a re-INVITE with sendonly was accepted).
    Held,
    /// We hung up; the call task is saying so to the far side.
    Ending,
    Ended {
        code: u16,
        reason: EndReason,
    },
}

impl CallState {
    /// Its name as the faces show it (D-Bus, hooks, MQTT).
    pub fn name(&self) -> &'static str {
        match self {
            CallState::Dialing => "dialing",
            CallState::Ringing => "ringing",
            CallState::Early => "early",
            CallState::Active => "active",
            CallState::Held => "held",
            CallState::Ending => "ending",
            CallState::Ended { .. } => "ended",
        }
    }
}

/// Why a call ended. The faces and the history show it as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// We hung up.
    HungUp,
    /// The far side hung up.
    RemoteHungUp,
    /// We refused an incoming call (it is not a missed call).
    Rejected,
    /// We gave up on our call before it was answered.
    Cancelled,
    /// The caller gave up before we answered.
    CallerCancelled,
    /// Refused at once: do not disturb.
    DoNotDisturb,
    /// An incoming call we could not take as offered (bad SDP, no common codec, an
    /// extension or session interval that does not fit): why. Not a missed call.
    Refused(String),
    /// The call could not be set up, or the far side refused it: what it said.
    Failed(String),
    /// No RTP came for this many seconds.
    NoMedia(u64),
    /// An incoming call rang this many seconds unanswered (`sip.ring_timeout_secs`).
    NotAnswered(u64),
    /// Session timers (RFC 4028): the far side's refreshes stopped.
    SessionExpired,
    /// Session timers: our refresh failed (the far side answered 408/481, or nothing).
    RefreshFailed(String),
    /// The far side is gone (a request in the dialog got 408/481, no ACK came).
    Gone(String),
    /// The daemon stopped.
    DaemonStopped,
    /// An incoming call sent on with 302 (not a missed call): by which rule (none when a
    /// hook sent it), and where.
    Forwarded {
        rule: Option<ForwardRule>,
        to: String,
    },
    /// The answering machine took the call (a missed call, maybe with a message).
    AnsweringMachine(String),
    SoundTestOver,
    /// Passed on (a transfer of ours went through): to whom.
    Transferred(String),
    /// Something in voipd went wrong.
    Internal(String),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::HungUp => f.write_str("hung up"),
            EndReason::RemoteHungUp => f.write_str("the other side hung up"),
            EndReason::Rejected => f.write_str("rejected"),
            EndReason::Cancelled => f.write_str("cancelled"),
            EndReason::CallerCancelled => f.write_str("cancelled by the caller"),
            EndReason::DoNotDisturb => f.write_str("do not disturb"),
            EndReason::Failed(why) | EndReason::Gone(why) | EndReason::Refused(why) => {
                f.write_str(why)
            }
            EndReason::NoMedia(secs) => write!(f, "no RTP for {secs} s"),
            EndReason::NotAnswered(secs) => write!(f, "not answered in {secs} s"),
            EndReason::SessionExpired => f.write_str("the far side stopped refreshing the session"),
            EndReason::RefreshFailed(why) => write!(f, "session refresh failed: {why}"),
            EndReason::DaemonStopped => f.write_str("daemon stopped"),
            EndReason::Forwarded {
                rule: Some(rule),
                to,
            } => write!(f, "forwarded ({}) to {to}", rule.name()),
            EndReason::Forwarded { rule: None, to } => write!(f, "forwarded to {to}"),
            EndReason::AnsweringMachine(how) => write!(f, "answering machine: {how}"),
            EndReason::SoundTestOver => f.write_str("sound test over"),
            EndReason::Transferred(to) => write!(f, "transferred to {to}"),
            EndReason::Internal(why) => write!(f, "internal error: {why}"),
        }
    }
}

/// A call as the faces show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub id: u64,
    pub account: Option<String>,
    pub remote_uri: String,
    pub remote_name: Option<String>,
    /// The name of the contact the far side is, if it is one.
    pub contact: Option<String>,
    /// Before the answer: the far side's last provisional word beyond ringing (181
    /// forwarded, 182 queued, 183 progress), with its Reason text.
    pub progress: Option<String>,
    pub direction: CallDirection,
    pub state: CallState,
    pub muted: bool,
    pub started: SystemTime,
    pub answered: Option<SystemTime>,
    pub codec: Option<String>,
    /// Our RTP address and the far side's, once media runs.
    pub rtp_local: Option<SocketAddr>,
    pub rtp_remote: Option<SocketAddr>,
    pub stats: MediaStats,
    /// When the call's audio goes nowhere or comes from nowhere (no sound device): why.
    pub audio_note: Option<String>,
    /// How the call's media is protected, as negotiated (none until media runs).
    pub media_encryption: MediaEncryption,
    /// The SIP transport the call's signalling goes over.
    pub transport: crate::sip::transport::Proto,
    /// ICE on the call's media, when both sides have it.
    pub ice: Option<IceInfo>,
    /// The answering machine took the call (it is recording a message).
    pub answered_by_machine: bool,
    /// The file the call is being recorded into now, and every one it was recorded into
    /// (the history keeps them).
    pub recording: Option<std::path::PathBuf>,
    /// Every file the call was recorded into, for the history.
    pub recordings: Vec<std::path::PathBuf>,
    /// The conference the call is mixed into (its id), if any.
    pub conference: Option<u64>,
    /// A transfer under way, either way: whom, and how far it got.
    pub transfer: Option<String>,
    /// The far side asks us to call this party instead (`transfer = "ask"`).
    pub transfer_asked: Option<String>,
    /// Our transfer of this call is under way (from the command until its outcome): a
    /// second is refused.
    pub(crate) transfer_pending: bool,
    /// The sound test (dial "echo"): no far side to hold, record, mix or transfer.
    pub(crate) sound_test: bool,
    /// The SIP dialog's ids, once established (for Replaces; not shown).
    pub(crate) dialog: Option<DialogIds>,
    /// The call's video, while it has some.
    pub video: Option<VideoInfo>,
}

/// How far ICE got on a call's media, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceInfo {
    /// Where the checks are.
    pub state: IceState,
    /// Gathering our candidates (STUN answers, the TURN allocation) before our SDP.
    pub gathering: Duration,
    /// From the start of the checks (the caller's at the answer, the answerer's once the
    /// media starts) to the nominated pair.
    pub checks: Option<Duration>,
}

/// ICE's phase on a call's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    /// Connectivity checks run.
    Checking,
    /// A pair is nominated; media goes over it.
    Connected(crate::media::ice::IcePath),
    /// No pair works, or the far side stopped consenting.
    Failed,
}

impl IceState {
    /// Its short name: "checking", "host", "reflexive", "relay" or "failed".
    pub fn name(self) -> &'static str {
        match self {
            IceState::Checking => "checking",
            IceState::Connected(path) => path.name(),
            IceState::Failed => "failed",
        }
    }
}

/// How a call's media is protected on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MediaEncryption {
    /// Clear RTP.
    #[default]
    None,
    /// SRTP keyed in the SDP (RFC 4568).
    Sdes,
    /// SRTP keyed by a DTLS handshake on the media path (RFC 5763/5764).
    Dtls,
}

impl MediaEncryption {
    /// As the faces and the history name it.
    pub fn name(self) -> &'static str {
        match self {
            MediaEncryption::None => "none",
            MediaEncryption::Sdes => "sdes",
            MediaEncryption::Dtls => "dtls",
        }
    }
}

/// Audio endpoints for one call, instead of the configured ones, and video asked for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoints {
    pub input: Option<AudioEndpoint>,
    pub output: Option<AudioEndpoint>,
    pub video: Option<VideoAsk>,
}

/// Video asked for one call: on, at this size and rate (None: the configuration's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoAsk {
    pub size: Option<(usize, usize)>,
    pub fps: Option<u32>,
}

impl VideoAsk {
    /// Video asked for a call being dialled or answered (`on`), at `size` ("" for the
    /// configuration's) and `fps` (0 likewise); a size or rate without it is refused.
    pub fn for_call(on: bool, size: &str, fps: u32) -> Result<Option<VideoAsk>, super::CoreError> {
        let ask = VideoAsk::parse(size, fps, ("video_size", "video_fps"))?;
        match (on, ask == VideoAsk::default()) {
            (true, _) => Ok(Some(ask)),
            (false, true) => Ok(None),
            (false, false) => Err(super::CoreError::InvalidArgument {
                field: "video_size",
                message: "a size or rate needs video".into(),
            }),
        }
    }

    /// From the faces' text: `size` "WxH" or empty, `fps` 1-30 or 0; errors name
    /// `field_size` / `field_fps`.
    pub fn parse(
        size: &str,
        fps: u32,
        (field_size, field_fps): (&'static str, &'static str),
    ) -> Result<VideoAsk, super::CoreError> {
        let size = match size {
            "" => None,
            s => Some(crate::config::parse_size(s).map_err(|message| {
                super::CoreError::InvalidArgument {
                    field: field_size,
                    message,
                }
            })?),
        };
        let fps = match fps {
            0 => None,
            1..=30 => Some(fps),
            _ => {
                return Err(super::CoreError::InvalidArgument {
                    field: field_fps,
                    message: format!("{fps} is not between 1 and 30"),
                });
            }
        };
        Ok(VideoAsk { size, fps })
    }
}

impl Endpoints {
    /// From their text as in the configuration; empty means "as configured".
    pub fn parse(input: String, output: String) -> Result<Endpoints, super::CoreError> {
        let parse =
            |field: &'static str, s: String| -> Result<Option<AudioEndpoint>, super::CoreError> {
                if s.is_empty() {
                    return Ok(None);
                }
                let bad = |message: String| super::CoreError::InvalidArgument { field, message };
                let ep = AudioEndpoint::try_from(s).map_err(bad)?;
                ep.check_absolute().map_err(bad)?;
                if field == "output" && matches!(ep, AudioEndpoint::Tone(_)) {
                    return Err(bad("a tone can only be an input".into()));
                }
                Ok(Some(ep))
            };
        Ok(Endpoints {
            input: parse("input", input)?,
            output: parse("output", output)?,
            video: None,
        })
    }

    pub(super) fn apply(&self, ctx: &mut CallContext) {
        if let Some(i) = &self.input {
            ctx.audio.input = i.clone();
        }
        if let Some(o) = &self.output {
            ctx.audio.output = o.clone();
        }
        if let Some(v) = self.video {
            ctx.video_asked = true;
            video::ask(&mut ctx.video, v);
        }
    }
}

/// `{id}` in a file path becomes the call's id, so that each call can have its own file.
fn for_call(ep: &AudioEndpoint, id: u64) -> AudioEndpoint {
    let sub = |p: &std::path::Path| {
        std::path::PathBuf::from(p.to_string_lossy().replace("{id}", &id.to_string()))
    };
    match ep {
        AudioEndpoint::File(p) => AudioEndpoint::File(sub(p)),
        AudioEndpoint::FileOnce(p) => AudioEndpoint::FileOnce(sub(p)),
        other => other.clone(),
    }
}

#[derive(Debug)]
pub(super) enum CallCommand {
    Answer(Box<Endpoints>),
    /// Refuse a ringing call with this status (486 busy, 603 decline).
    Reject(u16),
    Hangup,
    /// voipd is stopping: hang up, or forward a ringing call as `unavailable` says.
    Stop,
    Hold,
    Resume,
    Mute(bool),
    Dtmf(String),
    /// A ringing call: send it on with 302 (a hook's `forward`).
    Forward(Box<crate::sip::uri::SipUri>),
    /// A ringing call: the hooks that had a say are done; the answer mode goes on.
    Proceed,
    /// An established call: play this into it instead of its input (None: stop).
    Play(Option<crate::media::record::Prompt>),
    /// An established call: record it into this (None: stop recording).
    Record(Option<Handover>),
    /// An established call: mix it into conference `id` (None: take it out).
    Conference(Option<Box<(u64, ConfLeg)>>),
    /// An established call: ask the far side to call `refer_to` (a Refer-To value,
    /// first) instead of us; `target` (second) names it in the call's figures.
    Transfer(Box<(String, String)>),
    /// The user's decision on the far side's transfer.
    AnswerTransfer(bool),
    /// An established call: add (or take up again) video, at this size and rate, or
    /// remove it (None).
    Video(Option<Box<VideoAsk>>),
    /// Another call rings (or no longer does): the call-waiting tone in our output.
    WaitingTone(bool),
    /// How the call the far side asked for goes (its status), for a NOTIFY.
    ReferProgress {
        code: u16,
        reason: String,
    },
    Request(Box<TuRequest>),
}

// The rare large payloads are boxed: a command is held in the call's queue and across
// the awaits of its handling, in every call's task.
const _: () = assert!(std::mem::size_of::<CallCommand>() <= 32);

/// What call tasks tell the core.
#[derive(Debug)]
pub(super) enum CallUpdate {
    Info(Box<CallInfo>),
    Dtmf {
        id: u64,
        digit: char,
    },
    /// The far side asks call `id` to be passed on: the core places the new call.
    Referred {
        id: u64,
        target: SipUri,
        replaces: Option<String>,
        referred_by: Option<String>,
    },
    /// An ended call is in the history now.
    Recorded {
        missed_unseen: u32,
    },
    /// Not a call's: a text message was kept (the core's news all come this way).
    MessageReceived(Box<crate::store::MessageEntry>),
    /// A message we send was queued, delivered or failed.
    MessageChanged(Box<crate::store::MessageEntry>),
    /// What a presence subscription learnt of an address.
    Presence {
        address: String,
        presence: super::presence::Presence,
    },
    /// How many incoming messages are unread now (one more came).
    Unread(u32),
    /// Our presence as the user last set it, read at start.
    OwnPresence(super::presence::Presence),
    /// Call forwarding set live, as the store kept it.
    LiveForwarding(Vec<crate::store::LiveForward>),
    /// The answering machine kept a message.
    VoicemailKept(Box<super::machine::Kept>),
    /// The provider's voicemail summary for an account (RFC 3842).
    MessageSummary {
        account: String,
        summary: super::mwi::MessageSummary,
    },
    /// The address book as it is now, from the n-th read (after a change).
    Contacts(u64, Vec<crate::store::Contact>),
    /// Registrars and outbound proxies (by URI) and the addresses DNS gave for them now.
    Providers(Vec<(String, Vec<std::net::IpAddr>)>),
}

/// What a call task needs from the core.
#[derive(Clone)]
pub(super) struct CallContext {
    pub ep: Endpoint,
    pub audio: AudioConfig,
    /// How long an incoming call may ring.
    pub ring_timeout: Duration,
    pub updates: mpsc::Sender<CallUpdate>,
    pub media: MediaEngine,
    /// Where recordings go that were not given a file (`record = "always"`, `voipctl
    /// record start` without `--to`).
    pub recordings: std::path::PathBuf,
    /// What video streams send, and where received video goes.
    pub video: crate::media::video_stream::VideoSettings,
    /// The user asked for video in this call (whatever the account's `video`).
    pub video_asked: bool,
}

struct Call {
    ctx: CallContext,
    info: CallInfo,
    commands: flume::Receiver<CallCommand>,
    prefs: MediaPrefs,
    video: video::VideoPrefs,
    /// Ports bound for a video stream offered or answered, until it starts.
    video_ports: Option<crate::media::session::VideoPorts>,
    /// Where our media is bound and how the registrar sees us, and ICE's role on the
    /// call's audio (None: no ICE): a video stream added later is planned the same way.
    media_ips: Option<(std::net::IpAddr, std::net::IpAddr)>,
    ice_role: Option<bool>,
    live: Arc<LiveStats>,
    ext: Extensions,
    /// The session timer in force (RFC 4028) and when the session was last refreshed.
    timer: Option<SessionTimer>,
    refreshed: tokio::time::Instant,
    /// The far side takes UPDATE: session refreshes need no new offer.
    peer_update: bool,
    /// The STUN watch on the RTP port's mapping, the RTCP port and the ICE agent, handed
    /// to the stream when media starts.
    mapping: Option<MappingWatch>,
    rtcp: Option<std::net::UdpSocket>,
    ice: Option<Box<Ice>>,
    /// The answering machine, when it took this call.
    machine: Option<Box<Machine>>,
    /// Recorded from the answer on (the account's `record = "always"`).
    record_always: bool,
    /// What a REFER from the far side gets.
    transfer_policy: crate::config::TransferPolicy,
    /// Our transfer of the call, and the far side's, when under way.
    transferring: Option<transfer::Transferring>,
    referred: Option<Box<transfer::Referred>>,
}

/// What the call's account asks of its media.
#[derive(Debug, Clone)]
struct MediaPrefs {
    codecs: Vec<Codec>,
    encryption: MediaEncryptionPolicy,
    suites: Vec<SrtpSuite>,
    nat: NatPrefs,
}

impl MediaPrefs {
    fn of(account: &Option<Account>) -> MediaPrefs {
        match account {
            Some(a) => MediaPrefs {
                codecs: a.codecs.clone(),
                encryption: a.media_encryption,
                suites: a.srtp_suites.clone(),
                nat: NatPrefs {
                    stun: a.stun.clone(),
                    ice: a.ice,
                    turn: a.turn.clone(),
                    // With the registration's keepalives: 25 s unless the account says.
                    refresh: match a.keepalive_secs.unwrap_or(25) {
                        0 => None,
                        s => Some(Duration::from_secs(u64::from(s))),
                    },
                },
            },
            None => MediaPrefs {
                codecs: crate::media::codec::CODECS
                    .iter()
                    .map(|c| c.codec)
                    .collect(),
                encryption: MediaEncryptionPolicy::None,
                suites: SrtpSuite::ALL.to_vec(),
                nat: NatPrefs::default(),
            },
        }
    }

    fn security(&self) -> Security<'_> {
        Security {
            policy: self.encryption,
            suites: &self.suites,
        }
    }
}

/// A 488 for an offer we cannot take, saying why in a Warning (RFC 3261 §20.43; 399:
/// miscellaneous, 304: media type not available).
fn not_acceptable(
    mut r: crate::sip::message::Response,
    e: &NegotiationError,
) -> crate::sip::message::Response {
    let code = match e {
        NegotiationError::NoCommonCodec(_) => 305,
        NegotiationError::NoAudio => 304,
        _ => 399,
    };
    let text = e.to_string().replace(['"', '\\'], "'");
    r.headers
        .push(Name::Warning, format!("{code} voipd \"{text}\""));
    r
}

fn encryption_of(n: &Negotiated) -> MediaEncryption {
    match (&n.srtp, &n.dtls) {
        (_, Some(_)) => MediaEncryption::Dtls,
        (Some(_), None) => MediaEncryption::Sdes,
        (None, None) => MediaEncryption::None,
    }
}

/// How the call's account wants SIP extensions used.
#[derive(Debug, Clone, Copy, Default)]
struct Extensions {
    rel100: Rel100,
    timers: TimerPolicy,
}

impl Extensions {
    fn of(account: &Option<Account>) -> Extensions {
        account
            .as_ref()
            .map_or_else(Extensions::default, |a| Extensions {
                rel100: a.rel100,
                timers: a.session_timer,
            })
    }

    /// Supported on our INVITEs and their answers.
    fn supported(self) -> String {
        match self.rel100 {
            Rel100::Off => SUPPORTED_CALL.to_string(),
            _ => format!("{SUPPORTED_CALL}, 100rel"),
        }
    }
}

/// Why a request of ours in the dialog means the call is to be ended.
#[derive(Debug)]
enum DialogGone {
    /// No answer, 408 or 481 (RFC 3261 §12.2.1.2, RFC 4028 §10): the far side is gone.
    Gone(String),
    /// An answer the call cannot go on with (one that drops its media encryption).
    Refused(String),
}

impl DialogGone {
    /// Why the call ended, for a refresh or for a hold or resume.
    fn reason(self, refreshing: bool) -> EndReason {
        match self {
            DialogGone::Gone(why) if refreshing => EndReason::RefreshFailed(why),
            DialogGone::Gone(why) => EndReason::Gone(format!("the far side is gone: {why}")),
            DialogGone::Refused(why) => EndReason::Failed(why),
        }
    }
}

/// A call task that stops without ending its call (a bug, a panic) still ends it: the
/// core hears of it at once instead of keeping a ghost.
impl Drop for Call {
    fn drop(&mut self) {
        if matches!(self.info.state, CallState::Ended { .. }) {
            return;
        }
        let mut info = self.info.clone();
        info.state = CallState::Ended {
            code: 500,
            reason: EndReason::Internal("the call's task stopped".into()),
        };
        tracing::error!(
            call_id = info.id,
            "the call's task stopped; ending the call"
        );
        if self
            .ctx
            .updates
            .try_send(CallUpdate::Info(Box::new(info)))
            .is_err()
        {
            tracing::error!(
                call_id = self.info.id,
                "the core did not hear that the call ended"
            );
        }
    }
}

/// The core's side of a call task.
pub(super) struct CallHandle {
    pub commands: flume::Sender<CallCommand>,
    pub live: Arc<LiveStats>,
    /// The call as it starts, until its task reports.
    pub info: CallInfo,
}

fn params(n: &Negotiated, muted: bool) -> MediaParams {
    MediaParams {
        codec: n.codec,
        pt: n.pt,
        dtmf_pt: n.dtmf_pt,
        remote: n.remote,
        send: matches!(n.direction, Direction::SendRecv | Direction::SendOnly),
        receive: matches!(n.direction, Direction::SendRecv | Direction::RecvOnly),
        muted,
        fec: n.codec == Codec::Opus && n.fmtp_flag("useinbandfec"),
        dtx: n.codec == Codec::Opus && n.fmtp_flag("usedtx"),
        srtp: n.srtp.clone(),
        dtls: n.dtls.clone(),
        rtcp_mux: n.rtcp_mux,
    }
}

/// Our Contact towards `target` (over TCP or TLS it says so, or in-dialog requests would
/// come by UDP).
pub(super) fn contact(user: &str, local: SocketAddr, target: Target) -> String {
    let transport = match target.proto {
        crate::sip::transport::Proto::Udp => String::new(),
        p => format!(";transport={}", p.param()),
    };
    format!("<sip:{user}@{local}{transport}>")
}

/// DTMF carried in SIP INFO (application/dtmf-relay or application/dtmf).
fn info_digit(req: &Request) -> Option<char> {
    let ct = req.headers.get(&Name::ContentType)?.to_ascii_lowercase();
    let body = std::str::from_utf8(&req.body).ok()?;
    let v = if ct.starts_with("application/dtmf-relay") {
        body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ct.starts_with("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    let c = v.chars().next()?;
    crate::media::dtmf::event_code(c).map(|_| c.to_ascii_uppercase())
}

/// The media state of an established call.
struct Media {
    session: MediaSession,
    events: flume::Receiver<MediaEvent>,
    /// Our last description, resent (with a new version) in re-INVITEs and answers.
    ours: Sdp,
    negotiated: Negotiated,
    /// What the last exchange agreed for video, while it runs.
    video: Option<crate::sdp::video::NegotiatedVideo>,
}

impl Call {
    /// A call of `account`'s (None: a direct IP call), before anything is under way.
    fn new(
        ctx: CallContext,
        info: CallInfo,
        commands: flume::Receiver<CallCommand>,
        live: Arc<LiveStats>,
        account: &Option<Account>,
    ) -> Call {
        let asked = ctx.video_asked;
        Call {
            ctx,
            info,
            commands,
            prefs: MediaPrefs::of(account),
            video: video::VideoPrefs::of(account, asked),
            video_ports: None,
            media_ips: None,
            ice_role: None,
            live,
            ext: Extensions::of(account),
            timer: None,
            refreshed: tokio::time::Instant::now(),
            peer_update: false,
            mapping: None,
            rtcp: None,
            ice: None,
            machine: None,
            record_always: account
                .as_ref()
                .is_some_and(|a| a.record == crate::config::RecordPolicy::Always),
            transfer_policy: account
                .as_ref()
                .map_or_else(Default::default, |a| a.transfer),
            transferring: None,
            referred: None,
        }
    }

    /// The sound device could not be had: the call says so to whoever shows it.
    async fn no_sound(&mut self, why: &str, input: bool, output: bool) {
        self.info.audio_note = Some(no_sound(why, input, output));
        self.report().await;
    }

    async fn report(&self) {
        let _ = self
            .ctx
            .updates
            .send(CallUpdate::Info(Box::new(self.info.clone())))
            .await;
    }

    async fn set(&mut self, state: CallState) {
        if let CallState::Ended { code, reason } = &state {
            tracing::info!(call_id = self.info.id, "call ended: {code} {reason}");
        }
        self.info.state = state;
        self.report().await;
    }

    /// ICE moved on; `checks`, at a nomination, is how long after its checks began (the
    /// first one's stays).
    async fn ice_state(&mut self, state: IceState, checks: Option<Duration>) {
        let Some(info) = &mut self.info.ice else {
            return;
        };
        info.state = state;
        info.checks = info.checks.or(checks);
        self.report().await;
    }

    async fn end(&mut self, code: u16, reason: EndReason) {
        self.set(CallState::Ended { code, reason }).await;
    }

    fn start_media(&mut self, rtp: std::net::UdpSocket, n: Negotiated, ours: Sdp) -> Media {
        let ice = match (self.ice.take(), &n.ice) {
            (Some(mut ice), Some(theirs)) => {
                let bad = ice.set_remote(&theirs.ufrag, &theirs.pwd, &theirs.candidates);
                if bad > 0 {
                    tracing::info!(
                        call_id = self.info.id,
                        "ICE: {bad} of the far side's candidates do not parse"
                    );
                }
                self.info.ice = Some(IceInfo {
                    state: IceState::Checking,
                    gathering: ice.gathering_time(),
                    checks: None,
                });
                Some(ice)
            }
            (Some(_), None) => {
                tracing::info!(
                    call_id = self.info.id,
                    "the far side has no ICE; media goes where its SDP says"
                );
                // Nor for video added later.
                self.ice_role = None;
                None
            }
            (None, _) => None,
        };
        self.info.rtp_local = rtp.local_addr().ok();
        self.info.rtp_remote = Some(n.remote);
        let (tx, events) = flume::bounded(32);
        let timeout = (self.ctx.audio.rtp_timeout_secs > 0)
            .then(|| Duration::from_secs(u64::from(self.ctx.audio.rtp_timeout_secs)));
        self.info.media_encryption = encryption_of(&n);
        let session = MediaSession::start(
            &self.ctx.media,
            &n.mid,
            rtp,
            params(&n, self.info.muted),
            MediaOptions {
                input: &for_call(&self.ctx.audio.input, self.info.id),
                output: &for_call(&self.ctx.audio.output, self.info.id),
                dtmf: self.ctx.audio.dtmf,
                timeout,
                events: tx,
                live: self.live.clone(),
                mapping: self.mapping.take(),
                rtcp: self.rtcp.take(),
                ice,
            },
        );
        self.info.codec = Some(n.codec.name().into());
        Media {
            session,
            events,
            ours,
            negotiated: n,
            video: None,
        }
    }

    async fn bye(&self, dialog: &mut Dialog) {
        // The call is over for us at once; the BYE finishes on its own.
        let bye = dialog.request(Method::Bye, None);
        dialog.send_detached(&self.ctx.ep, bye);
    }

    /// Sends a re-INVITE or UPDATE of ours, with the session timer in force (every such
    /// request refreshes it) and one retry after a 422. The 2xx exchange, None when it was
    /// refused; Err when the far side is gone (408, 481, no answer).
    async fn modify(
        &mut self,
        dialog: &mut Dialog,
        mut req: Request,
    ) -> Result<Option<Exchange>, DialogGone> {
        req.headers.push(Name::Supported, self.ext.supported());
        if let Some(t) = self.timer {
            t.ask(self.ext.timers, &mut req);
        }
        let mut raised = false;
        loop {
            let x = match dialog.transact(&self.ctx.ep, req.clone()).await {
                Ok(x) => x,
                // No answer at all: the far side is gone (RFC 3261 §12.2.1.2).
                Err(e @ DialogError::Transaction(TxError::Timeout)) => {
                    return Err(DialogGone::Gone(e.to_string()));
                }
                Err(e) => {
                    tracing::info!(call_id = self.info.id, "{} failed: {e}", req.method);
                    return Ok(None);
                }
            };
            let r = &x.response;
            match r.code {
                200..=299 => {
                    if self.timer.is_some() {
                        self.timer = SessionTimer::from_answer(r, self.ext.timers.min_se);
                    }
                    self.refreshed = tokio::time::Instant::now();
                    return Ok(Some(x));
                }
                422 if !raised && raise_for_422(r, &mut req) => {
                    raised = true;
                    dialog.renumber(&mut req);
                }
                408 | 481 => {
                    return Err(DialogGone::Gone(format!("{} {}", r.code, r.reason)));
                }
                _ => {
                    tracing::info!(
                        call_id = self.info.id,
                        "{} refused: {} {}",
                        req.method,
                        r.code,
                        r.reason
                    );
                    return Ok(None);
                }
            }
        }
    }

    /// A re-INVITE of ours (hold, resume, or a session refresh): offers `direction`; true
    /// if accepted.
    async fn reinvite(
        &mut self,
        dialog: &mut Dialog,
        media: &mut Media,
        direction: Direction,
    ) -> Result<bool, DialogGone> {
        let mut offer = media.ours.clone();
        offer.session_version += 1;
        if let Some(m) = sdp::in_use(&mut offer) {
            m.direction = direction;
        }
        // On hold the picture stops too; resuming brings back what the call does.
        let held = direction == Direction::SendOnly;
        if let Some(m) = offer
            .media
            .iter_mut()
            .find(|m| m.kind == "video" && m.port != 0)
        {
            m.direction = match held {
                true => Direction::Inactive,
                false => self.video.mode.direction(),
            };
        }
        if let Err(e) = sdp::rekey(&mut offer) {
            tracing::warn!(call_id = self.info.id, "no re-INVITE: {e}");
            return Ok(false);
        }
        self.refresh_contact(dialog).await;
        let mut inv = dialog.request(Method::Invite, None);
        inv.headers.push(Name::ContentType, "application/sdp");
        inv.body = offer.to_string().into_bytes();
        let Some(exchange) = self.modify(dialog, inv).await? else {
            return Ok(false);
        };
        let answer = exchange.response.body.clone();
        dialog.confirm(&self.ctx.ep, exchange).await;
        if let Ok(n) = Sdp::parse(&answer)
            .map_err(|e| e.to_string())
            .and_then(|a| sdp::read_answer(&offer, &a).map_err(|e| e.to_string()))
        {
            let mut p = params(&n, self.info.muted);
            // On hold we send nothing, not even silence: the far side plays its own
            // hold indication, and no microphone audio leaks out.
            if direction == Direction::SendOnly {
                p.send = false;
                p.receive = false;
            }
            // Encrypted calls stay encrypted: an answer without keys ends the call rather
            // than sending the rest of it in clear.
            if self.info.media_encryption != MediaEncryption::None
                && encryption_of(&n) == MediaEncryption::None
            {
                return Err(DialogGone::Refused(
                    "the far side's answer drops media encryption".into(),
                ));
            }
            media.session.update(&n.mid, p);
            self.info.media_encryption = encryption_of(&n);
            media.negotiated = n;
            let v = self.video_answered(&offer, &answer);
            self.video_follow(media, v, held).await;
        }
        media.ours = offer;
        Ok(true)
    }

    /// Our Contact as the next hop sees us now, for a target refresh (RFC 3261 §12.2):
    /// behind a NAT that moved our signalling port, the far side's requests in the dialog
    /// (its BYE) would go on to the port that is gone.
    async fn refresh_contact(&self, dialog: &mut Dialog) {
        let Ok(hop) = dialog.next_hop(&self.ctx.ep).await else {
            return;
        };
        let Some(public) = self.ctx.ep.transport().public_for(hop) else {
            return;
        };
        let user = NameAddr::parse(&dialog.contact)
            .ok()
            .and_then(|n| match n.uri {
                crate::sip::uri::Uri::Sip(u) => u.user,
                _ => None,
            })
            .unwrap_or_else(|| "voipd".into());
        let now = contact(&user, public, hop);
        if now != dialog.contact {
            tracing::info!(call_id = self.info.id, "our Contact is {now} now");
            dialog.contact = now;
        }
    }

    /// `record = "always"`: a recording from the answer, in the recordings directory.
    async fn record_from_answer(&mut self, media: &Media) {
        let (dir, id) = (self.ctx.recordings.clone(), self.info.id);
        let rate = crate::media::codec::sample_rate(media.negotiated.codec);
        let made = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            CallRecording::create(
                &crate::media::recording::free_path(&dir, id),
                rate,
                Layout::Stereo,
            )
        })
        .await;
        match made {
            Ok(Ok(r)) => {
                tracing::info!(call_id = id, "recording into {}", r.path().display());
                self.info.recording = Some(r.path().to_path_buf());
                self.info.recordings.push(r.path().to_path_buf());
                media.session.record(Some(r));
            }
            Ok(Err(e)) => tracing::warn!(call_id = id, "not recorded (record = \"always\"): {e}"),
            Err(_) => {}
        }
    }

    /// Takes what a media plan made for the stream to come.
    fn adopt(&mut self, plan: nat::MediaPlan) {
        self.mapping = plan.mapping;
        self.rtcp = plan.rtcp;
        self.ice = plan.ice;
    }

    /// The NAT moved our RTP port to `at`: a re-INVITE tells the far side, whose media
    /// would otherwise go to a mapping that is gone. True when it was accepted.
    async fn moved(
        &mut self,
        dialog: &mut Dialog,
        media: &mut Media,
        at: SocketAddr,
    ) -> Result<bool, DialogGone> {
        tracing::info!(
            call_id = self.info.id,
            "our RTP port is {at} outside now; re-INVITE"
        );
        let ours = &mut media.ours;
        ours.origin_addr = at.ip();
        if ours.connection.is_some() {
            ours.connection = Some(at.ip());
        }
        let mut direction = Direction::SendRecv;
        if let Some(m) = sdp::in_use(ours) {
            m.port = at.port();
            if m.connection.is_some() {
                m.connection = Some(at.ip());
            }
            direction = m.direction;
        }
        self.reinvite(dialog, media, direction).await
    }

    /// Refreshes the session (RFC 4028): an UPDATE without a body where the far side takes
    /// UPDATE, else a re-INVITE with our description as it is. True when it was accepted.
    async fn refresh(
        &mut self,
        dialog: &mut Dialog,
        media: &mut Media,
    ) -> Result<bool, DialogGone> {
        tracing::info!(
            call_id = self.info.id,
            "session refresh by {}",
            if self.peer_update {
                "UPDATE"
            } else {
                "re-INVITE"
            }
        );
        if self.peer_update {
            let update = dialog.request(Method::Update, None);
            Ok(self.modify(dialog, update).await?.is_some())
        } else {
            let direction =
                sdp::in_use(&mut media.ours).map_or(Direction::SendRecv, |m| m.direction);
            Box::pin(self.reinvite(dialog, media, direction)).await
        }
    }

    /// Answers a re-INVITE or UPDATE from the far side: follows a new description (or
    /// offers ours to an offerless re-INVITE) and takes the session timer it asks for.
    async fn answer_modify(&mut self, tu: &TuRequest, dialog: &Dialog, media: &mut Media) {
        let req = &tu.request;
        let timer = match SessionTimer::for_request(self.ext.timers, req) {
            Ok(t) => t,
            Err(min_se) => {
                let mut r = req.response(422, "Session Interval Too Small");
                r.headers.push(Name::MinSe, min_se.to_string());
                return tu.tx.respond(r).await;
            }
        };
        let mut resp = if !req.body.is_empty() {
            let port = sdp::in_use(&mut media.ours).map_or(0, |m| m.port);
            let answer = Sdp::parse(&req.body)
                .map_err(|e| NegotiationError::BadCrypto(format!("bad SDP: {e}")))
                .and_then(|offer| {
                    let (mut ans, mut n) = sdp::answer(
                        &offer,
                        &self.prefs.codecs,
                        media.ours.origin_addr,
                        port,
                        media.ours.session_id,
                        self.prefs.security(),
                    )?;
                    sdp::keep_dtls_role(&offer, &mut ans, &mut n, media.negotiated.dtls.as_ref());
                    Ok((ans, n))
                })
                .and_then(|(ans, n)| {
                    // Encrypted calls stay encrypted.
                    if self.info.media_encryption != MediaEncryption::None
                        && encryption_of(&n) == MediaEncryption::None
                    {
                        return Err(NegotiationError::EncryptionRequired);
                    }
                    Ok((ans, n))
                });
            match answer {
                Ok((mut ans, n)) => {
                    ans.session_version = media.ours.session_version + 1;
                    let video = match Sdp::parse(&req.body) {
                        Ok(offer) => self.answer_video(&offer, &mut ans, Some(media)).await,
                        Err(_) => None,
                    };
                    // The same ICE session goes on: our credentials and candidates again.
                    if let (Some(from), Some(to)) =
                        (sdp::in_use_of(&media.ours), sdp::in_use(&mut ans))
                    {
                        IceDescription::carry(from, to);
                    }
                    media.session.update(&n.mid, params(&n, self.info.muted));
                    if encryption_of(&n) != self.info.media_encryption {
                        self.info.media_encryption = encryption_of(&n);
                        self.report().await;
                    }
                    media.negotiated = n;
                    media.ours = ans;
                    // The video as it runs: refused in our answer if it cannot.
                    self.video_follow(media, video, false).await;
                    let mut r = req.response(200, "OK");
                    r.headers.push(Name::ContentType, "application/sdp");
                    r.body = media.ours.to_string().into_bytes();
                    r
                }
                Err(e) => {
                    tracing::info!(call_id = self.info.id, "refused a new offer: {e}");
                    let r = not_acceptable(req.response(488, reason_phrase(488)), &e);
                    return tu.tx.respond(r).await;
                }
            }
        } else {
            let mut r = req.response(200, "OK");
            // An offerless re-INVITE (a refresh, often) gets our description unchanged.
            if req.method == Method::Invite {
                r.headers.push(Name::ContentType, "application/sdp");
                r.body = media.ours.to_string().into_bytes();
            }
            r
        };
        resp.headers.push(Name::Contact, dialog.contact.clone());
        resp.headers.push(Name::Supported, self.ext.supported());
        if let Some(t) = timer {
            t.answer(req, &mut resp);
        }
        self.timer = timer;
        self.refreshed = tokio::time::Instant::now();
        tu.tx.respond(resp).await;
    }

    /// Tells the core of a digit the far side sent (as an RFC 4733 event, a tone or an
    /// INFO).
    async fn digit_heard(&self, digit: char) {
        let id = self.info.id;
        let _ = self.ctx.updates.send(CallUpdate::Dtmf { id, digit }).await;
    }

    /// One event of an established call. Some: the call is over, with this status and
    /// reason.
    async fn on_wake(
        &mut self,
        wake: Wake,
        dialog: &mut Dialog,
        media: &mut Media,
        refresh_retry: &mut Option<tokio::time::Instant>,
        digits: &mut OnceDigits,
    ) -> Option<(u16, EndReason)> {
        match wake {
            Wake::TransferDue => {
                if let Err(gone) = Box::pin(self.transfer_timeout(dialog, media)).await {
                    self.bye(dialog).await;
                    return Some((408, gone.reason(false)));
                }
            }
            Wake::MachineCheck => {
                if let Some(why) = self.machine.as_ref().and_then(|m| m.over()) {
                    tracing::info!(
                        call_id = self.info.id,
                        "answering machine: {why}; hanging up"
                    );
                    self.bye(dialog).await;
                    return Some((200, EndReason::HungUp));
                }
            }
            Wake::TimerDue => {
                match self.timer {
                    Some(t) if t.refresher == Refresher::Us => {
                        // Refused refreshes are tried again, a little later each time,
                        // until the session would have expired.
                        if tokio::time::Instant::now() >= self.refreshed + t.expire_after() {
                            self.bye(dialog).await;
                            return Some((
                                408,
                                EndReason::RefreshFailed("no refresh was accepted in time".into()),
                            ));
                        }
                        match Box::pin(self.refresh(dialog, media)).await {
                            Ok(true) => *refresh_retry = None,
                            Ok(false) => {
                                let wait = (t.refresh_after() / 4)
                                    .clamp(Duration::from_secs(1), Duration::from_secs(30));
                                *refresh_retry = Some(tokio::time::Instant::now() + wait);
                            }
                            Err(gone) => {
                                self.bye(dialog).await;
                                return Some((408, gone.reason(true)));
                            }
                        }
                    }
                    Some(_) => {
                        tracing::warn!(
                            call_id = self.info.id,
                            "the far side did not refresh the session"
                        );
                        self.bye(dialog).await;
                        return Some((408, EndReason::SessionExpired));
                    }
                    None => {}
                }
            }
            Wake::Media(ev) => match ev {
                MediaEvent::Dtmf(digit) if digits.fresh(digit, false) => {
                    self.digit_heard(digit).await;
                }
                // The same press, by INFO a moment ago.
                MediaEvent::Dtmf(_) => {}
                MediaEvent::Timeout(after) => {
                    tracing::warn!(
                        call_id = self.info.id,
                        "no RTP for {}s; the far side is gone",
                        after.as_secs()
                    );
                    self.bye(dialog).await;
                    return Some((408, EndReason::NoMedia(after.as_secs())));
                }
                MediaEvent::NoSound { why, input, output } => {
                    self.no_sound(&why, input, output).await;
                }
                MediaEvent::EncryptionFailed(why) => {
                    self.bye(dialog).await;
                    return Some((
                        488,
                        EndReason::Failed(format!("media encryption failed: {why}")),
                    ));
                }
                MediaEvent::IceSelected(pair, after) => {
                    tracing::info!(
                        call_id = self.info.id,
                        "ICE: media to {} ({}){}",
                        pair.remote,
                        pair.path.name(),
                        if pair.relayed {
                            " through our TURN relay"
                        } else {
                            ""
                        }
                    );
                    self.ice_state(IceState::Connected(pair.path), Some(after))
                        .await;
                }
                // RTCP is best effort: without its path the call goes on without reports.
                MediaEvent::IceFailed(2) | MediaEvent::ConsentLost(2) => {
                    tracing::info!(
                        call_id = self.info.id,
                        "ICE: no path for RTCP; the call goes on without it"
                    );
                }
                MediaEvent::IceFailed(_) => {
                    self.ice_state(IceState::Failed, None).await;
                    self.bye(dialog).await;
                    return Some((
                        488,
                        EndReason::Failed("ICE found no path for the media".into()),
                    ));
                }
                MediaEvent::ConsentLost(_) => {
                    self.ice_state(IceState::Failed, None).await;
                    self.bye(dialog).await;
                    return Some((
                        408,
                        EndReason::Failed(
                            "the far side stopped answering ICE consent checks".into(),
                        ),
                    ));
                }
                MediaEvent::RecordingFailed(why) => {
                    tracing::warn!(call_id = self.info.id, "the recording stopped: {why}");
                    self.info.recording = None;
                    self.report().await;
                }
                MediaEvent::Mapped(at) => {
                    if let Err(gone) = Box::pin(self.moved(dialog, media, at)).await {
                        self.bye(dialog).await;
                        return Some((408, gone.reason(false)));
                    }
                }
            },
            Wake::Command(cmd) => {
                let Some(cmd) = cmd else {
                    return Some((200, EndReason::DaemonStopped));
                };
                match cmd {
                    CallCommand::Hangup | CallCommand::Reject(_) | CallCommand::Stop => {
                        self.bye(dialog).await;
                        return Some((200, EndReason::HungUp));
                    }
                    // Answered already.
                    CallCommand::Answer(_) | CallCommand::Forward(_) | CallCommand::Proceed => {}
                    CallCommand::Hold | CallCommand::Resume
                        if matches!(
                            (&cmd, &self.info.state),
                            (CallCommand::Hold, CallState::Active)
                                | (CallCommand::Resume, CallState::Held)
                        ) =>
                    {
                        let (direction, then) = match cmd {
                            CallCommand::Hold => (Direction::SendOnly, CallState::Held),
                            _ => (Direction::SendRecv, CallState::Active),
                        };
                        match Box::pin(self.reinvite(dialog, media, direction)).await {
                            Ok(true) => self.set(then).await,
                            Ok(false) => {}
                            Err(gone) => {
                                self.bye(dialog).await;
                                return Some((408, gone.reason(false)));
                            }
                        }
                    }
                    // Held already, or not held.
                    CallCommand::Hold | CallCommand::Resume => {}
                    CallCommand::Mute(on) => {
                        self.info.muted = on;
                        // While held nothing is sent anyway; resuming applies it.
                        if self.info.state != CallState::Held {
                            media
                                .session
                                .update(&media.negotiated.mid, params(&media.negotiated, on));
                        }
                        self.report().await;
                    }
                    CallCommand::Dtmf(digits) => {
                        media.session.send_dtmf(&digits);
                    }
                    CallCommand::Play(prompt) => media.session.play(prompt),
                    CallCommand::Record(r) => {
                        let r = r.and_then(|h| h.take());
                        self.info.recording = r.as_ref().map(|r| r.path().to_path_buf());
                        if let Some(p) = &self.info.recording {
                            tracing::info!(
                                call_id = self.info.id,
                                "recording into {}",
                                p.display()
                            );
                            self.info.recordings.push(p.clone());
                        }
                        media.session.record(r);
                        self.report().await;
                    }
                    CallCommand::Conference(leg) => {
                        self.info.conference = leg.as_ref().map(|l| l.0);
                        media.session.conference(leg.map(|l| l.1));
                        self.report().await;
                    }
                    CallCommand::Transfer(t) => {
                        let (refer_to, target) = *t;
                        if let Err(gone) =
                            Box::pin(self.transfer(dialog, media, refer_to, target)).await
                        {
                            self.bye(dialog).await;
                            return Some((408, gone.reason(false)));
                        }
                    }
                    CallCommand::AnswerTransfer(accept) => {
                        self.answer_transfer(dialog, accept).await
                    }
                    CallCommand::Video(ask) => {
                        let on = ask.is_some();
                        if let Some(a) = ask {
                            video::ask(&mut self.ctx.video, *a);
                        }
                        match Box::pin(self.video_toggle(dialog, media, on)).await {
                            Ok(true) => {}
                            Ok(false) => tracing::info!(
                                call_id = self.info.id,
                                "video {}: the far side refused",
                                if on { "on" } else { "off" }
                            ),
                            Err(gone) => {
                                self.bye(dialog).await;
                                return Some((408, gone.reason(false)));
                            }
                        }
                    }
                    CallCommand::WaitingTone(on) => media
                        .session
                        .waiting_tone(on && self.ctx.audio.call_waiting_tone),
                    CallCommand::ReferProgress { code, reason } => {
                        self.refer_progress(dialog, code, &reason).await
                    }
                    CallCommand::Request(tu) => {
                        let req = &tu.request;
                        // Same Call-ID is not enough: another fork's or an old dialog's
                        // request is not for this call (RFC 3261 §12.2.2).
                        if req.method != Method::Ack && !dialog.matches(req) {
                            tu.tx.respond(req.response(481, reason_phrase(481))).await;
                            return None;
                        }
                        if !dialog.take_remote_cseq(req) {
                            tu.tx.respond(req.response(500, "CSeq out of order")).await;
                            return None;
                        }
                        match req.method {
                            Method::Ack => {}
                            Method::Bye => {
                                tu.tx.respond(req.response(200, "OK")).await;
                                return Some((200, EndReason::RemoteHungUp));
                            }
                            Method::Notify => {
                                match Box::pin(self.transfer_notify(&tu, dialog, media)).await {
                                    Ok(Some(reason)) => return Some((200, reason)),
                                    Ok(None) => {}
                                    Err(gone) => {
                                        self.bye(dialog).await;
                                        return Some((408, gone.reason(false)));
                                    }
                                }
                            }
                            Method::Refer => self.refer_in(&tu, dialog).await,
                            Method::Invite | Method::Update => {
                                Box::pin(self.answer_modify(&tu, dialog, media)).await
                            }
                            Method::Info => {
                                let code = match info_digit(req) {
                                    Some(digit) => {
                                        if digits.fresh(digit, true) {
                                            self.digit_heard(digit).await;
                                        }
                                        200
                                    }
                                    None => 415,
                                };
                                tu.tx.respond(req.response(code, reason_phrase(code))).await;
                            }
                            Method::Options => tu.tx.respond(req.response(200, "OK")).await,
                            _ => {
                                let mut r = req.response(501, reason_phrase(501));
                                r.headers.push(Name::Allow, ALLOW);
                                tu.tx.respond(r).await;
                            }
                        }
                    }
                }
            }
        }
        None
    }

    /// The established call: media runs, in-dialog requests are answered, until one side
    /// ends it or the far side vanishes. The task's whole future; its arguments are boxed,
    /// as an async fn keeps each argument twice (rust-lang/rust#62958).
    async fn established(mut self: Box<Self>, mut parts: Box<(Dialog, Media)>) {
        // Used in its box: moved out, it would be held twice.
        let (dialog, media) = &mut *parts;
        self.info.answered = Some(SystemTime::now());
        self.refreshed = tokio::time::Instant::now();
        self.info.dialog = DialogIds::of(dialog);
        if self.record_always && self.machine.is_none() {
            Box::pin(self.record_from_answer(media)).await;
        }
        Box::pin(self.set(CallState::Active)).await;
        let mut refresh_retry = None;
        let mut machine_check = tokio::time::interval(Duration::from_millis(250));
        let mut digits = OnceDigits::default();
        // Until the stream's end drops its sender: a closed channel would wake at once.
        let mut media_open = true;
        let (code, reason) = loop {
            let timer_due = self.timer.map(|t| match t.refresher {
                Refresher::Us => refresh_retry.unwrap_or(self.refreshed + t.refresh_after()),
                Refresher::Them => self.refreshed + t.expire_after(),
            });
            let transfer_due = self.transfer_due();
            let wake = tokio::select! {
                () = sleep_until_opt(transfer_due) => Wake::TransferDue,
                _ = machine_check.tick(), if self.machine.is_some() => Wake::MachineCheck,
                () = sleep_until_opt(timer_due) => Wake::TimerDue,
                ev = media.events.recv_async(), if media_open => match ev {
                    Ok(ev) => Wake::Media(ev),
                    Err(_) => {
                        media_open = false;
                        continue;
                    }
                },
                cmd = self.commands.recv_async() => Wake::Command(cmd.ok()),
            };
            // Handled in a future of its own, boxed while it runs: between events the
            // call's task holds only what it waits on (memory per call).
            let woke = self.on_wake(wake, dialog, media, &mut refresh_retry, &mut digits);
            if let Some(end) = Box::pin(woke).await {
                break end;
            }
        };
        let (_, media) = *parts;
        // Boxed, as the set-up above: once per call, and kept out of what the task holds
        // while the call runs.
        Box::pin(self.ended(code, reason, media)).await;
    }

    /// The established call is over: its media stopped, its message kept (answering
    /// machine), its end told.
    async fn ended(&mut self, code: u16, reason: EndReason, media: Media) {
        self.info.stats = media.session.stop().await;
        let Some(machine) = self.machine.take() else {
            return self.end(code, reason).await;
        };
        // The recording is closed now: its message is kept before the call is shown
        // ended, so that a shutdown (which waits for that) does not cut the keeping short.
        let how = match reason {
            EndReason::RemoteHungUp | EndReason::HungUp => "message taken".to_string(),
            other => other.to_string(),
        };
        let kept = machine.keep().await;
        self.end(code, EndReason::AnsweringMachine(how)).await;
        if let Some(kept) = kept {
            let vm = &kept.voicemail;
            tracing::info!(
                call_id = self.info.id,
                "voicemail {} kept ({} s)",
                vm.id,
                vm.duration.as_secs()
            );
            let _ = self
                .ctx
                .updates
                .send(CallUpdate::VoicemailKept(Box::new(kept)))
                .await;
        }
    }
}

pub(super) fn new_info(
    id: u64,
    account: &Option<Account>,
    direction: CallDirection,
    state: CallState,
    audio: &AudioConfig,
) -> CallInfo {
    CallInfo {
        id,
        account: account.as_ref().map(|a| a.id.to_string()),
        remote_uri: String::new(),
        remote_name: None,
        contact: None,
        progress: None,
        direction,
        state,
        muted: false,
        started: SystemTime::now(),
        answered: None,
        codec: None,
        rtp_local: None,
        rtp_remote: None,
        stats: MediaStats::default(),
        audio_note: audio_note(audio),
        media_encryption: MediaEncryption::None,
        transport: crate::sip::transport::Proto::Udp,
        ice: None,
        answered_by_machine: false,
        recording: None,
        recordings: Vec::new(),
        conference: None,
        transfer: None,
        transfer_asked: None,
        transfer_pending: false,
        sound_test: false,
        dialog: None,
        video: None,
    }
}

/// What a person must be told when `audio` names a sound device and there is none, so
/// that a silent call is not a mystery.
pub(super) fn audio_note(audio: &AudioConfig) -> Option<String> {
    let device =
        |ep: &AudioEndpoint| matches!(ep, AudioEndpoint::Default | AudioEndpoint::Device(_));
    let (input, output) = (device(&audio.input), device(&audio.output));
    if !input && !output {
        return None;
    }
    let why = crate::media::device::sound_missing()?;
    Some(no_sound(&why, input, output))
}

/// The note for a call whose sound device could not be had.
fn no_sound(why: &str, input: bool, output: bool) -> String {
    let what = match (input, output) {
        (true, true) => "what the far side says goes nowhere and only silence is sent",
        (true, false) => "only silence is sent",
        _ => "what the far side says goes nowhere",
    };
    format!(
        "no sound device ({why}): {what}; use a file or null for [audio] input/output, or --input/--output"
    )
}

/// Starts an outgoing call to `uri` from `account` (or as a direct IP call without one).
pub(super) fn dial(
    ctx: CallContext,
    id: u64,
    account: Option<Account>,
    uri: SipUri,
    sip_call_id: String,
    extra: Vec<(Name, String)>,
) -> CallHandle {
    let (tx, rx) = flume::bounded(16);
    let live = Arc::new(LiveStats::default());
    let mut info = new_info(
        id,
        &account,
        CallDirection::Outgoing,
        CallState::Dialing,
        &ctx.audio,
    );
    info.remote_uri = uri.to_string();
    let first = info.clone();
    let call = Call::new(ctx, info, rx, live.clone(), &account);
    tokio::spawn(outgoing(call, account, uri, sip_call_id, extra));
    CallHandle {
        commands: tx,
        live,
        info: first,
    }
}

/// What woke an established call.
enum Wake {
    TransferDue,
    MachineCheck,
    TimerDue,
    Media(MediaEvent),
    /// None: the core is gone (the daemon stops).
    Command(Option<CallCommand>),
}

/// A key press some phones send two ways at once (an RFC 4733 event or a tone, and SIP
/// INFO) is one digit: the same digit the other way within a second is not reported.
#[derive(Default)]
struct OnceDigits(Option<(char, bool, tokio::time::Instant)>);

impl OnceDigits {
    fn fresh(&mut self, digit: char, by_info: bool) -> bool {
        let now = tokio::time::Instant::now();
        if let Some((last, info, at)) = self.0
            && last == digit
            && info != by_info
            && now.duration_since(at) < Duration::from_secs(1)
        {
            return false;
        }
        self.0 = Some((digit, by_info, now));
        true
    }
}

/// Sleeps until `at`; forever when there is nothing to wait for.
async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn outgoing(
    mut call: Call,
    account: Option<Account>,
    uri: SipUri,
    sip_call_id: String,
    extra: Vec<(Name, String)>,
) {
    call.report().await;
    let out = outbound(
        &call.ctx.ep,
        Method::Invite,
        account.as_ref(),
        &uri,
        &sip_call_id,
        1,
    )
    .await;
    let Outbound {
        target,
        alternatives,
        local,
        public,
        user,
        request: mut invite,
    } = match out {
        Ok(o) => o,
        Err((code, why)) => return call.end(code, EndReason::Failed(why)).await,
    };
    let rtp = match bind(local.ip(), call.ctx.audio.rtp_ports) {
        Ok(s) => s,
        Err(e) => {
            return call
                .end(500, EndReason::Internal(format!("no RTP port: {e}")))
                .await;
        }
    };
    call.info.transport = target.proto;
    let plan = nat::plan(&call.prefs.nat, &rtp, local.ip(), public.ip(), Some(true)).await;
    let mut offer = match sdp::offer(
        &call.prefs.codecs,
        plan.at.ip(),
        plan.at.port(),
        u64::from(fastrand::u32(..)),
        Direction::SendRecv,
        call.prefs.security(),
    ) {
        Ok(o) => o,
        Err(e) => return call.end(500, EndReason::Internal(e.to_string())).await,
    };
    if let Some(m) = sdp::in_use(&mut offer) {
        plan.describe(m);
    }
    call.media_ips = Some((local.ip(), public.ip()));
    call.ice_role = plan.ice.as_ref().map(|_| true);
    call.adopt(plan);
    call.offer_video(&mut offer).await;
    let h = &mut invite.headers;
    h.push(Name::Contact, contact(&user, public, target));
    h.push(Name::Allow, ALLOW);
    h.push(Name::Supported, SUPPORTED_CALL);
    h.push(Name::ContentType, "application/sdp");
    for (name, value) in extra {
        h.push(name, value);
    }
    call.ext.rel100.ask(&mut invite);
    ask_initial(call.ext.timers, &mut invite);
    invite.body = offer.to_string().into_bytes();
    let invitation = Invitation {
        request: invite,
        hop: target,
        alternatives,
        via_proxy: account
            .as_ref()
            .is_some_and(|a| !a.outbound_proxy.is_empty()),
        credentials: account.as_ref().and_then(credentials),
        follow_redirects: account.as_ref().is_none_or(|a| a.follow_redirects),
    };
    let mut init = match Initiator::send(&call.ctx.ep, invitation).await {
        Ok(i) => i,
        Err(e) => return call.end(e.code(), EndReason::Failed(e.to_string())).await,
    };
    let mut cancelled = false;
    let mut rtp = Some(rtp);
    // Early media (RFC 3960): a 18x with an answer starts the audio before the 200.
    let mut early: Option<Media> = None;
    let (mut dialog, ok) = loop {
        // Only the wait for a response is raced with commands: acting on one (resending,
        // confirming a 2xx) must not be cut off half way.
        let heard = tokio::select! {
            r = init.wait() => r,
            cmd = call.commands.recv_async(), if !cancelled => {
                match cmd.ok() {
                    Some(CallCommand::Hangup | CallCommand::Reject(_) | CallCommand::Stop) | None => {
                        cancelled = true;
                        if let Err(e) = init.cancel().await {
                            return call.end(487, EndReason::Failed(format!("cancelled ({e})"))).await;
                        }
                    }
                    Some(CallCommand::Request(tu)) => {
                        tu.tx.respond(tu.request.response(481, reason_phrase(481))).await;
                    }
                    Some(CallCommand::Mute(on)) => call.info.muted = on,
                    // Not before the answer; the core refuses them in this state.
                    Some(CallCommand::Answer(_) | CallCommand::Hold | CallCommand::Resume | CallCommand::Dtmf(_) | CallCommand::Forward(_) | CallCommand::Proceed | CallCommand::Play(_) | CallCommand::Record(_) | CallCommand::Conference(_) | CallCommand::Transfer(_) | CallCommand::AnswerTransfer(_) | CallCommand::ReferProgress { .. } | CallCommand::WaitingTone(_) | CallCommand::Video(_)) => {}
                }
                continue;
            }
        };
        match init.handle(heard).await {
            Ok(None) => {}
            Ok(Some(Progress::Provisional(r))) => {
                let progress = (r.code != 180).then(|| status_text(&r));
                if progress.is_some() && progress != call.info.progress {
                    tracing::info!(
                        call_id = call.info.id,
                        "the far side says {}",
                        progress.as_deref().unwrap_or_default()
                    );
                    call.info.progress = progress;
                    if call.info.state != CallState::Dialing {
                        call.report().await;
                    }
                }
                if call.info.state == CallState::Dialing {
                    call.set(CallState::Ringing).await;
                }
                if early.is_none()
                    && !r.body.is_empty()
                    && let Ok(n) = Sdp::parse(&r.body)
                        .map_err(|e| e.to_string())
                        .and_then(|a| sdp::read_answer(&offer, &a).map_err(|e| e.to_string()))
                    && let Some(sock) = rtp.take()
                {
                    tracing::info!(call_id = call.info.id, "early media from {}", n.remote);
                    early = Some(call.start_media(sock, n, offer.clone()));
                    call.set(CallState::Early).await;
                }
            }
            Ok(Some(Progress::Answered { dialog, response })) => break (*dialog, response),
            Err(e) => {
                let reason = if cancelled {
                    EndReason::Cancelled
                } else {
                    EndReason::Failed(e.to_string())
                };
                if let Some(m) = early.take() {
                    call.info.stats = m.session.stop().await;
                }
                return call.end(e.code(), reason).await;
            }
        }
    };
    drop(init);
    call.info.progress = None;
    call.info.remote_name = ok.to().and_then(|t| t.display);
    call.timer = SessionTimer::from_answer(&ok, call.ext.timers.min_se);
    call.peer_update = lists_option(&ok.headers, &Name::Allow, "UPDATE");
    let negotiated = Sdp::parse(&ok.body)
        .map_err(|e| e.to_string())
        .and_then(|ans| sdp::read_answer(&offer, &ans).map_err(|e| e.to_string()));
    let n = match negotiated {
        Ok(n) => n,
        Err(e) => {
            // An answer we cannot use: the call cannot carry audio; end it properly.
            call.bye(&mut dialog).await;
            return call
                .end(488, EndReason::Failed(format!("bad SDP answer: {e}")))
                .await;
        }
    };
    if cancelled {
        // The callee answered as we cancelled: the call exists, so end it with a BYE.
        call.bye(&mut dialog).await;
        return call.end(487, EndReason::Cancelled).await;
    }
    let video = call.video_answered(&offer, &ok.body);
    let mut media = match (early, rtp) {
        (Some(m), _) => {
            m.session.update(&n.mid, params(&n, call.info.muted));
            call.info.media_encryption = encryption_of(&n);
            Media { negotiated: n, ..m }
        }
        (None, Some(sock)) => call.start_media(sock, n, offer),
        (None, None) => {
            return call
                .end(500, EndReason::Internal("no RTP socket".into()))
                .await;
        }
    };
    call.video_follow(&mut media, video, false).await;
    // The set-up's messages are not needed while the call runs; free them now rather than
    // at its end (memory per call).
    drop(ok);
    // The running call is a task of its own, so that the set-up's state is freed rather
    // than carried for the whole call (memory per call).
    tokio::spawn(Box::new(call).established(Box::new((dialog, media))));
}

/// Takes an incoming INVITE (out of dialog) as a new call.
pub(super) fn incoming(
    ctx: CallContext,
    id: u64,
    account: Option<Account>,
    tu: TuRequest,
    forward: ForwardPlan,
    machine: Option<MachinePlan>,
    decide: Option<Duration>,
) -> CallHandle {
    let (tx, rx) = flume::bounded(16);
    let live = Arc::new(LiveStats::default());
    let mut info = new_info(
        id,
        &account,
        CallDirection::Incoming,
        CallState::Ringing,
        &ctx.audio,
    );
    if let Some(f) = tu.request.from() {
        info.remote_uri = f.uri.to_string();
        info.remote_name = f.display;
    }
    let first = info.clone();
    let call = Call::new(ctx, info, rx, live.clone(), &account);
    tokio::spawn(answer_flow(call, account, tu, forward, machine, decide));
    CallHandle {
        commands: tx,
        live,
        info: first,
    }
}

/// Answers the INVITE 302 with `to` in Contact (RFC 3261 §8.3.1), and ends the call.
async fn forward(
    call: &mut Call,
    tu: &TuRequest,
    mut resp: crate::sip::message::Response,
    rule: Option<ForwardRule>,
    to: &crate::sip::uri::SipUri,
) {
    match rule {
        Some(r) => tracing::info!(call_id = call.info.id, "forwarding ({}) to {to}", r.name()),
        None => tracing::info!(call_id = call.info.id, "forwarding to {to}"),
    }
    resp.headers.push(Name::Contact, format!("<{to}>"));
    tu.tx.respond(resp).await;
    call.end(
        302,
        EndReason::Forwarded {
            rule,
            to: to.to_string(),
        },
    )
    .await;
}

async fn answer_flow(
    mut call: Call,
    account: Option<Account>,
    tu: TuRequest,
    plan: ForwardPlan,
    mut machine: Option<MachinePlan>,
    decide: Option<Duration>,
) {
    let req = tu.request.clone();
    let local_tag = random_token(10);
    let respond = |code: u16, reason: &str| {
        let mut r = req.response(code, reason);
        if let Some(to) = req.headers.get(&Name::To) {
            r.headers
                .set_first(Name::To, format!("{to};tag={local_tag}"));
        }
        r
    };
    // An INVITE without a body asks us to offer, in the 200; the answer comes in the ACK.
    let offer = if req.body.is_empty() {
        None
    } else {
        match Sdp::parse(&req.body) {
            Ok(o) => Some(o),
            Err(e) => {
                tu.tx.respond(respond(400, "Bad SDP")).await;
                return call
                    .end(400, EndReason::Refused(format!("bad SDP: {e}")))
                    .await;
            }
        }
    };
    call.info.transport = tu.from.proto;
    // Sent on before anything else: the target may take what we could not.
    if let Some((rule, to)) = &plan.now {
        call.report().await;
        return forward(
            &mut call,
            &tu,
            respond(302, reason_phrase(302)),
            Some(*rule),
            to,
        )
        .await;
    }
    // An offer we could not answer is refused now, not after it has rung.
    if let Some(o) = &offer
        && let Err(e) = sdp::answer(
            o,
            &call.prefs.codecs,
            o.origin_addr,
            0,
            0,
            call.prefs.security(),
        )
    {
        tracing::info!(call_id = call.info.id, "refusing the offer: {e}");
        call.report().await;
        tu.tx
            .respond(not_acceptable(respond(488, reason_phrase(488)), &e))
            .await;
        return call.end(488, EndReason::Refused(e.to_string())).await;
    }
    let mode = account
        .as_ref()
        .map_or(AnswerMode::Manual, |a| a.answer.mode);
    // In do-not-disturb a machine that takes calls when busy takes this one.
    if mode == AnswerMode::Dnd && !machine.as_ref().is_some_and(|m| m.after.is_zero()) {
        call.report().await;
        tu.tx.respond(respond(486, reason_phrase(486))).await;
        return call.end(486, EndReason::DoNotDisturb).await;
    }
    let reliable = match call.ext.rel100.for_request(&req) {
        Ok(r) => r,
        Err((code, header)) => {
            let mut r = respond(code, reason_phrase(code));
            r.headers.push(header, "100rel");
            tu.tx.respond(r).await;
            return call
                .end(
                    code,
                    EndReason::Refused("reliable provisional responses (100rel) do not fit".into()),
                )
                .await;
        }
    };
    call.timer = match SessionTimer::for_request(call.ext.timers, &req) {
        Ok(t) => t,
        Err(min_se) => {
            let mut r = respond(422, "Session Interval Too Small");
            r.headers.push(Name::MinSe, min_se.to_string());
            tu.tx.respond(r).await;
            return call
                .end(422, EndReason::Refused("session interval too small".into()))
                .await;
        }
    };
    call.peer_update = lists_option(&req.headers, &Name::Allow, "UPDATE");
    let Some(local) = call.ctx.ep.transport().local_for(tu.from) else {
        tu.tx.respond(respond(500, reason_phrase(500))).await;
        return call
            .end(500, EndReason::Internal("no local address".into()))
            .await;
    };
    let user = account
        .as_ref()
        .and_then(|a| a.aor.0.user.clone())
        .unwrap_or_else(|| "voipd".into());
    let public = call.ctx.ep.transport().public_for(tu.from).unwrap_or(local);
    let our_contact = contact(&user, public, tu.from);
    let mut ringing = respond(180, "Ringing");
    ringing.headers.push(Name::Contact, our_contact.clone());
    // RFC 3262: sent again until PRACKed. It carries no SDP, so the answer need not wait.
    let mut ringing = if reliable {
        let r = Reliable1xx::new(&req, ringing, call.ctx.ep.timers());
        tu.tx.respond(r.response().clone()).await;
        Some(r)
    } else {
        tu.tx.respond(ringing).await;
        None
    };
    // Even when answering at once, frontends and hooks hear of the call first.
    call.report().await;

    let delay = match mode {
        AnswerMode::Auto => Some(Duration::from_millis(u64::from(
            account.as_ref().map_or(0, |a| a.answer.delay_ms),
        ))),
        _ => None,
    };
    let auto = async {
        match delay {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(auto);
    let give_up = tokio::time::Instant::now() + call.ctx.ring_timeout;
    let no_answer = plan
        .no_answer
        .as_ref()
        .map(|(_, after)| tokio::time::Instant::now() + *after);
    let mut machine_at = machine
        .as_ref()
        .map(|m| tokio::time::Instant::now() + m.after);
    // Hooks on call_incoming have their say first: neither the answer mode nor the
    // machine acts until they are done, or their time is up.
    let mut held = decide.map(|d| tokio::time::Instant::now() + d);
    loop {
        let again = ringing.as_ref().and_then(Reliable1xx::due);
        // In this order when several are due at once: an answer, then the machine, then
        // forwarding.
        tokio::select! {
            biased;
            () = &mut auto, if held.is_none() => break,
            () = sleep_until_opt(held) => {
                tracing::info!(call_id = call.info.id, "the hooks did not decide in time; the answer mode goes on");
                held = None;
            }
            () = sleep_until_opt(machine_at), if held.is_none() => {
                machine_at = None;
                if let Some(plan) = machine.take() {
                    match plan.pick_up().await {
                        Ok(m) => {
                            tracing::info!(call_id = call.info.id, "the answering machine answers");
                            call.ctx.audio.input = AudioEndpoint::Prompt(m.prompt());
                            call.ctx.audio.output = AudioEndpoint::Record(m.recorder.clone());
                            call.machine = Some(Box::new(m));
                            call.info.answered_by_machine = true;
                            break;
                        }
                        Err(why) => {
                            tracing::warn!(call_id = call.info.id, "the answering machine does not answer: {why}");
                            // Do not disturb still holds: the machine was to take the call instead.
                            if mode == AnswerMode::Dnd {
                                tu.tx.respond(respond(486, reason_phrase(486))).await;
                                return call.end(486, EndReason::DoNotDisturb).await;
                            }
                        }
                    }
                }
            }
            () = sleep_until_opt(no_answer) => {
                if let Some((to, _)) = &plan.no_answer {
                    return forward(&mut call, &tu, respond(302, reason_phrase(302)), Some(ForwardRule::NoAnswer), to).await;
                }
            }
            () = tokio::time::sleep_until(give_up) => {
                let secs = call.ctx.ring_timeout.as_secs();
                tracing::info!(call_id = call.info.id, "not answered in {secs}s; answering 480");
                tu.tx.respond(respond(480, reason_phrase(480))).await;
                return call.end(480, EndReason::NotAnswered(secs)).await;
            }
            () = sleep_until_opt(again) => {
                if let Some(r) = ringing.as_mut()
                    && !r.retransmit(&tu.tx).await
                {
                    tu.tx.respond(respond(504, "No PRACK")).await;
                    return call.end(504, EndReason::Gone("no PRACK for our reliable 180".into())).await;
                }
            }
            () = tu.tx.cancelled() => {
                tu.tx.respond(respond(487, reason_phrase(487))).await;
                return call.end(487, EndReason::CallerCancelled).await;
            }
            cmd = call.commands.recv_async() => match cmd.ok() {
                Some(CallCommand::Answer(endpoints)) => {
                    endpoints.apply(&mut call.ctx);
                    call.video.asked(call.ctx.video_asked);
                    call.info.audio_note = audio_note(&call.ctx.audio);
                    break;
                }
                Some(CallCommand::Reject(code)) => {
                    tu.tx.respond(respond(code, reason_phrase(code))).await;
                    return call.end(code, EndReason::Rejected).await;
                }
                Some(CallCommand::Hangup) | None => {
                    tu.tx.respond(respond(603, reason_phrase(603))).await;
                    return call.end(603, EndReason::Rejected).await;
                }
                Some(CallCommand::Stop) => {
                    if let Some(to) = &plan.unavailable {
                        return forward(&mut call, &tu, respond(302, reason_phrase(302)), Some(ForwardRule::Unavailable), to).await;
                    }
                    tu.tx.respond(respond(480, reason_phrase(480))).await;
                    return call.end(480, EndReason::DaemonStopped).await;
                }
                Some(CallCommand::Mute(on)) => call.info.muted = on,
                Some(CallCommand::Request(other)) => {
                    let pracked = ringing.as_mut().is_some_and(|r| r.prack(&other.request));
                    let code = if pracked { 200 } else { 481 };
                    other.tx.respond(other.request.response(code, reason_phrase(code))).await;
                }
                Some(CallCommand::Forward(to)) => {
                    return forward(&mut call, &tu, respond(302, reason_phrase(302)), None, &to).await;
                }
                Some(CallCommand::Proceed) => held = None,
                // Not while ringing; the core refuses them in this state.
                Some(CallCommand::Hold | CallCommand::Resume | CallCommand::Dtmf(_) | CallCommand::Play(_) | CallCommand::Record(_) | CallCommand::Conference(_) | CallCommand::Transfer(_) | CallCommand::AnswerTransfer(_) | CallCommand::ReferProgress { .. } | CallCommand::WaitingTone(_) | CallCommand::Video(_)) => {}
            },
        }
    }

    let rtp = match bind(local.ip(), call.ctx.audio.rtp_ports) {
        Ok(s) => s,
        Err(e) => {
            tu.tx.respond(respond(500, reason_phrase(500))).await;
            return call
                .end(500, EndReason::Internal(format!("no RTP port: {e}")))
                .await;
        }
    };
    // ICE when the far side offers it (it controls), or when we make the offer.
    let ice = match &offer {
        Some(o) => sdp::in_use_of(o)
            .and_then(|m| sdp::IceDescription::of(o, m))
            // An ICE-lite offerer never checks or nominates: we must control.
            .map(|theirs| theirs.lite),
        None => Some(true),
    };
    let plan = nat::plan(&call.prefs.nat, &rtp, local.ip(), public.ip(), ice).await;
    let media_at = plan.at;
    let session_id = u64::from(fastrand::u32(..));
    let (mut ours, negotiated) = match &offer {
        Some(o) => match sdp::answer(
            o,
            &call.prefs.codecs,
            media_at.ip(),
            media_at.port(),
            session_id,
            call.prefs.security(),
        ) {
            Ok((a, n)) => (a, Some(n)),
            Err(e) => {
                tu.tx
                    .respond(not_acceptable(respond(488, reason_phrase(488)), &e))
                    .await;
                return call.end(488, EndReason::Refused(e.to_string())).await;
            }
        },
        None => match sdp::offer(
            &call.prefs.codecs,
            media_at.ip(),
            media_at.port(),
            session_id,
            Direction::SendRecv,
            call.prefs.security(),
        ) {
            Ok(o) => (o, None),
            Err(e) => {
                tu.tx.respond(respond(500, reason_phrase(500))).await;
                return call.end(500, EndReason::Internal(e.to_string())).await;
            }
        },
    };
    if let Some(m) = sdp::in_use(&mut ours) {
        plan.describe(m);
    }
    call.media_ips = Some((local.ip(), public.ip()));
    call.ice_role = plan.ice.as_ref().and(ice);
    call.adopt(plan);
    let video = match &offer {
        Some(o) => call.answer_video(o, &mut ours, None).await,
        None => {
            call.offer_video(&mut ours).await;
            None
        }
    };
    let mut ok = respond(200, "OK");
    ok.headers.push(Name::Contact, our_contact.clone());
    ok.headers.push(Name::Allow, ALLOW);
    ok.headers.push(Name::Supported, call.ext.supported());
    if let Some(t) = call.timer {
        t.answer(&req, &mut ok);
    }
    ok.headers.push(Name::ContentType, "application/sdp");
    ok.body = ours.to_string().into_bytes();
    let Some(mut dialog) = Dialog::from_request(&req, &local_tag, our_contact) else {
        tu.tx.respond(respond(400, "Missing Contact")).await;
        return call
            .end(400, EndReason::Refused("INVITE without Contact".into()))
            .await;
    };
    dialog.credentials = account.as_ref().and_then(credentials);

    // RFC 3261 §13.3.1.4: the UAS retransmits the 2xx until the ACK comes.
    let t = call.ctx.ep.timers();
    let mut interval = t.t1;
    let give_up = tokio::time::Instant::now() + 64 * t.t1;
    tu.tx.respond(ok.clone()).await;
    let ack = loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {
                if tokio::time::Instant::now() >= give_up {
                    tracing::warn!(call_id = call.info.id, "no ACK for our 200 OK; ending the call");
                    let mut d = dialog.clone();
                    call.bye(&mut d).await;
                    return call.end(408, EndReason::Gone("no ACK".into())).await;
                }
                tu.tx.respond(ok.clone()).await;
                interval = (interval * 2).min(t.t2);
            }
            cmd = call.commands.recv_async() => match cmd.ok() {
                Some(CallCommand::Request(r)) if r.request.method == Method::Ack => break r,
                Some(CallCommand::Request(r)) if r.request.method == Method::Bye => {
                    r.tx.respond(r.request.response(200, "OK")).await;
                    return call.end(200, EndReason::RemoteHungUp).await;
                }
                Some(CallCommand::Request(r)) => {
                    r.tx.respond(r.request.response(491, "Request Pending")).await;
                }
                // A reject that raced our answer (the core still saw it ringing) ends
                // the call as a hang-up does: the core shows it ending already.
                Some(CallCommand::Hangup | CallCommand::Reject(_) | CallCommand::Stop) | None => {
                    let mut d = dialog.clone();
                    call.bye(&mut d).await;
                    return call.end(200, EndReason::HungUp).await;
                }
                Some(CallCommand::Mute(on)) => call.info.muted = on,
                // Answered already; the rest waits for the ACK.
                Some(CallCommand::Answer(_) | CallCommand::Hold | CallCommand::Resume | CallCommand::Dtmf(_) | CallCommand::Forward(_) | CallCommand::Proceed | CallCommand::Play(_) | CallCommand::Record(_) | CallCommand::Conference(_) | CallCommand::Transfer(_) | CallCommand::AnswerTransfer(_) | CallCommand::ReferProgress { .. } | CallCommand::WaitingTone(_) | CallCommand::Video(_)) => {}
            },
        }
    };
    let negotiated = match negotiated {
        Some(n) => n,
        // Offerless INVITE: the ACK carries the answer.
        None => match Sdp::parse(&ack.request.body)
            .map_err(|e| e.to_string())
            .and_then(|a| sdp::read_answer(&ours, &a).map_err(|e| e.to_string()))
        {
            Ok(n) => n,
            Err(e) => {
                let mut d = dialog.clone();
                call.bye(&mut d).await;
                return call
                    .end(
                        488,
                        EndReason::Failed(format!("no usable answer in the ACK: {e}")),
                    )
                    .await;
            }
        },
    };
    let video = match &offer {
        Some(_) => video,
        None => call.video_answered(&ours, &ack.request.body),
    };
    let mut media = call.start_media(rtp, negotiated, ours);
    call.video_follow(&mut media, video, false).await;
    drop((tu, ack, ok, offer, req));
    // The running call is a task of its own, so that the set-up's state is freed rather
    // than carried for the whole call (memory per call).
    tokio::spawn(Box::new(call).established(Box::new((dialog, media))));
}

/// The sound test call (dial "echo"): our media goes to a local reflector that sends it
/// back a second later. No SIP, no account; the same media path as a real call.
pub(super) fn echo(ctx: CallContext, id: u64) -> CallHandle {
    let (tx, rx) = flume::bounded(16);
    let live = Arc::new(LiveStats::default());
    let mut info = new_info(
        id,
        &None,
        CallDirection::Outgoing,
        CallState::Dialing,
        &ctx.audio,
    );
    info.remote_uri = "echo".into();
    info.remote_name = Some("Sound test".into());
    info.sound_test = true;
    let first = info.clone();
    let mut call = Call::new(ctx, info, rx, live.clone(), &None);
    call.prefs = MediaPrefs {
        codecs: vec![Codec::Pcmu],
        encryption: MediaEncryptionPolicy::None,
        suites: Vec::new(),
        nat: NatPrefs::default(),
    };
    tokio::spawn(echo_call(call));
    CallHandle {
        commands: tx,
        live,
        info: first,
    }
}

async fn echo_call(mut call: Call) {
    call.report().await;
    let lo = std::net::IpAddr::from([127, 0, 0, 1]);
    let (rtp, reflector) = match (
        bind(lo, call.ctx.audio.rtp_ports),
        bind(lo, None).and_then(tokio::net::UdpSocket::from_std),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return call
                .end(500, EndReason::Internal(format!("no RTP port: {e}")))
                .await;
        }
    };
    let Ok(remote) = reflector.local_addr() else {
        return call
            .end(500, EndReason::Internal("no reflector address".into()))
            .await;
    };
    let port = rtp.local_addr().map_or(0, |a| a.port());
    let ours = match sdp::offer(
        &[Codec::Pcmu],
        lo,
        port,
        1,
        Direction::SendRecv,
        Security::CLEAR,
    ) {
        Ok(o) => o,
        Err(e) => return call.end(500, EndReason::Internal(e.to_string())).await,
    };
    let n = Negotiated {
        codec: Codec::Pcmu,
        pt: 0,
        dtmf_pt: None,
        remote,
        direction: Direction::SendRecv,
        fmtp: None,
        mid: "0".into(),
        srtp: None,
        dtls: None,
        ice: None,
        rtcp_mux: false,
    };
    let reflect = tokio::spawn(crate::media::echo::reflect(reflector));
    let media = call.start_media(rtp, n, ours);
    call.info.answered = Some(SystemTime::now());
    call.set(CallState::Active).await;
    loop {
        tokio::select! {
            cmd = call.commands.recv_async() => match cmd.ok() {
                Some(CallCommand::Hangup | CallCommand::Reject(_) | CallCommand::Stop) | None => break,
                Some(CallCommand::Mute(on)) => {
                    call.info.muted = on;
                    media.session.update(&media.negotiated.mid, params(&media.negotiated, on));
                    call.report().await;
                }
                Some(CallCommand::Request(tu)) => {
                    tu.tx.respond(tu.request.response(481, reason_phrase(481))).await;
                }
                // The sound test has no far side to hold or send digits to.
                Some(CallCommand::Answer(_) | CallCommand::Hold | CallCommand::Resume | CallCommand::Dtmf(_) | CallCommand::Forward(_) | CallCommand::Proceed | CallCommand::Play(_) | CallCommand::Record(_) | CallCommand::Conference(_) | CallCommand::Transfer(_) | CallCommand::AnswerTransfer(_) | CallCommand::ReferProgress { .. } | CallCommand::WaitingTone(_) | CallCommand::Video(_)) => {}
            },
            Ok(ev) = media.events.recv_async() => {
                if let MediaEvent::NoSound { why, input, output } = ev {
                    call.no_sound(&why, input, output).await;
                }
                // DTMF and timeouts mean nothing here.
            }
        }
    }
    reflect.abort();
    call.info.stats = media.session.stop().await;
    call.end(200, EndReason::SoundTestOver).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_digit_sent_two_ways_is_reported_once() {
        let mut d = OnceDigits::default();
        assert!(d.fresh('9', false));
        assert!(!d.fresh('9', true), "the same press by SIP INFO");
        assert!(d.fresh('9', false), "pressed again, the same way");
        assert!(d.fresh('1', true));
        assert!(d.fresh('2', false), "another digit");
    }

    /// What a running call's task holds between events is per call, for every call: its
    /// handlers run in futures of their own, and its parts are boxed. (It was 6 kB, plus
    /// 4 kB of the call's parts held twice.)
    #[test]
    fn a_running_call_task_holds_little() {
        fn task(c: Box<Call>, parts: Box<(Dialog, Media)>) -> impl std::future::Future {
            c.established(parts)
        }
        fn size_of_task<F>(_: fn(Box<Call>, Box<(Dialog, Media)>) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let size = size_of_task(task);
        assert!(size <= 1024, "the call task's future is {size} bytes");
    }
}
