//! Checks of the configuration against the machine, once its structure is known good: the
//! paths it names must be absolute, the secret files readable, the sound devices present.
//! Each problem is reported at its own key, and all of them together, so that one run of
//! `voipd --check-config` shows everything there is to fix.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::Config;
use super::error::Invalid;
use super::values::{AudioEndpoint, MediaEncryptionPolicy, Secret, must_be_absolute};

/// Where a value was written, if it was.
type At = Option<Spanned<IgnoredAny>>;

/// Where the values checked here were written: a second, lenient reading of the same text,
/// since the typed configuration keeps no positions (they would make two equal settings
/// at different lines unequal).
#[derive(Default, Deserialize)]
#[serde(default)]
struct Places {
    control: ControlPlaces,
    sip: SipPlaces,
    audio: AudioPlaces,
    account: Vec<AccountPlaces>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SipPlaces {
    listen: At,
    tls_certificate: At,
    tls_key: At,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ControlPlaces {
    socket: At,
    tcp: Option<TcpPlaces>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct TcpPlaces {
    cert: At,
    key: At,
    token_file: At,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct AudioPlaces {
    input: At,
    output: At,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct AccountPlaces {
    password_file: At,
    media_encryption: At,
    tls: Option<AccountTlsPlaces>,
    answering_machine: Option<MachinePlaces>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct MachinePlaces {
    greeting: At,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct AccountTlsPlaces {
    ca: At,
    client_cert: At,
    client_key: At,
}

impl Places {
    fn read(text: &str) -> Places {
        // The text already passed the strict reading, so this cannot fail; if it did, the
        // problems would still be found, only reported at the top of the file.
        toml::from_str(text).unwrap_or_default()
    }
}

fn span(at: Option<&At>) -> Option<Range<usize>> {
    at.and_then(Option::as_ref).map(Spanned::span)
}

/// Builds problems for one file.
struct Report<'a> {
    origin: &'a str,
    text: &'a str,
    problems: Vec<Invalid>,
}

impl Report<'_> {
    fn add(&mut self, at: Option<&At>, field: impl Into<String>, message: String) {
        self.problems.push(Invalid::at(
            self.origin,
            self.text,
            span(at),
            field.into(),
            message,
        ));
    }
}

/// Checks that every path in `config` is absolute and reads the files it names into it:
/// account passwords, the TCP listener's certificate, key and token. Returns what is
/// wrong, each at its key; `config` is only complete when nothing is.
pub(super) fn resolve_files(config: &mut Config, text: &str, origin: &str) -> Vec<Invalid> {
    let places = Places::read(text);
    let mut r = Report {
        origin,
        text,
        problems: Vec::new(),
    };
    if let Some(socket) = &config.control.socket
        && let Err(m) = must_be_absolute(socket, "/run/voipd", str::to_string)
    {
        r.add(Some(&places.control.socket), "control.socket", m);
    }
    if let Some(tcp) = &mut config.control.tcp {
        let at = places.control.tcp.as_ref();
        let cert = read_file(&tcp.files.cert, "the PEM certificate chain").and_then(|c| {
            if String::from_utf8_lossy(&c).contains("-----BEGIN CERTIFICATE-----") {
                Ok(c)
            } else {
                Err(format!(
                    "{} holds no PEM certificate",
                    tcp.files.cert.display()
                ))
            }
        });
        match cert {
            Ok(cert) => tcp.cert = cert,
            Err(m) => r.add(at.map(|p| &p.cert), "control.tcp.cert", m),
        }
        match read_secret_pem(&tcp.files.key) {
            Ok(key) => tcp.key = key,
            Err(m) => r.add(at.map(|p| &p.key), "control.tcp.key", m),
        }
        match read_secret(&tcp.files.token_file, "the token") {
            Ok(token) if token.expose().chars().count() >= 16 => tcp.token = token,
            Ok(_) => r.add(
                at.map(|p| &p.token_file),
                "control.tcp.token_file",
                format!(
                    "the token in {} is shorter than 16 characters",
                    tcp.files.token_file.display()
                ),
            ),
            Err(m) => r.add(at.map(|p| &p.token_file), "control.tcp.token_file", m),
        }
    }
    for (field, endpoint, at) in [
        ("audio.input", &config.audio.input, &places.audio.input),
        ("audio.output", &config.audio.output, &places.audio.output),
    ] {
        if let Err(m) = endpoint.check_absolute() {
            r.add(Some(at), field, m);
        }
    }
    sip_tls(config, &places.sip, &mut r);
    if let Some(m) = &mut config.mqtt {
        if let Some(path) = &m.password_file {
            match read_secret(path, "the password") {
                Ok(s) => m.password = Some(s),
                Err(e) => r.add(None, "mqtt.password_file", e),
            }
        }
        if let Some(path) = &m.ca {
            match read_ca(path) {
                Ok(pem) => m.ca_pem = Some(pem),
                Err(e) => r.add(None, "mqtt.ca", e),
            }
        }
    }
    for (i, w) in config.webhook.iter_mut().enumerate() {
        if let Some(path) = &w.secret_file {
            match read_secret(path, "the secret") {
                Ok(s) => w.secret = Some(s),
                Err(m) => r.add(None, format!("webhook[{i}].secret_file"), m),
            }
        }
        if let Some(path) = &w.ca {
            match read_ca(path) {
                Ok(pem) => w.ca_pem = Some(pem),
                Err(m) => r.add(None, format!("webhook[{i}].ca"), m),
            }
        }
    }
    for (i, account) in config.accounts.iter_mut().enumerate() {
        account_tls(account, i, places.account.get(i), &mut r);
        greeting(account, i, places.account.get(i), &mut r);
        let Some(path) = &account.password_file else {
            continue;
        };
        match read_secret(path, "the password") {
            Ok(pw) => account.password = Some(pw),
            Err(m) => r.add(
                places.account.get(i).map(|p| &p.password_file),
                format!("account[{i}].password_file"),
                m,
            ),
        }
    }
    r.problems
}

/// Reads CA certificates (PEM) that TLS can use.
fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
    let pem = read_file(path, "the CA certificates (PEM)")?;
    crate::sip::transport::tls::client_config(Some(&pem), None)
        .map_err(|e| format!("{}: {}", path.display(), e.message))?;
    Ok(pem)
}

/// Reads an answering machine's greeting: a WAV file it can play.
fn greeting(
    account: &mut super::Account,
    i: usize,
    places: Option<&AccountPlaces>,
    r: &mut Report<'_>,
) {
    let Some(m) = &mut account.answering_machine else {
        return;
    };
    let Some(path) = &m.greeting else { return };
    let at = places
        .and_then(|p| p.answering_machine.as_ref())
        .map(|p| &p.greeting);
    let field = format!("account[{i}].answering_machine.greeting");
    if let Err(msg) = must_be_absolute(path, "/var/lib/voipd", str::to_string) {
        return r.add(at, field, msg);
    }
    match crate::media::wav::read(path) {
        Ok((samples, rate)) if !samples.is_empty() && rate >= 8000 => {
            let g = crate::media::record::Prompt {
                samples: samples.into(),
                rate,
            };
            m.prompt = crate::media::record::Prompt::machine(Some(&g));
        }
        Ok(_) => r.add(
            at,
            field,
            format!("{} holds no audio at 8000 Hz or more", path.display()),
        ),
        Err(e) => r.add(
            at,
            field,
            format!("{e}; give a 16-bit PCM WAV file voipd can read"),
        ),
    }
}

/// Reads the TLS listeners' certificate and key, and checks that they go together.
fn sip_tls(config: &mut super::Config, places: &SipPlaces, r: &mut Report<'_>) {
    let sip = &mut config.sip;
    let wants_tls = sip
        .listen()
        .iter()
        .any(|l| l.transport == super::ListenProto::Tls);
    let (cert, key) = match (&sip.tls_certificate, &sip.tls_key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) if wants_tls => {
            return r.add(
                Some(&places.listen),
                "sip.listen",
                "a tls: address needs sip.tls_certificate and sip.tls_key (PEM files)".into(),
            );
        }
        (None, None) => return,
        (Some(_), None) => {
            return r.add(
                Some(&places.tls_certificate),
                "sip.tls_key",
                "tls_certificate is set without tls_key; set both".into(),
            );
        }
        (None, Some(_)) => {
            return r.add(
                Some(&places.tls_key),
                "sip.tls_certificate",
                "tls_key is set without tls_certificate; set both".into(),
            );
        }
    };
    let cert = read_file(cert, "the PEM certificate chain")
        .map_err(|m| r.add(Some(&places.tls_certificate), "sip.tls_certificate", m));
    let key = read_secret_pem(key).map_err(|m| r.add(Some(&places.tls_key), "sip.tls_key", m));
    if let (Ok(cert), Ok(key)) = (cert, key) {
        match crate::sip::transport::tls::server_config(&cert, key.expose().as_bytes()) {
            Ok(_) => sip.tls_pem = Some((cert, key)),
            Err(e) => {
                let at = match e.field {
                    "tls_key" => &places.tls_key,
                    _ => &places.tls_certificate,
                };
                let field = if e.field.is_empty() {
                    "tls_certificate"
                } else {
                    e.field
                };
                r.add(Some(at), format!("sip.{field}"), e.message);
            }
        }
    }
}

/// Reads an account's CA and client certificate, and checks that they can be used.
fn account_tls(
    account: &mut super::Account,
    i: usize,
    places: Option<&AccountPlaces>,
    r: &mut Report<'_>,
) {
    let Some(tls) = &mut account.tls else { return };
    let at = places.and_then(|p| p.tls.as_ref());
    let field = |f: &str| format!("account[{i}].tls.{f}");
    let mut ok = true;
    if let Some(ca) = &tls.ca {
        match read_file(ca, "the CA certificates (PEM)") {
            Ok(pem) => tls.ca_pem = Some(pem),
            Err(m) => {
                ok = false;
                r.add(at.map(|p| &p.ca), field("ca"), m);
            }
        }
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        let cert = read_file(cert, "the client certificate chain (PEM)")
            .map_err(|m| r.add(at.map(|p| &p.client_cert), field("client_cert"), m));
        let key = read_secret_pem(key)
            .map_err(|m| r.add(at.map(|p| &p.client_key), field("client_key"), m));
        match (cert, key) {
            (Ok(c), Ok(k)) => tls.identity = Some((c, k)),
            _ => ok = false,
        }
    }
    if !ok || (tls.ca_pem.is_none() && tls.identity.is_none()) {
        return;
    }
    let identity = tls
        .identity
        .as_ref()
        .map(|(c, k)| (c.as_slice(), k.expose().as_bytes()));
    if let Err(e) = crate::sip::transport::tls::client_config(tls.ca_pem.as_deref(), identity) {
        let f = if e.field.is_empty() { "ca" } else { e.field };
        let place = at.map(|p| match f {
            "client_cert" => &p.client_cert,
            "client_key" => &p.client_key,
            _ => &p.ca,
        });
        r.add(place, field(f), e.message);
    }
}

/// A PEM private key from the file at `path`.
fn read_secret_pem(path: &Path) -> Result<Secret, String> {
    let pem = read_file(path, "the PEM private key")?;
    String::from_utf8(pem)
        .ok()
        .filter(|k| k.contains("PRIVATE KEY-----"))
        .map(Secret::new)
        .ok_or_else(|| format!("{} holds no PEM private key", path.display()))
}

/// The contents of the file at `path`, which holds `what`; or why not, and what to do.
fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    must_be_absolute(path, "/etc/voipd", str::to_string)?;
    std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            ErrorKind::NotFound => format!("there is no such file; put {what} in it"),
            ErrorKind::PermissionDenied => format!(
                "permission denied (voipd reads it as the user it runs as; the system service \
                 runs as user voipd: make it readable by group voipd, mode 0640, e.g. \
                 `chgrp voipd {p} && chmod 0640 {p}`, in a directory voipd may enter)",
                p = path.display()
            ),
            ErrorKind::IsADirectory => format!("it is a directory, not a file holding {what}"),
            _ => e.to_string(),
        };
        format!("cannot read {}: {why}", path.display())
    })
}

/// A one-line secret from the file at `path`.
fn read_secret(path: &Path, what: &str) -> Result<Secret, String> {
    let text = String::from_utf8(read_file(path, what)?)
        .map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    // Files written with `echo` end in a newline that is not part of the secret.
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(format!("{} is empty; put {what} in it", path.display()));
    }
    Ok(Secret::new(secret.to_string()))
}

/// The sound devices present, to check the names in the configuration against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoundDevices {
    /// Devices that can capture, by the names `audio.input` takes.
    pub inputs: Vec<String>,
    /// Devices that can play, by the names `audio.output` takes.
    pub outputs: Vec<String>,
    /// Why the lists are empty: the sound system could not be asked.
    pub error: Option<String>,
}

impl SoundDevices {
    /// This machine's, as the media code finds them by name.
    pub fn present() -> SoundDevices {
        match crate::media::device::names() {
            Ok((inputs, outputs)) => SoundDevices {
                inputs,
                outputs,
                error: None,
            },
            Err(e) => SoundDevices {
                error: Some(e),
                ..SoundDevices::default()
            },
        }
    }
}

/// What `config` asks of the machine that it lacks now but may have later: a sound device
/// not plugged in (a USB headset), an input file not yet made, the directory for an output
/// file. The daemon warns of these and runs on; `--check-config` refuses them. `devices` is
/// only called when a device is named, since listing them wakes the sound system.
pub(super) fn machine_problems(
    config: &Config,
    text: &str,
    origin: &str,
    devices: impl FnOnce() -> SoundDevices,
) -> Vec<Invalid> {
    let places = Places::read(text);
    let mut r = Report {
        origin,
        text,
        problems: Vec::new(),
    };
    let (input, output) = (&config.audio.input, &config.audio.output);
    let named = |ep: &AudioEndpoint| matches!(ep, AudioEndpoint::Device(_));
    if named(input) || named(output) {
        let devices = devices();
        for (field, endpoint, list, at) in [
            ("audio.input", input, &devices.inputs, &places.audio.input),
            (
                "audio.output",
                output,
                &devices.outputs,
                &places.audio.output,
            ),
        ] {
            if let AudioEndpoint::Device(name) = endpoint
                && !list.contains(name)
            {
                r.add(
                    Some(at),
                    field,
                    absent_device(name, field == "audio.input", list, devices.error.as_deref()),
                );
            }
        }
    }
    // Per call paths ("{id}") and relative ones (already refused) cannot be looked at.
    let checkable = |p: &Path| p.is_absolute() && !p.to_string_lossy().contains("{id}");
    if let Some(path) = input.path()
        && checkable(path)
        && let Err(e) = std::fs::File::open(path)
    {
        let why = match e.kind() {
            ErrorKind::NotFound => "there is no such file".to_string(),
            ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        r.add(
            Some(&places.audio.input),
            "audio.input",
            format!("cannot read {}: {why}", path.display()),
        );
    }
    if let Some(dir) = output.path().and_then(Path::parent)
        && checkable(dir)
        && !dir.is_dir()
    {
        r.add(
            Some(&places.audio.output),
            "audio.output",
            format!(
                "there is no directory {} to write the call's audio in",
                dir.display()
            ),
        );
    }
    for (i, a) in config.accounts.iter().enumerate() {
        if a.media_encryption == MediaEncryptionPolicy::Dtls
            && let Err(e) = crate::media::dtls::helper_present()
        {
            r.add(
                places.account.get(i).map(|p| &p.media_encryption),
                format!("account[{i}].media_encryption"),
                format!("dtls: {e}"),
            );
        }
    }
    r.problems
}

/// The most devices a message lists; machines with ALSA plugins have dozens.
const LISTED: usize = 12;

fn absent_device(name: &str, input: bool, present: &[String], error: Option<&str>) -> String {
    let mut m = format!("no sound device {name:?} here");
    if let Some(s) = suggestion(name, input, present) {
        let _ = write!(m, " (did you mean {s:?}?)");
    }
    if let Some(e) = error {
        let _ = write!(m, "; the sound devices cannot be listed: {e}");
    } else if present.is_empty() {
        m.push_str("; there are no sound devices");
    } else {
        let shown: Vec<String> = present
            .iter()
            .take(LISTED)
            .map(|d| format!("{d:?}"))
            .collect();
        let _ = write!(m, "; devices: {}", shown.join(", "));
        if present.len() > LISTED {
            let _ = write!(m, " and {} more", present.len() - LISTED);
        }
    }
    m
}

/// What a name that is no device probably meant: a keyword mistyped ("nul"), a prefix
/// mistyped ("flie:/x.wav"; a tone only for an `input`), or a device with its name
/// mistyped or in another case. Near is at most two edits, and fewer than the word has
/// characters.
pub(super) fn suggestion(name: &str, input: bool, devices: &[String]) -> Option<String> {
    let lower = name.to_lowercase();
    let mut near: Vec<(usize, String)> = Vec::new();
    let mut consider = |word: &str, candidate: &str, meant: String| {
        let d = distance(word, candidate);
        if d <= 2 && d < candidate.chars().count() {
            near.push((d, meant));
        }
    };
    match name.split_once(':') {
        Some((head, rest)) => {
            for kw in ["file", "file-once", "tone"] {
                if input || kw != "tone" {
                    consider(&head.to_lowercase(), kw, format!("{kw}:{rest}"));
                }
            }
        }
        None => {
            for (kw, meant) in [
                ("null", "null"),
                ("default", "default"),
                ("tone", "tone:440"),
                ("file", "file:/path.wav"),
                ("file-once", "file-once:/path.wav"),
            ] {
                if input || kw != "tone" {
                    consider(&lower, kw, meant.to_string());
                }
            }
        }
    }
    for d in devices {
        consider(&lower, &d.to_lowercase(), d.clone());
    }
    // The first of the nearest: keywords before devices.
    near.into_iter()
        .min_by_key(|(d, _)| *d)
        .map(|(_, meant)| meant)
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`.
pub(super) fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: the distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for (i, ca) in a.iter().enumerate() {
        for (j, cb) in b.iter().enumerate() {
            let replace = d[i][j] + usize::from(ca != cb);
            let mut best = replace.min(d[i][j + 1] + 1).min(d[i + 1][j] + 1);
            if i > 0 && j > 0 && a[i - 1] == *cb && *ca == b[j - 1] {
                best = best.min(d[i - 1][j - 1] + 1);
            }
            d[i + 1][j + 1] = best;
        }
    }
    d[a.len()][b.len()]
}
