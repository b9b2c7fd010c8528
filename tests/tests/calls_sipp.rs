//! Call signalling corner cases, scripted with SIPp (tests/sipp/call_*.xml, uas_*.xml):
//! an INVITE without SDP, re-INVITE hold and resume, retransmitted INVITEs and CANCEL,
//! early media on a 183, a BYE that is never answered, a far side that challenges the
//! INVITE, retransmitted and forked 2xx, redirections and their loops, RFC 2543 peers,
//! session timers (RFC 4028) and reliable provisional responses (RFC 3262) both ways.

use std::time::{Duration, Instant};

use serde_json::Value;
use voipd_tests::audio::{power, read_wav};
use voipd_tests::peers::{Sipp, free_port};
use voipd_tests::*;

fn calls(sb: &Sandbox) -> Vec<Value> {
    let out = sb.voipctl(&["--json", "calls"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["calls"].as_array().cloned().unwrap_or_default()
}

/// voipd on a UDP port of its own, an account "alice" that answers as `answer` says and
/// registers nowhere (SIPp talks to voipd directly).
fn start(sb: &Sandbox, answer: &str) -> (Daemon, u16) {
    start_with(sb, answer, "")
}

/// As [`start`], with more lines for the account.
fn start_with(sb: &Sandbox, answer: &str, account: &str) -> (Daemon, u16) {
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"tone:440\"\noutput = \"file:{}\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\nenabled = false\ncodecs = [\"pcmu\"]\nanswer = {{ {answer} }}\n{account}",
        sb.path().join("heard.wav").display()
    ));
    let d = sb.start_daemon();
    let port = sb.sip_port();
    (d, port)
}

fn uac(sb: &Sandbox, scenario: &str, voipd_port: u16) -> Sipp {
    Sipp::echoing_uac(sb.path(), scenario, scenario, voipd_port)
}

fn pass(mut sipp: Sipp) {
    let code = sipp.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "SIPp found fault:\n{}", sipp.output());
}

#[test]
fn an_invite_without_sdp_gets_our_offer_and_the_ack_answers_it() {
    let sb = Sandbox::new();
    let (d, port) = start(&sb, r#"mode = "auto""#);
    pass(uac(&sb, "call_offerless.xml", port));
    wait_until(|| calls(&sb).is_empty(), "the call to end with the BYE");
    assert!(
        d.log().contains("call ended: 200 the other side hung up"),
        "{}",
        d.log()
    );
}

#[test]
fn a_re_invite_puts_us_on_hold_and_takes_us_off() {
    let sb = Sandbox::new();
    let (_d, port) = start(&sb, r#"mode = "auto""#);
    pass(uac(&sb, "call_hold.xml", port));
    wait_until(|| calls(&sb).is_empty(), "the call to end");
}

#[test]
fn retransmitted_invites_make_one_call_and_cancel_ends_it() {
    let sb = Sandbox::new();
    let (d, port) = start(&sb, r#"mode = "manual""#);
    let sipp = uac(&sb, "call_retransmit.xml", port);
    wait_until(|| calls(&sb).len() == 1, "the call to ring");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(calls(&sb).len(), 1, "one call for two copies of the INVITE");
    pass(sipp);
    wait_until(|| calls(&sb).is_empty(), "the cancelled call to end");
    assert!(
        d.log().contains("call ended: 487 cancelled by the caller"),
        "{}",
        d.log()
    );
}

#[test]
fn early_media_on_a_183_plays_before_the_answer() {
    let sb = Sandbox::new();
    let (_d, _) = start(&sb, r#"mode = "manual""#);
    let port = free_port();
    let mut args = Sipp::echoing_args("uas_early_media.xml", &[]);
    args.extend(["-p".to_string(), port.to_string()]);
    // The last -p wins; SIPp listens where we will call.
    let mut sipp = Sipp::spawn(sb.path(), "early", &args);
    sipp.wait_bound(port);
    let out = sb.voipctl(&["dial", &format!("sip:uas@127.0.0.1:{port}")]);
    assert!(out.status.success(), "{}", describe(&out));
    let started = Instant::now();
    wait_until(
        || calls(&sb).first().is_some_and(|c| c["state"] == "active"),
        "the answer",
    );
    let answered_after = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    sb.voipctl(&["hangup"]);
    pass(sipp);
    wait_until(|| calls(&sb).is_empty(), "the end");
    // SIPp echoed our tone from the 183 on: it is in the first second of what we heard,
    // which was well before the answer.
    assert!(
        answered_after > Duration::from_millis(1500),
        "answered after {answered_after:?}"
    );
    let (x, rate) = read_wav(&sb.path().join("heard.wav"));
    let first_second = &x[..(rate as usize).min(x.len())];
    let blocks = first_second
        .chunks_exact((rate / 10) as usize)
        .filter(|b| power(b, 440.0, rate).sqrt() > 500.0)
        .count();
    assert!(
        blocks >= 6,
        "early media: our echoed tone in {blocks} of the first 10 blocks"
    );
}

#[test]
fn a_bye_that_is_never_answered_does_not_hold_up_the_hangup() {
    let sb = Sandbox::new();
    let (d, _) = start(&sb, r#"mode = "manual""#);
    let port = free_port();
    let mut args = Sipp::echoing_args("uas_ignore_bye.xml", &[]);
    args.extend(["-p".to_string(), port.to_string()]);
    let mut sipp = Sipp::spawn(sb.path(), "ignore-bye", &args);
    sipp.wait_bound(port);
    let out = sb.voipctl(&["dial", &format!("sip:uas@127.0.0.1:{port}")]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_active(&sb);
    let t = Instant::now();
    let out = sb.voipctl(&["hangup"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_until(|| calls(&sb).is_empty(), "the call to end");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "hangup took {:?}",
        t.elapsed()
    );
    pass(sipp);
    // The daemon is fine: it still answers.
    assert!(sb.voipctl(&["status"]).status.success(), "{}", d.log());
}

#[test]
fn bad_sdp_gets_400_and_offers_we_cannot_take_488_saying_why() {
    let sb = Sandbox::new();
    let (d, port) = start(&sb, r#"mode = "auto""#);
    pass(uac(&sb, "call_bad_sdp.xml", port));
    wait_until(|| calls(&sb).is_empty(), "the refused calls to end");
    assert!(d.log().contains("call ended: 400 bad SDP"), "{}", d.log());
    assert!(
        d.log().contains("call ended: 488 no codec in common"),
        "{}",
        d.log()
    );
    assert!(sb.voipctl(&["status"]).status.success());
}

#[test]
fn do_not_disturb_answers_486() {
    let sb = Sandbox::new();
    let (d, port) = start(&sb, r#"mode = "dnd""#);
    pass(uac(&sb, "call_busy.xml", port));
    // The 486 goes out before the call's end is logged.
    wait_until(
        || d.log().contains("call ended: 486 do not disturb"),
        "the call to end",
    );
}

#[test]
fn auto_answer_waits_its_delay_and_announces_the_call_first() {
    let sb = Sandbox::new();
    let (_d, port) = start(&sb, r#"mode = "auto", delay_ms = 1200"#);
    let (mut watch, events) = watch_events(&sb);
    pass(uac(&sb, "call_offerless.xml", port));
    let _ = watch.kill();
    let _ = watch.wait();
    let calls: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"]["call_changed"].is_object())
        .collect();
    let at = |state: &str| {
        calls
            .iter()
            .find(|e| e["kind"]["call_changed"]["state"] == state)
            .and_then(|e| e["unix_ms"].as_u64())
            .unwrap_or_else(|| panic!("no {state} event in {calls:?}"))
    };
    let waited = at("active") - at("ringing");
    assert!(
        (1100..3000).contains(&waited),
        "answered {waited} ms after ringing; delay_ms is 1200"
    );
}

#[test]
fn dtmf_in_sip_info_is_received() {
    let sb = Sandbox::new();
    let (d, port) = start(&sb, r#"mode = "auto""#);
    pass(uac(&sb, "call_info_dtmf.xml", port));
    assert!(d.log().contains("DTMF 5 received"), "{}", d.log());
    assert!(d.log().contains("DTMF # received"), "{}", d.log());
}

#[test]
fn rtp_uses_the_configured_port_range() {
    let sb = Sandbox::new();
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n[audio]\ninput = \"null\"\noutput = \"null\"\nrtp_ports = \"41000-41099\"\n");
    let _d = sb.start_daemon();
    assert!(sb.voipctl(&["dial", "echo"]).status.success());
    wait_until(
        || calls(&sb).first().is_some_and(|c| c["state"] == "active"),
        "the sound test",
    );
    let c = &calls(&sb)[0];
    let port: u16 = c["rtp_local"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (41000..=41099).contains(&port) && port.is_multiple_of(2),
        "{c}"
    );
    sb.voipctl(&["hangup"]);
}

/// SIPp playing `scenario` as the far side on a port of its own (`extra` arguments after
/// the usual ones), and that port.
fn uas(sb: &Sandbox, scenario: &str, extra: &[String]) -> (Sipp, u16) {
    let port = free_port();
    let mut args = Sipp::echoing_args(scenario, &["-p".to_string(), port.to_string()]);
    args.extend_from_slice(extra);
    let mut sipp = Sipp::spawn(sb.path(), scenario, &args);
    sipp.wait_bound(port);
    (sipp, port)
}

fn wait_active(sb: &Sandbox) {
    wait_until(
        || calls(sb).first().is_some_and(|c| c["state"] == "active"),
        "the answer",
    );
}

#[test]
fn an_invite_challenged_by_the_far_side_is_sent_again_with_the_digest() {
    let sb = Sandbox::new();
    let (_d, _) = start_with(&sb, r#"mode = "manual""#, "password = \"alicepw\"\n");
    let (sipp, port) = uas(&sb, "uas_invite_401.xml", &[]);
    let uri = format!("sip:uas@127.0.0.1:{port}");
    let out = sb.voipctl(&["dial", &uri, "--account", "alice"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_active(&sb);
    std::thread::sleep(Duration::from_millis(300));
    sb.voipctl(&["hangup"]);
    // SIPp checked the CSeq, the From tag and both digests (INVITE and BYE).
    pass(sipp);
    wait_until(|| calls(&sb).is_empty(), "the end");
}

#[test]
fn retransmitted_2xx_are_acked_again_and_a_second_fork_is_ended() {
    let sb = Sandbox::new();
    let (d, _) = start(&sb, r#"mode = "manual""#);
    let (sipp, port) = uas(&sb, "uas_2xx_fork.xml", &[]);
    sb.voipctl(&["dial", &format!("sip:uas@127.0.0.1:{port}")]);
    wait_active(&sb);
    // The 200 twice more and the second fork's 200 come within about a second.
    wait_until(
        || d.log().contains("a second fork answered"),
        "the second fork's 200",
    );
    std::thread::sleep(Duration::from_millis(500));
    let now = calls(&sb);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["state"], "active", "{now:?}");
    sb.voipctl(&["hangup"]);
    // SIPp checked: an ACK for each 200 of fork A, ACK and BYE for fork B, our BYE for A.
    pass(sipp);
}

#[test]
fn a_redirection_is_followed_in_q_order_and_a_loop_is_not() {
    let sb = Sandbox::new();
    let (d, _) = start(&sb, r#"mode = "manual""#);
    let (ok, ok_port) = uas(&sb, "uas_answer.xml", &[]);
    let (redirect, port) = uas(
        &sb,
        "uas_redirect.xml",
        &["-key".into(), "other".into(), ok_port.to_string()],
    );
    sb.voipctl(&["dial", &format!("sip:first@127.0.0.1:{port}")]);
    wait_active(&sb);
    sb.voipctl(&["hangup"]);
    // The redirect server saw the INVITE, then the one to the better target (486).
    pass(redirect);
    pass(ok);
    wait_until(|| calls(&sb).is_empty(), "the end");

    let (looping, port) = uas(&sb, "uas_redirect_loop.xml", &[]);
    sb.voipctl(&["dial", &format!("sip:first@127.0.0.1:{port}")]);
    wait_until(
        || d.log().contains("call ended: 482 redirected in a loop"),
        "the loop to end the call",
    );
    pass(looping);
}

#[test]
fn an_rfc_2543_peer_without_branches_gets_one_call() {
    let sb = Sandbox::new();
    let (d, port) = start(&sb, r#"mode = "auto""#);
    pass(uac(&sb, "call_rfc2543.xml", port));
    wait_until(|| calls(&sb).is_empty(), "the call to end with the BYE");
    assert!(
        d.log().contains("call ended: 200 the other side hung up"),
        "{}",
        d.log()
    );
    assert_eq!(
        d.log().matches("incoming call from").count(),
        1,
        "{}",
        d.log()
    );
}

/// Short session timers, so that refreshes happen within a test (RFC 4028 asks for 90 s).
const SHORT_TIMERS: &str = "session_expires = 4\nmin_se = 2\n";

/// voipd (account alice, short timers) dials SIPp playing `scenario`.
fn dial_timed(sb: &Sandbox, scenario: &str) -> (Daemon, Sipp) {
    let (d, _) = start_with(sb, r#"mode = "manual""#, SHORT_TIMERS);
    let (sipp, port) = uas(sb, scenario, &[]);
    let uri = format!("sip:uas@127.0.0.1:{port}");
    let out = sb.voipctl(&["dial", &uri, "--account", "alice"]);
    assert!(out.status.success(), "{}", describe(&out));
    (d, sipp)
}

#[test]
fn we_refresh_by_update_after_a_422_and_end_the_call_when_a_refresh_fails() {
    let sb = Sandbox::new();
    let (d, sipp) = dial_timed(&sb, "uas_session_timer.xml");
    wait_until(
        || {
            d.log()
                .contains("call ended: 408 session refresh failed: 481")
        },
        "the failed refresh to end the call",
    );
    assert_eq!(
        d.log().matches("session refresh by UPDATE").count(),
        2,
        "{}",
        d.log()
    );
    // SIPp checked: 4 s asked, 6 s after the 422, UPDATEs with the timer, BYE after 481.
    pass(sipp);
}

#[test]
fn we_refresh_by_re_invite_when_the_far_side_has_no_update() {
    let sb = Sandbox::new();
    let (d, sipp) = dial_timed(&sb, "uas_session_timer_reinvite.xml");
    wait_until(
        || d.log().contains("session refresh by re-INVITE"),
        "the refresh",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(calls(&sb).len(), 1);
    sb.voipctl(&["hangup"]);
    pass(sipp);
}

#[test]
fn the_far_sides_refreshes_keep_the_call_and_their_silence_ends_it() {
    let sb = Sandbox::new();
    let (d, sipp) = dial_timed(&sb, "uas_session_timer_them.xml");
    wait_active(&sb);
    let answered = Instant::now();
    wait_until(
        || {
            d.log()
                .contains("call ended: 408 the far side stopped refreshing the session")
        },
        "the call to end",
    );
    // Refreshed at 1 s and 2 s: it ends near 2 + (4 - 1) s, not 3 s after the answer.
    assert!(
        answered.elapsed() >= Duration::from_millis(4000),
        "{:?}",
        answered.elapsed()
    );
    pass(sipp);
}

#[test]
fn a_caller_with_session_timers_gets_422_then_its_refreshes_answered() {
    let sb = Sandbox::new();
    let (d, port) = start_with(&sb, r#"mode = "auto""#, SHORT_TIMERS);
    // SIPp checked the 422's Min-SE, the timer in each 200, and our BYE at the end.
    pass(uac(&sb, "call_session_timer.xml", port));
    // The BYE goes out before the call's end is logged.
    wait_until(
        || {
            d.log()
                .contains("call ended: 408 the far side stopped refreshing the session")
        },
        "the call to end",
    );
    assert!(
        d.log()
            .contains("call ended: 422 session interval too small"),
        "{}",
        d.log()
    );
}

#[test]
fn reliable_early_media_is_pracked_once() {
    let sb = Sandbox::new();
    let (_d, _) = start(&sb, r#"mode = "manual""#);
    let (sipp, port) = uas(&sb, "uas_100rel.xml", &[]);
    sb.voipctl(&["dial", &format!("sip:uas@127.0.0.1:{port}")]);
    wait_until(
        || calls(&sb).first().is_some_and(|c| c["state"] == "early"),
        "early media",
    );
    wait_active(&sb);
    sb.voipctl(&["hangup"]);
    // SIPp checked: 100rel offered, one PRACK for two copies of the 183, BYE with CSeq 3.
    pass(sipp);
}

#[test]
fn our_ringing_goes_reliably_to_a_caller_that_requires_it() {
    let sb = Sandbox::new();
    let (_d, port) = start(&sb, r#"mode = "auto", delay_ms = 1500"#);
    pass(uac(&sb, "call_100rel.xml", port));
    wait_until(|| calls(&sb).is_empty(), "the call to end");
}

#[test]
fn forwarding_queueing_and_reason_texts_are_shown() {
    let sb = Sandbox::new();
    let (_d, _) = start(&sb, r#"mode = "manual""#);
    let (mut watch, events) = watch_events(&sb);
    let (sipp, port) = uas(&sb, "uas_forwarded.xml", &[]);
    sb.voipctl(&["dial", &format!("sip:pbx@127.0.0.1:{port}")]);
    wait_until(
        || {
            calls(&sb)
                .first()
                .is_some_and(|c| c["progress"] == "182 Queued")
        },
        "182 shown",
    );
    pass(sipp);
    wait_until(|| calls(&sb).is_empty(), "the end");
    let _ = watch.kill();
    let _ = watch.wait();
    let changes: Vec<Value> = watched(&events)
        .into_iter()
        .filter_map(|e| {
            e["kind"]["call_changed"]
                .as_object()
                .cloned()
                .map(Value::Object)
        })
        .collect();
    assert!(
        changes
            .iter()
            .any(|c| c["progress"] == "181 Call Is Being Forwarded"),
        "{changes:?}"
    );
    let ended = changes.last().unwrap();
    assert_eq!(ended["end_code"], 486, "{ended}");
    assert_eq!(
        ended["end_reason"], "Busy Here (All agents are busy)",
        "{ended}"
    );
}

#[test]
fn a_cancelled_call_ends_even_when_the_far_side_never_answers_the_invite() {
    let sb = Sandbox::new();
    // T1 50 ms: 64·T1 is 3.2 s.
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\nt1_ms = 50\n[audio]\ninput = \"null\"\noutput = \"null\"\n",
    );
    let d = sb.start_daemon();
    let (sipp, port) = uas(&sb, "uas_ignore_cancel.xml", &[]);
    sb.voipctl(&["dial", &format!("sip:deaf@127.0.0.1:{port}")]);
    wait_until(
        || calls(&sb).first().is_some_and(|c| c["state"] == "ringing"),
        "ringing",
    );
    let t = Instant::now();
    assert!(sb.voipctl(&["hangup"]).status.success());
    wait_until(|| calls(&sb).is_empty(), "the cancelled call to end");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(d.log().contains("call ended: 408 cancelled"), "{}", d.log());
    pass(sipp);
}

#[test]
fn a_transfer_follows_the_far_sides_notifies_and_a_failure_takes_the_call_back() {
    let sb = Sandbox::new();
    let (d, _) = start(&sb, r#"mode = "manual""#);
    let transfer = |scenario: &str| {
        let (sipp, port) = uas(&sb, scenario, &[]);
        sb.voipctl(&["dial", &format!("sip:bob@127.0.0.1:{port}")]);
        wait_active(&sb);
        let out = sb.voipctl(&["transfer", "sip:carol@example.com"]);
        assert!(out.status.success(), "{}", describe(&out));
        sipp
    };

    // 100, then 200: passed on; our leg ends. A second transfer before the outcome is
    // refused.
    let sipp = transfer("uas_refer_ok.xml");
    wait_until(
        || {
            calls(&sb).first().is_some_and(|c| {
                c["transfer"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("100 Trying"))
            })
        },
        "the far side's 100",
    );
    let again = sb.voipctl(&["transfer", "sip:dave@example.com"]);
    assert!(
        !again.status.success() && stderr(&again).contains("being transferred already"),
        "{}",
        describe(&again)
    );
    pass(sipp);
    wait_until(|| calls(&sb).is_empty(), "our leg to end");
    assert!(
        d.log()
            .contains("call ended: 200 transferred to sip:carol@example.com"),
        "{}",
        d.log()
    );

    // 503 in the NOTIFY, or the REFER refused: the call is ours again, off hold.
    for (scenario, why) in [
        ("uas_refer_503.xml", "failed, 503 Service Unavailable"),
        ("uas_refer_403.xml", "failed, refused (403 Forbidden)"),
    ] {
        let sipp = transfer(scenario);
        wait_until(
            || {
                calls(&sb).first().is_some_and(|c| {
                    c["state"] == "active"
                        && c["transfer"].as_str().is_some_and(|t| t.ends_with(why))
                })
            },
            why,
        );
        sb.voipctl(&["hangup"]);
        pass(sipp);
        wait_until(|| calls(&sb).is_empty(), "the end");
    }
}

#[test]
fn an_invite_with_replaces_takes_over_the_call_it_names() {
    let sb = Sandbox::new();
    let (d, port) = start(&sb, r#"mode = "manual""#);
    let logs = sb.path().join("replaced.log");
    let mut args = vec![format!("127.0.0.1:{port}"), "-s".into(), "alice".into()];
    args.extend(Sipp::echoing_args(
        "call_replaced.xml",
        &[
            "-cid_str".into(),
            "replaced-%u@sipp".into(),
            "-trace_logs".into(),
            "-log_file".into(),
            logs.display().to_string(),
        ],
    ));
    let replaced = Sipp::spawn(sb.path(), "call_replaced", &args);
    wait_until(|| calls(&sb).len() == 1, "the first call to ring");
    assert!(sb.voipctl(&["answer"]).status.success());
    let mut tags = (String::new(), String::new());
    wait_until(
        || {
            let text = std::fs::read_to_string(&logs).unwrap_or_default();
            let word = |k: &str| {
                text.split_whitespace()
                    .find_map(|w| w.strip_prefix(k).map(str::to_string))
            };
            if let (Some(to), Some(from)) = (word("TOTAG="), word("FROMTAG=")) {
                tags = (to, from);
            }
            !tags.0.is_empty()
        },
        "voipd's tag in SIPp's log",
    );
    let first = calls(&sb)[0]["id"].clone();

    // Naming nothing here: 481, and the call goes on.
    pass(uac(&sb, "call_replaces_unknown.xml", port));
    assert_eq!(calls(&sb).len(), 1);

    // The call's ids with it, as they are on the wire.
    let naming = |scenario: &str| {
        let mut args = vec![format!("127.0.0.1:{port}"), "-s".into(), "alice".into()];
        args.extend(Sipp::echoing_args(
            scenario,
            &[
                "-key".into(),
                "callid".into(),
                "replaced-1@sipp".into(),
                "-key".into(),
                "totag".into(),
                tags.0.clone(),
                "-key".into(),
                "fromtag".into(),
                tags.1.clone(),
            ],
        ));
        args
    };
    // From a stranger (neither the call's party nor referred by it): 403, the call goes on.
    pass(Sipp::spawn(
        sb.path(),
        "call_replaces_stranger",
        &naming("call_replaces_stranger.xml"),
    ));
    assert_eq!(calls(&sb).len(), 1);
    assert_eq!(calls(&sb)[0]["state"], "active");

    // Naming the call: answered at once (the account answers by hand), the old one ended.
    let args = naming("call_replaces.xml");
    let replaces = Sipp::spawn(sb.path(), "call_replaces", &args);
    pass(replaced);
    pass(replaces);
    wait_until(|| calls(&sb).is_empty(), "both calls to end");
    assert!(
        d.log().contains(&format!(
            "replaced by call {}; hanging up",
            first.as_u64().unwrap_or(0) + 1
        )),
        "{}",
        d.log()
    );
}
