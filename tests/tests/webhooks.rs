//! Webhooks to a small HTTPS receiver (Python's http.server with a certificate from the
//! test's own CA) that checks every signature: events arrive signed and in order, are
//! retried while the receiver is down and all arrive when it is back, and past the queue
//! bound the oldest are dropped and counted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use voipd_tests::peers::{free_port, stop_child};
use voipd_tests::pki::{Issued, Pki};
use voipd_tests::*;

const SECRET: &str = "door-bell-secret";

struct Receiver {
    child: Child,
    out: PathBuf,
}

impl Receiver {
    fn start(port: u16, cert: &Issued, out: &Path) -> Receiver {
        let py = require_tool("python3", "python3");
        let mut child = Command::new(py)
            .arg(py_script("webhook_receiver.py"))
            .arg(port.to_string())
            .arg(&cert.cert)
            .arg(&cert.key)
            .arg(SECRET)
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the receiver");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("the receiver's first line");
        assert_eq!(line.trim(), "ready");
        Receiver {
            child,
            out: out.to_path_buf(),
        }
    }

    fn got(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

fn add_contact(sb: &Sandbox, name: &str) {
    let o = sb.voipctl(&[
        "contacts",
        "add",
        name,
        "-a",
        &format!("{name}@example.com"),
    ]);
    assert!(o.status.success(), "{}", describe(&o));
}

/// The contacts' names the receiver was given, in the order it got them.
fn names(r: &Receiver) -> Vec<String> {
    r.got()
        .iter()
        .map(|g| {
            assert_eq!(g["valid"], true, "a bad signature: {g}");
            assert_eq!(g["path"], "/api/webhook/door?from=voipd", "{g}");
            assert_eq!(g["event"], "contact_changed", "{g}");
            assert_eq!(g["content_type"], "application/json", "{g}");
            assert_eq!(g["body"]["name"], "contact_changed", "{g}");
            assert_eq!(g["delivery"], g["body"]["seq"].to_string(), "{g}");
            g["body"]["kind"]["contact_changed"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn events_are_signed_retried_until_the_receiver_is_back_and_bounded() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.path(), "hooks-ca");
    let cert = pki.issue("receiver", "localhost", None);
    let port = free_port();
    let out = sb.path().join("received.jsonl");
    std::fs::write(sb.path().join("secret"), format!("{SECRET}\n")).expect("secret");
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[presence]\nsubscribe = false\n\n\
         [[webhook]]\nname = \"hass\"\nurl = \"https://localhost:{port}/api/webhook/door?from=voipd\"\n\
         on = [\"contact_changed\"]\nsecret_file = \"{}\"\nca = \"{}\"\nqueue = 4\n",
        sb.path().join("secret").display(),
        pki.ca.display()
    ));
    let d = sb.start_daemon();

    // Up: each event arrives at once, signed, in order.
    let receiver = Receiver::start(port, &cert, &out);
    for n in ["ann", "ben", "cat"] {
        add_contact(&sb, n);
    }
    wait_until(|| names(&receiver).len() == 3, "three events");
    assert_eq!(names(&receiver), ["ann", "ben", "cat"]);

    // Down: three more wait (within the bound) and are retried; back, all three arrive.
    drop(receiver);
    for n in ["dan", "eve", "fay"] {
        add_contact(&sb, n);
    }
    wait_until(
        || d.log().contains("webhook hass: event") && d.log().contains("trying again"),
        "a failed delivery to be retried",
    );
    let receiver = Receiver::start(port, &cert, &out);
    wait_until(|| names(&receiver).len() == 6, "the three that waited");
    assert_eq!(names(&receiver), ["ann", "ben", "cat", "dan", "eve", "fay"]);

    // Down again, and seven events for a queue of four: the oldest three are dropped,
    // counted in the log; the newest four arrive in order.
    drop(receiver);
    let more = ["gus", "hal", "ian", "jo", "kim", "lou", "max"];
    for n in more {
        add_contact(&sb, n);
    }
    wait_until(
        || d.log().contains("(3 dropped since start)"),
        "the dropped events to be counted",
    );
    let receiver = Receiver::start(port, &cert, &out);
    wait_until(|| names(&receiver).len() == 10, "the four newest");
    assert_eq!(&names(&receiver)[6..], ["jo", "kim", "lou", "max"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(names(&receiver).len(), 10, "no more than those");
}

#[test]
fn a_receiver_whose_certificate_does_not_verify_gets_nothing() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.path(), "hooks-ca");
    let other = Pki::new(sb.path(), "other-ca");
    let cert = other.issue("receiver", "localhost", None);
    let port = free_port();
    let out = sb.path().join("received.jsonl");
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
         [[webhook]]\nurl = \"https://localhost:{port}/api/webhook/door?from=voipd\"\n\
         secret = \"{SECRET}\"\nca = \"{}\"\n",
        pki.ca.display()
    ));
    let d = sb.start_daemon();
    let receiver = Receiver::start(port, &cert, &out);
    add_contact(&sb, "ann");
    wait_until(
        || d.log().contains("webhook localhost: event") && d.log().contains("TLS with localhost"),
        "the refused certificate in the log",
    );
    assert!(receiver.got().is_empty(), "{:?}", receiver.got());
}

#[test]
fn bad_webhook_settings_are_refused_naming_the_field() {
    let sb = Sandbox::new();
    for (text, field) in [
        ("url = \"ftp://x/\"", "webhook[0]: url:"),
        ("url = \"https://x/\"\non = [\"ring\"]", "webhook[0]: on:"),
        (
            "url = \"https://x/\"\nsecret_file = \"/nonexistent/secret\"",
            "webhook[0].secret_file",
        ),
        (
            "url = \"https://x/\"\nca = \"/etc/hostname\"",
            "webhook[0].ca",
        ),
    ] {
        sb.write_config(&format!("[[webhook]]\n{text}\n"));
        let o = sb
            .command(bin("voipd"))
            .args(["--check-config", "--config"])
            .arg(sb.config_path())
            .output()
            .expect("voipd");
        assert!(!o.status.success(), "{text}: {}", describe(&o));
        assert!(stderr(&o).contains(field), "{text}: {}", describe(&o));
    }
}
