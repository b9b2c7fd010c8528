//! Value types of the configuration. Each validates itself while it is deserialized, so an
//! error carries the position and field path of the value that caused it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::sip::uri::SipUri;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// journald when stderr is connected to the journal (as under systemd), else stderr.
    Auto,
    Journald,
    Stderr,
}

pub use crate::sip::transport::{ListenAddr, ListenProto};

/// Where a call's audio comes from or goes to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub enum AudioEndpoint {
    /// The system's default sound device; null when there is none.
    Default,
    Null,
    /// A sound device by its cpal name.
    Device(String),
    /// A WAV file: played as input (in a loop), written as output.
    File(PathBuf),
    /// A WAV file played once as input, then silence; the call goes on.
    FileOnce(PathBuf),
    /// A sine tone of this many Hz (input only).
    Tone(f32),
    /// Audio held in memory, played once (the answering machine's greeting); not written
    /// in a configuration.
    Prompt(crate::media::record::Prompt),
    /// The answering machine's recording (output only); not written in a configuration.
    Record(crate::media::record::Recorder),
}

impl TryFrom<String> for AudioEndpoint {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Ok(match s.as_str() {
            "" => {
                return Err(
                    "empty; use \"default\", \"null\", a device name, \"file:PATH\" or \"tone:HZ\""
                        .into(),
                );
            }
            "default" => AudioEndpoint::Default,
            "null" => AudioEndpoint::Null,
            _ => {
                if let Some(path) = s.strip_prefix("file-once:") {
                    if path.is_empty() {
                        return Err("\"file-once:\" needs a path".into());
                    }
                    AudioEndpoint::FileOnce(path.into())
                } else if let Some(path) = s.strip_prefix("file:") {
                    if path.is_empty() {
                        return Err(
                            "\"file:\" needs a path, e.g. \"file:/var/lib/voipd/greeting.wav\""
                                .into(),
                        );
                    }
                    AudioEndpoint::File(path.into())
                } else if let Some(hz) = s.strip_prefix("tone:") {
                    match hz.parse::<f32>() {
                        Ok(f) if (20.0..=20_000.0).contains(&f) => AudioEndpoint::Tone(f),
                        _ => {
                            return Err(format!(
                                "tone frequency {hz:?} is not a number of Hz from 20 to 20000"
                            ));
                        }
                    }
                } else {
                    AudioEndpoint::Device(s)
                }
            }
        })
    }
}

impl AudioEndpoint {
    /// The file a `file:` or `file-once:` endpoint names.
    pub fn path(&self) -> Option<&Path> {
        match self {
            AudioEndpoint::File(p) | AudioEndpoint::FileOnce(p) => Some(p),
            _ => None,
        }
    }

    /// Refuses a file endpoint with a relative path: voipd's working directory is not the
    /// user's (it is / under systemd), so the file would be looked for somewhere else.
    pub fn check_absolute(&self) -> Result<(), String> {
        let prefix = match self {
            AudioEndpoint::File(_) => "file:",
            AudioEndpoint::FileOnce(_) => "file-once:",
            _ => return Ok(()),
        };
        self.path().map_or(Ok(()), |path| {
            must_be_absolute(path, "/var/lib/voipd", |example| {
                format!("{prefix}{example}")
            })
        })
    }
}

/// Ok for an absolute path, else what to write instead: an example in `example_dir`, or for
/// `~/…` in $HOME, as voipd does not expand `~` (only a shell does). `show` writes an
/// example path as it would stand in the file (an endpoint adds its `file:`).
pub(super) fn must_be_absolute(
    path: &Path,
    example_dir: &str,
    show: impl Fn(&str) -> String,
) -> Result<(), String> {
    if path.is_absolute() {
        return Ok(());
    }
    let text = path.to_string_lossy();
    if let Some(after) = text.strip_prefix('~') {
        let (user, rest) = after.split_once('/').unwrap_or((after, ""));
        let home = if user.is_empty() {
            std::env::var("HOME").unwrap_or_else(|_| "/home/USER".into())
        } else {
            format!("/home/{user}")
        };
        let whole = format!("{}/{rest}", home.trim_end_matches('/'));
        return Err(format!(
            "{text:?}: voipd does not expand ~ (only a shell does); write the whole path, \
             e.g. {:?}",
            show(whole.trim_end_matches('/'))
        ));
    }
    let name = path
        .file_name()
        .map_or_else(|| "FILE".into(), |n| n.to_string_lossy().into_owned());
    Err(format!(
        "{text:?} must be an absolute path, e.g. {:?}: voipd does not resolve a relative \
         one against any directory (under systemd it runs in /)",
        show(&format!("{example_dir}/{name}"))
    ))
}

/// What an account asks of its calls' media encryption.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaEncryptionPolicy {
    /// Clear RTP offered; an offer of SRTP is still taken.
    #[default]
    None,
    /// SRTP keyed in the SDP (RFC 4568), or no call: clear answers and offers get 488.
    Sdes,
    /// SDES offered in RTP/AVP; a clear answer or offer is taken.
    SdesOptional,
    /// DTLS-SRTP (RFC 5763/5764), or no call.
    Dtls,
}

impl MediaEncryptionPolicy {
    /// Whether calls without encryption are refused.
    pub fn mandatory(self) -> bool {
        matches!(
            self,
            MediaEncryptionPolicy::Sdes | MediaEncryptionPolicy::Dtls
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// Ring and wait for a frontend or hook to answer.
    Manual,
    /// Answer after `delay_ms`.
    Auto,
    /// Do not disturb: refuse with 486 Busy Here.
    Dnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub mode: AnswerMode,
    #[serde(default)]
    pub delay_ms: u32,
}

impl Default for Answer {
    fn default() -> Self {
        Answer {
            mode: AnswerMode::Manual,
            delay_ms: 0,
        }
    }
}

/// A SIP timer base in milliseconds; 10 ms to 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64")]
pub struct TimerMs(pub u64);

impl TryFrom<u64> for TimerMs {
    type Error = String;

    fn try_from(v: u64) -> Result<Self, String> {
        if (10..=60_000).contains(&v) {
            Ok(TimerMs(v))
        } else {
            Err(format!("{v} is outside 10..=60000 milliseconds"))
        }
    }
}

impl TimerMs {
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

/// The registration interval asked for, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct Expires(pub u32);

/// Registrars commonly refuse below 60 s; above a day a lost registration goes unnoticed.
const EXPIRES_RANGE: std::ops::RangeInclusive<u32> = 60..=86_400;

impl TryFrom<u32> for Expires {
    type Error = String;

    fn try_from(v: u32) -> Result<Self, String> {
        if EXPIRES_RANGE.contains(&v) {
            Ok(Expires(v))
        } else {
            Err(format!(
                "{v} is outside {}..={} seconds",
                EXPIRES_RANGE.start(),
                EXPIRES_RANGE.end()
            ))
        }
    }
}

impl Default for Expires {
    fn default() -> Self {
        Expires(600)
    }
}

/// An account's short name: used in object paths and on the command line, so it is kept
/// to letters, digits, '-' and '_'.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct AccountId(String);

impl TryFrom<String> for AccountId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.len() > 64 {
            return Err(format!("{s:?} must be 1 to 64 characters long"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "{s:?} has {c:?}; use only letters, digits, '-' and '_'"
            ));
        }
        Ok(AccountId(s))
    }
}

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SIP URI from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ConfigUri(pub SipUri);

impl TryFrom<String> for ConfigUri {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let uri = SipUri::from_str(&s).map_err(|e| format!("{s:?} is not a valid SIP URI: {e}"))?;
        if uri.password.is_some() {
            return Err(format!(
                "{s:?} holds a password; put it in password or password_file instead"
            ));
        }
        Ok(ConfigUri(uri))
    }
}

impl fmt::Display for ConfigUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An address or a network in CIDR form: `192.0.2.7`, `203.0.113.0/24`, `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Network {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl TryFrom<String> for Network {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IP address or a network such as \"203.0.113.0/24\"");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.as_str(), None),
        };
        let addr: std::net::IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }
}

/// A STUN server as RFC 7064 writes it: `stun:host` or `stun:host:port` (3478 unless
/// given; an IPv6 address in brackets).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct StunServer {
    pub host: String,
    pub port: u16,
}

impl TryFrom<String> for StunServer {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let (host, port) = server_uri(&s, "stun", "\"stun:stun.example.com:3478\"")?;
        Ok(StunServer { host, port })
    }
}

/// The host and port of a STUN or TURN URI (RFC 7064, 7065) with `scheme`: port 3478
/// unless given, an IPv6 address in brackets, UDP only (`?transport=udp` is allowed).
fn server_uri(s: &str, scheme: &str, example: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("{s:?} {why}; write it as {example}");
    let rest = match s.split_once(':') {
        Some((sc, rest)) if sc.eq_ignore_ascii_case(scheme) => rest,
        Some((sc, _)) if sc.eq_ignore_ascii_case(&format!("{scheme}s")) => {
            return Err(bad(&format!(
                "is {} over TLS, which voipd does not speak",
                scheme.to_uppercase()
            )));
        }
        _ => return Err(bad(&format!("is not a {scheme}: URI"))),
    };
    let rest = match rest.split_once('?') {
        Some((r, q)) if q.eq_ignore_ascii_case("transport=udp") => r,
        Some(_) => {
            return Err(bad(
                "asks for a transport other than UDP, which voipd does not speak",
            ));
        }
        None => rest,
    };
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("has an open '['"))?;
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("has no IPv6 address in its brackets"))?;
            (h, after.strip_prefix(':'))
        }
        None => match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    if host.is_empty() || host.contains(['/', '?', '@', ' ']) {
        return Err(bad("has no host"));
    }
    let port = match port {
        None => 3478,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("has a port that is not 1-65535"))?,
    };
    Ok((host.to_string(), port))
}

/// A TURN server (RFC 8656) and the long-term credentials it takes: `url` as RFC 7065
/// writes it (`turn:host:port`, UDP).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTurn")]
pub struct TurnSettings {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTurn {
    url: String,
    username: String,
    password: Secret,
}

impl TryFrom<RawTurn> for TurnSettings {
    type Error = String;

    fn try_from(r: RawTurn) -> Result<Self, String> {
        let (host, port) = server_uri(&r.url, "turn", "\"turn:turn.example.com:3478\"")
            .map_err(|e| format!("url: {e}"))?;
        if r.username.is_empty() {
            return Err("username: empty; TURN servers take long-term credentials".into());
        }
        Ok(TurnSettings {
            host,
            port,
            username: r.username,
            password: r.password,
        })
    }
}

impl fmt::Display for StunServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "stun:[{}]:{}", self.host, self.port)
        } else {
            write!(f, "stun:{}:{}", self.host, self.port)
        }
    }
}

/// A password: never printed, never logged.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// One value or a list of them: `outbound_proxy = "sip:p"` or `["sip:p1", "sip:p2"]`.
/// Written as a visitor, not an untagged enum, so that the inner value's error survives.
pub(super) fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    use serde::de::{IntoDeserializer, SeqAccess, Visitor};
    use std::marker::PhantomData;

    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<T>, E> {
            T::deserialize(s.into_deserializer()).map(|v| vec![v])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element()? {
                out.push(v);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V(PhantomData))
}

/// Whether an account's calls are recorded from their answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordPolicy {
    /// Only when asked (`voipctl record start`).
    #[default]
    Off,
    /// Every established call, into the state directory's `recordings/`.
    Always,
}

/// What an account does when the far side asks it to call someone else (REFER).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferPolicy {
    /// Calls the new party at once, as desk phones do.
    #[default]
    Accept,
    /// Raises `transfer_requested`; the user accepts or refuses it (32 s to decide).
    Ask,
    /// Answers 603: this phone is not passed on.
    Refuse,
}
