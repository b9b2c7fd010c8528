//! ICE's setup time per call across NATs (issue #15): voipd as alice behind one
//! port-restricted NAT calls voipd as bob behind another, through Kamailio, both with ICE
//! and the provider's STUN server (coturn), one call after another. For each call: the
//! caller's gathering (STUN across the NAT) before its offer, the answerer's before its
//! answer, the caller's checks from the answer to the nominated pair, and the whole, from
//! `voipctl dial` to the caller showing the nominated path. Prints median and p99.
//!
//! Run by bench/ice.sh (`cargo bench -p voipd-tests --bench ice_setup`, release binaries
//! built first); `VOIPD_BENCH_CALLS` calls (default 200). Needs root, kamailio, coturn.

use std::time::{Duration, Instant};

use voipd_tests::netns::{NatKind, World};
use voipd_tests::peers::{Coturn, Kamailio};
use voipd_tests::*;

fn voipd_as(user: &str, world: &World, home: usize) -> (Sandbox, Daemon) {
    let sb = Sandbox::new();
    let registrar = world.provider.ip;
    sb.write_config(&format!(
        "[log]\nlevel = \"warn\"\n[sip]\nlisten = [\"udp:0.0.0.0:5060\"]\n\n\
         [audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"{user}\"\naor = \"sip:{user}@{registrar}\"\npassword = \"{user}pw\"\n\
         codecs = [\"pcmu\"]\nanswer = {{ mode = \"auto\" }}\nstun = \"stun:{registrar}:3478\"\nice = true\n"
    ));
    let d = sb.start_daemon_on(&world.homes[home].host);
    wait_account_state(&sb, user, "registered", PATIENCE);
    (sb, d)
}

fn ms(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Median and 99th percentile of `xs`, ms.
fn summary(name: &str, xs: &mut [f64]) {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<44} median {:>6.1} ms   p99 {:>6.1} ms   max {:>6.1} ms",
        at(0.5),
        at(0.99),
        xs[xs.len() - 1]
    );
}

fn main() {
    let n: usize = std::env::var("VOIPD_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let world = World::new(&[NatKind::PortRestricted, NatKind::PortRestricted]);
    let dir = tempfile::tempdir().expect("temp dir");
    let _kam = Kamailio::start_on(dir.path(), &world.provider, &[]);
    let _stun = Coturn::start_on(dir.path(), &world.provider);
    let (alice, _a) = voipd_as("alice", &world, 0);
    let (bob, _b) = voipd_as("bob", &world, 1);
    let to = format!("sip:bob@{}", world.provider.ip);
    let (mut gather_a, mut gather_b, mut checks, mut whole) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut paths = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..n {
        let t0 = Instant::now();
        let out = alice.voipctl(&["dial", &to]);
        assert!(out.status.success(), "call {i}: {}", describe(&out));
        let caller = loop {
            let c = calls(&alice);
            if let Some(c) = c
                .first()
                .filter(|c| c["ice"] != "" && c["ice"] != "checking")
            {
                break c.clone();
            }
            assert!(t0.elapsed() < PATIENCE, "call {i}: no ICE path: {c:?}");
            std::thread::sleep(Duration::from_millis(2));
        };
        whole.push(t0.elapsed().as_secs_f64() * 1000.0);
        wait_until(
            || {
                calls(&bob)
                    .first()
                    .is_some_and(|c| c["ice"] != "" && c["ice"] != "checking")
            },
            "the answerer's ICE",
        );
        let answerer = calls(&bob)[0].clone();
        *paths
            .entry(caller["ice"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        gather_a.push(ms(&caller["ice_gathering_ms"]));
        gather_b.push(ms(&answerer["ice_gathering_ms"]));
        checks.push(ms(&caller["ice_checks_ms"]));
        let out = alice.voipctl(&["hangup"]);
        assert!(out.status.success(), "call {i}: {}", describe(&out));
        wait_until(
            || calls(&alice).is_empty() && calls(&bob).is_empty(),
            "the call to end on both sides",
        );
    }
    println!("{n} calls, each behind its own port-restricted NAT, ICE with STUN; paths: {paths:?}");
    summary("caller's gathering (STUN across the NAT)", &mut gather_a);
    summary("answerer's gathering", &mut gather_b);
    summary("caller's checks, answer to nominated pair", &mut checks);
    summary("dial to the caller's nominated path", &mut whole);
}
