//! Voice calls between voipd and baresip through Kamailio, with audio proven both ways:
//! each side sends its own tone and records; each recording must hold the other's tone.
//! Kamailio challenges every INVITE, re-INVITE, BYE and MESSAGE with 407, as providers do.

use std::time::{Duration, Instant};

use serde_json::Value;
use voipd_tests::audio::assert_tone;
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::peers::Kamailio;
use voipd_tests::*;

const VOIPD_TONE: f64 = 440.0;
const BARESIP_TONE: f64 = 1000.0;
/// Each codec: our name for it, baresip's, and the name calls report.
const CODECS: [(&str, &str, &str); 4] = [
    ("pcmu", "PCMU", "PCMU"),
    ("pcma", "PCMA", "PCMA"),
    ("g722", "G722/16000/1", "G722"),
    ("opus", "opus/48000/2", "opus"),
];

fn voipd_config(sb: &Sandbox, kam: &Kamailio, codec: &str, answer: &str) -> String {
    format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"tone:{VOIPD_TONE}\"\noutput = \"file:{}\"\nrtp_timeout_secs = 5\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\ncodecs = [\"{codec}\"]\nanswer = {{ mode = \"{answer}\" }}\n",
        sb.path().join("voipd-heard.wav").display(),
        kam.port
    )
}

fn wait_call(sb: &Sandbox, state: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(c) = calls(sb).into_iter().find(|c| c["state"] == state) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no call {state}: {:?}",
            calls(sb)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// voipd's recording holds baresip's tone, clean, in at least `blocks` 100 ms blocks.
fn assert_heard_baresip(sb: &Sandbox, blocks: usize) {
    assert_tone(
        &sb.path().join("voipd-heard.wav"),
        BARESIP_TONE,
        &[VOIPD_TONE, 1500.0],
        blocks,
    );
}

/// Each side heard the other's tone, clean, for at least 1.5 s of the call.
fn assert_both_ways(sb: &Sandbox, b: &Baresip) {
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
}

/// baresip reported the door opener's digits, # then 9.
fn assert_baresip_got_door_digits(b: &Baresip) {
    let first = b.wait_event("CALL_DTMF_START");
    let second = b.wait_event("CALL_DTMF_START");
    assert_eq!(
        (first["param"].as_str(), second["param"].as_str()),
        (Some("#"), Some("9"))
    );
}

/// We hang up; baresip sees the call close and voipd lists no call.
fn hang_up(sb: &Sandbox, b: &Baresip) {
    assert!(sb.voipctl(&["hangup"]).status.success());
    b.wait_event("CALL_CLOSED");
    wait_no_calls(sb);
}

fn wait_no_calls(sb: &Sandbox) {
    wait_until(|| calls(sb).is_empty(), "the call to end");
}

fn start(
    sb: &Sandbox,
    codec_voipd: &str,
    codec_baresip: &str,
    answer: &str,
    baresip_auto: bool,
) -> (Kamailio, Daemon, Baresip) {
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&voipd_config(sb, &kam, codec_voipd, answer));
    let d = sb.start_daemon();
    wait_account_state(sb, "alice", "registered", PATIENCE);
    let b = Baresip::start(
        sb.path(),
        BaresipOptions {
            tone: BARESIP_TONE as u32,
            codec: codec_baresip,
            auto_answer: baresip_auto,
            ..BaresipOptions::carol(kam.port)
        },
    );
    (kam, d, b)
}

/// Kamailio challenged our `method` and then took it with alice's credentials.
fn assert_challenged_then_ok(kam: &Kamailio, method: &str) {
    assert!(
        kam.challenged_then_took(method, "alice"),
        "{method}: {:?}",
        kam.call_auth(method, "alice")
    );
}

#[test]
fn voipd_calls_baresip_with_each_codec_and_audio_flows_both_ways() {
    for (ours, theirs, name) in CODECS {
        let sb = Sandbox::new();
        let (_kam, _d, b) = start(&sb, ours, theirs, "manual", true);
        let out = sb.voipctl(&["dial", "carol"]);
        assert!(out.status.success(), "{}", describe(&out));
        let c = wait_call(&sb, "active");
        assert_eq!(c["codec"], name, "{c}");
        b.wait_event("CALL_ESTABLISHED");
        std::thread::sleep(Duration::from_millis(2500));
        hang_up(&sb, &b);

        // 2.5 s of call: at least 1.5 s of each tone, clean, each way.
        assert_both_ways(&sb, &b);
        // Our INVITE and our BYE each met the proxy's challenge and got through.
        assert_challenged_then_ok(&_kam, "INVITE");
        // The BYE carries the answer to the INVITE's challenge (nonce count 2) at once.
        let bye = _kam.call_auth("BYE", "alice");
        assert!(bye.iter().any(|l| l.contains("result=ok")), "{bye:?}");
    }
}

/// The door intercom's script, as the README writes it, through a proxy that challenges
/// every request: `dial --wait` returns once baresip has answered, the digits reach it,
/// and the call carried audio both ways. A call to nobody fails the script with exit 1.
#[test]
fn the_door_script_waits_for_the_answer_through_a_challenging_proxy() {
    let sb = Sandbox::new();
    let (kam, _d, b) = start(&sb, "pcmu", "PCMU", "manual", true);
    let out = sb.script("voipctl dial --wait carol && voipctl dtmf '#9'");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains(": active (PCMU)"),
        "{}",
        describe(&out)
    );
    assert_baresip_got_door_digits(&b);
    std::thread::sleep(Duration::from_millis(2500));
    hang_up(&sb, &b);
    assert_both_ways(&sb, &b);
    assert_challenged_then_ok(&kam, "INVITE");

    // Nobody is registered as dave: the proxy's 404 ends the script's call.
    let out = sb.script("voipctl dial --wait dave && voipctl dtmf '#9'");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("ended: 404"), "{}", describe(&out));
}

#[test]
fn a_wrong_password_ends_the_call_with_the_challenge_once() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(
        &voipd_config(&sb, &kam, "pcmu", "manual").replace("alicepw", "not-alices-password"),
    );
    let _d = sb.start_daemon();
    let (mut watch, events) = watch_events(&sb);
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_until(
        || {
            watched(&events)
                .iter()
                .any(|e| e["kind"]["call_changed"]["state"] == "ended")
        },
        "the call to end",
    );
    let ended = watched(&events)
        .into_iter()
        .find(|e| e["kind"]["call_changed"]["state"] == "ended")
        .unwrap();
    let call = &ended["kind"]["call_changed"];
    assert_eq!(call["end_code"], 407, "{call}");
    assert!(
        call["end_reason"]
            .as_str()
            .unwrap_or("")
            .contains("wrong username or password"),
        "{call}"
    );
    // Kamailio challenges a wrong answer again with a fresh nonce: voipd asked once with
    // credentials and then stopped, no loop.
    std::thread::sleep(Duration::from_secs(2));
    let lines = kam.call_auth("INVITE", "alice");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("result=wrong-password"), "{lines:?}");
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn baresip_calls_voipd_which_answers_and_hears_dtmf_and_sends_it() {
    let sb = Sandbox::new();
    let (_kam, _d, b) = start(&sb, "pcmu", "PCMU", "manual", true);
    let (mut watch, events) = watch_events(&sb);

    let mut b = b;
    b.command("dial", "sip:alice@127.0.0.1");
    let ringing = wait_call(&sb, "ringing");
    assert_eq!(ringing["incoming"], true);
    assert!(
        ringing["remote_uri"].as_str().unwrap().contains("carol"),
        "{ringing}"
    );
    let out = sb.voipctl(&["answer"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_call(&sb, "active");
    b.wait_event("CALL_ESTABLISHED");

    // baresip sends digits; voipd's event stream shows them, in order.
    b.command("sndcode", "12#");
    wait_until(
        || {
            watched(&events)
                .iter()
                .filter(|e| e["kind"]["dtmf_received"].is_object())
                .count()
                >= 3
        },
        "three DTMF events",
    );
    let digits: String = watched(&events)
        .iter()
        .filter_map(|e| {
            e["kind"]["dtmf_received"]["digit"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(digits, "12#");

    // voipd sends #9 (the door opener); baresip reports both digits.
    let out = sb.voipctl(&["dtmf", "#9"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_baresip_got_door_digits(&b);

    std::thread::sleep(Duration::from_millis(2500));
    // The far side hangs up: voipd ends the call with its reason.
    b.command("hangup", "");
    wait_no_calls(&sb);
    // The watcher writes the event after the call is gone from the list: wait for it.
    wait_until(
        || {
            watched(&events)
                .iter()
                .any(|e| e["kind"]["call_changed"]["state"] == "ended")
        },
        "the ended event in the watcher's output",
    );
    let ended: Vec<Value> = watched(&events)
        .into_iter()
        .filter(|e| e["kind"]["call_changed"]["state"] == "ended")
        .collect();
    let call = &ended[0]["kind"]["call_changed"];
    assert_eq!(call["end_reason"], "the other side hung up", "{call}");
    // Each event is named for what happened, once: hooks and MQTT go by these names.
    let names: Vec<String> = watched(&events)
        .iter()
        .filter(|e| e["kind"]["call_changed"].is_object() || e["kind"]["dtmf_received"].is_object())
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .filter(|n| n != "call_changed")
        .collect();
    assert_eq!(
        names,
        [
            "call_incoming",
            "call_answered",
            "dtmf",
            "dtmf",
            "dtmf",
            "call_ended"
        ],
        "{:?}",
        watched(&events)
    );
    assert!(
        call["media"]["packets_received"].as_u64().unwrap() > 50,
        "{call}"
    );
    assert_both_ways(&sb, &b);
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn hold_stops_our_audio_and_resume_brings_it_back() {
    let sb = Sandbox::new();
    let (kam, _d, b) = start(&sb, "pcmu", "PCMU", "manual", true);
    sb.voipctl(&["dial", "carol"]);
    let c = wait_call(&sb, "active");
    b.wait_event("CALL_ESTABLISHED");
    let id = c["id"].to_string();
    let sent = |sb: &Sandbox| calls(sb)[0]["media"]["packets_sent"].as_u64().unwrap_or(0);
    let received = |sb: &Sandbox| {
        calls(sb)[0]["media"]["packets_received"]
            .as_u64()
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        sent(&sb) >= 40 && received(&sb) >= 40,
        "audio flows: {:?}",
        calls(&sb)
    );

    let out = sb.voipctl(&["hold", &id]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_call(&sb, "held");
    std::thread::sleep(Duration::from_millis(200));
    let (s0, r0) = (sent(&sb), received(&sb));
    std::thread::sleep(Duration::from_millis(1500));
    let (s1, r1) = (sent(&sb), received(&sb));
    assert!(s1 - s0 <= 2, "we send nothing while held: {s0} -> {s1}");
    // Held with sendonly, the far side answers recvonly and stops sending too.
    assert!(r1 - r0 <= 2, "nothing comes while held: {r0} -> {r1}");

    let out = sb.voipctl(&["resume"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_call(&sb, "active");
    std::thread::sleep(Duration::from_millis(1000));
    let (s2, r2) = (sent(&sb), received(&sb));
    assert!(
        s2 - s1 >= 40 && r2 - r1 >= 40,
        "audio returns: sent {s1} -> {s2}, received {r1} -> {r2}"
    );
    hang_up(&sb, &b);
    // And what came after the resume was still the far side's tone.
    assert_heard_baresip(&sb, 15);
    // The INVITE, the hold and the resume re-INVITEs all passed the challenging proxy.
    let ok = kam
        .call_auth("INVITE", "alice")
        .iter()
        .filter(|l| l.contains("result=ok"))
        .count();
    assert!(ok >= 3, "{:?}", kam.call_auth("INVITE", "alice"));
}

#[test]
fn cancel_reject_and_busy() {
    let sb = Sandbox::new();
    let (_kam, _d, mut b) = start(&sb, "pcmu", "PCMU", "manual", false);

    // We call, baresip rings (manual answer), we give up: CANCEL, 487.
    sb.voipctl(&["dial", "carol"]);
    b.wait_event("CALL_INCOMING");
    wait_call(&sb, "ringing");
    let out = sb.voipctl(&["hangup"]);
    assert!(out.status.success(), "{}", describe(&out));
    b.wait_event("CALL_CLOSED");
    wait_no_calls(&sb);

    // baresip calls, voipd rejects as busy: baresip is told 486.
    b.command("dial", "sip:alice@127.0.0.1");
    wait_call(&sb, "ringing");
    let out = sb.voipctl(&["reject", "--busy"]);
    assert!(out.status.success(), "{}", describe(&out));
    let closed = b.wait_event("CALL_CLOSED");
    assert!(
        closed["param"].as_str().unwrap_or("").contains("486"),
        "{closed}"
    );
    wait_no_calls(&sb);

    // baresip calls and gives up before we answer: our call ends as cancelled.
    b.command("dial", "sip:alice@127.0.0.1");
    wait_call(&sb, "ringing");
    b.command("hangup", "");
    wait_no_calls(&sb);

    // Nothing to answer now: a clear refusal, exit 1 (as for an id that is not there).
    let out = sb.voipctl(&["answer"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("no call to answer"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_far_side_that_vanishes_is_cleared_by_the_rtp_timeout() {
    let sb = Sandbox::new();
    let (kam, _d, b) = start(&sb, "pcmu", "PCMU", "manual", true);
    sb.voipctl(&["dial", "carol"]);
    wait_call(&sb, "active");
    b.wait_event("CALL_ESTABLISHED");
    // baresip dies without a BYE; after rtp_timeout_secs (5 s here) voipd clears the call.
    drop(b);
    let started = Instant::now();
    wait_until(|| calls(&sb).is_empty(), "the call to be cleared");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "cleared after {:?}",
        started.elapsed()
    );
    drop(kam);
}

#[test]
fn malformed_rtp_does_not_break_a_call() {
    let sb = Sandbox::new();
    let (_kam, _d, b) = start(&sb, "pcmu", "PCMU", "manual", true);
    sb.voipctl(&["dial", "carol"]);
    let c = wait_call(&sb, "active");
    b.wait_event("CALL_ESTABLISHED");
    let rtp: std::net::SocketAddr = c["rtp_local"].as_str().unwrap().parse().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut valid = vec![0x80u8, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    valid.extend(std::iter::repeat_n(0xffu8, 160));
    let mut garbage: Vec<Vec<u8>> = vec![
        vec![0x40; 172],                                   // RTP version 1
        vec![0x80, 0, 0],                                  // truncated header
        vec![0x8f, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5],    // 15 CSRCs claimed, none there
        vec![0x90, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 0xff], // extension past the end
        vec![0xa0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 200],  // padding longer than the packet
    ];
    let mut unknown_pt = valid.clone();
    unknown_pt[1] = 77;
    garbage.push(unknown_pt);
    for i in 0..300 {
        sock.send_to(&garbage[i % garbage.len()], rtp).unwrap();
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    let now = calls(&sb);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0]["state"], "active", "the call survives: {now:?}");
    hang_up(&sb, &b);
    // The far side's audio kept coming through.
    assert_heard_baresip(&sb, 15);
}

/// voipd's UDP sockets, from `ss`: the call's RTP (and RTCP) sockets among them.
fn udp_sockets(d: &Daemon) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-u", "-a", "-n", "-p"])
        .output()
        .expect("ss (apt-get install iproute2)");
    let me = format!("pid={},", d.pid());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&me))
        .count()
}

/// Hangs up the call, and returns the `media` of the `n`th call the watcher saw end. (The
/// watcher writes the event after the call is gone from the list.)
fn ended_media(sb: &Sandbox, b: &Baresip, events: &std::path::Path, n: usize) -> Value {
    hang_up(sb, b);
    let ended = |e: &&Value| e["kind"]["call_changed"]["state"] == "ended";
    wait_until(
        || watched(events).iter().filter(ended).count() >= n,
        "the ended event in the watcher's output",
    );
    watched(events)
        .iter()
        .filter(ended)
        .nth(n - 1)
        .map(|e| e["kind"]["call_changed"]["media"].clone())
        .expect("an ended event")
}

/// RFC 5761 with baresip (`rtcp_mux yes`), whichever side offers: each hears the other's
/// tone, the far side's RTCP reports reach us on the RTP port, and the call holds one
/// socket where it held two.
#[test]
fn rtcp_mux_with_baresip_whichever_side_offers() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&voipd_config(&sb, &kam, "pcmu", "auto"));
    let d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let mut b = Baresip::start(
        sb.path(),
        BaresipOptions {
            tone: BARESIP_TONE as u32,
            rtcp_mux: true,
            ..BaresipOptions::carol(kam.port)
        },
    );
    let (mut watch, events) = watch_events(&sb);
    let idle = udp_sockets(&d);

    // We offer.
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_call(&sb, "active");
    b.wait_event("CALL_ESTABLISHED");
    assert_eq!(udp_sockets(&d), idle + 1, "one socket for RTP and RTCP");
    // baresip reports every 5 s or so.
    std::thread::sleep(Duration::from_secs(7));
    let m = ended_media(&sb, &b, &events, 1);
    assert_both_ways(&sb, &b);
    assert!(m["rtcp_reports"].as_u64().unwrap_or(0) >= 1, "{m}");
    b.clear_recordings();

    // baresip offers.
    b.command("dial", "sip:alice@127.0.0.1");
    wait_call(&sb, "active");
    b.wait_event("CALL_ESTABLISHED");
    assert_eq!(udp_sockets(&d), idle + 1, "one socket for RTP and RTCP");
    std::thread::sleep(Duration::from_secs(7));
    let m = ended_media(&sb, &b, &events, 2);
    assert_both_ways(&sb, &b);
    assert!(m["rtcp_reports"].as_u64().unwrap_or(0) >= 1, "{m}");
    assert!(
        m["packets_malformed"].as_u64() == Some(0),
        "RTCP taken for RTP: {m}"
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn rtcp_reports_flow_and_the_far_sides_view_is_on_the_call() {
    let sb = Sandbox::new();
    let (_kam, _d, b) = start(&sb, "pcmu", "PCMU", "manual", true);
    let (mut watch, events) = watch_events(&sb);
    sb.voipctl(&["dial", "carol"]);
    wait_call(&sb, "active");
    b.wait_event("CALL_ESTABLISHED");
    // baresip reports every 5 s or so; give it time for two.
    std::thread::sleep(Duration::from_secs(11));
    let m = &ended_media(&sb, &b, &events, 1);
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(m["rtcp_reports"].as_u64().unwrap_or(0) >= 1, "{m}");
    assert!(
        m["remote_lost"].as_i64().unwrap_or(-1).abs() <= 2,
        "loopback loses nothing: {m}"
    );
    assert!(m["jitter_ms"].as_u64().unwrap() < 30, "{m}");
    assert!(m["packets_received"].as_u64().unwrap() > 400, "{m}");
}

#[test]
fn baresip_calls_voipd_with_each_codec_and_audio_flows_both_ways() {
    for (ours, theirs, name) in CODECS {
        let sb = Sandbox::new();
        let (_kam, _d, mut b) = start(&sb, ours, theirs, "auto", true);
        b.command("dial", "sip:alice@127.0.0.1");
        let c = wait_call(&sb, "active");
        assert_eq!(
            (c["codec"].as_str(), c["incoming"].as_bool()),
            (Some(name), Some(true)),
            "{c}"
        );
        b.wait_event("CALL_ESTABLISHED");
        std::thread::sleep(Duration::from_millis(2500));
        b.command("hangup", "");
        wait_no_calls(&sb);
        assert_both_ways(&sb, &b);
    }
}
