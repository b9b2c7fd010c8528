//! Signing in: voipd registers its accounts at a real Kamailio, over UDP and TCP, keeps them
//! registered through a registrar restart, and refuses to hammer it with a wrong password.

use std::time::{Duration, Instant};

use voipd_tests::peers::Kamailio;
use voipd_tests::*;

/// alice over UDP, bob over TCP through an outbound proxy, carol over UDP with an
/// explicit username, dave with a wrong password.
fn config(sb: &Sandbox, port: u16, extra: &str) -> String {
    let pw = sb.path().join("carol.pw");
    std::fs::write(&pw, "carolpw\n").unwrap();
    let pw = pw.display();
    format!(
        r#"
[sip]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
{extra}

[[account]]
id = "alice"
aor = "sip:alice@127.0.0.1:{port}"
password = "alicepw"
keepalive_secs = 2

[[account]]
id = "bob"
aor = "sip:bob@127.0.0.1"
outbound_proxy = "sip:127.0.0.1:{port};transport=tcp"
password = "bobpw"
keepalive_secs = 2

[[account]]
id = "carol"
aor = "sip:carol@127.0.0.1:{port}"
username = "carol"
password_file = "{pw}"

[[account]]
id = "dave"
aor = "sip:dave@127.0.0.1:{port}"
password = "not-daves-password"
"#
    )
}

#[test]
fn accounts_register_over_udp_and_tcp_and_a_wrong_password_fails_quietly() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&config(&sb, kam.port, ""));
    let mut d = sb.start_daemon();

    for id in ["alice", "bob", "carol"] {
        let a = wait_account_state(&sb, id, "registered", PATIENCE);
        assert!(a["registered_until_unix_ms"].as_u64().unwrap() > 0);
    }
    assert_eq!(
        account(&sb, "bob")["registrar"],
        format!("tcp:127.0.0.1:{}", kam.port)
    );
    assert_eq!(
        account(&sb, "alice")["registrar"],
        format!("udp:127.0.0.1:{}", kam.port)
    );
    let dave = wait_account_state(&sb, "dave", "failed", PATIENCE);
    assert_eq!(dave["last_code"], 403, "{dave}");
    assert!(dave["retry_at_unix_ms"].as_u64().unwrap() > 0);

    // The registrar saw what RFC 5626 asks for, over the right transports.
    let alice = kam.registers_from("alice");
    assert!(
        alice
            .iter()
            .all(|l| l.contains("proto=udp") && l.contains("+sip.instance=")),
        "{alice:?}"
    );
    assert!(
        kam.registers_from("bob")
            .iter()
            .all(|l| l.contains("proto=tcp"))
    );

    // No retry storm: the challenge and one answer, then quiet.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        kam.registers_from("dave").len(),
        2,
        "{:?}",
        kam.registers_from("dave")
    );
    assert_eq!(account(&sb, "dave")["state"], "failed");

    // People read the same states.
    let out = sb.voipctl(&["accounts"]);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("alice") && l.contains("registered")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("dave") && l.contains("failed") && l.contains("403")),
        "{text}"
    );

    // Unregister and register again by hand.
    let out = sb.voipctl(&["unregister", "alice"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_account_state(&sb, "alice", "unregistered", PATIENCE);
    assert!(
        kam.registers_from("alice")
            .iter()
            .any(|l| l.contains("expires=0")),
        "an un-REGISTER was sent"
    );
    let out = sb.voipctl(&["register", "alice"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_account_state(&sb, "alice", "registered", PATIENCE);

    // Unknown ids are refused, with exit 1.
    let out = sb.voipctl(&["register", "zed"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("no account \"zed\""),
        "{}",
        describe(&out)
    );

    // One TCP connection carries all of bob's REGISTERs.
    let sources: std::collections::BTreeSet<String> = kam
        .registers_from("bob")
        .iter()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("src="))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(sources.len(), 1, "{sources:?}");

    // A reload adds erin and removes carol; alice is left alone, and so is bob's
    // registration when only how his calls go changes.
    let (alice_n, bob_n) = (
        kam.registers_from("alice").len(),
        kam.registers_from("bob").len(),
    );
    let carol_pw = format!(
        "password_file = \"{}\"",
        sb.path().join("carol.pw").display()
    );
    let with_erin = config(&sb, kam.port, "")
        .replace("id = \"carol\"", "id = \"erin\"")
        .replace("sip:carol@", "sip:erin@")
        .replace("username = \"carol\"", "username = \"erin\"")
        .replace(&carol_pw, "password = \"erinpw\"")
        .replace(
            "password = \"bobpw\"",
            "password = \"bobpw\"\nmax_calls = 1\nrecord = \"always\"",
        );
    sb.write_config(&with_erin);
    let out = sb.voipctl(&["reload"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_account_state(&sb, "erin", "registered", PATIENCE);
    assert!(accounts(&sb).iter().all(|a| a["id"] != "carol"));
    wait_until(
        || {
            kam.registers_from("carol")
                .iter()
                .any(|l| l.contains("expires=0"))
        },
        "carol un-REGISTERed when removed",
    );
    assert_eq!(
        kam.registers_from("alice").len(),
        alice_n,
        "alice untouched by the reload"
    );
    assert_eq!(
        kam.registers_from("bob").len(),
        bob_n,
        "bob's registration untouched by the reload"
    );
    let bob = account(&sb, "bob");
    assert_eq!(bob["state"], "registered", "{bob}");

    // Shutdown un-REGISTERs what is registered.
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0));
    for user in ["alice", "bob", "erin"] {
        let unreg = kam
            .registers_from(user)
            .iter()
            .filter(|l| l.contains("expires=0"))
            .count();
        assert!(unreg >= 1, "{user} not un-REGISTERed at shutdown");
    }
}

#[test]
fn a_dead_first_proxy_fails_over_to_the_second() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    // Nobody answers on the first proxy's port: after 64·T1 the second one is tried.
    let dead = voipd_tests::peers::free_port();
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\nt1_ms = 100\n\n[[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\npassword = \"alicepw\"\noutbound_proxy = [\"sip:127.0.0.1:{dead}\", \"sip:127.0.0.1:{}\"]\n",
        kam.port
    ));
    let _d = sb.start_daemon();
    let a = wait_account_state(&sb, "alice", "registered", Duration::from_secs(30));
    assert_eq!(a["registrar"], format!("udp:127.0.0.1:{}", kam.port));
}

#[test]
fn registrations_come_back_after_the_registrar_restarts() {
    let sb = Sandbox::new();
    let mut kam = Kamailio::start(sb.path(), &[]);
    // A short T1 keeps failure detection (64·T1) quick enough for a test.
    sb.write_config(&config(&sb, kam.port, "t1_ms = 100"));
    let _d = sb.start_daemon();
    for id in ["alice", "bob"] {
        wait_account_state(&sb, id, "registered", PATIENCE);
    }

    kam.stop();
    let stopped_at = Instant::now();
    // Keepalives notice within seconds: TCP at once (the connection drops), UDP after
    // 64·T1 without an answer.
    for id in ["alice", "bob"] {
        let a = wait_account_state(&sb, id, "backing_off", Duration::from_secs(15));
        assert!(a["retry_at_unix_ms"].as_u64().unwrap() > 0, "{a}");
    }
    std::thread::sleep(Duration::from_secs(20).saturating_sub(stopped_at.elapsed()));
    let saved_before = (kam.saved("alice"), kam.saved("bob"));
    kam.restart();

    // Backoff is capped at 60 s (+20 % jitter) plus one transaction timeout.
    let bound = Duration::from_secs(72) + Duration::from_millis(64 * 100) + Duration::from_secs(2);
    let started = Instant::now();
    for id in ["alice", "bob"] {
        wait_account_state(
            &sb,
            id,
            "registered",
            bound.saturating_sub(started.elapsed()),
        );
    }
    println!(
        "re-registered {:?} after the registrar came back",
        started.elapsed()
    );
    assert!(kam.saved("alice") > saved_before.0 && kam.saved("bob") > saved_before.1);
}
