//! Server location (RFC 3263) against a real DNS server (dnsmasq): accounts and calls
//! that name only a domain reach its servers through NAPTR and SRV, move to the next
//! server when one is gone or overloaded, and a name without SRV falls back to A.

use std::time::Duration;

use serde_json::Value;
use voipd_tests::dns::Dnsmasq;
use voipd_tests::peers::{Kamailio, Sipp, free_port};
use voipd_tests::*;

fn config(dns: &Dnsmasq, account: &str) -> String {
    format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\nt1_ms = 50\ndns = [\"{}\"]\n\n[audio]\ninput = \"tone:440\"\noutput = \"null\"\n\n{account}",
        dns.addr
    )
}

fn calls(sb: &Sandbox) -> Vec<Value> {
    let out = sb.voipctl(&["--json", "calls"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
    v["calls"].as_array().cloned().unwrap_or_default()
}

#[test]
fn an_account_with_only_a_domain_registers_by_naptr_and_srv_and_fails_over() {
    let sb = Sandbox::new();
    let k1 = sb.path().join("k1");
    let k2 = sb.path().join("k2");
    std::fs::create_dir_all(&k1).unwrap();
    std::fs::create_dir_all(&k2).unwrap();
    let mut first = Kamailio::start(&k1, &[]);
    let second = Kamailio::start(&k2, &[]);
    let dns = Dnsmasq::start(
        sb.path(),
        &[
            "--naptr-record=voipd.test,10,50,s,SIP+D2U,,_sip._udp.voipd.test".into(),
            format!(
                "--srv-host=_sip._udp.voipd.test,kam1.voipd.test,{},10,50",
                first.port
            ),
            format!(
                "--srv-host=_sip._udp.voipd.test,kam2.voipd.test,{},20,50",
                second.port
            ),
            "--host-record=kam1.voipd.test,127.0.0.1".into(),
            "--host-record=kam2.voipd.test,127.0.0.1".into(),
        ],
    );
    sb.write_config(&config(
        &dns,
        "[[account]]\nid = \"alice\"\naor = \"sip:alice@voipd.test\"\npassword = \"alicepw\"\nkeepalive_secs = 1\n",
    ));
    let d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    assert!(first.saved("alice") >= 1, "{}", first.log_text());
    assert_eq!(second.saved("alice"), 0, "the higher priority first");
    let log = dns.log_text();
    assert!(log.contains("query[NAPTR] voipd.test"), "{log}");
    assert!(log.contains("query[SRV] _sip._udp.voipd.test"), "{log}");

    // The first server goes away: the keepalive notices, one REGISTER to it fails, and the
    // next goes to the second server.
    first.stop();
    // A failed keepalive and a failed REGISTER (64·T1 each), then the backoff: generous,
    // as CI shares two cores.
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while second.saved("alice") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no registration at the second server:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    assert_eq!(
        d.log().matches("registration failed").count(),
        1,
        "one retry: {}",
        d.log()
    );
}

#[test]
fn a_call_fails_over_on_503_and_a_name_without_srv_falls_back_to_a() {
    let sb = Sandbox::new();
    let (p1, p2) = (free_port(), free_port());
    let server = |name, scenario, ip, port| Sipp::server_at(sb.path(), name, scenario, ip, port, 1);
    let mut busy = server("busy", "uas_503.xml", "127.0.0.1", p1);
    let mut ok = server("ok", "uas_plain.xml", "127.0.0.1", p2);
    // RFC 3263's last resort is port 5060 on the name's address: a loopback address of
    // its own, so that nothing else on the machine is in the way.
    let mut plain = server("plain", "uas_plain.xml", "127.0.0.66", 5060);
    let dns = Dnsmasq::start(
        sb.path(),
        &[
            format!("--srv-host=_sip._udp.calls.test,s1.calls.test,{p1},10,50"),
            format!("--srv-host=_sip._udp.calls.test,s2.calls.test,{p2},20,50"),
            "--host-record=s1.calls.test,127.0.0.1".into(),
            "--host-record=s2.calls.test,127.0.0.1".into(),
            "--host-record=plain.test,127.0.0.66".into(),
        ],
    );
    sb.write_config(&config(&dns, ""));
    let d = sb.start_daemon();

    let out = sb.voipctl(&["dial", "sip:bob@calls.test"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_until(
        || calls(&sb).first().is_some_and(|c| c["state"] == "active"),
        "the answer from the second server",
    );
    assert!(d.log().contains("503 Service Unavailable"), "{}", d.log());
    sb.voipctl(&["hangup"]);
    assert_eq!(busy.wait(Duration::from_secs(20)), 0, "{}", busy.output());
    assert_eq!(ok.wait(Duration::from_secs(20)), 0, "{}", ok.output());
    wait_until(|| calls(&sb).is_empty(), "the end");

    let out = sb.voipctl(&["dial", "sip:bob@plain.test"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_until(
        || calls(&sb).first().is_some_and(|c| c["state"] == "active"),
        "the answer at plain.test:5060",
    );
    sb.voipctl(&["hangup"]);
    assert_eq!(plain.wait(Duration::from_secs(20)), 0, "{}", plain.output());
    let log = dns.log_text();
    assert!(log.contains("query[SRV] _sip._udp.plain.test"), "{log}");
    assert!(log.contains("query[A] plain.test"), "{log}");
}
