//! Call history: every call is written when it ends and is there after a restart; missed
//! calls are counted until looked at; a damaged store is moved aside, not emptied.

use serde_json::Value;
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::peers::Kamailio;
use voipd_tests::*;

fn history(sb: &Sandbox, args: &[&str]) -> Value {
    let mut a = vec!["--json", "history"];
    a.extend_from_slice(args);
    let out = sb.voipctl(&a);
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn no_calls(sb: &Sandbox) -> bool {
    stdout(&sb.voipctl(&["--json", "calls"])).trim() == r#"{"calls":[]}"#
}

#[test]
fn calls_stay_in_the_history_across_restarts_and_missed_ones_are_counted() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\ncodecs = [\"pcmu\"]\n",
        kam.port
    ));
    let mut d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let mut b = Baresip::start(sb.path(), BaresipOptions::carol(kam.port));
    let (mut watch, events) = watch_events(&sb);

    // 1: we call carol, she answers, we hang up.
    assert!(sb.voipctl(&["dial", "carol"]).status.success());
    b.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert!(sb.voipctl(&["hangup"]).status.success());
    b.wait_event("CALL_CLOSED");
    wait_until(|| no_calls(&sb), "the first call to end");
    // 2: carol calls and gives up before we answer: missed.
    b.command("dial", "sip:alice@127.0.0.1");
    wait_until(|| !no_calls(&sb), "carol's call to ring");
    b.command("hangup", "");
    b.wait_event("CALL_CLOSED");
    wait_until(|| no_calls(&sb), "the missed call to end");
    // 3: carol calls and we refuse: not missed.
    b.command("dial", "sip:alice@127.0.0.1");
    wait_until(|| !no_calls(&sb), "carol's second call to ring");
    assert!(sb.voipctl(&["reject"]).status.success());
    b.wait_event("CALL_CLOSED");
    wait_until(
        || {
            watched(&events)
                .iter()
                .filter(|e| e["kind"]["history_changed"].is_object())
                .count()
                == 3
        },
        "three history_changed events",
    );
    let _ = watch.kill();
    let _ = watch.wait();

    let h = history(&sb, &["--peek"]);
    let e = h["entries"].as_array().unwrap();
    assert_eq!(e.len(), 3, "{h}");
    assert_eq!(h["missed_unseen"], 1, "{h}");
    // Newest first.
    let (refused, missed, ours) = (&e[0], &e[1], &e[2]);
    assert_eq!(ours["incoming"], false, "{ours}");
    assert_eq!(ours["end_code"], 200, "{ours}");
    assert!(
        ours["remote_uri"].as_str().unwrap().contains("carol"),
        "{ours}"
    );
    assert!(ours["duration_ms"].as_u64().unwrap() >= 1000, "{ours}");
    assert_eq!(ours["account"], "alice", "{ours}");
    assert_eq!(
        (missed["incoming"].clone(), missed["missed"].clone()),
        (true.into(), true.into()),
        "{missed}"
    );
    assert_eq!(missed["end_code"], 487, "{missed}");
    assert_eq!(missed["answered_unix_ms"], 0, "{missed}");
    assert_eq!(refused["missed"], false, "{refused}");
    assert_eq!(refused["end_code"], 603, "{refused}");

    // A restart keeps all of it; looking at the missed ones counts them as seen.
    d.signal(libc::SIGTERM);
    d.wait_exit();
    let _d = sb.start_daemon();
    let h = history(&sb, &["--missed"]);
    assert_eq!(h["entries"].as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h["missed_unseen"], 1, "{h}");
    assert_eq!(history(&sb, &["--peek"])["missed_unseen"], 0);
    let table = stdout(&sb.voipctl(&["history"]));
    assert!(
        table.starts_with("ID  WHEN (UTC)") && table.contains("missed"),
        "{table}"
    );
    assert_eq!(
        history(&sb, &["--limit", "2"])["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // A limit beyond reason is refused, naming the field.
    let out = sb.voipctl(&["history", "--limit", "20000"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(stderr(&out).contains("limit"), "{}", describe(&out));
}

#[test]
fn a_damaged_store_is_moved_aside_and_a_new_one_made() {
    let sb = Sandbox::new();
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n");
    let dir = sb.path().join("state/voipd");
    std::fs::create_dir_all(&dir).unwrap();
    let junk = b"not a database: a half-written file from a full disk".repeat(200);
    std::fs::write(dir.join("voipd.db"), &junk).unwrap();
    let d = sb.start_daemon();
    assert!(d.log().contains("is damaged"), "{}", d.log());
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(aside[0].path()).unwrap(),
        junk,
        "the old file is kept as it was"
    );
    assert!(
        d.log().contains(&aside[0].path().display().to_string()),
        "{}",
        d.log()
    );
    let h = history(&sb, &[]);
    assert_eq!(h["entries"].as_array().map_or(0, Vec::len), 0, "{h}");
}
