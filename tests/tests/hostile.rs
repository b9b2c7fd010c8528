//! voipd on a hostile network, registered at its provider (Kamailio, which challenges
//! every request): scanners (SIPVicious) and strangers' INVITEs ring nothing and find no
//! one while a call through the provider works; sprayed RTP is neither played nor drawn
//! to; idle TCP connections lock no one out; a flood of mutated messages leaves it well,
//! registered, and with its memory back; a binding the registrar lost is noticed.
//! Attackers sit on other loopback addresses (127.0.0.2 and up, 127.0.1.x).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use voipd_tests::audio::{assert_tone, tone_share};
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::peers::{Kamailio, Sipp, free_even_ports, sipp_scenario};
use voipd_tests::*;

const VOIPD_TONE: f64 = 440.0;
const BARESIP_TONE: f64 = 1000.0;
/// What the RTP sprayer plays: it must never be heard.
const SPRAY_TONE: f64 = 2500.0;

fn config(
    sb: &Sandbox,
    kam: &Kamailio,
    sip_extra: &str,
    audio_extra: &str,
    answer: &str,
) -> String {
    format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n{sip_extra}\n\
         [audio]\ninput = \"tone:{VOIPD_TONE}\"\noutput = \"file:{}\"\n{audio_extra}\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
         codecs = [\"pcmu\"]\nanswer = {{ mode = \"{answer}\" }}\n",
        sb.path().join("voipd-heard.wav").display(),
        kam.port
    )
}

fn status(sb: &Sandbox) -> Value {
    let out = sb.voipctl(&["--json", "status"]);
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_str(&stdout(&out)).expect("status JSON")
}

fn calls(sb: &Sandbox) -> Vec<Value> {
    let out = sb.voipctl(&["--json", "calls"]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("calls JSON");
    v["calls"].as_array().cloned().unwrap_or_default()
}

fn history(sb: &Sandbox) -> Vec<Value> {
    let out = sb.voipctl(&["--json", "history"]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("history JSON");
    v["entries"].as_array().cloned().unwrap_or_default()
}

fn wait_call(sb: &Sandbox, state: &str) -> Value {
    let mut found = None;
    wait_until(
        || {
            found = calls(sb).into_iter().find(|c| c["state"] == state);
            found.is_some()
        },
        &format!("a call {state}"),
    );
    found.expect("found")
}

/// A SIPVicious tool run from 127.0.0.2 with its state in the sandbox (through a shim:
/// svwar ignores its own -b).
fn sipvicious(sb: &Sandbox, tool: &str, args: &[&str]) -> Child {
    let bin = require_tool(tool, "sipvicious");
    let script = std::fs::read_to_string(&bin).unwrap_or_default();
    let interpreter = script
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(str::trim)
        .unwrap_or("/usr/bin/python3")
        .to_string();
    sb.command(interpreter)
        .arg(py_script("sipvicious_from.py"))
        .arg("127.0.0.2")
        .arg(&bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// Waits for a SIPVicious run, which must have ended well; its output.
fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().expect(what);
    assert!(out.status.success(), "{what}: {}", describe(&out));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The shipped fail2ban filter finds `ip` in voipd's log.
fn assert_fail2ban_finds(log: &std::path::Path, ip: &str) {
    let bin = require_tool("fail2ban-regex", "fail2ban");
    let filter = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../systemd/fail2ban/filter.d/voipd.conf");
    let out = std::process::Command::new(bin)
        .arg("--print-all-matched")
        .arg(log)
        .arg(&filter)
        .output()
        .expect("fail2ban-regex");
    let text = stdout(&out);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text.lines()
            .any(|l| l.contains("matched") && !l.contains(" 0 matched")),
        "the filter matched nothing:\n{text}"
    );
    assert!(text.contains(ip), "{ip} not among the matches:\n{text}");
}

/// In auto and in manual answer: SIPVicious and 20 direct INVITEs from a stranger ring
/// nothing, find no extension and leave no trace, while baresip calls through Kamailio
/// at the same time, is answered and heard both ways.
#[test]
fn scanners_ring_nothing_while_a_call_through_the_provider_works() {
    for answer in ["auto", "manual"] {
        let started = Instant::now();
        let sb = Sandbox::new();
        let kam = Kamailio::start(sb.path(), &[]);
        sb.write_config(&config(&sb, &kam, "", "", answer));
        let d = sb.start_daemon();
        wait_account_state(&sb, "alice", "registered", PATIENCE);
        let port = sb.sip_port();
        let (mut watch, events) = watch_events(&sb);

        let target = format!("udp://127.0.0.1:{port}");
        // --force: scan on although every answer is the same refusal.
        let svwar = sipvicious(
            &sb,
            "svwar",
            &["--force", "-m", "INVITE", "-e", "95-130", &target],
        );
        let svwar_register = sipvicious(
            &sb,
            "svwar",
            &["--force", "-P", "5070", "-e", "100-110", &target],
        );
        let mut invites = Sipp::client_from(
            sb.path(),
            "stranger",
            "invite_stranger.xml",
            "127.0.0.2",
            port,
            "alice",
            20,
        );
        let mut b = Baresip::start(
            sb.path(),
            BaresipOptions {
                tone: BARESIP_TONE as u32,
                ..BaresipOptions::carol(kam.port)
            },
        );
        b.command("dial", "sip:alice@127.0.0.1");
        if answer == "manual" {
            wait_call(&sb, "ringing");
            let out = sb.voipctl(&["answer"]);
            assert!(out.status.success(), "{}", describe(&out));
        }
        wait_call(&sb, "active");
        b.wait_event("CALL_ESTABLISHED");
        std::thread::sleep(Duration::from_millis(2500));
        assert!(sb.voipctl(&["hangup"]).status.success());
        b.wait_event("CALL_CLOSED");
        wait_until(|| calls(&sb).is_empty(), "the call to end");

        assert_eq!(
            invites.wait(Duration::from_secs(60)),
            0,
            "{}",
            invites.output()
        );
        for (name, scan) in [("svwar INVITE", svwar), ("svwar REGISTER", svwar_register)] {
            let text = finish(scan, name);
            assert!(
                !text.contains("reqauth") && !text.contains("noauth") && !text.contains("weird"),
                "{name} found an extension:\n{text}"
            );
        }
        assert_tone(
            &sb.path().join("voipd-heard.wav"),
            BARESIP_TONE,
            &[VOIPD_TONE],
            15,
        );
        let theirs = b.received_recordings();
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        assert_tone(&theirs[0], VOIPD_TONE, &[BARESIP_TONE], 15);

        // Nothing of the strangers: one call in the history, carol's; no event names them.
        let h = history(&sb);
        assert_eq!(h.len(), 1, "{answer}: {h:?}");
        assert!(
            h[0]["remote_uri"].as_str().unwrap_or("").contains("carol"),
            "{h:?}"
        );
        let _ = watch.kill();
        let _ = watch.wait();
        let seen = std::fs::read_to_string(&events).unwrap_or_default();
        assert!(
            !seen.contains("scanner") && !seen.contains("127.0.0.2"),
            "{seen}"
        );
        let counts = &status(&sb)["counts"];
        assert!(
            counts["strangers_refused"].as_u64().unwrap_or(0) >= 20,
            "{counts}"
        );
        let log = d.log();
        // The line names the first refused request's method (svwar's REGISTER or
        // INVITE, or SIPp's INVITE: whichever came first).
        assert!(
            log.lines()
                .any(|l| l.contains("refused SIP ") && l.contains(" from stranger 127.0.0.2 (")),
            "{log}"
        );
        let lines = log.matches("from stranger 127.0.0.2").count() as u64;
        assert!(
            lines >= 1 && lines <= 1 + started.elapsed().as_secs() / 60,
            "one line per source a minute:\n{log}"
        );
        assert_fail2ban_finds(d.log_path(), "127.0.0.2");
        assert_eq!(account(&sb, "alice")["state"], "registered");
    }
}

/// With `stranger_reply = "drop"` a scanner hears nothing at all: svmap finds no SIP
/// device, and an INVITE gets no answer, while the provider still reaches us.
#[test]
fn in_drop_mode_scanners_find_no_device() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&config(
        &sb,
        &kam,
        "stranger_reply = \"drop\"",
        "",
        "manual",
    ));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let port = sb.sip_port();
    let svmap = sipvicious(&sb, "svmap", &["-p", &port.to_string(), "127.0.0.1"]);
    let text = finish(svmap, "svmap");
    assert!(
        !text.contains(&format!("127.0.0.1:{port}")),
        "svmap found voipd:\n{text}"
    );
    let refused = status(&sb)["counts"]["strangers_refused"]
        .as_u64()
        .unwrap_or(0);
    assert!(refused >= 1, "svmap's OPTIONS were not counted");
    // Nor does a malformed request (it would get 400) draw an answer.
    let probe = "import socket,sys\n\
        s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('127.0.0.2',0)); s.settimeout(2)\n\
        s.sendto(b'INVITE sip:100@127.0.0.1 SIP/2.0\\r\\nVia: SIP/2.0/UDP 127.0.0.2\\r\\n\\r\\n',('127.0.0.1',int(sys.argv[1])))\n\
        try:\n    s.recvfrom(2048); print('answered')\n\
        except socket.timeout:\n    print('silent')\n";
    let out = std::process::Command::new(python())
        .args(["-c", probe, &port.to_string()])
        .output()
        .expect("python probe");
    assert_eq!(stdout(&out).trim(), "silent", "{}", describe(&out));
}

/// `accept_direct = "contacts"`: someone in the address book may call straight to voipd
/// (a door intercom on the LAN); a stranger from the same kind of address may not.
#[test]
fn contacts_may_call_directly_and_strangers_may_not() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&config(
        &sb,
        &kam,
        "accept_direct = \"contacts\"",
        "",
        "auto",
    ));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let out = sb.voipctl(&["contacts", "add", "Door", "-a", "sip:door@127.0.0.3"]);
    assert!(out.status.success(), "{}", describe(&out));
    let port = sb.sip_port();
    // The core takes the address book up just after `add` returns: a first call may still
    // be a stranger's, so the door tries again for a moment.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut door = Sipp::client_from(
            sb.path(),
            "door",
            "invite_direct.xml",
            "127.0.0.3",
            port,
            "alice",
            1,
        );
        let code = door.wait(Duration::from_secs(30));
        if code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", door.output());
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut stranger = Sipp::client_from(
        sb.path(),
        "stranger",
        "invite_stranger.xml",
        "127.0.0.4",
        port,
        "alice",
        1,
    );
    assert_eq!(
        stranger.wait(Duration::from_secs(30)),
        0,
        "{}",
        stranger.output()
    );
    wait_until(|| history(&sb).len() == 1, "the door's call in the history");
    let h = history(&sb);
    assert_eq!(h[0]["contact"], "Door", "{h:?}");
}

/// RTP sprayed at voipd's ports from another address before and during a call, 2,000
/// packets a second at the call's port, with a tone of its own: each side hears the
/// other's tone without a gap and never the sprayer's, and nothing goes to the sprayer.
#[test]
fn sprayed_rtp_is_neither_played_nor_answered() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let rtp = free_even_ports(2);
    sb.write_config(&config(
        &sb,
        &kam,
        "",
        &format!("rtp_ports = \"{rtp}-{}\"", rtp + 1),
        "manual",
    ));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let b = Baresip::start(
        sb.path(),
        BaresipOptions {
            tone: BARESIP_TONE as u32,
            ..BaresipOptions::carol(kam.port)
        },
    );
    let spray = |pps: &str, secs: &str| {
        std::process::Command::new(python())
            .arg(py_script("rtp_spray.py"))
            .args(["127.0.0.1", &rtp.to_string(), &(rtp + 1).to_string()])
            .args(["127.0.0.5", pps, secs, &SPRAY_TONE.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("rtp_spray.py")
    };
    // Before the call and on through it: the first packets voipd sees are the sprayer's.
    let sprayer = spray("2000", "9");
    std::thread::sleep(Duration::from_millis(1000));
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_call(&sb, "active");
    b.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(5000));
    assert!(sb.voipctl(&["hangup"]).status.success());
    b.wait_event("CALL_CLOSED");
    let report = sprayer.wait_with_output().expect("sprayer");
    let report: Value = serde_json::from_slice(&report.stdout).expect("sprayer JSON");
    assert!(report["sent"].as_u64().unwrap_or(0) > 10_000, "{report}");
    assert_eq!(report["received"], 0, "voipd sent to the sprayer: {report}");

    let ours = sb.path().join("voipd-heard.wav");
    let theirs = b.received_recordings();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    for (path, tone, other) in [
        (ours.as_path(), BARESIP_TONE, VOIPD_TONE),
        (theirs[0].as_path(), VOIPD_TONE, BARESIP_TONE),
    ] {
        let (clear, span) = tone_share(path, tone, &[other, SPRAY_TONE]);
        assert!(
            span >= 40 && clear * 100 >= span * 99,
            "{}: {tone} Hz clear in {clear} of {span} blocks",
            path.display()
        );
    }
}

/// OPTIONS over `transport` from 127.0.0.1 (the provider's address) answered 200.
fn options_answered(sb: &Sandbox, port: u16, transport: &str) -> bool {
    let args: Vec<String> = [
        &format!("127.0.0.1:{port}"),
        "-sf",
        &sipp_scenario("options_uac.xml").display().to_string(),
        "-i",
        "127.0.0.1",
        "-p",
        &voipd_tests::peers::free_port().to_string(),
        "-t",
        transport,
        "-s",
        "voipd",
        "-m",
        "3",
        "-nostdin",
        "-timeout",
        "15s",
        "-timeout_error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut sipp = Sipp::spawn(
        sb.path(),
        &format!("options-{transport}-{}", unique()),
        &args,
    );
    sipp.wait(Duration::from_secs(30)) == 0
}

/// The hard limit on open files this process may give its children.
fn hard_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .expect("Max open files")
}

/// 2,000 idle TCP connections from 100 addresses, with voipd at 1,024 and at 65,536
/// open files (or the hard limit here, when lower: a container may not raise it): new
/// TCP clients, OPTIONS over UDP, registration and the control socket keep working, and
/// the accept loop does not flood the log.
#[test]
fn idle_tcp_connections_lock_no_one_out() {
    for nofile in [1024u64, hard_nofile().min(65_536)] {
        let sb = Sandbox::new();
        let kam = Kamailio::start(sb.path(), &[]);
        sb.write_config(&config(&sb, &kam, "", "", "manual"));
        let d = sb.start_daemon_with_nofile(nofile);
        wait_account_state(&sb, "alice", "registered", PATIENCE);
        let tcp_port = status(&sb)["listening"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str()?.strip_prefix("tcp:"))
            .find_map(|a| a.rsplit(':').next()?.parse::<u16>().ok())
            .expect("tcp listener");
        let mut holder = std::process::Command::new(python())
            .arg(py_script("idle_tcp.py"))
            .args(["127.0.0.1", &tcp_port.to_string(), "2000", "100"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("idle_tcp.py");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("idle_tcp.py report");
        let opened: Value = serde_json::from_str(&line).expect("idle_tcp.py JSON");
        assert_eq!(opened["open"], 2000, "{opened}");

        let started = Instant::now();
        assert!(
            options_answered(&sb, tcp_port, "t1"),
            "a new TCP client was shut out ({nofile} files)"
        );
        assert!(
            options_answered(&sb, sb.sip_port(), "u1"),
            "OPTIONS over UDP ({nofile} files)"
        );
        assert!(sb.voipctl(&["register", "alice"]).status.success());
        wait_account_state(&sb, "alice", "registered", PATIENCE);
        assert!(status(&sb)["counts"]["accounts_registered"] == 1);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "all this took {:?}",
            started.elapsed()
        );
        let accept_lines = d.log().matches("tcp accept failed").count();
        assert!(accept_lines <= 2, "{accept_lines} accept failure lines");
        let _ = holder.kill();
        let _ = holder.wait();
    }
}

/// RSS back within 10 % of `idle` (KiB) within `limit`; returns the last figure.
fn wait_rss_back(d: &Daemon, idle: u64, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        let now = d.rss_kib();
        if now * 10 <= idle * 11 {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "RSS {now} KiB, idle was {idle} KiB: not back within 10 % after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// 100,000 mutated SIP messages, half from a stranger and half from the provider's own
/// address (so that they reach the calls and transactions): voipd stays up and
/// registered, answers OPTIONS, and its memory comes back to within 10 % of idle.
#[test]
fn a_mutated_flood_leaves_voipd_well_and_its_memory_back() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    // Short timers: state made by the flood is over sooner (the figures are the bench's).
    sb.write_config(&config(
        &sb,
        &kam,
        "t1_ms = 100\nring_timeout_secs = 3",
        "",
        "manual",
    ));
    let d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let port = sb.sip_port();
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sip_message");
    let flood = |count: &str| -> Vec<Child> {
        [("127.0.0.6", "1"), ("127.0.0.1", "2")]
            .iter()
            .map(|(ip, seed)| {
                std::process::Command::new(python())
                    .arg(py_script("sip_flood.py"))
                    .args(["127.0.0.1", &port.to_string(), ip, count, "5000"])
                    .arg(&seeds)
                    .arg(seed)
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("sip_flood.py")
            })
            .collect()
    };
    // Idle is measured after a taste of the flood: the first use of each code path
    // faults in pages of the binary, which RSS counts but nothing keeps.
    for mut c in flood("500") {
        let _ = c.wait();
    }
    std::thread::sleep(Duration::from_secs(5));
    let idle = d.rss_kib();
    let floods = flood("50000");
    let mut peak = idle;
    let mut running = floods;
    while !running.is_empty() {
        peak = peak.max(d.rss_kib());
        std::thread::sleep(Duration::from_millis(200));
        running.retain_mut(|c| c.try_wait().ok().flatten().is_none());
    }
    assert!(options_answered(&sb, port, "u1"), "OPTIONS after the flood");
    assert_eq!(account(&sb, "alice")["state"], "registered");
    let after = wait_rss_back(&d, idle, Duration::from_secs(60));
    eprintln!("RSS: idle {idle} KiB, peak {peak} KiB, after {after} KiB");
}

/// A UDP account whose binding the registrar lost (Kamailio restarted with an empty
/// location table) is registered again by the next keepalive.
#[test]
fn a_lost_udp_binding_is_noticed_at_the_next_keepalive() {
    let sb = Sandbox::new();
    let mut kam = Kamailio::start(sb.path(), &[]);
    let mut text = config(&sb, &kam, "", "", "manual");
    text.push_str("keepalive_secs = 2\n");
    sb.write_config(&text);
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    // REGISTERs with a Contact: registrations, not the keepalive's binding queries.
    let binding_registers = |kam: &Kamailio| {
        kam.registers_from("alice")
            .iter()
            .filter(|l| l.contains("contact=<sip:"))
            .count()
    };
    let before = binding_registers(&kam);
    kam.restart();
    let lost = Instant::now();
    wait_until(
        || binding_registers(&kam) > before,
        "alice to register again",
    );
    assert!(
        lost.elapsed() < Duration::from_secs(8),
        "noticed only after {:?}",
        lost.elapsed()
    );
    wait_account_state(&sb, "alice", "registered", PATIENCE);
}

/// 6,000 Watch streams opened and closed: the watcher count goes back to none and the
/// memory to within 10 % of idle.
#[test]
fn closed_watch_streams_are_let_go() {
    let sb = Sandbox::new();
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n");
    let d = sb.start_daemon();
    let churn = |rounds: &str| {
        let out = std::process::Command::new(python())
            .arg(py_script("watch_churn.py"))
            .arg(sb.socket())
            .args([rounds, "100"])
            .output()
            .expect("watch_churn.py");
        assert!(out.status.success(), "{}", describe(&out));
        wait_until(
            || status(&sb)["counts"]["watchers"] == 0,
            "the watchers to be let go",
        );
    };
    // Idle is measured after one round: the first use of the gRPC code faults in pages
    // of the binary, which RSS counts but nothing keeps.
    churn("1");
    std::thread::sleep(Duration::from_secs(1));
    let idle = d.rss_kib();
    churn("60");
    let after = wait_rss_back(&d, idle, Duration::from_secs(60));
    eprintln!("RSS: idle {idle} KiB, after 6,000 watchers {after} KiB");
}

/// An incoming call rings at most `ring_timeout_secs` (then 480, a missed call), and no
/// more than `max_ringing` ring for an account at once (the next is answered 486).
#[test]
fn ringing_is_bounded_in_time_and_in_number() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let mut text = config(&sb, &kam, "ring_timeout_secs = 3", "", "manual");
    text.push_str("max_ringing = 1\n");
    sb.write_config(&text);
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let port = sb.sip_port();
    // From the provider's address, as calls through it come.
    let started = Instant::now();
    let mut first = Sipp::client_from(
        sb.path(),
        "unanswered",
        "invite_unanswered.xml",
        "127.0.0.1",
        port,
        "alice",
        1,
    );
    wait_call(&sb, "ringing");
    let mut second = Sipp::client_from(
        sb.path(),
        "second",
        "call_busy.xml",
        "127.0.0.1",
        port,
        "alice",
        1,
    );
    assert_eq!(
        second.wait(Duration::from_secs(30)),
        0,
        "{}",
        second.output()
    );
    assert_eq!(first.wait(Duration::from_secs(30)), 0, "{}", first.output());
    let rang = started.elapsed();
    assert!(
        rang >= Duration::from_secs(3) && rang < Duration::from_secs(8),
        "rang {rang:?}"
    );
    wait_until(|| !history(&sb).is_empty(), "the call in the history");
    let h = history(&sb);
    assert_eq!(h.len(), 1, "the refused second call is not a call: {h:?}");
    assert_eq!(h[0]["missed"], true, "{h:?}");
    assert!(
        h[0]["end_reason"]
            .as_str()
            .unwrap_or("")
            .contains("not answered in 3 s"),
        "{h:?}"
    );
}
