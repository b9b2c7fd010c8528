//! Text messages (SIP MESSAGE): from SIPp (UTF-8 kept intact, a resend kept once, other
//! charsets and types refused with 415), both ways with baresip through Kamailio, and a
//! message answered 200 survives kill -9.

use std::time::Duration;

use serde_json::Value;
use voipd_tests::peers::{Sipp, free_port};
use voipd_tests::*;

const TEXT: &str = "Grüße aus Köln 👋 — the door is open";

/// voipd with an account "alice" that registers nowhere (senders talk to it directly),
/// with `env` added; and its SIP port.
fn start(sb: &Sandbox, env: &[(&str, &str)]) -> (Daemon, u16) {
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\nenabled = false\n",
    );
    let mut d = sb.spawn_daemon(&[], env);
    sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    let port = sb.sip_port();
    (d, port)
}

/// The list as a script sees it, without counting them as read.
fn messages(sb: &Sandbox) -> Vec<Value> {
    let out = sb.voipctl(&["--json", "message", "list", "--peek"]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["messages"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_message_is_kept_once_intact_and_other_kinds_are_refused() {
    let sb = Sandbox::new();
    let (_d, port) = start(&sb, &[]);
    let (mut watch, events) = watch_events(&sb);
    let mut sipp = Sipp::client(sb.path(), "message_uac.xml", port);
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());

    let m = messages(&sb);
    assert_eq!(m.len(), 1, "the resend is not a second message: {m:?}");
    // Kept as sent, to the byte (SIPp ends its body with a line break).
    assert_eq!(m[0]["body"], format!("{TEXT}\r\n"));
    assert_eq!(m[0]["peer_name"], "Zoë");
    assert!(
        m[0]["peer"].as_str().unwrap().starts_with("sip:zoe@"),
        "{m:?}"
    );
    assert_eq!(m[0]["incoming"], true);
    assert_eq!(m[0]["status"], "received");
    assert_eq!(m[0]["account"], "alice");
    assert_eq!(m[0]["read"], false, "listed with --peek: still unread");
    wait_until(
        || {
            watched(&events)
                .iter()
                .any(|e| e["kind"]["message_received"]["peer_name"] == "Zoë")
        },
        "a message_received event",
    );
    let received = watched(&events)
        .iter()
        .filter(|e| e["kind"]["message_received"].is_object())
        .count();
    assert_eq!(received, 1);
    let peer = m[0]["peer"].as_str().unwrap();
    // Listed for real, it is read from then on, and watchers are told.
    let text = stdout(&sb.voipctl(&["message", "list"]));
    assert!(text.starts_with("● "), "the unread one marked: {text}");
    wait_until(
        || {
            watched(&events)
                .iter()
                .any(|e| e["kind"]["unread_messages"]["count"] == 0)
        },
        "unread_messages back to 0",
    );
    assert!(
        watched(&events)
            .iter()
            .any(|e| e["kind"]["unread_messages"]["count"] == 1),
        "one unread when it came"
    );
    let _ = watch.kill();
    let _ = watch.wait();
    let peeked = stdout(&sb.voipctl(&["--json", "message", "list", "--peek"]));
    assert!(peeked.contains("\"read\":true"), "{peeked}");
    let text = stdout(&sb.voipctl(&["message", "list", "--with", peer]));
    assert!(
        text.contains(&format!("from Zoë <{peer}>: {TEXT}")),
        "{text}"
    );
    assert_eq!(
        stdout(&sb.voipctl(&["message", "list", "--with", "sip:nobody@x"])).trim(),
        "no messages"
    );
}

/// One MESSAGE over UDP, by hand; returns the first final response's status line.
fn message_by_hand(port: u16, body: &str) -> String {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = sock.local_addr().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let msg = format!(
        "MESSAGE sip:alice@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-kill9-{}\r\n\
         From: <sip:zoe@{local}>;tag=k9\r\nTo: <sip:alice@127.0.0.1:{port}>\r\n\
         Call-ID: kill9-{}@test\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        local.port(),
        local.port(),
        body.len()
    );
    sock.send_to(msg.as_bytes(), ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).expect("an answer to the MESSAGE");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let line = text.lines().next().unwrap_or_default().to_string();
        if !line.starts_with("SIP/2.0 1") {
            return line;
        }
    }
}

#[test]
fn a_message_answered_200_survives_kill_9() {
    let sb = Sandbox::new();
    let (mut d, port) = start(&sb, &[]);
    // The 200 goes out once the message is on disk; kill at once, no goodbye.
    assert_eq!(message_by_hand(port, TEXT), "SIP/2.0 200 OK");
    d.signal(libc::SIGKILL);
    d.wait_exit();
    let _d = sb.start_daemon();
    let m = messages(&sb);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["body"], TEXT);
}

#[test]
fn a_desktop_hears_of_a_message_over_dbus() {
    let sb = Sandbox::new();
    let bus = voipd_tests::dbus::Bus::start(sb.path());
    let (_d, port) = start(&sb, &bus.env());
    bus.wait_for_voipd();
    let monitor = bus.monitor();
    assert_eq!(message_by_hand(port, "ring me 📞"), "SIP/2.0 200 OK");
    wait_until(
        || {
            monitor
                .text()
                .contains("org.voipd.Manager1.MessageReceived (int64 1, 'sip:zoe@")
                && monitor.text().contains("'ring me 📞'")
        },
        "a MessageReceived signal",
    );
    // A widget sends one (to voipd itself, the simplest far side that answers) and sees
    // it delivered.
    let to = format!("sip:alice@127.0.0.1:{port}");
    let out = bus.busctl_ok(&[
        "call",
        voipd_tests::dbus::NAME,
        voipd_tests::dbus::ROOT,
        "org.voipd.Manager1",
        "SendMessage",
        "sss",
        &to,
        "alice",
        "sent from the panel",
    ]);
    let id: i64 = out.trim().trim_start_matches("x ").parse().unwrap();
    wait_until(
        || {
            monitor.text().contains(&format!(
                "org.voipd.Manager1.MessageChanged (int64 {id}, 'delivered', uint16 200)"
            ))
        },
        "a MessageChanged signal saying delivered",
    );
}

#[test]
fn too_large_messages_get_a_sip_error_and_nothing_is_kept() {
    let sb = Sandbox::new();
    let (_d, port) = start(&sb, &[]);
    // 40 KB of text over UDP: it arrives, and is refused as too long for a message.
    let long = "a".repeat(40_000);
    assert!(message_by_hand(port, &long).starts_with("SIP/2.0 413"));
    // 1 MB over TCP: more than any SIP message voipd reads; the head is answered 513.
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = vec![b'a'; 1 << 20];
    let head = format!(
        "MESSAGE sip:alice@127.0.0.1:{port};transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-big\r\n\
         From: <sip:zoe@127.0.0.1>;tag=big\r\nTo: <sip:alice@127.0.0.1>\r\n\
         Call-ID: big@test\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    use std::io::{Read, Write};
    tcp.write_all(head.as_bytes()).unwrap();
    let _ = tcp.write_all(&body);
    // The whole head of the answer, however the stream cuts it.
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&got).to_string();
    assert!(answer.starts_with("SIP/2.0 513"), "{answer:?}");
    assert!(answer.contains("Call-ID: big@test"), "{answer}");
    assert!(messages(&sb).is_empty());
    // voipd goes on.
    assert_eq!(message_by_hand(port, "still here"), "SIP/2.0 200 OK");
}

/// voipd "bob" on a UDP port chosen beforehand, taking messages for anyone.
fn start_bob(sb: &Sandbox, port: u16) -> Daemon {
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:{port}\"]\n\n\
         [[account]]\nid = \"bob\"\naor = \"sip:bob@127.0.0.1:{port}\"\nenabled = false\n"
    ));
    sb.start_daemon()
}

/// voipd "alice", sending; short SIP timers so that an unanswered attempt ends quickly.
fn start_alice(sb: &Sandbox) -> Daemon {
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\nt1_ms = 50\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\ndisplay_name = \"Alice\"\nenabled = false\n",
    );
    sb.start_daemon()
}

fn wait_status(sb: &Sandbox, status: &str) -> Value {
    let mut found = Value::Null;
    wait_until(
        || {
            found = messages(sb)
                .into_iter()
                .find(|m| m["incoming"] == false && m["status"] == status)
                .unwrap_or(Value::Null);
            !found.is_null()
        },
        &format!("a sent message {status}"),
    );
    found
}

#[test]
fn one_voipd_writes_to_another_and_sees_it_delivered() {
    let (a, b) = (Sandbox::new(), Sandbox::new());
    let bob_port = free_port();
    let _bob = start_bob(&b, bob_port);
    let _alice = start_alice(&a);
    let to = format!("sip:bob@127.0.0.1:{bob_port}");
    // Alice is not registered anywhere, so she names her account.
    let out = a.voipctl(&["--json", "message", "send", &to, TEXT, "--account", "alice"]);
    assert!(out.status.success(), "{}", describe(&out));
    let queued: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(queued["status"], "queued");
    let sent = wait_status(&a, "delivered");
    assert_eq!(sent["code"], 200, "{sent}");
    assert_eq!(sent["id"], queued["id"]);
    let got = messages(&b);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["body"], TEXT, "the text arrives intact");
    assert_eq!(got[0]["peer_name"], "Alice");
    assert!(
        got[0]["peer"].as_str().unwrap().starts_with("sip:alice@"),
        "{got:?}"
    );

    // Bad arguments are refused by name, and nothing is queued.
    for (args, field) in [
        (vec!["message", "send", &to, ""], "TEXT:"),
        (vec!["message", "send", "sip:", "hi"], "WHOM:"),
    ] {
        let out = a.voipctl(&args);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        assert!(stderr(&out).contains(field), "{}", describe(&out));
    }
    assert_eq!(messages(&a).len(), 1);
}

#[test]
fn a_refusal_is_a_failure_with_its_code() {
    let sb = Sandbox::new();
    let _alice = start_alice(&sb);
    let port = free_port();
    let mut sipp = Sipp::server(sb.path(), "message_uas_403.xml", port, 1);
    let to = format!("sip:carol@127.0.0.1:{port}");
    assert!(
        sb.voipctl(&["message", "send", &to, "hello?"])
            .status
            .success()
    );
    let failed = wait_status(&sb, "failed");
    assert_eq!(failed["code"], 403, "{failed}");
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
    let list = stdout(&sb.voipctl(&["message", "list"]));
    assert!(list.contains("[failed: 403]"), "{list}");
}

#[test]
fn a_queued_message_is_sent_after_kill_9_and_a_restart() {
    let (a, b) = (Sandbox::new(), Sandbox::new());
    let bob_port = free_port();
    let mut alice = start_alice(&a);
    // Bob is not there yet: the message stays queued.
    let to = format!("sip:bob@127.0.0.1:{bob_port}");
    assert!(a.voipctl(&["message", "send", &to, TEXT]).status.success());
    assert_eq!(messages(&a)[0]["status"], "queued");
    alice.signal(libc::SIGKILL);
    alice.wait_exit();
    let _bob = start_bob(&b, bob_port);
    let _alice = a.start_daemon();
    let sent = wait_status(&a, "delivered");
    assert_eq!(sent["body"], TEXT);
    wait_until(|| messages(&b).len() == 1, "bob to have it");
    assert_eq!(messages(&b)[0]["body"], TEXT);
    assert_eq!(messages(&a).len(), 1, "sent once, listed once");
}

/// baresip writes to voipd and voipd to baresip, both through Kamailio, each by the
/// contact's name on its side; the text arrives intact both ways.
#[test]
fn messages_go_both_ways_with_baresip_through_kamailio() {
    use voipd_tests::baresip::{Baresip, BaresipOptions};
    use voipd_tests::peers::Kamailio;

    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\npassword = \"alicepw\"\n\
         outbound_proxy = [\"sip:127.0.0.1:{}\"]\n",
        kam.port
    ));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let mut carol = Baresip::start(
        sb.path(),
        BaresipOptions {
            contacts: &["\"Alice\" <sip:alice@127.0.0.1>"],
            ..BaresipOptions::carol(kam.port)
        },
    );
    let out = sb.voipctl(&["contacts", "add", "Carol Singer", "-a", "carol@127.0.0.1"]);
    assert!(out.status.success(), "{}", describe(&out));

    // baresip to voipd: its `message` command writes to its current contact, Alice.
    carol.command("message", TEXT);
    let mut got = Vec::new();
    wait_until(
        || {
            let out = sb.voipctl(&["--json", "message", "list", "--with", "carol"]);
            let v: Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
            got = v["messages"].as_array().cloned().unwrap_or_default();
            !got.is_empty()
        },
        "baresip's message in voipd's list",
    );
    assert_eq!(got[0]["body"], TEXT, "{got:?}");
    assert_eq!(got[0]["peer"], "sip:carol@127.0.0.1", "{got:?}");
    assert_eq!(got[0]["contact"], "Carol Singer", "{got:?}");
    assert_eq!(got[0]["incoming"], true);

    // voipd to baresip, by the contact's name; delivered, and shown by baresip as sent.
    let reply = "Danke! 🚪 Tür ist zu";
    let out = sb.voipctl(&["--json", "message", "send", "carol", reply]);
    assert!(out.status.success(), "{}", describe(&out));
    let sent: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(sent["peer"], "sip:carol@127.0.0.1", "{sent}");
    wait_until(
        || {
            let out = sb.voipctl(&["--json", "message", "list", "--with", "Carol Singer"]);
            let v: Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
            v["messages"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|m| m["body"] == reply && m["status"] == "delivered")
            })
        },
        "the reply to be delivered",
    );
    wait_until(
        || {
            carol
                .log()
                .contains(&format!("sip:alice@127.0.0.1: \"{reply}\""))
        },
        "baresip to show the reply",
    );
    // The conversation, both ways, by name.
    let text = stdout(&sb.voipctl(&["message", "list", "--with", "carol"]));
    assert!(text.contains(TEXT) && text.contains(reply), "{text}");
    assert!(
        text.contains("from Carol Singer <sip:carol@127.0.0.1>: "),
        "shown by the contact's name: {text}"
    );
}
