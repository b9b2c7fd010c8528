//! Bad configuration, a missing daemon, a taken socket: each gets a clear message and the
//! documented exit code, and changes nothing.

use voipd_tests::*;

/// (config text, what the message must contain: file:line:col: field).
const BAD_CONFIGS: &[(&str, &str, &str)] = &[
    (
        "missing greeting",
        "[[account]]\nid = \"home\"\naor = \"sip:alice@example.com\"\nanswering_machine = { greeting = \"/nonexistent/greeting.wav\" }\n",
        "config.toml:4:34: account[0].answering_machine.greeting: /nonexistent/greeting.wav: No such file",
    ),
    (
        "unreadable greeting",
        "[[account]]\nid = \"home\"\naor = \"sip:alice@example.com\"\nanswering_machine = { greeting = \"/etc/hostname\" }\n",
        "account[0].answering_machine.greeting: /etc/hostname: not a WAV file; give a 16-bit PCM WAV file",
    ),
    (
        "unknown key",
        "[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\nlisen = []\n",
        "config.toml:3:1: sip.lisen: unknown field `lisen`",
    ),
    (
        "wrong type",
        "[[account]]\nid = \"home\"\naor = \"sip:alice@example.com\"\nexpires = \"600\"\n",
        "config.toml:4:11: account[0].expires: invalid type: string \"600\", expected a whole number",
    ),
    (
        "bad SIP URI",
        "[[account]]\nid = \"home\"\naor = \"sip:alice@exa mple.com\"\n",
        "config.toml:3:7: account[0].aor: \"sip:alice@exa mple.com\" is not a valid SIP URI: invalid host",
    ),
];

#[test]
fn check_config_names_the_field_and_exits_2() {
    for (what, text, want) in BAD_CONFIGS {
        let sb = Sandbox::new();
        sb.write_config(text);
        let out = sb
            .command(bin("voipd"))
            .arg("--check-config")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{what}: {}", describe(&out));
        assert!(
            stderr(&out).contains(want),
            "{what}: wanted {want:?} in {}",
            describe(&out)
        );

        // The same file named explicitly, through --config.
        let out = sb
            .command(bin("voipd"))
            .arg("--check-config")
            .arg("--config")
            .arg(sb.config_path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{what}: {}", describe(&out));
    }
    let sb = Sandbox::new();
    sb.write_config("[log]\nlevel = \"warn\"\n");
    let out = sb
        .command(bin("voipd"))
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stdout(&out).contains("valid"));
}

#[test]
fn bad_config_at_start_exits_2_and_binds_nothing() {
    for (what, text, want) in BAD_CONFIGS {
        let sb = Sandbox::new();
        sb.write_config(text);
        let mut d = sb.spawn_daemon(&[], &[]);
        let status = d.wait_exit();
        assert_eq!(status.code(), Some(2), "{what}: {}", d.log());
        assert!(
            d.log().contains(want),
            "{what}: wanted {want:?} in {}",
            d.log()
        );
        assert!(!sb.socket().exists(), "{what}: no socket must be created");
        assert!(
            !sb.path().join("run/voipd").exists(),
            "{what}: nothing created at all"
        );
    }
}

#[test]
fn missing_explicit_config_is_an_error_not_the_default() {
    let sb = Sandbox::new();
    let out = sb
        .command(bin("voipd"))
        .args(["--check-config", "--config", "/nonexistent/voipd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("/nonexistent/voipd.toml: cannot read configuration"),
        "{}",
        describe(&out)
    );
    let out = sb
        .command(bin("voipd"))
        .arg("--check-config")
        .env("VOIPD_CONFIG", "/nonexistent/env.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("/nonexistent/env.toml"),
        "{}",
        describe(&out)
    );
}

#[test]
fn voipctl_without_daemon_exits_3_naming_the_socket() {
    let sb = Sandbox::new();
    let out = sb.voipctl(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&sb.socket().display().to_string()),
        "names the socket tried: {err}"
    );
    assert!(
        err.contains("Start it with `voipd`"),
        "says how to start the daemon: {err}"
    );

    let out = sb.voipctl(&["--socket", "/nonexistent/x.sock", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        stderr(&out).contains("/nonexistent/x.sock: no such socket"),
        "{}",
        describe(&out)
    );

    // A socket file nobody listens on (left by a crash).
    let stale = sb.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let out = sb.voipctl(&["--socket", stale.to_str().unwrap(), "--json", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        stderr(&out).contains("nobody is listening"),
        "{}",
        describe(&out)
    );
}

#[test]
fn voipctl_usage_errors_exit_2() {
    let sb = Sandbox::new();
    for args in [&["frobnicate"][..], &[], &["status", "--bogus"]] {
        let out = sb.voipctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
    }
    let out = sb.voipctl(&["--help"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("Exit codes:"), "{}", describe(&out));
}

#[test]
fn second_daemon_on_the_same_socket_is_refused_and_first_keeps_running() {
    let sb = Sandbox::new();
    let first = sb.start_daemon();
    let mut second = sb.spawn_daemon(&[], &[]);
    let status = second.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", second.log());
    assert!(
        second.log().contains(&format!(
            "another voipd (pid {}) already listens on {}",
            first.pid(),
            sb.socket().display()
        )),
        "{}",
        second.log()
    );
    let out = sb.voipctl(&["--json", "status"]);
    assert!(
        out.status.success(),
        "first daemon still serves: {}",
        describe(&out)
    );
    let s: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["pid"], first.pid());
}

#[test]
fn stale_socket_from_a_crash_is_taken_over() {
    let sb = Sandbox::new();
    let mut crashed = sb.start_daemon();
    crashed.signal(libc::SIGKILL);
    crashed.wait_exit();
    assert!(
        sb.socket().exists(),
        "SIGKILL leaves the socket file behind"
    );

    let d = sb.start_daemon();
    let out = sb.voipctl(&["--json", "status"]);
    assert!(out.status.success(), "{}", describe(&out));
    let s: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["pid"], d.pid());
    assert!(d.log().contains("taking over stale socket"), "{}", d.log());
}

#[test]
fn a_regular_file_at_the_socket_path_is_never_removed() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.socket().parent().unwrap()).unwrap();
    std::fs::write(sb.socket(), "not a socket").unwrap();
    let mut d = sb.spawn_daemon(&[], &[]);
    assert_eq!(d.wait_exit().code(), Some(1), "{}", d.log());
    assert!(
        d.log().contains("exists and is not a socket"),
        "{}",
        d.log()
    );
    assert_eq!(
        std::fs::read_to_string(sb.socket()).unwrap(),
        "not a socket"
    );
}
