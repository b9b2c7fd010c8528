//! A SIPp OPTIONS flood at a steady rate: every request answered 200, over UDP and TCP.
//! (Throughput figures come from bench/options-flood.sh; this proves behaviour.)

use std::time::Duration;

use serde_json::Value;
use voipd_tests::peers::{Sipp, free_port, sipp_scenario, sipp_totals};
use voipd_tests::*;

fn flood(sb: &Sandbox, target: &str, transport: &str, rate: u32, count: u32) -> (u64, u64, i32) {
    let stats = sb.path().join(format!("stats-{transport}.csv"));
    let args: Vec<String> = [
        target,
        "-sf",
        &sipp_scenario("options_uac.xml").display().to_string(),
        "-i",
        "127.0.0.1",
        "-p",
        &free_port().to_string(),
        "-t",
        transport,
        "-s",
        "voipd",
        "-r",
        &rate.to_string(),
        "-m",
        &count.to_string(),
        "-l",
        "1000",
        "-nostdin",
        "-default_behaviors",
        "all,-bye",
        "-timeout",
        "60s",
        "-timeout_error",
        "-trace_stat",
        "-stf",
        &stats.display().to_string(),
        "-fd",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut sipp = Sipp::spawn(sb.path(), &format!("options-{transport}"), &args);
    let code = sipp.wait(Duration::from_secs(90));
    let (ok, failed) = sipp_totals(&stats);
    (ok, failed, code)
}

#[test]
fn every_options_request_is_answered() {
    let sb = Sandbox::new();
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n");
    let d = sb.start_daemon();
    let port = sb.sip_port();
    let target = format!("127.0.0.1:{port}");

    for (transport, rate, count) in [("u1", 1000, 5000), ("t1", 500, 1500)] {
        let (ok, failed, code) = flood(&sb, &target, transport, rate, count);
        assert_eq!(
            (ok, failed),
            (u64::from(count), 0),
            "{transport}: SIPp exit {code}"
        );
        assert_eq!(code, 0);
    }
    let out = sb.voipctl(&["status"]);
    assert!(out.status.success(), "still up: {}", describe(&out));
    println!("RSS after the floods: {} KiB", d.rss_kib());
}

#[test]
fn answers_over_ipv6() {
    let sb = Sandbox::new();
    sb.write_config("[sip]\nlisten = [\"udp:[::1]:0\", \"tcp:[::1]:0\"]\n");
    let _d = sb.start_daemon();
    let out = sb.voipctl(&["--json", "status"]);
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let udp = s["listening"][1].as_str().unwrap();
    assert!(udp.starts_with("udp:[::1]:"), "{s}");
    let addr: std::net::SocketAddr = udp.trim_start_matches("udp:").parse().unwrap();
    let sock = std::net::UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let req = format!(
        "OPTIONS sip:voipd@[::1] SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKv6;rport\r\nFrom: <sip:t@[::1]>;tag=1\r\nTo: <sip:voipd@[::1]>\r\nCall-ID: v6@t\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(req.as_bytes(), addr).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 200 OK"), "{answer}");
    assert!(answer.contains("Allow: "), "{answer}");
}
