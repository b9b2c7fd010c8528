//! Calls across real NATs: voipd at home behind a router that masquerades (nftables in a
//! namespace of the test's own), Kamailio, coturn and a baresip on the provider network.
//! Kamailio here fixes nothing for NAT (NO_NAT_HELP), as many providers do not: voipd
//! must find and use its public address itself. Audio is proven both ways.

use std::time::Duration;

use voipd_tests::baresip::{Baresip, BaresipNet, BaresipOptions};
use voipd_tests::netns::{Host, NatKind, World};
use voipd_tests::peers::{Coturn, Kamailio};
use voipd_tests::*;

const VOIPD_TONE: f64 = 440.0;
const BARESIP_TONE: f64 = 1000.0;
/// voipd's RTP ports at home: two calls' worth, known to the tests that spray them.
const RTP_LO: u16 = 10000;

struct Net {
    world: World,
    kam: Kamailio,
    turn: Coturn,
}

/// The provider network, one home of `kind`, Kamailio (no NAT help) and coturn.
fn provider(sb: &Sandbox, kind: NatKind) -> Net {
    provider_with(sb, &[kind], &["NO_NAT_HELP"])
}

/// The provider network, a home per entry of `homes`, Kamailio with `defines`, coturn.
fn provider_with(sb: &Sandbox, homes: &[NatKind], defines: &[&str]) -> Net {
    let world = World::new(homes);
    let kam = Kamailio::start_on(sb.path(), &world.provider, defines);
    let turn = Coturn::start_on(sb.path(), &world.provider);
    Net { world, kam, turn }
}

/// Two homes behind port-restricted NATs, a provider that fixes SIP for NAT (baresip needs
/// it to be called) and nothing of the media; and its STUN server's URI.
fn two_homes(sb: &Sandbox) -> (Net, String) {
    let net = provider_with(sb, &[NatKind::PortRestricted, NatKind::PortRestricted], &[]);
    let stun = format!("stun:{}:3478", net.world.provider.ip);
    (net, stun)
}

/// voipd at home as alice, with `account` lines added to its account.
fn voipd_at_home(sb: &Sandbox, net: &Net, account: &str) -> Daemon {
    let registrar = net.world.provider.ip;
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:0.0.0.0:5060\"]\n\n[audio]\ninput = \"tone:{VOIPD_TONE}\"\noutput = \"file:{}\"\n\
         rtp_ports = \"{RTP_LO}-{}\"\nrtp_timeout_secs = 5\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@{registrar}\"\npassword = \"alicepw\"\ncodecs = [\"pcmu\"]\n\
         answer = {{ mode = \"auto\" }}\n{account}\n",
        sb.path().join("voipd-heard.wav").display(),
        RTP_LO + 3,
    ));
    let d = sb.start_daemon_on(&net.world.homes[0].host);
    wait_account_state(sb, "alice", "registered", PATIENCE);
    d
}

/// baresip as carol on the provider network, registered at Kamailio.
fn carol_on_provider(sb: &Sandbox, net: &Net) -> Baresip {
    carol_on(sb, net, &net.world.provider, &[], "")
}

/// baresip as carol on `host` with its ice module, gathering from the provider's STUN
/// server.
fn carol_with_ice(sb: &Sandbox, net: &Net, host: &Host) -> Baresip {
    let stun = format!(
        ";medianat=ice;stunserver=stun:{}:3478",
        net.world.provider.ip
    );
    carol_on(sb, net, host, &["ice.so"], &stun)
}

/// baresip as carol on `host`, with more `modules` and `account` parameters.
fn carol_on(sb: &Sandbox, net: &Net, host: &Host, modules: &[&str], account: &str) -> Baresip {
    Baresip::start(
        sb.path(),
        BaresipOptions {
            tone: BARESIP_TONE as u32,
            net: Some(BaresipNet {
                host,
                registrar: net.world.provider.ip,
                modules,
                account,
            }),
            ..BaresipOptions::carol(net.kam.port)
        },
    )
}

/// baresip (carol) calls alice through Kamailio and voipd answers; earlier calls'
/// recordings are put aside, so that this call's are the ones read.
fn carol_calls_alice(sb: &Sandbox, net: &Net, b: &mut Baresip) {
    let _ = std::fs::remove_file(sb.path().join("voipd-heard.wav"));
    b.clear_recordings();
    b.command("dial", &format!("sip:alice@{}", net.world.provider.ip));
    let deadline = std::time::Instant::now() + PATIENCE;
    while !calls(sb).iter().any(|c| c["state"] == "active") {
        assert!(
            std::time::Instant::now() < deadline,
            "the call from carol was not answered within {PATIENCE:?}; baresip:\n{}\nKamailio:\n{}",
            b.log(),
            net.kam.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// As [`talk_and_hang_up`], the talk counted from when the far side's media first comes
/// (baresip's ICE sends nothing until it has checked every component, which takes it
/// seconds).
fn talk_once_media_flows(sb: &Sandbox, b: &Baresip) {
    wait_until(
        || {
            calls(sb)
                .first()
                .is_some_and(|c| c["media"]["packets_received"].as_u64().unwrap_or(0) > 0)
        },
        "the far side's media",
    );
    talk_and_hang_up(sb, b);
}

/// The call shows ICE's nominated pair going over `path`, and how long gathering took (the
/// servers answered: well under its 2 s limit, and it may take under a millisecond here)
/// and the checks.
fn ice_nominates(sb: &Sandbox, path: &str) {
    wait_until(
        || {
            calls(sb)
                .first()
                .is_some_and(|c| c["ice"] != "" && c["ice"] != "checking")
        },
        "ICE to nominate a pair",
    );
    let c = calls(sb)[0].clone();
    assert_eq!(c["ice"], path, "{c}");
    assert!(c["ice_gathering_ms"].as_u64().unwrap() < 1500, "{c}");
    assert!(c["ice_checks_ms"].as_u64().unwrap() > 0, "{c}");
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
    carol_calls_alice(&sb, &net, &mut b);
    talk_and_hang_up(&sb, &b);
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
}

/// The last call ended by the far side's BYE (not by the RTP timeout, say).
fn ended_by_the_far_side(sb: &Sandbox, d: &Daemon) {
    let out = sb.voipctl(&["--json", "history"]);
    assert!(out.status.success(), "{}", describe(&out));
    let history: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(
        history["entries"][0]["end_reason"],
        "the other side hung up",
        "{history}\n{}",
        d.log()
    );
}

/// The 100 ms blocks of `freq` in a recording.
fn tone_in(path: &std::path::Path, freq: f64, other: f64) -> usize {
    let (x, rate) = voipd_tests::audio::read_wav(path);
    voipd_tests::audio::tone_blocks(&x, rate, freq, &[other, 1500.0]).0
}

#[test]
fn a_router_that_forgets_its_mappings_mid_call_loses_neither_registration_nor_call() {
    let sb = Sandbox::new();
    let net = provider(&sb, NatKind::PortRestricted);
    let home = &net.world.homes[0];
    let d = voipd_at_home(
        &sb,
        &net,
        &format!(
            "stun = \"stun:{}:3478\"\nkeepalive_secs = 2",
            net.world.provider.ip
        ),
    );
    let mut b = carol_on_provider(&sb, &net);
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    b.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_secs(2));
    // The router reboots: every mapping is gone, and new ones get other ports.
    home.remap_ports(30000, 39999);
    home.flush();
    wait_until(
        || {
            net.kam
                .registers_from("alice")
                .last()
                .is_some_and(|l| l.contains(&format!("contact=<sip:alice@{}:3", home.public)))
        },
        "a REGISTER with the new public port",
    );
    // The call goes on: 2 s before and 4 s after make at least 5 s of tone each way,
    // which the 2 s before alone cannot.
    std::thread::sleep(Duration::from_secs(4));
    // carol hangs up: her BYE finds voipd at the Contact its re-INVITE gave, through the
    // new mapping.
    b.command("hangup", "");
    b.wait_event("CALL_CLOSED");
    wait_until(|| calls(&sb).is_empty(), "carol's BYE to end the call");
    ended_by_the_far_side(&sb, &d);
    let heard = tone_in(&sb.path().join("voipd-heard.wav"), BARESIP_TONE, VOIPD_TONE);
    let theirs = b.received_recordings();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    let they_heard = tone_in(&theirs[0], VOIPD_TONE, BARESIP_TONE);
    assert!(
        heard >= 50 && they_heard >= 50,
        "tone after the flush: voipd heard {heard} blocks, baresip {they_heard}"
    );
    // baresip does not follow a new source port: the new address came by re-INVITE.
    assert!(d.log().contains("outside now; re-INVITE"), "{}", d.log());

    // And a call to us finds the new mapping.
    carol_calls_alice(&sb, &net, &mut b);
    talk_and_hang_up(&sb, &b);
}

/// A stranger on the home network sprays RTP with a tone of its own at voipd's ports,
/// before and through a call across the NAT: voipd still hears only the far side, clean,
/// and sends the stranger nothing.
#[test]
fn rtp_from_a_stranger_next_door_is_not_heard() {
    const SPRAY_TONE: f64 = 2500.0;
    let sb = Sandbox::new();
    let net = provider(&sb, NatKind::PortRestricted);
    let home = &net.world.homes[0];
    let _d = voipd_at_home(
        &sb,
        &net,
        &format!("stun = \"stun:{}:3478\"", net.world.provider.ip),
    );
    let b = carol_on_provider(&sb, &net);
    // From the router's inside address: a device on the same LAN.
    let sprayer = home
        .router
        .command(python())
        .arg(py_script("rtp_spray.py"))
        .args([
            &home.host.ip.to_string(),
            &RTP_LO.to_string(),
            &(RTP_LO + 3).to_string(),
        ])
        .args([
            &home.router.ip.to_string(),
            "1000",
            "8",
            &SPRAY_TONE.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("rtp_spray.py");
    std::thread::sleep(Duration::from_millis(1000));
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    talk_and_hang_up(&sb, &b);
    let report = sprayer.wait_with_output().expect("sprayer");
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert!(report["sent"].as_u64().unwrap_or(0) > 4000, "{report}");
    assert_eq!(
        report["received"], 0,
        "voipd sent to the stranger: {report}"
    );
    let (clear, span) = voipd_tests::audio::tone_share(
        &sb.path().join("voipd-heard.wav"),
        BARESIP_TONE,
        &[VOIPD_TONE, SPRAY_TONE],
    );
    assert!(
        span >= 20 && clear * 100 >= span * 99,
        "{BARESIP_TONE} Hz clear in {clear} of {span} blocks"
    );
}

/// ICE (RFC 8445) between voipd and baresip's ice module, each behind a NAT of its own
/// with STUN: neither side's SDP address reaches the other's media port, the checks find
/// the server-reflexive pair that does, both ways of calling, audio proven both ways. The
/// media is SDES-SRTP over ICE's pair (ICE sits under SRTP, at the transport's seam).
#[test]
fn ice_finds_the_way_between_two_homes() {
    let sb = Sandbox::new();
    let (net, stun) = two_homes(&sb);
    let d = voipd_at_home(
        &sb,
        &net,
        // baresip 1.0 with ICE answers SDES before it reads the offer (its preferred suite
        // under tag 1), then keys the first suite it supports from the offer: only an
        // offer that leads with its preferred suite gets the keys both sides use.
        &format!(
            "stun = \"{stun}\"\nice = true\nmedia_encryption = \"sdes\"\n\
             srtp_suites = [\"AES_CM_128_HMAC_SHA1_80\", \"AEAD_AES_128_GCM\"]"
        ),
    );
    let mut b = carol_on(
        &sb,
        &net,
        &net.world.homes[1].host,
        &["ice.so", "srtp.so"],
        &format!(";medianat=ice;stunserver={stun};mediaenc=srtp"),
    );
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    ice_nominates(&sb, "reflexive");
    assert_eq!(calls(&sb)[0]["media_encryption"], "sdes");
    talk_once_media_flows(&sb, &b);
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
    assert!(
        d.log().contains("ICE: RTP goes over a direct pair"),
        "{}",
        d.log()
    );

    carol_calls_alice(&sb, &net, &mut b);
    talk_once_media_flows(&sb, &b);
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
}

/// Behind a symmetric NAT (a new public port for every destination), with a baresip behind
/// a port-restricted NAT of its own: no direct pair can work (our mapping towards it is not
/// the one STUN saw, its router drops what it did not send to first). With ICE and TURN on
/// coturn (long-term credentials) a relayed candidate is allocated and offered, the checks
/// find it, and the media goes through it: both ways of calling, audio proven both ways;
/// the call's end gives the allocations back.
#[test]
fn from_a_symmetric_nat_to_another_home_the_media_goes_through_turn() {
    let sb = Sandbox::new();
    let net = provider_with(&sb, &[NatKind::Symmetric, NatKind::PortRestricted], &[]);
    let stun = format!("stun:{}:3478", net.world.provider.ip);
    let d = voipd_at_home(
        &sb,
        &net,
        &format!(
            "stun = \"{stun}\"\nice = true\nturn = {{ url = \"turn:{}:3478\", username = \"{}\", password = \"{}\" }}",
            net.world.provider.ip,
            Coturn::USER,
            Coturn::PASSWORD
        ),
    );
    let mut b = carol_with_ice(&sb, &net, &net.world.homes[1].host);
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    ice_nominates(&sb, "relay");
    talk_once_media_flows(&sb, &b);
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
    assert!(d.log().contains("through our TURN relay"), "{}", d.log());

    // Both allocations (RTP's and RTCP's) are given back at the call's end.
    wait_until(
        || {
            net.turn
                .log_text()
                .matches("user <voipd>: incoming packet REFRESH processed, success")
                .count()
                >= 2
        },
        "the relays released",
    );

    carol_calls_alice(&sb, &net, &mut b);
    ice_nominates(&sb, "relay");
    talk_once_media_flows(&sb, &b);
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
}

/// baresip's turn module (no ICE: its SDP names its relay on coturn) behind a symmetric
/// NAT, voipd behind a port-restricted one with STUN and ICE: voipd's ICE falls back to
/// a plain SDP with its server-reflexive address, and its media goes to the relay, which
/// lets it through on the permission baresip made for voipd's public address. Audio
/// proven both ways. Each way of calling has a world of its own: baresip 1.0 does not
/// give its allocation back (its deallocation meets coturn's 438 Stale Nonce and is not
/// sent again), so its next call from the same port and NAT mapping gets 437.
fn far_phone_behind_its_turn_relay(voipd_calls: bool) {
    let sb = Sandbox::new();
    let net = provider_with(&sb, &[NatKind::PortRestricted, NatKind::Symmetric], &[]);
    let stun = format!("stun:{}:3478", net.world.provider.ip);
    let d = voipd_at_home(&sb, &net, &format!("stun = \"{stun}\"\nice = true"));
    let turn = format!(
        ";medianat=turn;stunserver=turn:{}:3478;stunuser={};stunpass={}",
        net.world.provider.ip,
        Coturn::USER,
        Coturn::PASSWORD
    );
    let mut b = carol_on(&sb, &net, &net.world.homes[1].host, &["turn.so"], &turn);
    if voipd_calls {
        let out = sb.voipctl(&["dial", "carol"]);
        assert!(out.status.success(), "{}", describe(&out));
    } else {
        carol_calls_alice(&sb, &net, &mut b);
    }
    wait_until(
        || {
            calls(&sb).first().is_some_and(|c| {
                c["rtp_remote"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&format!("{}:40", net.world.provider.ip)))
            })
        },
        "the far side's SDP to name its relay",
    );
    assert_eq!(calls(&sb)[0]["ice"], "", "no ICE without the far side's");
    talk_once_media_flows(&sb, &b);
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
    if voipd_calls {
        assert!(d.log().contains("the far side has no ICE"), "{}", d.log());
    }
    assert!(
        net.turn
            .log_text()
            .contains("user <voipd>: incoming packet ALLOCATE processed, success"),
        "{}",
        net.turn.log_text()
    );
}

#[test]
fn voipd_calls_a_far_phone_behind_its_turn_relay() {
    far_phone_behind_its_turn_relay(true);
}

#[test]
fn a_far_phone_behind_its_turn_relay_calls_voipd() {
    far_phone_behind_its_turn_relay(false);
}

/// Consent freshness (RFC 7675) with a real far side: an ICE call to baresip behind its own
/// NAT lives past the 30 s consent lifetime, so baresip answers the consent checks on the
/// nominated pair, and media still flows both ways at the end. baresip hangs up: its BYE
/// reaches voipd through the mapping voipd's keepalives held open (baresip sends none, so
/// after 30 s its own router no longer lets a BYE in to it).
#[test]
fn an_ice_call_outlives_the_consent_lifetime() {
    let sb = Sandbox::new();
    let (net, stun) = two_homes(&sb);
    let d = voipd_at_home(&sb, &net, &format!("stun = \"{stun}\"\nice = true"));
    let mut b = carol_with_ice(&sb, &net, &net.world.homes[1].host);
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    ice_nominates(&sb, "reflexive");
    let received = || {
        calls(&sb)[0]["media"]["packets_received"]
            .as_u64()
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_secs(35));
    let c = calls(&sb);
    assert_eq!(c.len(), 1, "the call ended: {}", d.log());
    assert_eq!(c[0]["state"], "active", "{c:?}");
    assert_eq!(c[0]["ice"], "reflexive", "{c:?}");
    let before = received();
    std::thread::sleep(Duration::from_secs(1));
    assert!(received() >= before + 40, "media stopped: {}", d.log());
    assert!(
        !d.log().contains("stopped answering consent checks"),
        "{}",
        d.log()
    );
    b.command("hangup", "");
    b.wait_event("CALL_CLOSED");
    wait_until(|| calls(&sb).is_empty(), "carol's BYE to end the call");
    ended_by_the_far_side(&sb, &d);
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
}

/// Video between two homes behind port-restricted NATs: the video stream gathers its own
/// candidates (STUN) and ICE checks them as for audio; the pictures go both ways over the
/// pair it nominates, each side's snapshot showing the other's picture.
#[test]
fn ice_finds_the_way_for_video_between_two_homes() {
    let sb = Sandbox::new();
    let (net, stun) = two_homes(&sb);
    let d = voipd_at_home(
        &sb,
        &net,
        &format!(
            "stun = \"{stun}\"\nice = true\nvideo = \"both\"\nvideo_codecs = [\"vp8\"]\n\n\
             [video]\nsize = \"320x240\"\nfps = 15"
        ),
    );
    let mut b = Baresip::start(
        sb.path(),
        BaresipOptions {
            tone: BARESIP_TONE as u32,
            video: Some("VP8"),
            net: Some(BaresipNet {
                host: &net.world.homes[1].host,
                registrar: net.world.provider.ip,
                modules: &["ice.so"],
                account: &format!(";medianat=ice;stunserver={stun}"),
            }),
            ..BaresipOptions::carol(net.kam.port)
        },
    );
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    ice_nominates(&sb, "reflexive");
    b.wait_event("CALL_ESTABLISHED");
    wait_until(
        || {
            calls(&sb).first().is_some_and(|c| {
                c["video"]["frames_received"].as_u64().unwrap_or(0) >= 30
                    && c["video"]["width"] == 320
            })
        },
        "pictures from carol across the NATs",
    );
    voipd_tests::picture::we_see_baresips_picture(&sb, &sb.path().join("we-saw.png"));
    voipd_tests::picture::baresip_sees_our_pattern(&mut b, &sb.path().join("carol-saw.png"));
    assert!(d.log().contains("ICE: video goes to"), "{}", d.log());
    // Not to the address in carol's SDP, which her router drops: the video's own pair.
    let video = calls(&sb)[0]["video"].clone();
    assert_ne!(video["rtp_local"], "", "{video}");
    let out = sb.voipctl(&["hangup"]);
    assert!(out.status.success(), "{}", describe(&out));
    b.wait_event("CALL_CLOSED");
}
