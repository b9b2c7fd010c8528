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
    let out = sb.voipctl(&["--json", "status"]);
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let port = s["listening"][1]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
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
