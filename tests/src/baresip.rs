//! baresip as the far phone (tests/peers/baresip/README.md): headless, a sine as its
//! microphone, each call recorded to WAV, driven and watched over ctrl_tcp.

use std::io::{BufReader, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::Host;
use crate::peers::{free_even_ports, free_port, stop_child};
use crate::{PATIENCE, require_tool};

pub struct BaresipOptions<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub kamailio_port: u16,
    /// The sine it sends, Hz.
    pub tone: u32,
    /// A WAV file it sends instead of the sine (aufile), from the call's start; best at
    /// 48 kHz stereo, as its audio core runs.
    pub source_file: Option<&'a Path>,
    /// An audio_codecs value: PCMU, PCMA, G722/16000/1, opus/48000/2.
    pub codec: &'a str,
    pub auto_answer: bool,
    /// Load the presence module: answer SUBSCRIBEs with NOTIFYs (status with
    /// `presence_online` / `presence_offline`).
    pub presence: bool,
    /// Lines of its contacts file (`"Alice" <sip:alice@127.0.0.1>`); with any, the contact
    /// module (`message` writes to the current contact) and stdio, which prints received
    /// messages to its log as `FROM: "TEXT"`.
    pub contacts: &'a [&'a str],
    /// Its account's media encryption: `srtp` (SDES, optional), `srtp-mand` (SDES, in
    /// RTP/SAVP, required) or `dtls_srtp`; None: clear RTP.
    pub mediaenc: Option<&'a str>,
    /// Register and call through Kamailio's TLS port instead of UDP.
    pub tls_port: Option<u16>,
    /// Where it runs in the tests' own network; None: on loopback.
    pub net: Option<BaresipNet<'a>>,
    /// Video: its account's video_codecs (`VP8`, `H264`), with fakevideo as camera and
    /// display (it sends red, green and blue thirds) and the snapshot module
    /// (`snapshot_recv FILE` saves the next received picture); None: audio only.
    pub video: Option<&'a str>,
    /// RTCP on the RTP port (its `rtcp_mux yes`): offered, and taken when offered.
    pub rtcp_mux: bool,
}

/// baresip on a host of a [`crate::netns::World`].
pub struct BaresipNet<'a> {
    pub host: &'a Host,
    /// Kamailio's address: the users' domain and the outbound proxy.
    pub registrar: IpAddr,
    /// More modules to load (`ice.so`, `stun.so`, `turn.so`).
    pub modules: &'a [&'a str],
    /// Appended to its account line (`;medianat=ice;stunserver=…`).
    pub account: &'a str,
}

impl BaresipOptions<'static> {
    /// Carol (a Kamailio test user) at `kamailio_port`: a 1 kHz tone, PCMU, auto-answer.
    pub fn carol(kamailio_port: u16) -> Self {
        BaresipOptions {
            user: "carol",
            password: "carolpw",
            kamailio_port,
            tone: 1000,
            source_file: None,
            codec: "PCMU",
            auto_answer: true,
            presence: false,
            contacts: &[],
            mediaenc: None,
            tls_port: None,
            net: None,
            video: None,
            rtcp_mux: false,
        }
    }
}

/// A Kamailio test user's phone (`<user>pw` is each one's password), sending `tone`,
/// answering by itself when `auto`.
pub fn kamailio_phone(
    parent: &Path,
    kamailio_port: u16,
    user: &'static str,
    tone: u32,
    auto: bool,
) -> Baresip {
    let password = match user {
        "alice" => "alicepw",
        "bob" => "bobpw",
        "carol" => "carolpw",
        "dave" => "davepw",
        "erin" => "erinpw",
        other => panic!("{other} is not a Kamailio test user"),
    };
    Baresip::start(
        parent,
        BaresipOptions {
            user,
            password,
            tone,
            auto_answer: auto,
            ..BaresipOptions::carol(kamailio_port)
        },
    )
}

pub struct Baresip {
    child: Option<Child>,
    /// Kept open: stdio.so wants a pipe, and gives up on /dev/null.
    _stdin: Option<std::process::ChildStdin>,
    dir: PathBuf,
    ctrl: TcpStream,
    events: Arc<Mutex<Vec<Value>>>,
    token: u64,
}

fn write_netstring(s: &mut TcpStream, v: &Value) {
    let body = v.to_string();
    s.write_all(format!("{}:{body},", body.len()).as_bytes())
        .expect("ctrl write");
}

fn read_netstring(r: &mut impl Read) -> Option<Value> {
    let mut len = Vec::new();
    let mut b = [0u8; 1];
    loop {
        r.read_exact(&mut b).ok()?;
        if b[0] == b':' {
            break;
        }
        len.push(b[0]);
    }
    let n: usize = String::from_utf8_lossy(&len).trim().parse().ok()?;
    let mut body = vec![0u8; n + 1];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body[..n]).ok()
}

fn extra_modules(o: &BaresipOptions<'_>) -> String {
    let mut m = String::new();
    if o.presence {
        m.push_str("module_app presence.so\n");
    }
    if !o.contacts.is_empty() {
        m.push_str("module_app contact.so\nmodule stdio.so\n");
    }
    if let Some(codec) = o.video {
        let module = if codec.eq_ignore_ascii_case("vp8") {
            "vp8.so"
        } else {
            "avcodec.so"
        };
        m.push_str(&format!(
            "module {module}\nmodule fakevideo.so\nmodule_app snapshot.so\n\
             video_source fakevideo,nil\nvideo_display fakevideo,nil\nvideo_size 320x240\n\
             video_fps 15\nvideo_bitrate 400000\n"
        ));
    }
    match o.mediaenc {
        Some("dtls_srtp") => m.push_str("module dtls_srtp.so\n"),
        Some(_) => m.push_str("module srtp.so\n"),
        None => {}
    }
    m
}

/// baresip only warns of a module it cannot load and goes on without it: a missing codec
/// would show as a call without pictures, far from its cause.
fn require_modules(config: &str) {
    for line in config.lines() {
        let mut words = line.split_whitespace();
        let (Some("module" | "module_app" | "module_tmp"), Some(m)) = (words.next(), words.next())
        else {
            continue;
        };
        let package = if m == "avcodec.so" {
            "baresip-ffmpeg"
        } else {
            "baresip-core"
        };
        assert!(
            Path::new("/usr/lib/baresip/modules").join(m).is_file(),
            "baresip's module {m} is missing: install it with `apt-get install {package}` \
             (./dev test does this)"
        );
    }
}

impl Baresip {
    pub fn start(parent: &Path, o: BaresipOptions<'_>) -> Baresip {
        let bin = require_tool("baresip", "baresip-core");
        let dir = parent.join(format!("baresip-{}", o.user));
        for d in ["home", "rec"] {
            std::fs::create_dir_all(dir.join(d)).expect("baresip dirs");
        }
        let ip = o
            .net
            .as_ref()
            .map_or("127.0.0.1".to_string(), |n| n.host.ip.to_string());
        let domain = o
            .net
            .as_ref()
            .map_or("127.0.0.1".to_string(), |n| n.registrar.to_string());
        // Ports are chosen free but may be taken by a test running beside before baresip
        // binds them: it then exits at once, and starts again on others.
        let mut attempt = 0;
        let (child, stdin, ctrl) = loop {
            attempt += 1;
            // SIP on P (and TLS on P+1, which baresip opens too), control on another port.
            let sip = loop {
                let p = free_port();
                if std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
                    break p;
                }
            };
            let ctrl_port = free_port();
            let rtp = free_even_ports(10);
            let mut modules = extra_modules(&o);
            let source = match o.source_file {
                Some(f) => format!("aufile,{}", f.display()),
                None => format!("ausine,{}", o.tone),
            };
            for m in o.net.as_ref().map_or(&[][..], |n| n.modules) {
                modules.push_str(&format!("module {m}\n"));
            }
            let config = format!(
                "poll_method epoll\nsip_listen {ip}:{sip}\ncall_local_timeout 120\ncall_max_calls 4\n\
                 audio_source {source}\naudio_player aubridge,{user}-null\naudio_alert aubridge,{user}-null\n\
                 ausrc_srate 48000\nausrc_channels 2\naudio_level no\nrtp_ports {rtp}-{}\nnet_interface {ip}\n\
                 module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule g722.so\nmodule opus.so\n\
                 module ausine.so\nmodule aufile.so\nmodule aubridge.so\nmodule sndfile.so\nmodule_tmp account.so\n\
                 module_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n\
                 snd_path {}\nstatmode_default off\nrtcp_mux {}\n{}",
                rtp + 9,
                dir.join("rec").display(),
                if o.rtcp_mux { "yes" } else { "no" },
                modules,
                user = o.user,
            );
            require_modules(&config);
            std::fs::write(dir.join("config"), config).expect("config");
            std::fs::write(dir.join("accounts"), "").expect("accounts");
            std::fs::write(dir.join("contacts"), o.contacts.join("\n") + "\n").expect("contacts");
            let log = std::fs::File::create(dir.join("baresip.log")).expect("log");
            let mut cmd = match &o.net {
                Some(n) => {
                    let mut c = n.host.command(&bin);
                    c.arg("-f");
                    c
                }
                None => {
                    let mut c = Command::new(&bin);
                    c.arg("-f");
                    c
                }
            };
            let child = cmd
                .arg(&dir)
                .current_dir(&dir)
                .env("HOME", dir.join("home"))
                .stdin(if o.contacts.is_empty() {
                    Stdio::null()
                } else {
                    Stdio::piped()
                })
                .stdout(log.try_clone().expect("dup"))
                .stderr(log)
                .spawn()
                .expect("start baresip");
            let mut child = child;
            let stdin = child.stdin.take();
            let deadline = Instant::now() + PATIENCE;
            let connect = move || TcpStream::connect(("127.0.0.1", ctrl_port));
            let ctrl = loop {
                let tried = match &o.net {
                    Some(n) => n.host.within(connect),
                    None => connect(),
                };
                let exited = child.try_wait().ok().flatten();
                match (tried, exited) {
                    (Ok(s), _) => break Some(s),
                    (Err(_), Some(status)) => {
                        let log =
                            std::fs::read_to_string(dir.join("baresip.log")).unwrap_or_default();
                        assert!(
                            attempt < 3,
                            "baresip exited ({status}) three times at its start:\n{log}"
                        );
                        eprintln!(
                            "baresip exited ({status}) at its start; again on other ports:\n{log}"
                        );
                        break None;
                    }
                    (Err(_), None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    (Err(e), None) => panic!(
                        "baresip control port: {e}\n{}",
                        std::fs::read_to_string(dir.join("baresip.log")).unwrap_or_default()
                    ),
                }
            };
            if let Some(ctrl) = ctrl {
                break (child, stdin, ctrl);
            }
        };
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut reader = BufReader::new(ctrl.try_clone().expect("clone"));
        let sink = events.clone();
        std::thread::spawn(move || {
            while let Some(v) = read_netstring(&mut reader) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(v);
            }
        });
        let mut b = Baresip {
            child: Some(child),
            _stdin: stdin,
            dir,
            ctrl,
            events,
            token: 0,
        };
        let answer = if o.auto_answer { "auto" } else { "manual" };
        let transport = if o.tls_port.is_some() { "tls" } else { "udp" };
        b.command(
            "uanew",
            &format!(
                "<sip:{}@{domain};transport={transport}>;auth_pass={};outbound=\"sip:{domain}:{};transport={transport}\";answermode={answer};audio_codecs={};regint=600{}{}",
                o.user,
                o.password,
                o.tls_port.unwrap_or(o.kamailio_port),
                o.codec,
                o.mediaenc.map(|m| format!(";mediaenc={m}")).unwrap_or_default()
                    + &o.video.map(|v| format!(";video_codecs={v}")).unwrap_or_default(),
                o.net.as_ref().map_or("", |n| n.account),
            ),
        );
        b.wait_event("REGISTER_OK");
        b
    }

    /// Sends a command and returns its response.
    pub fn command(&mut self, command: &str, params: &str) -> Value {
        self.token += 1;
        let token = self.token.to_string();
        write_netstring(
            &mut self.ctrl,
            &serde_json::json!({"command": command, "params": params, "token": token}),
        );
        self.wait_for(
            |v| v["response"] == true && v["token"] == token.as_str(),
            &format!("response to {command}"),
        )
    }

    fn wait_for(&self, pred: impl Fn(&Value) -> bool, what: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            {
                let mut ev = self.events.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(i) = ev.iter().position(&pred) {
                    return ev.remove(i);
                }
            }
            assert!(
                Instant::now() < deadline,
                "baresip: no {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for (and consumes) the next event of this type.
    pub fn wait_event(&self, kind: &str) -> Value {
        self.wait_for(
            |v| v["event"] == true && v["type"] == kind,
            &format!("{kind} event"),
        )
    }

    /// Events of this type so far, without waiting.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|v| v["type"] == kind)
            .cloned()
            .collect()
    }

    /// What baresip received in its calls (sndfile's "-dec.wav"), oldest first.
    pub fn received_recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("rec"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.to_string_lossy().ends_with("-dec.wav"));
        v.sort();
        v
    }

    /// Forgets the calls recorded so far, so that the next call's is the one.
    pub fn clear_recordings(&self) {
        for p in self.received_recordings() {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Each side heard the other's tone, clean, in at least 1.5 s of 100 ms blocks: voipd's
    /// recording `ours` holds baresip's `theirs` Hz, and baresip's one recording holds
    /// voipd's `ours_hz`.
    pub fn assert_both_ways(&self, ours: &Path, ours_hz: f64, theirs_hz: f64) {
        crate::audio::assert_tone(ours, theirs_hz, &[ours_hz, 1500.0], 15);
        let theirs = self.received_recordings();
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        crate::audio::assert_tone(&theirs[0], ours_hz, &[theirs_hz, 1500.0], 15);
    }

    /// Ends it with SIGTERM, as a user quitting does (its subscribers get a last NOTIFY).
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Its un-REGISTER can hang when Kamailio is gone; a kill is safe for baresip.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
