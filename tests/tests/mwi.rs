//! Message waiting (RFC 3842): voipd subscribes to its account's message-summary through
//! a Kamailio that challenges the SUBSCRIBE and hands it to a voicemail server (SIPp),
//! which notifies 2 new → 1 new 1 old → 0 new 1 old and then a malformed body; a
//! registrar's unsolicited NOTIFY counts too. The counts are read through voipctl, a
//! Python gRPC client and D-Bus (gdbus monitor).

use std::process::Command;

use serde_json::Value;
use voipd_tests::dbus::{Bus, ROOT};
use voipd_tests::peers::{Kamailio, Sipp, free_port};
use voipd_tests::*;

const ACCOUNT: &str = "org.voipd.Account1";

/// (new, old) as `voipctl accounts` gives them.
fn counts(sb: &Sandbox) -> (u64, u64) {
    let a = account(sb, "alice");
    (
        a["voicemail_new"].as_u64().unwrap_or(0),
        a["voicemail_old"].as_u64().unwrap_or(0),
    )
}

fn wait_counts(sb: &Sandbox, want: (u64, u64)) {
    wait_until(|| counts(sb) == want, &format!("voicemail counts {want:?}"));
}

/// The account as a Python grpcio client reads it.
fn grpc_account(sb: &Sandbox) -> Value {
    let out = Command::new(python())
        .arg(py_script("grpc_client.py"))
        .args([
            sb.socket().to_string_lossy().as_ref(),
            "voipd.v1.Accounts",
            "Get",
            r#"{"id": "alice"}"#,
        ])
        .output()
        .expect("run python");
    assert!(out.status.success(), "python: {}", describe(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON from the client");
    v["response"].clone()
}

#[test]
fn counts_follow_the_voicemail_servers_notifies_and_unsolicited_ones() {
    let sb = Sandbox::new();
    let mwi_port = free_port();
    let mut server = Sipp::server(sb.path(), "mwi_server.xml", mwi_port, 1);
    let kam = Kamailio::start(sb.path(), &[&format!("MWI_PORT={mwi_port}")]);
    let bus = Bus::start(sb.path());
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{0}\"\npassword = \"alicepw\"\n\
         mwi = true\nvoicemail_uri = \"sip:*98@127.0.0.1:{0}\"\n",
        kam.port
    ));
    let mut d = sb.spawn_daemon(&[], &bus.env());
    sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    bus.wait_for_voipd();
    let monitor = bus.monitor();
    let acct = format!("{ROOT}/account/alice");

    wait_counts(&sb, (2, 0));
    let a = account(&sb, "alice");
    assert_eq!(
        (
            a["messages_waiting"].as_bool(),
            a["voicemail_urgent"].as_u64()
        ),
        (Some(true), Some(1)),
        "{a}"
    );
    let o = sb.voipctl(&["accounts"]);
    assert!(
        stdout(&o).contains("voicemail 2 new, 0 old (1 urgent)"),
        "{}",
        describe(&o)
    );
    // The SUBSCRIBE was challenged like every request, and answered.
    assert!(
        kam.challenged_then_took("SUBSCRIBE", "alice"),
        "{:?}",
        kam.call_auth("SUBSCRIBE", "alice")
    );

    wait_counts(&sb, (1, 1));
    let g = grpc_account(&sb);
    assert_eq!(
        (g["voicemail_new"].as_u64(), g["voicemail_old"].as_u64()),
        (Some(1), Some(1)),
        "{g}"
    );
    assert_eq!(bus.property(&acct, ACCOUNT, "VoicemailNew"), "u 1");
    assert_eq!(bus.property(&acct, ACCOUNT, "VoicemailOld"), "u 1");

    wait_counts(&sb, (0, 1));
    // The malformed NOTIFY is answered 400 (SIPp checks) and changes no count; the server
    // ends the subscription.
    assert_eq!(server.wait(PATIENCE), 0, "{}", server.output());
    assert_eq!(counts(&sb), (0, 1));
    assert_eq!(account(&sb, "alice")["messages_waiting"], false);
    let seen = monitor.text();
    for n in [2, 1, 0] {
        assert!(
            seen.contains(&format!("'VoicemailNew': <uint32 {n}>")),
            "{n}: {seen}"
        );
    }

    // The registrar's own NOTIFY, without a subscription: counted; a malformed one: 400.
    let port = sb.sip_port();
    let mut unsolicited = Sipp::client(sb.path(), "mwi_unsolicited.xml", port);
    assert_eq!(unsolicited.wait(PATIENCE), 0, "{}", unsolicited.output());
    wait_counts(&sb, (3, 1));

    // `voipctl dial voicemail` calls the account's voicemail_uri.
    let o = sb.voipctl(&["--json", "dial", "voicemail"]);
    assert!(o.status.success(), "{}", describe(&o));
    let call: Value = serde_json::from_str(&stdout(&o)).expect("call JSON");
    assert!(
        call["remote_uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("sip:*98@127.0.0.1")),
        "{call}"
    );
    let _ = sb.voipctl(&["hangup"]);
}

#[test]
fn dial_voicemail_without_a_voicemail_uri_says_what_to_set() {
    let sb = Sandbox::new();
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[[account]]\nid = \"home\"\n\
         aor = \"sip:alice@192.0.2.1\"\npassword = \"x\"\n",
    );
    let _d = sb.start_daemon();
    let o = sb.voipctl(&["dial", "voicemail"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(stderr(&o).contains("voicemail_uri"), "{}", describe(&o));
    assert!(calls(&sb).is_empty());
}
