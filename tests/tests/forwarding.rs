//! Call forwarding with real phones: baresip (carol) calls voipd (alice) through a
//! Kamailio that challenges every INVITE and, as a provider's proxy does, follows a 302
//! to the Contact it names. The target is another baresip; the forwarded call's audio is
//! proven both ways by tone detection.

use std::time::Duration;

use serde_json::Value;
use voipd_tests::audio::assert_tone;
use voipd_tests::baresip::{Baresip, kamailio_phone};
use voipd_tests::peers::{Kamailio, Sipp};
use voipd_tests::*;

const CAROL_TONE: u32 = 1000;
const DAVE_TONE: u32 = 700;
const ERIN_TONE: u32 = 1300;

fn phone(sb: &Sandbox, kam: &Kamailio, user: &'static str, tone: u32, auto: bool) -> Baresip {
    kamailio_phone(sb.path(), kam.port, user, tone, auto)
}

fn config(sb: &Sandbox, kam: &Kamailio, answer: &str, forward: &str) -> String {
    format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\nring_timeout_secs = 30\n\n\
         [audio]\ninput = \"tone:440\"\noutput = \"file:{}\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
         codecs = [\"pcmu\"]\nanswer = {{ mode = \"{answer}\" }}\nforward = {{ {forward} }}\n",
        sb.path().join("voipd-heard.wav").display(),
        kam.port
    )
}

/// carol calls alice and ends up talking to `target`: each heard the other.
fn carol_reaches(carol: &mut Baresip, target: &Baresip, target_tone: u32) {
    carol.clear_recordings();
    target.clear_recordings();
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    target.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(2500));
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
    target.wait_event("CALL_CLOSED");
    heard(carol, f64::from(target_tone), f64::from(CAROL_TONE));
    heard(target, f64::from(CAROL_TONE), f64::from(target_tone));
}

/// `b`'s one recording holds `hz`, not its own tone.
fn heard(b: &Baresip, hz: f64, own: f64) {
    let rec = b.received_recordings();
    assert_eq!(rec.len(), 1, "{rec:?}\n{}", b.log());
    assert_tone(&rec[0], hz, &[own, 440.0], 15);
}

fn history(sb: &Sandbox) -> Vec<Value> {
    let o = sb.voipctl(&["--json", "history"]);
    assert!(o.status.success(), "{}", describe(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("history JSON");
    v["entries"].as_array().cloned().unwrap_or_default()
}

/// The newest call in the history was forwarded by `rule` to `who`, and is not missed.
fn last_forwarded(sb: &Sandbox, rule: &str, who: &str) {
    let mut newest = Value::Null;
    wait_until(
        || {
            newest = history(sb).first().cloned().unwrap_or_default();
            newest["end_reason"]
                .as_str()
                .is_some_and(|r| r.starts_with(&format!("forwarded ({rule}) to sip:{who}@")))
        },
        &format!("the history to show the call forwarded ({rule}) to {who}"),
    );
    assert_ne!(newest["missed"], true, "{newest}");
}

fn forward(sb: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["--json", "forward"];
    all.extend_from_slice(args);
    let o = sb.voipctl(&all);
    assert!(o.status.success(), "{}", describe(&o));
    serde_json::from_str(&stdout(&o)).expect("forward JSON")
}

/// The rule as `voipctl forward show` gives it: (to, live).
fn rule_of(sb: &Sandbox, rule: &str) -> (String, bool) {
    let v = forward(sb, &["show", "--account", "alice"]);
    let f = v[0]["forwarding"]
        .as_array()
        .and_then(|l| l.iter().find(|f| f["rule"] == rule).cloned())
        .unwrap_or_else(|| panic!("no rule {rule}: {v}"));
    (
        f["to"].as_str().unwrap_or_default().to_string(),
        f["live"].as_bool().unwrap_or(false),
    )
}

#[test]
fn always_from_the_config_then_no_answer_set_live_which_survives_a_restart() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &["FOLLOW_3XX"]);
    let dave = phone(&sb, &kam, "dave", DAVE_TONE, true);
    let mut carol = phone(&sb, &kam, "carol", CAROL_TONE, false);
    sb.write_config(&config(&sb, &kam, "manual", "always = \"dave\""));
    let mut d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);

    // always, from the configuration: carol talks to dave.
    assert_eq!(rule_of(&sb, "always"), ("dave".into(), false));
    carol_reaches(&mut carol, &dave, DAVE_TONE);
    last_forwarded(&sb, "always", "dave");
    assert!(kam.log_text().contains("REDIRECT to=sip:dave@"));

    // Set live: always off (over the configuration), no-answer after 2 s.
    forward(&sb, &["off", "always"]);
    let v = forward(&sb, &["set", "no-answer", "dave", "--after", "2"]);
    assert_eq!(v["forwarding"][2]["to"], "dave", "{v}");
    assert_eq!(v["forwarding"][2]["after_secs"], 2, "{v}");
    carol_reaches(&mut carol, &dave, DAVE_TONE);
    last_forwarded(&sb, "no-answer", "dave");
    // It rang first, for about the time asked.
    let h = history(&sb);
    let ms = |k: &str| h[0][k].as_u64().unwrap_or(0);
    let rang = ms("ended_unix_ms").saturating_sub(ms("started_unix_ms"));
    assert!((1900..6000).contains(&rang), "rang {rang} ms: {}", h[0]);

    // A bad live change is refused, naming the field, and changes nothing.
    let o = sb.voipctl(&["forward", "set", "no-answer", "dave", "--after", "99"]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    assert!(stderr(&o).contains("after_secs"), "{}", describe(&o));
    let o = sb.voipctl(&["forward", "set", "busy", "sip:"]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    assert!(stderr(&o).contains("WHOM"), "{}", describe(&o));
    assert_eq!(rule_of(&sb, "busy"), (String::new(), false));

    // The live settings survive a restart; in do-not-disturb, busy sends calls on.
    forward(&sb, &["set", "busy", "dave"]);
    forward(&sb, &["off", "no-answer"]);
    assert!(sb.voipctl(&["shutdown"]).status.success());
    d.wait_exit();
    sb.write_config(&config(&sb, &kam, "dnd", "always = \"dave\""));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    assert_eq!(rule_of(&sb, "always"), (String::new(), true));
    assert_eq!(rule_of(&sb, "busy"), ("dave".into(), true));
    carol_reaches(&mut carol, &dave, DAVE_TONE);
    last_forwarded(&sb, "busy", "dave");

    // Cleared: the configuration's always applies again.
    forward(&sb, &["clear"]);
    assert_eq!(rule_of(&sb, "always"), ("dave".into(), false));
}

#[test]
fn busy_in_a_call_and_unavailable_when_voipd_stops_while_ringing() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &["FOLLOW_3XX"]);
    let dave = phone(&sb, &kam, "dave", DAVE_TONE, true);
    let erin = phone(&sb, &kam, "erin", ERIN_TONE, true);
    let mut carol = phone(&sb, &kam, "carol", CAROL_TONE, false);
    sb.write_config(&config(
        &sb,
        &kam,
        "manual",
        "busy = \"sip:erin@127.0.0.1\", unavailable = \"Erin at the door\"",
    ));
    let mut d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    // The unavailable target is a contact's name, looked up when the call comes.
    let o = sb.voipctl(&[
        "contacts",
        "add",
        "Erin at the door",
        "-a",
        "erin@127.0.0.1",
    ]);
    assert!(o.status.success(), "{}", describe(&o));

    // In a call with dave, carol's call goes to erin.
    let o = sb.voipctl(&["dial", "--wait", "dave"]);
    assert!(o.status.success(), "{}", describe(&o));
    dave.wait_event("CALL_ESTABLISHED");
    carol_reaches(&mut carol, &erin, ERIN_TONE);
    last_forwarded(&sb, "busy", "erin");
    assert!(sb.voipctl(&["hangup"]).status.success());
    dave.wait_event("CALL_CLOSED");
    wait_until(|| calls(&sb).is_empty(), "the call with dave to end");

    // Ringing when voipd stops: carol reaches erin all the same.
    erin.clear_recordings();
    carol.clear_recordings();
    carol.command("dial", "sip:alice@127.0.0.1");
    wait_until(
        || calls(&sb).iter().any(|c| c["state"] == "ringing"),
        "carol's call to ring",
    );
    assert!(sb.voipctl(&["shutdown"]).status.success());
    d.wait_exit();
    carol.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(2500));
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
    heard(&carol, f64::from(ERIN_TONE), f64::from(CAROL_TONE));
    heard(&erin, f64::from(CAROL_TONE), f64::from(ERIN_TONE));
    assert!(
        d.log().contains("forwarding (unavailable) to sip:erin@"),
        "{}",
        d.log()
    );
}

#[test]
fn a_phone_that_follows_redirects_itself_gets_the_302_with_the_target() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&config(&sb, &kam, "manual", "always = \"dave\""));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let mut sipp = Sipp::client(sb.path(), "invite_redirected.xml", sb.sip_port());
    assert_eq!(sipp.wait(PATIENCE), 0, "{}", sipp.output());
    last_forwarded(&sb, "always", "dave");
}

#[test]
fn unavailable_with_no_sound_device_to_answer_with() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &["FOLLOW_3XX"]);
    let erin = phone(&sb, &kam, "erin", ERIN_TONE, true);
    let mut carol = phone(&sb, &kam, "carol", CAROL_TONE, false);
    // A manual answer wants the sound card this machine lacks: nobody can answer here.
    let text = config(&sb, &kam, "manual", "unavailable = \"erin\"")
        .replace("input = \"tone:440\"", "input = \"default\"")
        .replace(
            &format!(
                "output = \"file:{}\"",
                sb.path().join("voipd-heard.wav").display()
            ),
            "output = \"default\"",
        );
    assert!(text.contains("output = \"default\""), "{text}");
    sb.write_config(&text);
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    carol_reaches(&mut carol, &erin, ERIN_TONE);
    last_forwarded(&sb, "unavailable", "erin");
}
