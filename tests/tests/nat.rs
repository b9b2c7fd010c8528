//! Calls across real NATs: voipd at home behind a router that masquerades (nftables in a
//! namespace of the test's own), Kamailio, coturn and a baresip on the provider network.
//! Kamailio here fixes nothing for NAT (NO_NAT_HELP), as many providers do not: voipd
//! must find and use its public address itself. Audio is proven both ways.

use std::time::Duration;

use voipd_tests::baresip::{Baresip, BaresipNet, BaresipOptions};
use voipd_tests::netns::{NatKind, World};
use voipd_tests::peers::{Coturn, Kamailio};
use voipd_tests::*;

const VOIPD_TONE: f64 = 440.0;
const BARESIP_TONE: f64 = 1000.0;

struct Net {
    world: World,
    kam: Kamailio,
    _turn: Coturn,
}

/// The provider network, one home of `kind`, Kamailio (no NAT help) and coturn.
fn provider(sb: &Sandbox, kind: NatKind) -> Net {
    let world = World::new(&[kind]);
    let kam = Kamailio::start_on(sb.path(), &world.provider, &["NO_NAT_HELP"]);
    let turn = Coturn::start_on(sb.path(), &world.provider);
    Net {
        world,
        kam,
        _turn: turn,
    }
}

/// voipd at home as alice, with `account` lines added to its account.
fn voipd_at_home(sb: &Sandbox, net: &Net, account: &str) -> Daemon {
    let registrar = net.world.provider.ip;
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:0.0.0.0:5060\"]\n\n[audio]\ninput = \"tone:{VOIPD_TONE}\"\noutput = \"file:{}\"\n\
         rtp_timeout_secs = 5\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@{registrar}\"\npassword = \"alicepw\"\ncodecs = [\"pcmu\"]\n\
         answer = {{ mode = \"auto\" }}\n{account}\n",
        sb.path().join("voipd-heard.wav").display(),
    ));
    let d = sb.start_daemon_on(&net.world.homes[0].host);
    wait_account_state(sb, "alice", "registered", PATIENCE);
    d
}

/// baresip as carol on the provider network, registered at Kamailio.
fn carol_on_provider(sb: &Sandbox, net: &Net) -> Baresip {
    Baresip::start(
        sb.path(),
        BaresipOptions {
            tone: BARESIP_TONE as u32,
            net: Some(BaresipNet {
                host: &net.world.provider,
                registrar: net.world.provider.ip,
                modules: &[],
                account: "",
            }),
            ..BaresipOptions::carol(net.kam.port)
        },
    )
}

fn talk_and_hang_up(sb: &Sandbox, b: &Baresip) {
    b.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(2500));
    let out = sb.voipctl(&["hangup"]);
    assert!(out.status.success(), "{}", describe(&out));
    b.wait_event("CALL_CLOSED");
    wait_until(|| calls(sb).is_empty(), "the call to end");
}

#[test]
fn behind_a_port_restricted_nat_voipd_registers_calls_and_is_called_with_stun() {
    let sb = Sandbox::new();
    let net = provider(&sb, NatKind::PortRestricted);
    let public = net.world.homes[0].public;
    let stun = format!("stun = \"stun:{}:3478\"", net.world.provider.ip);
    let _d = voipd_at_home(&sb, &net, &stun);
    // The registrar keeps the Contact as sent: it must carry the router's address.
    wait_until(
        || {
            net.kam
                .registers_from("alice")
                .last()
                .is_some_and(|l| l.contains(&format!("contact=<sip:alice@{public}:")))
        },
        "a REGISTER with the public address in its Contact",
    );
    let mut b = carol_on_provider(&sb, &net);

    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    talk_and_hang_up(&sb, &b);
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);

    // And the other way: only a Contact and SDP with the public address get it here.
    std::fs::remove_file(sb.path().join("voipd-heard.wav")).unwrap();
    b.clear_recordings();
    b.command("dial", &format!("sip:alice@{}", net.world.provider.ip));
    wait_until(
        || calls(&sb).iter().any(|c| c["state"] == "active"),
        "the call from carol to be answered",
    );
    talk_and_hang_up(&sb, &b);
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
}
