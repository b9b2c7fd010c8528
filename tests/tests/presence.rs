//! Presence: voipd follows a contact on baresip (its presence module) through Kamailio as
//! she goes online and offline and quits (and calls her by her name), another voipd as it
//! goes away, busy, online and stops, and a presence agent of another make (SIPp) through a
//! refresh to its end; a stranger is refused, an event package we have not is answered
//! 489, a contact of another make (SIPp) follows ours until it unsubscribes, and our status
//! is published to a server (SIPp), changed and withdrawn.

use std::time::Duration;

use serde_json::Value;
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::peers::{Kamailio, Sipp, free_port};
use voipd_tests::*;

/// voipd with an account that registers nowhere: peers talk to it directly.
const DIRECT: &str = "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
    [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\nenabled = false\n";

/// voipd as `user` (alicepw style password) through Kamailio, registered.
fn voipd(sb: &Sandbox, kam: &Kamailio, user: &str) -> Daemon {
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"{user}\"\naor = \"sip:{user}@127.0.0.1\"\npassword = \"{user}pw\"\n\
         outbound_proxy = [\"sip:127.0.0.1:{}\"]\n",
        kam.port
    ));
    let d = sb.start_daemon();
    wait_account_state(sb, user, "registered", PATIENCE);
    d
}

fn add_contact(sb: &Sandbox, name: &str, address: &str) {
    let out = sb.voipctl(&["contacts", "add", name, "-a", address]);
    assert!(out.status.success(), "{}", describe(&out));
}

fn presence(sb: &Sandbox, contact: &str) -> Value {
    let out = sb.voipctl(&["--json", "contacts", "show", contact]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["presence"].clone()
}

fn wait_presence(sb: &Sandbox, contact: &str, status: &str) -> Value {
    let mut last = Value::Null;
    wait_until(
        || {
            last = presence(sb, contact);
            last["status"] == status
        },
        &format!("{contact} to be {status}"),
    );
    last
}

#[test]
fn a_contact_on_baresip_goes_online_and_offline_and_quits() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let _d = voipd(&sb, &kam, "alice");
    let mut carol = Baresip::start(
        sb.path(),
        BaresipOptions {
            presence: true,
            ..BaresipOptions::carol(kam.port)
        },
    );
    carol.command("presence_online", "");
    let (mut watch, events) = watch_events(&sb);

    add_contact(&sb, "Carol Singer", "carol@127.0.0.1");
    wait_presence(&sb, "carol", "online");
    // Her name is enough to call her ("singer" is nobody's SIP user).
    let out = sb.voipctl(&["dial", "singer"]);
    assert!(out.status.success(), "{}", describe(&out));
    carol.wait_event("CALL_ESTABLISHED");
    let calls = stdout(&sb.voipctl(&["--json", "calls"]));
    assert!(
        calls.contains("\"remote_uri\":\"sip:carol@127.0.0.1\"")
            && calls.contains("\"contact\":\"Carol Singer\""),
        "{calls}"
    );
    assert!(sb.voipctl(&["hangup"]).status.success());
    carol.wait_event("CALL_CLOSED");
    wait_until(
        || {
            stdout(&sb.voipctl(&["history", "--peek"]))
                .contains("Carol Singer <sip:carol@127.0.0.1>")
        },
        "the call in the history, by her name",
    );
    carol.command("presence_offline", "");
    wait_presence(&sb, "carol", "offline");
    carol.command("presence_online", "");
    wait_presence(&sb, "carol", "online");
    // Quitting ends the subscription (terminated, deactivated); asked again, the registrar
    // no longer knows her.
    carol.terminate();
    wait_presence(&sb, "carol", "offline");

    let _ = watch.kill();
    let _ = watch.wait();
    let seen: Vec<String> = watched(&events)
        .iter()
        .filter_map(|e| e["kind"]["contact_changed"]["presence"]["status"].as_str())
        .map(str::to_string)
        .collect();
    let mut steps = seen.clone();
    steps.dedup();
    assert_eq!(
        steps,
        ["unknown", "online", "offline", "online", "offline"],
        "contact_changed events: {seen:?}"
    );
}

#[test]
fn voipd_follows_voipd_away_busy_and_stopping() {
    let a = Sandbox::new();
    let kam = Kamailio::start(a.path(), &[]);
    let _alice = voipd(&a, &kam, "alice");
    let b = Sandbox::new();
    let mut bob = voipd(&b, &kam, "bob");
    // Bob shares with his contacts only: Alice is one.
    add_contact(&b, "Alice", "alice@127.0.0.1");
    add_contact(&a, "Bob Builder", "bob@127.0.0.1");
    wait_presence(&a, "bob", "online");

    let set = |status: &str, note: &str| {
        let out = b.voipctl(&["presence", "set", status, "--note", note]);
        assert!(out.status.success(), "{}", describe(&out));
    };
    set("away", "at lunch — back at 2 🍜");
    let p = wait_presence(&a, "bob", "away");
    assert_eq!(p["note"], "at lunch — back at 2 🍜");
    set("busy", "");
    wait_presence(&a, "bob", "busy");
    set("online", "");
    wait_presence(&a, "bob", "online");
    set("offline", "");
    wait_presence(&a, "bob", "offline");
    set("online", "");
    wait_presence(&a, "bob", "online");
    // A usage error, caught before the daemon is asked.
    let out = b.voipctl(&["presence", "set", "sleepy"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("possible values: online, away, busy, offline"),
        "{}",
        describe(&out)
    );

    // Bob stops: his last NOTIFY says so.
    bob.signal(libc::SIGTERM);
    bob.wait_exit();
    wait_presence(&a, "bob", "offline");
}

#[test]
fn strangers_are_refused_and_unknown_event_packages_answered_489() {
    let sb = Sandbox::new();
    sb.write_config(DIRECT);
    let _d = sb.start_daemon();
    let port = sb.sip_port();
    let mut sipp = Sipp::client(sb.path(), "subscribe_refused.xml", port);
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
}

/// SIPp as registrar and presence server: our status is published once registered, again
/// (conditionally, with the server's entity tag) when it changes, and withdrawn at shutdown.
#[test]
fn our_presence_is_published_changed_and_withdrawn() {
    let sb = Sandbox::new();
    let port = free_port();
    let mut sipp = Sipp::server(sb.path(), "publish_uas.xml", port, 2);
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[presence]\npublish = true\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{port}\"\nkeepalive_secs = 0\n"
    ));
    let mut d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    wait_until(
        || d.log().contains("presence published: online"),
        "the first PUBLISH to be answered",
    );
    let out = sb.voipctl(&["presence", "set", "away", "--note", "at lunch"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_until(
        || d.log().contains("presence published: away"),
        "the second PUBLISH to be answered",
    );
    assert!(sb.voipctl(&["shutdown"]).status.success());
    d.wait_exit();
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
}

/// A presence agent of another make (SIPp): its PIDF with an RPID activity and a note is
/// read, the short subscription it grants is refreshed in time, and its end is heard.
#[test]
fn a_presence_agent_is_followed_through_a_refresh_to_its_end() {
    let sb = Sandbox::new();
    let port = free_port();
    let mut sipp = Sipp::server(sb.path(), "presence_uas.xml", port, 1);
    sb.write_config(DIRECT);
    let _d = sb.start_daemon();
    let (mut watch, events) = watch_events(&sb);
    add_contact(&sb, "Dave", &format!("sip:dave@127.0.0.1:{port}"));
    let p = wait_presence(&sb, "dave", "away");
    assert_eq!(p["note"], "in a meeting until 3");
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
    wait_presence(&sb, "dave", "offline");
    let _ = watch.kill();
    let _ = watch.wait();
    let seen: Vec<String> = watched(&events)
        .iter()
        .filter_map(|e| e["kind"]["contact_changed"]["presence"]["status"].as_str())
        .map(str::to_string)
        .collect();
    assert_eq!(
        seen,
        ["unknown", "away", "offline"],
        "the refresh changed nothing"
    );
}

/// A watcher of another make (SIPp, one of our contacts) follows our presence: a too brief
/// subscription is refused 423, then it is told our status now and when it changes, and
/// its unsubscribe is answered with a last NOTIFY.
#[test]
fn a_contact_follows_our_presence_until_it_unsubscribes() {
    let sb = Sandbox::new();
    sb.write_config(DIRECT);
    let d = sb.start_daemon();
    add_contact(&sb, "Watcher", "watcher@127.0.0.1");
    let port = sb.sip_port();
    let mut sipp = Sipp::client(sb.path(), "subscribe_uac.xml", port);
    wait_until(
        || d.log().contains("follows our presence"),
        "the watcher's subscription",
    );
    let out = sb.voipctl(&["presence", "set", "away", "--note", "walking the dog"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
}

/// What the user set stays set: "appear offline" does not end with a reboot.
#[test]
fn our_presence_survives_a_restart() {
    let sb = Sandbox::new();
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n");
    let show = |sb: &Sandbox| {
        stdout(&sb.voipctl(&["presence", "show"]))
            .trim()
            .to_string()
    };
    let mut d = sb.start_daemon();
    assert_eq!(show(&sb), "presence: online");
    let out = sb.voipctl(&["presence", "set", "offline", "--note", "do not disturb"]);
    assert!(out.status.success(), "{}", describe(&out));
    let long = "x".repeat(300);
    let out = sb.voipctl(&["presence", "set", "away", "--note", &long]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(stderr(&out).contains("note:"), "{}", describe(&out));
    assert_eq!(
        show(&sb),
        "presence: offline (do not disturb)",
        "a refusal changes nothing"
    );
    assert!(sb.voipctl(&["shutdown"]).status.success());
    d.wait_exit();
    let _d = sb.start_daemon();
    wait_until(
        || show(&sb) == "presence: offline (do not disturb)",
        "the presence set before the restart",
    );
}

/// A follower that is no longer a contact is ended at once, and is not told our status.
#[test]
fn a_removed_contact_stops_following_our_presence_at_once() {
    let sb = Sandbox::new();
    sb.write_config(DIRECT);
    let d = sb.start_daemon();
    add_contact(&sb, "Watcher", "watcher@127.0.0.1");
    let mut sipp = Sipp::client(sb.path(), "subscribe_revoked.xml", sb.sip_port());
    wait_until(
        || d.log().contains("follows our presence"),
        "the watcher's subscription",
    );
    assert!(
        sb.voipctl(&["contacts", "remove", "Watcher"])
            .status
            .success()
    );
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
    assert!(d.log().contains("no longer allowed"), "{}", d.log());
}
