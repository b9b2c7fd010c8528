//! Exec hooks with real phones: baresip calls voipd through a Kamailio that challenges
//! every request and follows 302s; a hook program decides what becomes of each incoming
//! call, another opens "the door" on a digit.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use voipd_tests::audio::assert_tone;
use voipd_tests::baresip::{Baresip, kamailio_phone};
use voipd_tests::peers::Kamailio;
use voipd_tests::*;

const CAROL_TONE: u32 = 1000;
const DAVE_TONE: u32 = 700;

fn phone(sb: &Sandbox, kam: &Kamailio, user: &'static str, tone: u32, auto: bool) -> Baresip {
    kamailio_phone(sb.path(), kam.port, user, tone, auto)
}

/// A shell script in the sandbox, executable.
fn script(sb: &Sandbox, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = sb.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

fn config(sb: &Sandbox, kam: &Kamailio, answer: &str, hooks: &str) -> String {
    format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
         [audio]\ninput = \"tone:440\"\noutput = \"file:{}\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
         codecs = [\"pcmu\"]\nanswer = {answer}\n\n{hooks}",
        sb.path().join("voipd-heard-{id}.wav").display(),
        kam.port
    )
}

fn newest_history(sb: &Sandbox) -> Value {
    let o = sb.voipctl(&["--json", "history"]);
    assert!(o.status.success(), "{}", describe(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("history JSON");
    v["entries"][0].clone()
}

fn wait_ended(sb: &Sandbox, reason: &str) -> Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let newest = newest_history(sb);
        if newest["end_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with(reason))
        {
            return newest;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the newest call has not ended with {reason:?} after {PATIENCE:?}: {newest}\n\
             all: {}",
            stdout(&sb.voipctl(&["--json", "history"]))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_hook_decides_incoming_calls_and_a_hung_one_is_killed_at_its_deadline() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &["FOLLOW_3XX"]);
    let dave = phone(&sb, &kam, "dave", DAVE_TONE, true);
    let mut carol = phone(&sb, &kam, "carol", CAROL_TONE, false);
    let dir = sb.path().display().to_string();
    // It keeps what it was given, then says what the test wrote in `mode`. Hanging, it
    // leaves a child of its own, which must die with it.
    let decide = script(
        &sb,
        "decide",
        &format!(
            "cat > {dir}/in-$VOIPD_CALL_ID.json\n\
             env | grep '^VOIPD_' | sort > {dir}/env-$VOIPD_CALL_ID\n\
             mode=$(cat {dir}/mode)\n\
             case \"$mode\" in\n\
               hang) sleep 60 & echo $! > {dir}/grandchild; wait;;\n\
               continue) echo continue; sleep 60;;\n\
               *) echo \"$mode\";;\n\
             esac\n"
        ),
    );
    let hooks = format!(
        "[[hook]]\nname = \"decide\"\non = [\"call_incoming\"]\nremote = \"carol\"\n\
         exec = [\"{decide}\"]\ntimeout_secs = 1.5\n"
    );
    // Auto-answer at once: only the hooks' hold keeps it from answering first.
    sb.write_config(&config(&sb, &kam, "{ mode = \"auto\" }", &hooks));
    let d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);

    // reject: carol hears 603, and the hook had the event as variables and JSON.
    std::fs::write(sb.path().join("mode"), "reject").expect("mode");
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_CLOSED");
    let call = wait_ended(&sb, "rejected");
    let id = call["id"].as_u64().expect("id");
    let env = read(&sb.path().join(format!("env-{id}")));
    for line in [
        "VOIPD_EVENT=call_incoming".to_string(),
        format!("VOIPD_CALL_ID={id}"),
        "VOIPD_ACCOUNT=alice".into(),
        "VOIPD_DIRECTION=incoming".into(),
        "VOIPD_STATE=ringing".into(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in:\n{env}");
    }
    assert!(env.contains("VOIPD_REMOTE=sip:carol@"), "{env}");
    let json: Value = serde_json::from_str(&read(&sb.path().join(format!("in-{id}.json"))))
        .expect("the hook's stdin is JSON");
    assert_eq!(json["name"], "call_incoming", "{json}");
    assert_eq!(json["kind"]["call_changed"]["id"], id, "{json}");
    assert_eq!(json["kind"]["call_changed"]["state"], "ringing", "{json}");

    // answer: they talk, each hears the other.
    std::fs::write(sb.path().join("mode"), "answer").expect("mode");
    carol.clear_recordings();
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(2500));
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
    let call = wait_ended(&sb, "the other side hung up");
    let id = call["id"].as_u64().expect("id");
    assert_tone(
        &sb.path().join(format!("voipd-heard-{id}.wav")),
        f64::from(CAROL_TONE),
        &[440.0],
        15,
    );
    let rec = carol.received_recordings();
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_tone(&rec[0], 440.0, &[f64::from(CAROL_TONE)], 15);
    assert!(d.log().contains("hook decide says Answer"), "{}", d.log());

    // forward dave: carol ends up talking to dave.
    std::fs::write(sb.path().join("mode"), "forward dave").expect("mode");
    carol.clear_recordings();
    dave.clear_recordings();
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    dave.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(2500));
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
    let rec = carol.received_recordings();
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_tone(
        &rec[0],
        f64::from(DAVE_TONE),
        &[f64::from(CAROL_TONE), 440.0],
        15,
    );
    let call = wait_ended(&sb, "forwarded to sip:dave@");
    assert_ne!(call["missed"], true, "{call}");

    // continue, then on with something else: the call goes on to the answer mode at once,
    // not when the hook ends (it is killed at 1.5 s, after the call was answered).
    std::fs::write(sb.path().join("mode"), "continue").expect("mode");
    let kills = || d.log().matches("hook decide killed after").count();
    let before = kills();
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    assert_eq!(
        kills(),
        before,
        "answered only after the kill:\n{}",
        d.log()
    );
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
    wait_until(
        || kills() > before,
        "the continuing hook to be killed at its deadline",
    );

    // hang: killed at 1.5 s with its child; then the answer mode (auto) answers.
    std::fs::write(sb.path().join("mode"), "hang").expect("mode");
    let dialled = Instant::now();
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    let waited = dialled.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "answered after {waited:?}"
    );
    wait_until(
        || d.log().contains("hook decide killed after 1.5 s"),
        "the hung hook to be killed",
    );
    let grandchild: i32 = read(&sb.path().join("grandchild"))
        .trim()
        .parse()
        .expect("the hook's child's pid");
    wait_until(
        || std::fs::metadata(format!("/proc/{grandchild}")).is_err(),
        "the hook's own child to be gone",
    );
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
    wait_ended(&sb, "the other side hung up");
}

#[test]
fn a_digit_opens_the_door_and_a_failing_hook_is_logged_by_name() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let mut dave = phone(&sb, &kam, "dave", DAVE_TONE, true);
    let door = sb.path().join("door");
    let open = script(
        &sb,
        "open-door",
        &format!(
            "echo \"$VOIPD_DIGIT $VOIPD_CALL_ID $VOIPD_REMOTE\" >> {}\n",
            door.display()
        ),
    );
    let relay = script(&sb, "relay", "echo 'no relay on GPIO 17' >&2\nexit 3\n");
    let started = script(
        &sb,
        "started",
        &format!("echo \"$VOIPD_EVENT\" > {}/started\n", sb.path().display()),
    );
    let hooks = format!(
        "[[hook]]\nname = \"door\"\non = [\"dtmf\"]\ndigits = \"9\"\nexec = [\"{open}\"]\n\n\
         [[hook]]\non = [\"call_answered\"]\nexec = [\"{relay}\", \"--pin\", \"17\"]\n\n\
         [[hook]]\non = [\"daemon_started\"]\nexec = [\"{started}\"]\n"
    );
    sb.write_config(&config(&sb, &kam, "{ mode = \"manual\" }", &hooks));
    let d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    // The start itself is an event hooks hear.
    wait_until(
        || read(&sb.path().join("started")) == "daemon_started\n",
        "the daemon_started hook",
    );

    let o = sb.voipctl(&["--json", "dial", "--wait", "dave"]);
    assert!(o.status.success(), "{}", describe(&o));
    let id = serde_json::from_str::<Value>(&stdout(&o)).expect("JSON")["id"]
        .as_u64()
        .expect("id");
    dave.wait_event("CALL_ESTABLISHED");
    dave.command("sndcode", "#9");
    wait_until(|| !read(&door).is_empty(), "the door to open");
    // Once, for 9 alone, with the call's id and far side.
    std::thread::sleep(Duration::from_millis(500));
    let lines: Vec<String> = read(&door).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("9 {id} sip:dave@")),
        "{lines:?}"
    );
    wait_until(
        || {
            d.log()
                .contains("hook relay failed (exit status 3): no relay on GPIO 17")
        },
        "the failing hook in the log",
    );
    assert!(sb.voipctl(&["hangup"]).status.success());
    dave.wait_event("CALL_CLOSED");
}

#[test]
fn hooks_run_a_few_at_a_time_and_a_full_queue_drops_the_oldest() {
    let sb = Sandbox::new();
    let dir = sb.path().display().to_string();
    // Each run takes a while, and notes when it ran.
    let slow = script(
        &sb,
        "slow",
        &format!(
            "echo \"start $VOIPD_SEQ\" >> {dir}/runs\nsleep 3\necho \"end $VOIPD_SEQ\" >> {dir}/runs\n"
        ),
    );
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[presence]\nsubscribe = false\n\n\
         [hooks]\nmax_running = 2\nqueue = 3\n\n\
         [[hook]]\nname = \"slow\"\non = [\"contact_changed\"]\nexec = [\"{slow}\"]\n"
    ));
    let d = sb.start_daemon();
    for i in 0..9 {
        let o = sb.voipctl(&[
            "contacts",
            "add",
            &format!("c{i}"),
            "-a",
            &format!("c{i}@example.com"),
        ]);
        assert!(o.status.success(), "{}", describe(&o));
    }
    // Nine events while the first two run for 3 s: three wait, the others are dropped,
    // each counted.
    wait_until(
        || d.log().contains("hook queue full"),
        "the full queue to be said",
    );
    let runs = || read(&sb.path().join("runs"));
    let count = |what: &str| runs().lines().filter(|l| l.starts_with(what)).count();
    // Two rounds of two, then the last one: 9 s; give it time on a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while !(count("end") >= 5 && count("end") == count("start")) {
        assert!(std::time::Instant::now() < deadline, "runs:\n{}", runs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let starts = count("start");
    assert!(
        (5..=8).contains(&starts),
        "{starts} runs:\n{}\n{}",
        runs(),
        d.log()
    );
    // Never more than two at once.
    let mut running: i32 = 0;
    for l in runs().lines() {
        running += if l.starts_with("start") { 1 } else { -1 };
        assert!(running <= 2, "{}", runs());
    }
    assert!(d.log().contains("dropped since start"), "{}", d.log());
}
