//! mosquitto as the broker, as a home server runs it: passwords required, sessions and
//! retained messages kept on disk across a restart; `mosquitto_sub` and `mosquitto_pub`
//! as the other clients.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::{free_port, stop_child};
use crate::{PATIENCE, require_tool};

/// The users the broker knows: (name, password).
pub const USERS: [(&str, &str); 2] = [("voipd", "voipd-mqtt-pw"), ("hass", "hass-mqtt-pw")];

pub struct Mosquitto {
    pub port: u16,
    /// A second listener with TLS, when started with a certificate.
    pub tls_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    pub fn start(parent: &Path) -> Mosquitto {
        Mosquitto::start_with(parent, None)
    }

    /// Also listening with TLS (this certificate and key) on `tls_port`.
    pub fn start_tls(parent: &Path, cert: &crate::pki::Issued) -> Mosquitto {
        Mosquitto::start_with(parent, Some(cert))
    }

    fn start_with(parent: &Path, tls: Option<&crate::pki::Issued>) -> Mosquitto {
        let dir = parent.join("mosquitto");
        std::fs::create_dir_all(&dir).expect("mosquitto dir");
        let passwd = dir.join("passwd");
        for (i, (user, pw)) in USERS.iter().enumerate() {
            let mut c = Command::new(require_tool("mosquitto_passwd", "mosquitto"));
            c.arg("-b");
            if i == 0 {
                c.arg("-c");
            }
            let out = c
                .arg(&passwd)
                .arg(user)
                .arg(pw)
                .output()
                .expect("mosquitto_passwd");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = free_port();
        let tls_port = tls.map(|_| free_port());
        let mut conf = format!(
            "user root\nper_listener_settings false\nallow_anonymous false\npassword_file {}\n\
             persistence true\npersistence_location {}/\nautosave_interval 1\n\
             log_dest file {}\nlog_type all\nlistener {port} 127.0.0.1\n",
            passwd.display(),
            dir.display(),
            dir.join("mosquitto.log").display()
        );
        if let (Some(cert), Some(p)) = (tls, tls_port) {
            conf.push_str(&format!(
                "listener {p} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
                cert.cert.display(),
                cert.key.display()
            ));
        }
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("mosquitto.conf");
        let mut m = Mosquitto {
            port,
            tls_port,
            dir,
            child: None,
        };
        m.run();
        m
    }

    fn run(&mut self) {
        let child = Command::new(require_tool("mosquitto", "mosquitto"))
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it (it saves its sessions and retained messages), then starts it again.
    pub fn restart(&mut self, down_for: Duration) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
        std::thread::sleep(down_for);
        self.run();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// Publishes as Home Assistant would.
    pub fn publish(&self, topic: &str, payload: &str) {
        self.publish_with(topic, payload, false);
    }

    /// Publishes a retained message, which the broker hands every new subscriber.
    pub fn publish_retained(&self, topic: &str, payload: &str) {
        self.publish_with(topic, payload, true);
    }

    fn publish_with(&self, topic: &str, payload: &str, retain: bool) {
        let out = Command::new(require_tool("mosquitto_pub", "mosquitto-clients"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-u", USERS[1].0, "-P", USERS[1].1, "-q", "1"])
            .args(["-t", topic, "-m", payload])
            .args(if retain { &["-r"][..] } else { &[][..] })
            .output()
            .expect("mosquitto_pub");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A subscriber to everything, with a session the broker keeps across its restart.
    pub fn subscribe_all(&self, into: &Path) -> Subscriber {
        let child = Command::new(require_tool("mosquitto_sub", "mosquitto-clients"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-u", USERS[1].0, "-P", USERS[1].1])
            .args(["-i", "test-subscriber", "-c", "-q", "1", "-t", "#"])
            // The retain flag first: set only on what the broker hands a new subscription.
            .args(["-F", "%r %t %p"])
            .stdout(std::fs::File::create(into).expect("subscriber file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub");
        Subscriber {
            child,
            file: into.to_path_buf(),
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }
}

pub struct Subscriber {
    child: Child,
    file: PathBuf,
}

impl Subscriber {
    /// (topic, payload) of every message so far; an empty payload (a retained message
    /// cleared), which mosquitto_sub may print as "(null)", is "".
    pub fn messages(&self) -> Vec<(String, String)> {
        self.all().into_iter().map(|(_, t, p)| (t, p)).collect()
    }

    /// Only what was published since the subscriber was there, not the retained messages
    /// the broker hands it when it (re)subscribes: what a client said, not what it said
    /// once.
    pub fn fresh(&self) -> Vec<(String, String)> {
        self.all()
            .into_iter()
            .filter(|(retained, _, _)| !retained)
            .map(|(_, t, p)| (t, p))
            .collect()
    }

    fn all(&self) -> Vec<(bool, String, String)> {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        // mosquitto_sub may be halfway through a line: only whole lines are messages.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole
            .lines()
            .filter_map(|l| {
                let (r, rest) = l.split_once(' ')?;
                let (t, p) = rest.split_once(' ').unwrap_or((rest, ""));
                let p = if p == "(null)" { "" } else { p };
                Some((r == "1", t.to_string(), p.to_string()))
            })
            .collect()
    }

    /// The payloads on `topic`, parsed as JSON where they are.
    pub fn on(&self, topic: &str) -> Vec<serde_json::Value> {
        self.messages()
            .into_iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, p)| serde_json::from_str(&p).unwrap_or(serde_json::Value::String(p)))
            .collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}
