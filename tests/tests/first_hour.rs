//! What a new user meets in the first hour, as a script sees it: `dial --wait` and exit
//! codes by one rule, a call to a closed port ending at once (ICMP, TCP reset), one id
//! from `dial` into the history, contacts' ids and names, messages written for people,
//! no sound card said plainly, presence that cannot be known, and the port fallback.

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use serde_json::Value;
use voipd_tests::dns::Dnsmasq;
use voipd_tests::peers::{Sipp, free_port};
use voipd_tests::*;

fn calls(sb: &Sandbox) -> Vec<Value> {
    let out = sb.voipctl(&["--json", "calls"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["calls"].as_array().cloned().unwrap_or_default()
}

fn history(sb: &Sandbox) -> Vec<Value> {
    let out = sb.voipctl(&["--json", "history", "--peek"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["entries"].as_array().cloned().unwrap_or_default()
}

/// voipd on loopback ports of its own, with no account: calls go where they are sent.
fn start(sb: &Sandbox, extra_sip: &str) -> Daemon {
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n{extra_sip}\n\
         [audio]\ninput = \"tone:440\"\noutput = \"null\"\n"
    ));
    sb.start_daemon()
}

#[test]
fn the_readme_script_waits_for_the_answer_then_sends_digits_and_hangs_up() {
    let sb = Sandbox::new();
    let _d = start(&sb, "");
    let port = free_port();
    let mut sipp = Sipp::server(sb.path(), "uas_plain.xml", port, 1);
    let out = sb.script(&format!(
        "voipctl dial --wait sip:door@127.0.0.1:{port} && voipctl dtmf '#9' && voipctl hangup"
    ));
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains("active"), "{text}");
    assert!(text.contains("sending DTMF #9"), "{text}");
    assert!(text.contains("hanging up"), "{text}");
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
}

#[test]
fn dial_wait_exits_1_with_the_code_when_the_call_fails() {
    let sb = Sandbox::new();
    let d = start(&sb, "");
    let port = free_port();
    let mut sipp = Sipp::server(sb.path(), "uas_503.xml", port, 1);
    let out = sb.voipctl(&["dial", "--wait", &format!("sip:busy@127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("ended: 503"), "{}", describe(&out));
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());

    // Nobody on the port: the ICMP port unreachable ends the call, not Timer B's 32 s
    // (which would end it as 408 "no answer").
    let closed = free_port();
    let out = sb.voipctl(&["dial", "--wait", &format!("sip:nobody@127.0.0.1:{closed}")]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("ended: 503") && stderr(&out).contains("port unreachable"),
        "{}\n{}",
        describe(&out),
        d.log()
    );
    // Over TCP the connection is refused (a reset) at once.
    let out = sb.voipctl(&[
        "dial",
        "--wait",
        &format!("sip:nobody@127.0.0.1:{closed};transport=tcp"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("ended: 503") && stderr(&out).contains("refused"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_wait_that_times_out_hangs_up_and_an_ending_call_says_so() {
    let sb = Sandbox::new();
    // T1 of 200 ms: the CANCEL nobody ends with 487 is given up after 12.8 s, time
    // enough to look at the call in between even on a loaded machine.
    let d = start(&sb, "t1_ms = 200");
    let port = free_port();
    let mut sipp = Sipp::server(sb.path(), "uas_ignore_cancel.xml", port, 1);
    let out = sb.voipctl(&[
        "dial",
        "--wait",
        "--timeout",
        "1",
        &format!("sip:deaf@127.0.0.1:{port}"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("after 1 s; hung up"),
        "{}",
        describe(&out)
    );
    // The CANCEL is out, its 487 never comes: the call is ending, not ringing or active.
    let now = calls(&sb);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["state"], "ending", "{now:?}");
    let table = stdout(&sb.voipctl(&["calls"]));
    assert!(table.contains("ending"), "{table}");
    let again = sb.voipctl(&["hangup"]);
    assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
    assert!(
        stderr(&again).contains("already ending"),
        "{}",
        describe(&again)
    );
    wait_until(|| calls(&sb).is_empty(), "the call to end");
    assert!(d.log().contains("call ended: 408 cancelled"), "{}", d.log());
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
}

#[test]
fn answer_wait_returns_once_the_call_is_established() {
    let sb = Sandbox::new();
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"tone:440\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\nenabled = false\n\
         codecs = [\"pcmu\"]\nanswer = { mode = \"manual\" }\n",
    );
    let _d = sb.start_daemon();
    // The caller holds and resumes once it is answered, then hangs up.
    let mut sipp = Sipp::client(sb.path(), "call_hold.xml", sb.sip_port());
    wait_until(
        || calls(&sb).first().is_some_and(|c| c["state"] == "ringing"),
        "the call to ring",
    );
    let out = sb.voipctl(&["answer", "--wait", "--timeout", "10"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.contains("answering") && text.contains(": active"),
        "{text}"
    );
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
}

#[test]
fn exit_codes_follow_one_rule() {
    let sb = Sandbox::new();
    let _d = start(&sb, "");
    let code = |args: &[&str]| {
        let out = sb.voipctl(args);
        (out.status.code(), stderr(&out))
    };
    // Usage errors: 2.
    let (c, e) = code(&["presence", "set", "sleeping"]);
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("online, away, busy, offline"), "{e}");
    let (c, e) = code(&["dial", "!!!garbage###"]);
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("WHOM: \"!!!garbage###\" is not valid"), "{e}");
    let (c, e) = code(&["dial", "--timeout", "5", "sip:a@127.0.0.1"]);
    assert_eq!(c, Some(2), "--timeout needs --wait: {e}");
    // Nothing to act on: 1, the same for no call and for a call that is not there.
    let (c, e) = code(&["hangup"]);
    assert_eq!(c, Some(1), "{e}");
    assert!(e.contains("no call to hang up"), "{e}");
    let (c, e) = code(&["hangup", "7"]);
    assert_eq!(c, Some(1), "{e}");
    assert!(e.contains("no call \"7\""), "{e}");
    // `call` is `dial`, as other phones name it; the argument is WHOM, as the README says.
    let out = sb.voipctl(&["call", "--help"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout(&out).contains("<WHOM>"), "{}", stdout(&out));
    assert!(stdout(&out).contains("--wait"), "{}", stdout(&out));
}

#[test]
fn one_id_follows_a_call_from_dial_into_the_history_and_is_not_given_again() {
    let sb = Sandbox::new();
    let mut d = start(&sb, "");
    let closed = free_port();
    let dial = |sb: &Sandbox| {
        let out = sb.voipctl(&["--json", "dial", &format!("sip:x@127.0.0.1:{closed}")]);
        assert!(out.status.success(), "{}", describe(&out));
        let c: Value = serde_json::from_str(&stdout(&out)).unwrap();
        c["id"].as_u64().unwrap()
    };
    let first = dial(&sb);
    wait_until(|| !history(&sb).is_empty(), "the call in the history");
    assert_eq!(history(&sb)[0]["id"].as_i64(), Some(first as i64));
    let table = stdout(&sb.voipctl(&["history", "--peek"]));
    assert!(table.starts_with("ID"), "{table}");

    d.signal(libc::SIGTERM);
    d.wait_exit();
    let _d = sb.start_daemon();
    let second = dial(&sb);
    assert!(second > first, "after a restart: {second} after {first}");
    wait_until(|| history(&sb).len() == 2, "the second call in the history");
    assert_eq!(history(&sb)[0]["id"].as_i64(), Some(second as i64));
}

#[test]
fn contacts_are_named_and_dialled_as_people_expect() {
    let sb = Sandbox::new();
    let d = start(&sb, "");
    let closed = free_port();
    let add = |name: &str, addresses: &[String]| {
        let mut args = vec![
            "--json".to_string(),
            "contacts".into(),
            "add".into(),
            name.into(),
        ];
        for a in addresses {
            args.extend(["-a".to_string(), a.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb.voipctl(&args);
        assert!(out.status.success(), "{}", describe(&out));
        let c: Value = serde_json::from_str(&stdout(&out)).unwrap();
        c["id"].as_i64().unwrap()
    };
    let sky = add("Sky Blue", &["+44 1865 270000".into()]);
    add("Skyler", &[format!("sky@127.0.0.1:{closed}")]);
    // A number first: without an account it cannot be called, its SIP address can.
    add("Bob", &["555123".into(), format!("bob@127.0.0.1:{closed}")]);
    let nums = add("Numbers Only", &["555".into()]);

    // A name that fits two: the advice names what works (an address), here and for
    // message list --with alike.
    for args in [&["dial", "sky"][..], &["message", "list", "--with", "sky"]] {
        let out = sb.voipctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        let e = stderr(&out);
        assert!(
            e.contains("matches 2 contacts")
                && e.contains("Sky Blue (+441865270000)")
                && e.contains(&format!("Skyler (sip:sky@127.0.0.1:{closed})"))
                && e.contains("or the address"),
            "{args:?}: {e}"
        );
    }
    let out = sb.voipctl(&["dial", &format!("sky@127.0.0.1:{closed}")]);
    assert!(out.status.success(), "the advice works: {}", describe(&out));

    let out = sb.voipctl(&["dial", "bob"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains(&format!("to Bob <sip:bob@127.0.0.1:{closed}>")),
        "which contact and which address: {}",
        stdout(&out)
    );
    assert!(
        d.log()
            .contains(&format!("calling Bob at sip:bob@127.0.0.1:{closed}"))
    );
    // Not a usage error: the command is fine, an account is what is missing.
    let out = sb.voipctl(&["dial", "numbers"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("contact Numbers Only")
            && stderr(&out).contains("\"555\" is a number")
            && stderr(&out).contains("configure an account"),
        "{}",
        describe(&out)
    );

    // Ids are not given twice: not the removed newest one, not after a restart.
    assert!(
        sb.voipctl(&["contacts", "remove", &nums.to_string()])
            .status
            .success()
    );
    let next = add("Zed", &["1".into()]);
    assert!(next > nums, "{next} after removing {nums}");
    assert!(next > sky);

    let file = sb.path().join("out.vcf");
    let out = sb.voipctl(&["contacts", "export", "-o", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("wrote 4 contacts to {} (vCard 4.0)", file.display())
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written.matches("BEGIN:VCARD").count(), 4, "{written}");
}

#[test]
fn without_a_sound_card_every_call_says_its_audio_goes_nowhere() {
    let sb = Sandbox::new();
    // The default devices, as the embedded configuration has them.
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n");
    let d = sb.start_daemon();
    let out = sb.voipctl(&["dial", "echo"]);
    assert!(out.status.success(), "{}", describe(&out));
    // CI's machine has no card; one with a card (or an ALSA configuration that makes a
    // device of something) is only held to keeping ALSA's lines out of the log.
    let cards = std::fs::read_to_string("/proc/asound/cards").unwrap_or_default();
    let no_card = (cards.trim().is_empty() || cards.contains("no soundcards"))
        && !std::path::Path::new("/etc/asound.conf").exists()
        && !std::fs::read_dir("/etc/alsa/conf.d").is_ok_and(|mut d| d.next().is_some());
    if !no_card {
        assert!(sb.voipctl(&["hangup"]).status.success());
        wait_until(|| calls(&sb).is_empty(), "the sound test to end");
        assert!(!d.log().contains("ALSA lib"), "{}", d.log());
        return;
    }
    assert!(
        stderr(&out).contains("no sound device (this machine has no sound card)")
            && stderr(&out).contains("goes nowhere"),
        "{}",
        describe(&out)
    );
    let table = stdout(&sb.voipctl(&["calls"]));
    assert!(
        table.contains("no sound") && table.contains("goes nowhere"),
        "{table}"
    );
    assert!(sb.voipctl(&["hangup"]).status.success());
    wait_until(|| calls(&sb).is_empty(), "the sound test to end");
    let log = d.log();
    assert!(
        log.contains("no sound input or output (this machine has no sound card)"),
        "{log}"
    );
    assert!(
        !log.contains("ALSA lib"),
        "ALSA's own lines in the log: {log}"
    );
    assert!(!log.contains("disconnected"), "{log}");
    // The sound test is not kept in the history.
    assert!(history(&sb).is_empty(), "{:?}", history(&sb));
}

#[test]
fn presence_that_cannot_be_learnt_is_unknown_with_the_reason() {
    let sb = Sandbox::new();
    // A DNS server that knows nothing: the contact's domain does not resolve.
    let dns = Dnsmasq::start(sb.path(), &[]);
    let _d = start(&sb, &format!("dns = [\"{}\"]", dns.addr));
    let out = sb.voipctl(&["contacts", "add", "Far", "-a", "far@nowhere.test"]);
    assert!(out.status.success(), "{}", describe(&out));
    let presence = || {
        let out = sb.voipctl(&["--json", "contacts", "show", "Far"]);
        let c: Value = serde_json::from_str(&stdout(&out)).unwrap();
        c["presence"].clone()
    };
    wait_until(
        || {
            let p = presence();
            p["status"] == "unknown"
                && p["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("nowhere.test"))
        },
        "presence unknown, saying why",
    );
    let shown = stdout(&sb.voipctl(&["contacts", "list"]));
    assert!(
        shown.contains("unknown (") && !shown.contains("offline"),
        "{shown}"
    );
}

#[test]
fn when_5060_is_taken_udp_and_tcp_move_to_one_free_port() {
    let sb = Sandbox::new();
    // Whoever holds 5060 (this test, or anything else), the embedded default must move
    // both transports together.
    let _tcp = TcpListener::bind("0.0.0.0:5060");
    let _udp = UdpSocket::bind("0.0.0.0:5060");
    let d = sb.start_daemon();
    let out = sb.voipctl(&["--json", "status"]);
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ports: Vec<(String, u16)> = s["listening"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| {
            let (proto, rest) = l.as_str()?.split_once(':')?;
            Some((proto.to_string(), rest.rsplit(':').next()?.parse().ok()?))
        })
        .filter(|(p, _)| p == "udp" || p == "tcp")
        .collect();
    assert_eq!(ports.len(), 2, "{s}");
    assert_eq!(ports[0].1, ports[1].1, "one port for both: {ports:?}");
    assert_ne!(ports[0].1, 5060, "{ports:?}");
    assert!(d.log().contains("is in use"), "{}", d.log());
}
