//! The configuration: a TOML file the user owns, validated strictly. Unknown keys are
//! errors, and every error names the file, line, column and field.

mod checks;
mod error;
mod forward;
mod hooks;
mod machine;
mod mqtt;
mod values;
mod video;
mod webhooks;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::media::codec::Codec;
use crate::media::srtp::SrtpSuite;
use crate::sip::usage::reliable::Rel100;
use crate::sip::usage::session_timer::TimerPolicy;

pub use checks::SoundDevices;
pub use error::{ConfigError, Invalid};
pub use forward::{
    DEFAULT_AFTER_SECS, ForwardRule, ForwardTarget, Forwarding, check_after, check_target,
};
pub use hooks::{Hook, HookSubject, HooksConfig};
pub use machine::{AnsweringMachine, VoicemailConfig};
pub use mqtt::MqttConfig;
pub use values::*;
pub use video::{VideoConfig, parse_size};
pub use webhooks::Webhook;

/// The configuration in force when no file exists. Also documents the format: see
/// `voipd --print-default-config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");
const EMBEDDED_NAME: &str = "<embedded default>";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub log: LogConfig,
    pub control: ControlConfig,
    pub sip: SipConfig,
    pub audio: AudioConfig,
    /// `[video]`: what video calls send, and where received video goes.
    pub video: VideoConfig,
    pub presence: PresenceConfig,
    pub voicemail: VoicemailConfig,
    pub hooks: HooksConfig,
    /// `[[hook]]`: programs run on events.
    pub hook: Vec<Hook>,
    /// `[[webhook]]`: events POSTed to HTTP(S) endpoints.
    pub webhook: Vec<Webhook>,
    /// `[mqtt]`: a broker for events and commands, and Home Assistant.
    pub mqtt: Option<MqttConfig>,
    pub accounts: Vec<Account>,
}

/// Presence (RFC 3856): following contacts', and letting others follow ours.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceConfig {
    /// SUBSCRIBE to the presence of every contact's SIP address.
    #[serde(default = "yes")]
    pub subscribe: bool,
    /// Who may SUBSCRIBE to ours.
    #[serde(default)]
    pub share: PresenceShare,
    /// PUBLISH ours to the server of each registered account (RFC 3903). Off unless
    /// asked for, as in baresip and linphone: most servers do not take it.
    #[serde(default)]
    pub publish: bool,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            subscribe: true,
            share: PresenceShare::default(),
            publish: false,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceShare {
    Everyone,
    /// Those whose SIP address is in the address book; others are answered 403.
    #[default]
    Contacts,
    Nobody,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default = "default_level")]
    pub level: LogLevel,
    #[serde(default = "default_target")]
    pub target: LogTarget,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// gRPC Unix socket; the default depends on user or system mode.
    pub socket: Option<PathBuf>,
    /// Which D-Bus bus to offer `org.voipd.Voipd` on.
    #[serde(default)]
    pub dbus: DbusBus,
    /// gRPC over TCP, for other machines: TLS and a bearer token, always.
    pub tcp: Option<TcpControl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbusBus {
    /// The system bus for the system service (`--system`), else the session bus.
    #[default]
    Auto,
    Session,
    System,
    Off,
}

/// The TCP listener, with its TLS identity and token read when the configuration is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "TcpFiles")]
pub struct TcpControl {
    /// Where to listen.
    pub listen: std::net::SocketAddr,
    /// PEM certificate chain and private key.
    pub cert: Vec<u8>,
    /// The PEM private key of `cert`.
    pub key: Secret,
    /// The bearer token clients must send.
    pub token: Secret,
    /// Where the three come from. They are read after the whole file is known good (see
    /// checks.rs), so that every unreadable file is reported, each at its key.
    files: TcpFiles,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct TcpFiles {
    listen: std::net::SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    token_file: PathBuf,
}

impl From<TcpFiles> for TcpControl {
    fn from(files: TcpFiles) -> Self {
        TcpControl {
            listen: files.listen,
            cert: Vec::new(),
            key: Secret::default(),
            token: Secret::default(),
            files,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// None: the default, which moves to a free port when 5060 is taken.
    pub listen: Option<Vec<ListenAddr>>,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// RFC 3261 timer T1 (round-trip estimate); Timer F and B are 64·T1.
    #[serde(default = "default_t1")]
    pub t1_ms: TimerMs,
    #[serde(default = "default_t2")]
    pub t2_ms: TimerMs,
    #[serde(default = "default_t4")]
    pub t4_ms: TimerMs,
    /// DNS servers (IP:port) to ask instead of /etc/resolv.conf's.
    #[serde(default)]
    pub dns: Vec<std::net::SocketAddr>,
    /// Who may call or message us directly, not through an account's provider. None: the
    /// default, everyone without accounts and no one with.
    #[serde(default)]
    pub accept_direct: Option<AcceptDirect>,
    /// What those not accepted hear.
    #[serde(default)]
    pub stranger_reply: StrangerReply,
    /// More addresses taken as the providers': a provider whose calls come from other
    /// hosts than its registrar's.
    #[serde(default)]
    pub trusted: Vec<Network>,
    /// An incoming call not answered after this long is answered 480.
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u32,
    /// Incoming calls ringing at once, in all; more are answered 486.
    #[serde(default = "default_max_ringing")]
    pub max_ringing: u32,
    /// Our certificate chain and its key (PEM files), for `tls:` listeners.
    #[serde(default)]
    pub tls_certificate: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// What those two files hold, read when the configuration is (checks.rs).
    #[serde(skip)]
    pub tls_pem: Option<(Vec<u8>, Secret)>,
}

/// Who may reach us without going through an account's provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptDirect {
    /// No one: only the providers.
    None,
    /// Those whose address (the From) is in the address book.
    Contacts,
    /// Anyone: only without accounts (a LAN intercom, tests).
    Everyone,
}

/// The answer to a request from a stranger: the same whatever it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum StrangerReply {
    /// 403 Forbidden, sent statelessly.
    #[default]
    #[serde(rename = "403")]
    Forbidden,
    /// Nothing at all: a scanner cannot tell a SIP device is there.
    #[serde(rename = "drop")]
    Drop,
}

impl SipConfig {
    pub fn listen(&self) -> Vec<ListenAddr> {
        self.listen.clone().unwrap_or_else(default_listen)
    }

    /// `accept_direct` as in force with `accounts` accounts.
    pub fn accept_direct(&self, accounts: usize) -> AcceptDirect {
        self.accept_direct.unwrap_or(if accounts == 0 {
            AcceptDirect::Everyone
        } else {
            AcceptDirect::None
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawAudio")]
pub struct AudioConfig {
    pub input: AudioEndpoint,
    pub output: AudioEndpoint,
    /// UDP ports for RTP, inclusive; None: any free port.
    pub rtp_ports: Option<(u16, u16)>,
    /// Seconds without RTP after which a call whose far side vanished is ended; 0: never.
    pub rtp_timeout_secs: u32,
    /// How DTMF is sent (each digit's length and the pause between digits) and whether
    /// digits are also listened for in the audio.
    pub dtmf: crate::media::dtmf::DtmfSettings,
    /// A call that rings while we talk is heard as a soft tone in the call's output.
    pub call_waiting_tone: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudio {
    #[serde(default = "default_endpoint")]
    input: AudioEndpoint,
    #[serde(default = "default_endpoint")]
    output: AudioEndpoint,
    rtp_ports: Option<String>,
    #[serde(default = "default_rtp_timeout")]
    rtp_timeout_secs: u32,
    #[serde(default = "default_dtmf_duration")]
    dtmf_duration_ms: u32,
    #[serde(default = "default_dtmf_gap")]
    dtmf_gap_ms: u32,
    #[serde(default)]
    inband_dtmf: bool,
    #[serde(default = "default_true")]
    call_waiting_tone: bool,
}

impl TryFrom<RawAudio> for AudioConfig {
    type Error = String;

    fn try_from(r: RawAudio) -> Result<Self, String> {
        if let AudioEndpoint::Tone(_) = r.output {
            return Err("output: a tone can only be an input".into());
        }
        let rtp_ports = r
            .rtp_ports
            .map(|s| {
                let bad = || format!("rtp_ports: {s:?} is not LOW-HIGH, e.g. \"16384-32767\"");
                let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
                let (lo, hi): (u16, u16) = (
                    lo.trim().parse().map_err(|_| bad())?,
                    hi.trim().parse().map_err(|_| bad())?,
                );
                if lo == 0 || lo > hi {
                    return Err(bad());
                }
                Ok((lo, hi))
            })
            .transpose()?;
        if !(40..=5000).contains(&r.dtmf_duration_ms) {
            return Err(format!(
                "dtmf_duration_ms: {} is not between 40 and 5000 ms",
                r.dtmf_duration_ms
            ));
        }
        if !(60..=5000).contains(&r.dtmf_gap_ms) {
            return Err(format!(
                "dtmf_gap_ms: {} is not between 60 and 5000 ms (each digit's end is sent three times, 20 ms apart)",
                r.dtmf_gap_ms
            ));
        }
        Ok(AudioConfig {
            input: r.input,
            output: r.output,
            rtp_ports,
            rtp_timeout_secs: r.rtp_timeout_secs,
            dtmf: crate::media::dtmf::DtmfSettings::new(
                r.dtmf_duration_ms,
                r.dtmf_gap_ms,
                r.inband_dtmf,
            ),
            call_waiting_tone: r.call_waiting_tone,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawAccount")]
pub struct Account {
    pub id: AccountId,
    pub aor: ConfigUri,
    pub display_name: Option<String>,
    /// Authentication user; the AOR's user part unless set.
    pub username: String,
    /// Written in the file, or read from `password_file`.
    pub password: Option<Secret>,
    /// Read after the whole file is known good (see checks.rs).
    password_file: Option<PathBuf>,
    /// Only answer challenges for this realm when set.
    pub realm: Option<String>,
    /// Tried in order: the second is the failover.
    pub outbound_proxy: Vec<ConfigUri>,
    pub expires: u32,
    pub codecs: Vec<Codec>,
    /// Media encryption asked of calls, and the SRTP suites offered and taken, in order.
    pub media_encryption: MediaEncryptionPolicy,
    pub srtp_suites: Vec<SrtpSuite>,
    /// The CA its servers are checked against, and a client certificate, for TLS.
    pub tls: Option<AccountTls>,
    pub answer: Answer,
    pub enabled: bool,
    /// Seconds between keepalives on the registration flow; None: 25 on UDP, 90 on TCP;
    /// 0: none.
    pub keepalive_secs: Option<u32>,
    /// Asked for the public address of each call's RTP port, behind a NAT.
    pub stun: Option<StunServer>,
    /// ICE (RFC 8445) for calls: candidates offered and checked when the far side runs
    /// ICE too.
    pub ice: bool,
    /// A TURN relay for ICE's relayed candidates.
    pub turn: Option<TurnSettings>,
    /// Calls answered with 3xx go on to the Contacts given (RFC 3261 §8.1.3.4).
    pub follow_redirects: bool,
    /// Reliable provisional responses (RFC 3262).
    pub rel100: Rel100,
    /// Session timers (RFC 4028) asked for and accepted.
    pub session_timer: TimerPolicy,
    /// Incoming calls to this account ringing at once; more are answered 486.
    pub max_ringing: u32,
    /// Where incoming calls are sent on, and when (live settings in the store win).
    pub forward: Forwarding,
    /// Takes messages when no one answers.
    pub answering_machine: Option<AnsweringMachine>,
    /// Follows the provider's voicemail box (RFC 3842 message-summary).
    pub mwi: bool,
    /// Where the provider's voicemail is called (`voipctl dial voicemail`).
    pub voicemail_uri: Option<ConfigUri>,
    /// Calls recorded from their answer, or only when asked.
    pub record: RecordPolicy,
    /// What a REFER from the far side gets.
    pub transfer: TransferPolicy,
    /// Calls of this account at once (ringing, active, held); more incoming ones get 486.
    pub max_calls: u32,
    /// Video in calls: none, one way, or both; and the codecs offered and taken, in order.
    pub video: crate::sdp::video::VideoMode,
    pub video_codecs: Vec<crate::media::video::VideoCodec>,
    id_span: std::ops::Range<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    id: Spanned<AccountId>,
    aor: ConfigUri,
    display_name: Option<String>,
    username: Option<String>,
    password: Option<Secret>,
    password_file: Option<PathBuf>,
    realm: Option<String>,
    #[serde(default, deserialize_with = "values::one_or_many")]
    outbound_proxy: Vec<ConfigUri>,
    #[serde(default)]
    expires: Expires,
    #[serde(default = "default_codecs")]
    codecs: Vec<Codec>,
    #[serde(default)]
    media_encryption: MediaEncryptionPolicy,
    srtp_suites: Option<Vec<String>>,
    tls: Option<AccountTls>,
    #[serde(default)]
    answer: Answer,
    #[serde(default = "default_true")]
    enabled: bool,
    keepalive_secs: Option<u32>,
    stun: Option<StunServer>,
    #[serde(default)]
    ice: bool,
    turn: Option<TurnSettings>,
    #[serde(default = "default_true")]
    follow_redirects: bool,
    #[serde(default, rename = "100rel")]
    rel100: Rel100,
    #[serde(default = "default_session_expires")]
    session_expires: u32,
    #[serde(default = "default_min_se")]
    min_se: u32,
    #[serde(default = "default_account_ringing")]
    max_ringing: u32,
    #[serde(default)]
    forward: Forwarding,
    answering_machine: Option<AnsweringMachine>,
    #[serde(default)]
    mwi: bool,
    voicemail_uri: Option<ConfigUri>,
    #[serde(default)]
    record: RecordPolicy,
    #[serde(default)]
    transfer: TransferPolicy,
    #[serde(default = "default_max_calls")]
    max_calls: u32,
    video: Option<String>,
    video_codecs: Option<Vec<String>>,
}

/// An account's TLS settings: the files as named, and what they hold once read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountTls {
    /// CA certificates (PEM) its servers are checked against instead of the system's.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its key (PEM), for servers that ask for one.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// What `ca` holds, read when the configuration is.
    #[serde(skip)]
    pub ca_pem: Option<Vec<u8>>,
    /// What `client_cert` and `client_key` hold.
    #[serde(skip)]
    pub identity: Option<(Vec<u8>, Secret)>,
}

/// The suites named, each known and once; at least one.
fn srtp_suites(names: &[String]) -> Result<Vec<SrtpSuite>, String> {
    let known = || {
        SrtpSuite::ALL
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if names.is_empty() {
        return Err(format!(
            "srtp_suites: the list is empty; name at least one of {}",
            known()
        ));
    }
    let mut out = Vec::new();
    for n in names {
        let suite = SrtpSuite::from_name(n).ok_or_else(|| {
            format!(
                "srtp_suites: {n:?} is not a suite voipd speaks; use {}",
                known()
            )
        })?;
        if out.contains(&suite) {
            return Err(format!("srtp_suites: {n:?} is listed twice"));
        }
        out.push(suite);
    }
    Ok(out)
}

fn default_account_ringing() -> u32 {
    4
}

/// A call, one waiting, and room for a conference and a transfer's consultation call.
fn default_max_calls() -> u32 {
    4
}

fn default_session_expires() -> u32 {
    TimerPolicy::default().expires
}

fn default_min_se() -> u32 {
    TimerPolicy::default().min_se
}

impl TryFrom<RawAccount> for Account {
    type Error = String;

    fn try_from(r: RawAccount) -> Result<Self, String> {
        let aor_user = r.aor.0.user.clone().ok_or_else(|| {
            format!(
                "aor: {} has no user part, e.g. sip:alice@example.com",
                r.aor
            )
        })?;
        if r.codecs.is_empty() {
            return Err(
                "codecs: the list is empty; name at least one of opus, g722, pcmu, pcma".into(),
            );
        }
        for (i, c) in r.codecs.iter().enumerate() {
            if r.codecs[..i].contains(c) {
                return Err(format!("codecs: {c:?} is listed twice"));
            }
        }
        let srtp_suites = match r.srtp_suites {
            None => SrtpSuite::ALL.to_vec(),
            Some(names) => srtp_suites(&names)?,
        };
        if let Some(t) = &r.tls
            && t.client_cert.is_some() != t.client_key.is_some()
        {
            return Err("tls: client_cert and client_key go together; set both or neither".into());
        }
        if r.max_ringing == 0 {
            return Err("max_ringing: must be at least 1 (0 would refuse every call)".into());
        }
        if r.max_calls == 0 {
            return Err("max_calls: must be at least 1 (0 would refuse every call)".into());
        }
        if r.min_se == 0 {
            return Err("min_se: must be at least 1 second (RFC 4028 asks for 90)".into());
        }
        if r.session_expires != 0 && r.session_expires < r.min_se {
            return Err(format!(
                "session_expires: {} is below min_se ({}); raise it, or 0 to ask for none",
                r.session_expires, r.min_se
            ));
        }
        if r.turn.is_some() && !r.ice {
            return Err("turn: a TURN relay serves ICE; set ice = true as well".into());
        }
        if r.password.is_some() && r.password_file.is_some() {
            return Err("password and password_file are both set; keep one".into());
        }
        Ok(Account {
            id_span: r.id.span(),
            id: r.id.into_inner(),
            username: r.username.unwrap_or(aor_user),
            aor: r.aor,
            display_name: r.display_name,
            password: r.password,
            password_file: r.password_file,
            realm: r.realm,
            outbound_proxy: r.outbound_proxy,
            expires: r.expires.0,
            codecs: r.codecs,
            media_encryption: r.media_encryption,
            srtp_suites,
            tls: r.tls,
            answer: r.answer,
            enabled: r.enabled,
            keepalive_secs: r.keepalive_secs,
            stun: r.stun,
            ice: r.ice,
            turn: r.turn,
            max_ringing: r.max_ringing,
            forward: r.forward,
            answering_machine: r.answering_machine,
            mwi: r.mwi,
            voicemail_uri: r.voicemail_uri,
            record: r.record,
            transfer: r.transfer,
            max_calls: r.max_calls,
            video: video::video_mode(r.video.as_deref())?,
            video_codecs: video::video_codecs(r.video_codecs.as_deref())?,
            follow_redirects: r.follow_redirects,
            rel100: r.rel100,
            session_timer: TimerPolicy {
                expires: r.session_expires,
                min_se: r.min_se,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    control: ControlConfig,
    #[serde(default)]
    sip: SipConfig,
    #[serde(default)]
    audio: AudioConfig,
    #[serde(default)]
    video: VideoConfig,
    #[serde(default)]
    presence: PresenceConfig,
    #[serde(default)]
    voicemail: VoicemailConfig,
    #[serde(default)]
    hooks: HooksConfig,
    #[serde(default)]
    hook: Vec<Hook>,
    #[serde(default)]
    webhook: Vec<Webhook>,
    mqtt: Option<MqttConfig>,
    #[serde(default, rename = "account")]
    accounts: Vec<Account>,
}

fn default_level() -> LogLevel {
    LogLevel::Info
}
fn default_target() -> LogTarget {
    LogTarget::Auto
}
fn default_listen() -> Vec<ListenAddr> {
    ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"]
        .into_iter()
        .filter_map(|s| ListenAddr::try_from(s.to_string()).ok())
        .collect()
}
fn default_user_agent() -> String {
    concat!("voipd/", env!("CARGO_PKG_VERSION")).into()
}
fn default_ring_timeout() -> u32 {
    60
}

fn default_max_ringing() -> u32 {
    16
}

fn default_t1() -> TimerMs {
    TimerMs(500)
}
fn default_t2() -> TimerMs {
    TimerMs(4000)
}
fn default_t4() -> TimerMs {
    TimerMs(5000)
}
fn default_rtp_timeout() -> u32 {
    60
}
fn default_dtmf_duration() -> u32 {
    100
}
fn default_dtmf_gap() -> u32 {
    100
}
fn default_endpoint() -> AudioEndpoint {
    AudioEndpoint::Default
}
fn default_codecs() -> Vec<Codec> {
    vec![Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma]
}
fn default_true() -> bool {
    true
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
            target: default_target(),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: None,
            user_agent: default_user_agent(),
            dns: Vec::new(),
            accept_direct: None,
            stranger_reply: StrangerReply::default(),
            trusted: Vec::new(),
            ring_timeout_secs: default_ring_timeout(),
            max_ringing: default_max_ringing(),
            t1_ms: default_t1(),
            t2_ms: default_t2(),
            t4_ms: default_t4(),
            tls_certificate: None,
            tls_key: None,
            tls_pem: None,
        }
    }
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            input: AudioEndpoint::Default,
            output: AudioEndpoint::Default,
            rtp_ports: None,
            rtp_timeout_secs: default_rtp_timeout(),
            dtmf: crate::media::dtmf::DtmfSettings::new(
                default_dtmf_duration(),
                default_dtmf_gap(),
                false,
            ),
            call_waiting_tone: true,
        }
    }
}

impl Config {
    /// Parses and validates `text`, and reads the files it names (passwords, TLS identity);
    /// `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let (config, problems) = Config::parse_and_resolve(text, origin)?;
        ConfigError::from_all(problems)?;
        Ok(config)
    }

    /// The structure first, stopping at its first error (serde cannot go on past one); then
    /// the paths and files, all of them, as problems beside a configuration that is only
    /// complete when there are none.
    fn parse_and_resolve(text: &str, origin: &str) -> Result<(Config, Vec<Invalid>), ConfigError> {
        let mut config = Config::parse_structure(text, origin)?;
        let problems = checks::resolve_files(&mut config, text, origin);
        Ok((config, problems))
    }

    fn parse_structure(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| {
            ConfigError::invalid(origin, text, e.span(), String::new(), e.message().into())
        })?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            // Spanned<T> shows up in the path as toml's private fields; they mean nothing to users.
            let field = e
                .path()
                .to_string()
                .split('.')
                .filter(|seg| !seg.starts_with("$__") && !seg.is_empty())
                .collect::<Vec<_>>()
                .join(".");
            let inner = e.into_inner();
            let message = error::in_words(inner.message());
            ConfigError::invalid(origin, text, inner.span(), field, message)
        })?;
        let mut seen: BTreeMap<&AccountId, usize> = BTreeMap::new();
        for (i, a) in raw.accounts.iter().enumerate() {
            if let Some(first) = seen.insert(&a.id, i) {
                return Err(ConfigError::invalid(
                    origin,
                    text,
                    Some(a.id_span.clone()),
                    format!("account[{i}].id"),
                    format!(
                        "{:?} is already the id of account[{first}]; ids must be unique",
                        a.id.as_str()
                    ),
                ));
            }
        }
        // A hook for an account that is not there would never run: a typo, surely.
        for (i, h) in raw.hook.iter().enumerate() {
            if let Some(a) = &h.account
                && !raw.accounts.iter().any(|acc| acc.id.as_str() == a)
            {
                return Err(ConfigError::invalid(
                    origin,
                    text,
                    None,
                    format!("hook[{i}].account"),
                    format!("{a:?} is not the id of any [[account]]"),
                ));
            }
        }
        // What waits for a ring must come before the ring gives up.
        for (i, a) in raw.accounts.iter().enumerate() {
            let waits = [
                (
                    "answering_machine.after_secs",
                    a.answering_machine.as_ref().map(|m| m.after_secs),
                ),
                (
                    "forward.no_answer.after_secs",
                    a.forward
                        .0
                        .get(&ForwardRule::NoAnswer)
                        .map(|n| n.after_secs),
                ),
            ];
            for (field, after) in waits {
                if let Some(after) = after
                    && after >= raw.sip.ring_timeout_secs
                {
                    return Err(ConfigError::invalid(
                        origin,
                        text,
                        None,
                        format!("account[{i}].{field}"),
                        format!(
                            "{after} is not below sip.ring_timeout_secs ({}): the call would \
                             be answered 480 first",
                            raw.sip.ring_timeout_secs
                        ),
                    ));
                }
            }
        }
        if raw.sip.accept_direct == Some(AcceptDirect::Everyone) && !raw.accounts.is_empty() {
            return Err(ConfigError::invalid(
                origin,
                text,
                None,
                "sip.accept_direct".into(),
                "\"everyone\" is only for a voipd without accounts: with one, any scanner \
                 on the network could ring it; use \"contacts\" to take calls from the \
                 address book"
                    .into(),
            ));
        }
        for (field, value, what) in [
            (
                "sip.ring_timeout_secs",
                raw.sip.ring_timeout_secs,
                "1 second",
            ),
            (
                "sip.max_ringing",
                raw.sip.max_ringing,
                "1 (0 would refuse every call)",
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    origin,
                    text,
                    None,
                    field.into(),
                    format!("must be at least {what}"),
                ));
            }
        }
        Ok(Config {
            log: raw.log,
            control: raw.control,
            sip: raw.sip,
            audio: raw.audio,
            video: raw.video,
            presence: raw.presence,
            voicemail: raw.voicemail,
            hooks: raw.hooks,
            hook: raw.hook,
            webhook: raw.webhook,
            mqtt: raw.mqtt,
            accounts: raw.accounts,
        })
    }

    pub fn embedded_default() -> Config {
        // The embedded text is checked by a unit test, so this cannot fail in a release.
        Config::parse(EMBEDDED_DEFAULT, EMBEDDED_NAME)
            .unwrap_or_else(|e| panic!("embedded default config: {e}"))
    }

    /// What differs from `old`, as lines for the user, split into what applies at once and
    /// what needs a restart.
    pub fn diff(&self, old: &Config) -> ConfigDiff {
        let mut d = ConfigDiff::default();
        if self.log.level != old.log.level {
            d.applied.push(format!(
                "log.level: {} -> {}",
                old.log.level.as_str(),
                self.log.level.as_str()
            ));
        }
        if self.log.target != old.log.target {
            d.restart_required.push("log.target".into());
        }
        if self.control.socket != old.control.socket {
            d.restart_required.push("control.socket".into());
        }
        if self.control.dbus != old.control.dbus {
            d.restart_required.push("control.dbus".into());
        }
        if self.control.tcp != old.control.tcp {
            d.restart_required.push("control.tcp".into());
        }
        if self.sip.listen() != old.sip.listen() {
            d.restart_required.push("sip.listen".into());
        }
        if (self.sip.t1_ms, self.sip.t2_ms, self.sip.t4_ms)
            != (old.sip.t1_ms, old.sip.t2_ms, old.sip.t4_ms)
        {
            d.restart_required.push("sip timers".into());
        }
        if self.sip.dns != old.sip.dns {
            d.restart_required.push("sip.dns".into());
        }
        if self.sip.user_agent != old.sip.user_agent {
            d.applied.push("sip.user_agent".into());
        }
        if (
            self.sip.accept_direct,
            self.sip.stranger_reply,
            &self.sip.trusted,
        ) != (
            old.sip.accept_direct,
            old.sip.stranger_reply,
            &old.sip.trusted,
        ) {
            d.applied
                .push("sip.accept_direct, sip.stranger_reply, sip.trusted".into());
        }
        if (self.sip.ring_timeout_secs, self.sip.max_ringing)
            != (old.sip.ring_timeout_secs, old.sip.max_ringing)
        {
            d.applied
                .push("sip.ring_timeout_secs, sip.max_ringing (for new calls)".into());
        }
        if self.audio != old.audio {
            d.applied.push("audio (for new calls)".into());
        }
        if self.video != old.video {
            d.applied.push("video (for new calls)".into());
        }
        if self.voicemail != old.voicemail {
            d.applied.push("voicemail".into());
        }
        if self.presence != old.presence {
            d.applied.push("presence".into());
        }
        if self.hook != old.hook || self.hooks != old.hooks {
            d.applied.push("hooks (for events from now on)".into());
        }
        if self.mqtt != old.mqtt {
            d.applied.push("mqtt (reconnected)".into());
        }
        if self.webhook != old.webhook {
            d.applied
                .push("webhooks (waiting events of changed ones are dropped)".into());
        }
        let old_ids: BTreeMap<_, _> = old.accounts.iter().map(|a| (&a.id, a)).collect();
        let new_ids: BTreeMap<_, _> = self.accounts.iter().map(|a| (&a.id, a)).collect();
        for (id, a) in &new_ids {
            match old_ids.get(id) {
                None => d.applied.push(format!("account {id}: added")),
                Some(o) if !o.same_settings(a) => d.applied.push(format!("account {id}: changed")),
                Some(_) => {}
            }
        }
        for id in old_ids.keys().filter(|id| !new_ids.contains_key(*id)) {
            d.applied.push(format!("account {id}: removed"));
        }
        d
    }
}

impl Account {
    /// Equal but for where in the file it was written.
    pub fn same_settings(&self, other: &Account) -> bool {
        let mut o = other.clone();
        o.id_span = self.id_span.clone();
        *self == o
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigDiff {
    pub applied: Vec<String>,
    pub restart_required: Vec<String>,
}

/// Where the configuration comes from. A path named by the user must exist; the default
/// path may be absent, and then the embedded default is in force (and a file created there
/// later is picked up on reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocation {
    pub path: PathBuf,
    pub explicit: bool,
}

/// A configuration as loaded for the daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// What is in force.
    pub config: Config,
    /// No file: the embedded default.
    pub embedded: bool,
    /// What the machine lacks now but may have later (a sound device named but not plugged
    /// in, an input file not yet made): the daemon runs on and says so; `--check-config`
    /// refuses them.
    pub warnings: Vec<Invalid>,
}

impl Loaded {
    /// Logs the warnings, each with what it means for calls.
    pub fn log_warnings(&self) {
        for w in &self.warnings {
            tracing::warn!("{w}; calls go on without it until it is there");
        }
    }
}

impl ConfigLocation {
    /// Loads the configuration for the daemon, warning of what the machine lacks (logged
    /// here for a reload; at start, before logging is set up, the caller logs
    /// [`Loaded::warnings`] again once it is).
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let loaded = self.read(false)?;
        loaded.log_warnings();
        Ok(loaded)
    }

    /// Loads the configuration for `--check-config`: what the daemon would only warn of is
    /// an error too, and every problem found is reported, not only the first.
    pub fn check(&self) -> Result<Loaded, ConfigError> {
        self.read(true)
    }

    fn read(&self, strict: bool) -> Result<Loaded, ConfigError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.explicit => {
                return Ok(Loaded {
                    config: Config::embedded_default(),
                    embedded: true,
                    warnings: Vec::new(),
                });
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let origin = self.path.display().to_string();
        let (config, mut problems) = Config::parse_and_resolve(&text, &origin)?;
        if !strict {
            // What the daemon cannot run with is refused before the sound system is asked.
            ConfigError::from_all(std::mem::take(&mut problems))?;
        }
        let lacking = checks::machine_problems(&config, &text, &origin, SoundDevices::present);
        let warnings = if strict {
            problems.extend(lacking);
            Vec::new()
        } else {
            lacking
        };
        ConfigError::from_all(problems)?;
        Ok(Loaded {
            config,
            embedded: false,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests;
