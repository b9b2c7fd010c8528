//! The daemon's life: start with READY=1, answer voipctl and a Python grpcio client,
//! reload on SIGHUP (keeping the old config when the new one is broken), stop on SIGTERM;
//! sleep when idle.

use std::process::Command;

use serde_json::Value;
use voipd_tests::*;

const ONE_ACCOUNT: &str = r#"
[log]
level = "debug"

[[account]]
id = "home"
aor = "sip:alice@example.com"
password = "x"
enabled = false
"#;

const TWO_ACCOUNTS: &str = r#"
[[account]]
id = "home"
aor = "sip:alice@example.com"
password = "x"
enabled = false

[[account]]
id = "work"
aor = "sip:bob@example.org"
enabled = false
"#;

fn status_json(sb: &Sandbox) -> Value {
    let out = sb.voipctl(&["--json", "status"]);
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "voipctl --json status is not JSON ({e}): {}",
            describe(&out)
        )
    })
}

fn grpc(sb: &Sandbox, service: &str, method: &str) -> Value {
    let out = Command::new(python())
        .arg(py_script("grpc_client.py"))
        .arg(sb.socket())
        .args([service, method])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python grpc client failed: {}",
        describe(&out)
    );
    serde_json::from_str(&stdout(&out)).expect("python client prints JSON")
}

#[test]
fn starts_ready_and_answers_voipctl_and_grpcio() {
    let sb = Sandbox::new();
    sb.write_config(ONE_ACCOUNT);
    let mut d = sb.start_daemon();

    // voipctl, human form.
    let out = sb.voipctl(&["status"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "voipd {} (pid {})",
            env!("CARGO_PKG_VERSION"),
            d.pid()
        )),
        "{text}"
    );
    assert!(
        text.contains(&sb.config_path().display().to_string()),
        "{text}"
    );
    assert!(text.contains("accounts   1 (0 registered)"), "{text}");

    // voipctl, JSON form.
    let s = status_json(&sb);
    assert_eq!(s["pid"], d.pid());
    assert_eq!(s["config"]["path"], sb.config_path().display().to_string());
    assert_eq!(s["config"]["embedded_default"], false);
    assert_eq!(s["counts"]["accounts"], 1);
    assert_eq!(s["listening"][0], format!("unix:{}", sb.socket().display()));

    // A client that knows nothing but the socket: grpcio through server reflection.
    let r = grpc(&sb, "voipd.v1.Daemon", "GetStatus");
    let services: Vec<&str> = r["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for svc in [
        "voipd.v1.Daemon",
        "voipd.v1.Events",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            services.contains(&svc),
            "reflection lists {services:?}, not {svc}"
        );
    }
    let st = &r["response"];
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(st["pid"], d.pid());
    assert_eq!(st["counts"]["accounts"], 1);
    assert_eq!(st["config"]["path"], sb.config_path().display().to_string());

    // Socket is group-accessible, not world-accessible.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sb.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);

    println!("idle RSS of voipd: {} KiB", d.rss_kib());

    d.signal(libc::SIGTERM);
    let msgs = sb.wait_notify(|m| m.contains("STOPPING=1"), &mut d);
    assert!(msgs.iter().any(|m| m.contains("STOPPING=1")));
    let status = d.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must exit 0; log:\n{}",
        d.log()
    );
    assert!(!sb.socket().exists(), "socket removed at exit");
}

#[test]
fn sighup_applies_a_good_config_and_keeps_the_running_one_on_a_broken_one() {
    let sb = Sandbox::new();
    sb.write_config(ONE_ACCOUNT);
    let mut d = sb.start_daemon();

    // Watch events through voipctl while reloading.
    let events_file = sb.path().join("events.jsonl");
    let mut watch = sb
        .command(bin("voipctl"))
        .args(["--json", "watch"])
        .stdout(std::fs::File::create(&events_file).unwrap())
        .spawn()
        .unwrap();
    wait_until(
        || status_json(&sb)["counts"]["watchers"] == 1,
        "watcher registered",
    );

    // A good change by SIGHUP: RELOADING=1, then READY=1 again, and the new account count.
    sb.write_config(TWO_ACCOUNTS);
    d.signal(libc::SIGHUP);
    sb.wait_notify(|m| m.contains("RELOADING=1"), &mut d);
    sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    assert_eq!(status_json(&sb)["counts"]["accounts"], 2);

    // A broken file by SIGHUP: the running configuration stays.
    let before = status_json(&sb);
    sb.write_config(
        "[[account]]\nid = \"home\"\naor = \"sip:alice@example.com\"\nexpires = \"often\"\n",
    );
    d.signal(libc::SIGHUP);
    let msgs = sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    assert!(msgs.iter().any(|m| m.contains("reload failed")), "{msgs:?}");
    let after = status_json(&sb);
    assert_eq!(after["counts"]["accounts"], 2, "old config kept");
    assert_eq!(
        after["config_loaded_unix_ms"],
        before["config_loaded_unix_ms"]
    );
    assert!(
        d.log().contains("account[0].expires"),
        "the log names the field:\n{}",
        d.log()
    );

    // The same through voipctl: exit 1 and the message names file, line and field.
    let out = sb.voipctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:4:11: account[0].expires",
            sb.config_path().display()
        )),
        "{err}"
    );

    // The daemon still works, and stops cleanly; the watcher sees it all and ends.
    let out = sb.voipctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    sb.write_config(ONE_ACCOUNT);
    let out = sb.voipctl(&["--json", "reload"]);
    assert!(out.status.success(), "{}", describe(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        r["changes"],
        serde_json::json!(["log.level: info -> debug", "account work: removed"])
    );

    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0));
    let watch_status = wait_child(&mut watch);
    assert!(
        watch_status.success(),
        "voipctl watch ends with the daemon, exit 0"
    );

    let events: Vec<Value> = std::fs::read_to_string(&events_file)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("watch line is not JSON ({e}): {l}"))
        })
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| {
            e["kind"]
                .as_object()
                .and_then(|k| k.keys().next())
                .map_or("?", |k| k.as_str())
        })
        .filter(|k| !k.starts_with("account_"))
        .collect();
    assert_eq!(
        kinds,
        [
            "config_reloaded",
            "config_reload_failed",
            "config_reload_failed",
            "config_reload_failed",
            "config_reloaded",
            "shutting_down"
        ],
        "{events:?}"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gaps: {seqs:?}"
    );
    let failed = events
        .iter()
        .find_map(|e| e["kind"]["config_reload_failed"]["error"].as_str());
    assert!(failed.unwrap().contains("account[0].expires"));
    // Accounts follow the reloads: "work" added, then removed; "home" untouched throughout.
    let account_events: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let k = e["kind"].as_object()?;
            let (what, a) = k
                .get("account_changed")
                .map(|a| ("changed", a))
                .or_else(|| k.get("account_removed").map(|a| ("removed", a)))?;
            Some(format!("{what} {}", a["id"].as_str().unwrap_or("?")))
        })
        .collect();
    assert_eq!(account_events, ["changed work", "removed work"]);
}

#[test]
fn watchdog_is_pinged_when_systemd_asks() {
    let sb = Sandbox::new();
    let mut d = sb.spawn_daemon(&[], &[("WATCHDOG_USEC", "200000")]);
    sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    let msgs = sb.wait_notify(|m| m == "WATCHDOG=1", &mut d);
    assert_eq!(msgs.last().map(String::as_str), Some("WATCHDOG=1"));
    // And again: it is periodic, not a one-off.
    sb.wait_notify(|m| m == "WATCHDOG=1", &mut d);
}

/// Context switches of all the daemon's threads so far, and how many threads it has: an
/// idle thread that wakes (a timer, a poll) switches.
fn wakeups(d: &Daemon) -> (u64, usize) {
    let dir = format!("/proc/{}/task", d.pid());
    let mut switches = 0;
    let mut threads = 0;
    for task in std::fs::read_dir(&dir).expect("task dir").flatten() {
        threads += 1;
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        switches += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    (switches, threads)
}

/// The daemon with no accounts wakes for nothing (a board on battery, a laptop): no
/// timers, no polls, no threads that come and go. After start-up the memory trimmer looks
/// once, 10 s later, and goes back to sleep.
#[test]
fn an_idle_daemon_without_accounts_never_wakes() {
    let sb = Sandbox::new();
    let mut d = sb.spawn_daemon(&[], &[]);
    sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    // The trimmer's one look, 10 s after start-up's work (daemon/src/memory.rs).
    std::thread::sleep(std::time::Duration::from_secs(11));
    let before = wakeups(&d);
    // Longer than any periodic work the daemon ever had (the trimmer looked every 10 s).
    std::thread::sleep(std::time::Duration::from_secs(15));
    assert_eq!(
        before,
        wakeups(&d),
        "(context switches, threads) while idle"
    );
}

#[test]
fn embedded_default_when_no_file_and_shutdown_over_grpc() {
    let sb = Sandbox::new();
    let mut d = sb.start_daemon();
    let s = status_json(&sb);
    assert_eq!(s["config"]["embedded_default"], true);
    assert_eq!(s["config"]["path"], sb.config_path().display().to_string());
    assert_eq!(s["counts"]["accounts"], 0);

    // A file appearing later is picked up by reload.
    sb.write_config(TWO_ACCOUNTS);
    let out = sb.voipctl(&["reload"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains("account home: added"),
        "{}",
        describe(&out)
    );
    assert_eq!(status_json(&sb)["config"]["embedded_default"], false);

    let r = grpc(&sb, "voipd.v1.Daemon", "Shutdown");
    assert!(r.get("error").is_none(), "{r}");
    sb.wait_notify(|m| m.contains("STOPPING=1"), &mut d);
    assert_eq!(d.wait_exit().code(), Some(0));
}

// --check-config against the machine (issue #13): what would only fail once running (a
// sound device that is not there, a relative path, a password file that cannot be read)
// fails the check, every problem at once and each at its key, while the daemon itself only
// warns of a missing device, which may be plugged in later.

#[test]
fn check_config_finds_what_would_fail_later_each_at_its_key() {
    let sb = Sandbox::new();
    let missing = sb.path().join("secrets/home");
    sb.write_config(&format!(
        "[audio]\ninput = \"nul\"\noutput = \"file:rec.wav\"\n\n\
         [[account]]\nid = \"home\"\naor = \"sip:alice@example.com\"\n\
         password_file = \"{}\"\nenabled = false\n",
        missing.display()
    ));
    let out = check_config(&sb);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let file = sb.config_path().display().to_string();
    let want = [
        format!(
            "voipd: {file}:2:9: audio.input: no sound device \"nul\" here (did you mean \"null\"?)"
        ),
        format!(
            "voipd: {file}:3:10: audio.output: \"rec.wav\" must be an absolute path, \
             e.g. \"file:/var/lib/voipd/rec.wav\""
        ),
        format!(
            "voipd: {file}:8:17: account[0].password_file: cannot read {}: there is no such file",
            missing.display()
        ),
    ];
    // One line each, in the order of the file.
    let lines: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("voipd: "))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), want.len(), "{}", describe(&out));
    for (line, want) in lines.iter().zip(&want) {
        assert!(
            line.starts_with(want.as_str()),
            "wanted {want:?}, got {line:?}"
        );
    }

    // Without the file problems the daemon starts, and only warns of the device, at start
    // and on reload; the check still refuses it.
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"nul\"\n");
    let out = check_config(&sb);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let warning = format!("{file}:5:9: audio.input: no sound device \"nul\" here");
    assert!(stderr(&out).contains(&warning), "{}", describe(&out));
    let mut d = sb.start_daemon();
    assert_eq!(d.log().matches(&warning).count(), 1, "{}", d.log());
    let out = sb.voipctl(&["reload"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_until(
        || d.log().matches(&warning).count() == 2,
        "the warning logged again on reload",
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit().code(), Some(0), "{}", d.log());
}

#[test]
fn check_config_says_how_to_make_an_unreadable_password_file_readable() {
    use std::os::unix::fs::PermissionsExt;
    ensure_user("voipd-test-other", None);
    let sb = Sandbox::new();
    sb.open_to_all();
    // Root's alone, as a secret copied in by root often is.
    let secret = sb.path().join("home.pw");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    sb.write_config(&format!(
        "[[account]]\nid = \"home\"\naor = \"sip:alice@example.com\"\npassword_file = \"{}\"\n",
        secret.display()
    ));
    let out = command_as("voipd-test-other", bin("voipd"))
        .arg("--check-config")
        .arg("--config")
        .arg(sb.config_path())
        .output()
        .expect("run voipd");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:4:17: account[0].password_file: cannot read {}: permission denied",
            sb.config_path().display(),
            secret.display()
        )) && err.contains("group voipd, mode 0640"),
        "{}",
        describe(&out)
    );
    // Root reads it: valid.
    let out = check_config(&sb);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

/// `voipd --check-config` on the sandbox's configuration file.
fn check_config(sb: &Sandbox) -> std::process::Output {
    sb.command(bin("voipd"))
        .arg("--check-config")
        .output()
        .expect("run voipd")
}
