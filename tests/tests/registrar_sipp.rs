//! SIPp as a scripted registrar (tests/sipp/reg_*.xml): each scenario checks what voipd
//! sends and ends with exit 0 only if voipd behaved; voipd's own state is checked too.

use std::time::{Duration, Instant};

use voipd_tests::peers::{Sipp, free_port, sipp_scenario};
use voipd_tests::*;

/// Starts SIPp with `scenario` as registrar, then voipd with one account pointed at it.
fn run(scenario: &str, extra_sipp: &[&str], sip_extra: &str) -> (Sandbox, Sipp, Daemon) {
    run_keepalive(scenario, extra_sipp, sip_extra, 0)
}

/// As [`run`], with keepalives every `keepalive` seconds (0: none).
fn run_keepalive(
    scenario: &str,
    extra_sipp: &[&str],
    sip_extra: &str,
    keepalive: u32,
) -> (Sandbox, Sipp, Daemon) {
    let sb = Sandbox::new();
    let port = free_port();
    let mut args: Vec<String> = vec![
        "-sf".into(),
        sipp_scenario(scenario).display().to_string(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-bind_local".into(),
        "-t".into(),
        "u1".into(),
        "-m".into(),
        "1".into(),
        "-nostdin".into(),
        "-timeout_error".into(),
        "-trace_err".into(),
        "-trace_msg".into(),
    ];
    args.extend(extra_sipp.iter().map(|s| s.to_string()));
    let mut sipp = Sipp::spawn(sb.path(), scenario, &args);
    sipp.wait_bound(port);
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n{sip_extra}\n\n[[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{port}\"\npassword = \"alicepw\"\nkeepalive_secs = {keepalive}\n"
    ));
    let d = sb.start_daemon();
    (sb, sipp, d)
}

fn expect_pass(mut sipp: Sipp, limit: Duration) -> String {
    let code = sipp.wait(limit);
    let out = sipp.output();
    assert_eq!(code, 0, "the SIPp registrar found fault:\n{out}");
    out
}

#[test]
fn challenge_then_200() {
    let (sb, sipp, _d) = run("reg_auth.xml", &["-timeout", "30s"], "");
    expect_pass(sipp, Duration::from_secs(40));
    let a = wait_account_state(&sb, "alice", "registered", PATIENCE);
    assert_eq!(
        a["registrar"]
            .as_str()
            .map(|r| r.starts_with("udp:127.0.0.1:")),
        Some(true)
    );
}

#[test]
fn stale_nonce_is_retried_with_the_new_one() {
    let (sb, sipp, _d) = run("reg_stale.xml", &["-timeout", "30s"], "");
    expect_pass(sipp, Duration::from_secs(40));
    wait_account_state(&sb, "alice", "registered", PATIENCE);
}

#[test]
fn interval_too_brief_raises_expires_to_min_expires() {
    let (sb, sipp, _d) = run("reg_423.xml", &["-timeout", "30s"], "");
    expect_pass(sipp, Duration::from_secs(40));
    wait_account_state(&sb, "alice", "registered", PATIENCE);
}

#[test]
fn service_unavailable_waits_for_retry_after() {
    let (sb, sipp, _d) = run("reg_503.xml", &["-timeout", "30s"], "");
    // The scenario fails a retry that comes sooner than Retry-After (3 s).
    let a = wait_account_state(&sb, "alice", "backing_off", PATIENCE);
    assert_eq!(a["last_code"], 503, "{a}");
    expect_pass(sipp, Duration::from_secs(40));
    wait_account_state(&sb, "alice", "registered", PATIENCE);
}

#[test]
fn a_registrar_that_never_answers_ends_in_backoff_after_timer_f() {
    // T1 = 100 ms: Timer F fires after 6.4 s.
    let (sb, mut sipp, _d) = run(
        "reg_silent.xml",
        &["-nr", "-recv_timeout", "8000", "-timeout", "60s"],
        "t1_ms = 100",
    );
    let started = Instant::now();
    let a = wait_account_state(&sb, "alice", "backing_off", Duration::from_secs(15));
    let waited = started.elapsed();
    assert!(
        a["last_reason"].as_str().unwrap().contains("no answer"),
        "{a}"
    );
    assert!(
        waited >= Duration::from_secs(5),
        "gave up after {waited:?}, before Timer F"
    );
    drop(_d);
    let code = sipp.wait(Duration::from_secs(60));
    let log = std::fs::read_dir(sb.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    let sent = log.matches("REGISTER sip:").count();
    // Retransmissions at T1, 2T1, 4T1 … capped at T2 until F: 7 sends of the first
    // attempt on UDP, and more after the backoff.
    assert!(
        sent >= 7,
        "only {sent} REGISTERs reached the silent registrar (exit {code}):\n{log}"
    );
}

#[test]
fn refreshes_arrive_before_expiry() {
    // The registrar grants 10 s; refreshes are due at 8 s, and the scenario fails one
    // that is late (it also checks Call-ID and rising CSeq).
    let (sb, sipp, _d) = run("reg_refresh.xml", &["-timeout", "60s"], "");
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let started = Instant::now();
    expect_pass(sipp, Duration::from_secs(70));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "two refreshes took {took:?}; the grant was 10 s each"
    );
    assert!(
        took > Duration::from_secs(12),
        "refreshed too eagerly: two in {took:?}"
    );
}

#[test]
fn a_moved_nat_binding_triggers_a_new_registration() {
    // keepalive_secs = 1 for this one: the scenario answers two keepalives, the second
    // with another public port, and then wants a REGISTER.
    let (_sb, sipp, d) = run_keepalive("reg_nat.xml", &["-timeout", "60s"], "", 1);
    expect_pass(sipp, Duration::from_secs(70));
    assert!(d.log().contains("public address changed"), "{}", d.log());
}
