//! Encrypted calls (SDES-SRTP, RFC 4568) between voipd and baresip's srtp module, through
//! Kamailio, which challenges every request. Audio is proven both ways by the recordings,
//! and a capture of the same call shows that the wire does not carry it; a mandatory
//! account refuses clear calls; forged and replayed packets are dropped and counted while
//! the call goes on.

use std::time::Duration;

use serde_json::Value;
use voipd_tests::audio::{tone_blocks, ulaw_decode};
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::capture::{Capture, Datagram};
use voipd_tests::peers::{Kamailio, free_even_ports};
use voipd_tests::*;

const VOIPD_TONE: f64 = 440.0;
const BARESIP_TONE: f64 = 1000.0;
/// RTP ports voipd may use: known in advance, so that a capture can start before a call.
const RTP_SPAN: u16 = 10;

struct Call {
    kam: Kamailio,
    _d: Daemon,
    b: Baresip,
    rtp_lo: u16,
}

/// Kamailio, voipd as alice (`account` lines added to its account) and baresip as carol
/// with media encryption `mediaenc`.
fn start(sb: &Sandbox, account: &str, mediaenc: Option<&str>) -> Call {
    let kam = Kamailio::start(sb.path(), &[]);
    let rtp_lo = free_even_ports(RTP_SPAN);
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"tone:{VOIPD_TONE}\"\noutput = \"file:{}\"\n\
         rtp_ports = \"{rtp_lo}-{}\"\nrtp_timeout_secs = 5\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\ncodecs = [\"pcmu\"]\n\
         answer = {{ mode = \"auto\" }}\n{account}\n",
        sb.path().join("voipd-heard.wav").display(),
        rtp_lo + RTP_SPAN - 1,
        kam.port
    ));
    let d = sb.start_daemon();
    wait_account_state(sb, "alice", "registered", PATIENCE);
    let b = Baresip::start(
        sb.path(),
        BaresipOptions {
            tone: BARESIP_TONE as u32,
            mediaenc,
            ..BaresipOptions::carol(kam.port)
        },
    );
    Call {
        kam,
        _d: d,
        b,
        rtp_lo,
    }
}

/// Whether process `pid` has OpenSSL's libraries mapped, and its voipd-dtls children
/// (zombies included: a helper not reaped is a defect too).
fn openssl_in(pid: i32) -> (bool, Vec<i32>) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("voipd's maps");
    let loaded = maps.contains("libssl") || maps.contains("libcrypto");
    let mut helpers = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<i32>().ok());
        if head.ends_with("(voipd-dtls") && ppid == Some(pid) {
            helpers.extend(head.split(' ').next().and_then(|p| p.parse::<i32>().ok()));
        }
    }
    (loaded, helpers)
}

fn wait_active(sb: &Sandbox) -> Value {
    let mut found = Value::Null;
    wait_until(
        || {
            found = calls(sb)
                .into_iter()
                .find(|c| c["state"] == "active")
                .unwrap_or(Value::Null);
            !found.is_null()
        },
        "an active call",
    );
    found
}

fn history(sb: &Sandbox) -> Vec<Value> {
    let out = sb.voipctl(&["--json", "history"]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["entries"].as_array().cloned().unwrap_or_default()
}

/// Each side heard the other's tone, clean, for at least 1.5 s.
fn assert_both_ways(sb: &Sandbox, b: &Baresip) {
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
}

/// Talks for 2.5 s, then voipd hangs up and both sides see the call end.
fn talk_and_hang_up(sb: &Sandbox, b: &Baresip) {
    b.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(2500));
    let out = sb.voipctl(&["hangup"]);
    assert!(out.status.success(), "{}", describe(&out));
    b.wait_event("CALL_CLOSED");
    wait_until(|| calls(sb).is_empty(), "the call to end");
}

/// The suite baresip says it runs.
fn baresip_suite(b: &Baresip) -> String {
    let log = b.log();
    log.lines()
        .find_map(|l| l.split("SRTP is Enabled (cryptosuite=").nth(1))
        .map(|s| s.trim_end_matches(')').to_string())
        .unwrap_or_else(|| panic!("baresip ran no SRTP:\n{log}"))
}

/// 100 ms blocks of `freq` in the µ-law payloads of the RTP packets in `packets` (the
/// 12-byte header skipped; an SRTP tag, if any, decodes as a few samples of noise).
fn tone_on_wire(packets: &[&Datagram], freq: f64, other: f64) -> usize {
    let samples: Vec<f64> = packets
        .iter()
        .filter(|d| d.payload.len() > 12 && d.payload[1] & 0x7f == 0)
        .flat_map(|d| ulaw_decode(&d.payload[12..]))
        .collect();
    tone_blocks(&samples, 8000, freq, &[other, 1500.0]).0
}

/// What voipd sent and what it was sent, in a capture of its RTP ports.
fn rtp_both_ways(all: &[Datagram], rtp_lo: u16) -> (Vec<&Datagram>, Vec<&Datagram>) {
    // RTP on even ports only: RTCP is on the odd ones.
    let ours = |p: u16| (rtp_lo..rtp_lo + RTP_SPAN).contains(&p) && p.is_multiple_of(2);
    (
        all.iter().filter(|d| ours(d.src_port)).collect(),
        all.iter().filter(|d| ours(d.dst_port)).collect(),
    )
}

#[test]
fn voipd_calls_baresip_over_srtp_with_each_suite() {
    for suite in [
        "AES_CM_128_HMAC_SHA1_80",
        "AES_CM_128_HMAC_SHA1_32",
        "AEAD_AES_128_GCM",
    ] {
        let sb = Sandbox::new();
        let c = start(
            &sb,
            &format!("media_encryption = \"sdes\"\nsrtp_suites = [\"{suite}\"]"),
            Some("srtp-mand"),
        );
        let out = sb.voipctl(&["dial", "carol"]);
        assert!(out.status.success(), "{}", describe(&out));
        let call = wait_active(&sb);
        assert_eq!(
            (
                call["media_encryption"].as_str(),
                call["transport"].as_str()
            ),
            (Some("sdes"), Some("udp")),
            "{call}"
        );
        talk_and_hang_up(&sb, &c.b);
        assert_eq!(baresip_suite(&c.b), suite);
        assert_both_ways(&sb, &c.b);
        let h = history(&sb);
        assert_eq!(h[0]["media_encryption"], "sdes", "{h:?}");
        // The INVITE with its keys met the proxy's challenge and got through.
        assert!(
            c.kam.challenged_then_took("INVITE", "alice"),
            "{:?}",
            c.kam.call_auth("INVITE", "alice")
        );
    }
}

/// baresip offers SRTP (RTP/SAVP); voipd answers it. The recordings hold each tone, and
/// the wire holds neither; a clear call, captured the same way, shows both tones, so the
/// capture's detector is proven to find them where they are.
#[test]
fn baresip_calls_voipd_over_srtp_and_the_wire_carries_no_tone() {
    let sb = Sandbox::new();
    let mut c = start(&sb, "media_encryption = \"sdes\"", Some("srtp-mand"));
    let cap = Capture::start(
        sb.path(),
        "srtp",
        &format!("udp portrange {}-{}", c.rtp_lo, c.rtp_lo + RTP_SPAN - 1),
    );
    c.b.command("dial", "sip:alice@127.0.0.1");
    let call = wait_active(&sb);
    assert_eq!(call["media_encryption"], "sdes", "{call}");
    assert_eq!(call["incoming"], true, "{call}");
    talk_and_hang_up(&sb, &c.b);
    let wire = cap.stop();
    assert_both_ways(&sb, &c.b);
    assert_eq!(baresip_suite(&c.b), "AES_CM_128_HMAC_SHA1_80");
    let (sent, received) = rtp_both_ways(&wire, c.rtp_lo);
    assert!(
        sent.len() > 100 && received.len() > 100,
        "{} {}",
        sent.len(),
        received.len()
    );
    assert_eq!(
        tone_on_wire(&sent, VOIPD_TONE, BARESIP_TONE),
        0,
        "our tone in clear"
    );
    assert_eq!(
        tone_on_wire(&received, BARESIP_TONE, VOIPD_TONE),
        0,
        "theirs in clear"
    );

    let sb = Sandbox::new();
    let mut c = start(&sb, "", None);
    let cap = Capture::start(
        sb.path(),
        "clear",
        &format!("udp portrange {}-{}", c.rtp_lo, c.rtp_lo + RTP_SPAN - 1),
    );
    c.b.command("dial", "sip:alice@127.0.0.1");
    let call = wait_active(&sb);
    assert_eq!(call["media_encryption"], "none", "{call}");
    talk_and_hang_up(&sb, &c.b);
    let wire = cap.stop();
    let (sent, received) = rtp_both_ways(&wire, c.rtp_lo);
    assert!(
        tone_on_wire(&sent, VOIPD_TONE, BARESIP_TONE) >= 15,
        "the detector"
    );
    assert!(
        tone_on_wire(&received, BARESIP_TONE, VOIPD_TONE) >= 15,
        "the detector"
    );
}

/// Optional SRTP (RTP/AVP with keys) is taken by an optional account both ways, and a
/// clear far side still gets a (clear) call.
#[test]
fn optional_srtp_encrypts_when_it_can_and_calls_in_clear_when_it_cannot() {
    let sb = Sandbox::new();
    let mut c = start(&sb, "media_encryption = \"sdes-optional\"", Some("srtp"));
    c.b.command("dial", "sip:alice@127.0.0.1");
    assert_eq!(wait_active(&sb)["media_encryption"], "sdes");
    talk_and_hang_up(&sb, &c.b);
    assert_both_ways(&sb, &c.b);

    let sb = Sandbox::new();
    let c = start(&sb, "media_encryption = \"sdes-optional\"", Some("srtp"));
    sb.voipctl(&["dial", "carol"]);
    assert_eq!(wait_active(&sb)["media_encryption"], "sdes");
    talk_and_hang_up(&sb, &c.b);
    assert_both_ways(&sb, &c.b);

    let sb = Sandbox::new();
    let c = start(&sb, "media_encryption = \"sdes-optional\"", None);
    sb.voipctl(&["dial", "carol"]);
    let call = wait_active(&sb);
    assert_eq!(call["media_encryption"], "none", "{call}");
    talk_and_hang_up(&sb, &c.b);
    assert_both_ways(&sb, &c.b);
    // voipctl shows it in words.
    let h = history(&sb);
    assert_eq!(h[0]["media_encryption"], "none", "{h:?}");
}

/// An account that must encrypt refuses a clear offer at once with 488 (the Warning that
/// says why is checked on the wire in calls_sipp.rs), and its own offer is RTP/SAVP,
/// which a phone without SRTP refuses.
#[test]
fn a_mandatory_account_refuses_clear_calls_and_says_why() {
    let sb = Sandbox::new();
    let mut c = start(&sb, "media_encryption = \"sdes\"", None);
    c.b.command("dial", "sip:alice@127.0.0.1");
    let closed = c.b.wait_event("CALL_CLOSED");
    assert!(
        closed["param"].as_str().unwrap_or_default().contains("488"),
        "{closed}"
    );
    wait_until(
        || !history(&sb).is_empty(),
        "the refused call in the history",
    );
    let h = history(&sb);
    assert!(
        h[0]["end_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("media encryption is required"),
        "{h:?}"
    );
    assert!(calls(&sb).is_empty());

    // Our SAVP offer to a phone without SRTP: it refuses, and no call comes of it.
    let out = sb.voipctl(&["dial", "--wait", "carol"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let h = history(&sb);
    assert_eq!(
        (h[0]["end_code"].as_u64(), h[0]["answered_unix_ms"].as_u64()),
        (Some(488), Some(0)),
        "never a clear call: {h:?}"
    );
}

/// Forged packets (a valid header, a broken tag) and replays of real ones, sent to voipd's
/// RTP port from the far side's address during a call: dropped and counted, and the
/// call and its audio go on.
#[test]
fn forged_and_replayed_srtp_is_dropped_and_counted_while_the_call_goes_on() {
    let sb = Sandbox::new();
    let c = start(&sb, "media_encryption = \"sdes\"", Some("srtp-mand"));
    let cap = Capture::start(
        sb.path(),
        "tamper",
        &format!("udp portrange {}-{}", c.rtp_lo, c.rtp_lo + RTP_SPAN - 1),
    );
    sb.voipctl(&["dial", "carol"]);
    let call = wait_active(&sb);
    c.b.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(1000));
    let wire = cap.stop();
    let (_, received) = rtp_both_ways(&wire, c.rtp_lo);
    assert!(received.len() > 20, "{} packets", received.len());
    let to: std::net::SocketAddr = call["rtp_local"].as_str().unwrap().parse().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let newest_seq = received
        .iter()
        .map(|d| u16::from_be_bytes([d.payload[2], d.payload[3]]))
        .max()
        .unwrap();
    for (i, d) in received.iter().take(20).enumerate() {
        // A replay: the very bytes, again.
        sock.send_to(&d.payload, to).unwrap();
        // A forgery: a sequence number not yet seen (so not a replay) and one bit of the
        // payload changed.
        let mut forged = d.payload.clone();
        let seq = newest_seq.wrapping_add(200 + i as u16);
        forged[2..4].copy_from_slice(&seq.to_be_bytes());
        forged[20] ^= 0x10;
        sock.send_to(&forged, to).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut media = Value::Null;
    wait_until(
        || {
            media = calls(&sb)
                .first()
                .map(|c| c["media"].clone())
                .unwrap_or(Value::Null);
            media["packets_auth_failed"].as_u64().unwrap_or(0) >= 20
                && media["packets_replayed"].as_u64().unwrap_or(0) >= 20
        },
        "the drops counted on the call",
    );
    assert_eq!(calls(&sb)[0]["state"], "active");
    std::thread::sleep(Duration::from_millis(2000));
    let out = sb.voipctl(&["hangup"]);
    assert!(out.status.success(), "{}", describe(&out));
    c.b.wait_event("CALL_CLOSED");
    // 3 s of call, of which 2 after the attack: the far side's tone throughout.
    assert_both_ways(&sb, &c.b);
    assert_eq!(
        (
            media["packets_auth_failed"].as_u64(),
            media["packets_replayed"].as_u64()
        ),
        (Some(20), Some(20)),
        "exactly what was sent, no more: {media}"
    );
}

/// DTLS-SRTP (RFC 5763/5764) with baresip's dtls_srtp, each side offering in turn: the
/// handshake runs on the media ports (RTP and RTCP each, as baresip does not mux), the
/// fingerprints are checked, and the tones pass both ways, keyed by what DTLS exported.
/// OpenSSL runs in the voipd-dtls helper, started for the call and gone after it: the
/// daemon itself never loads it.
#[test]
fn dtls_srtp_calls_with_baresip_both_ways() {
    let sb = Sandbox::new();
    let mut c = start(&sb, "media_encryption = \"dtls\"", Some("dtls_srtp"));
    let pid = c._d.pid();
    assert_eq!(openssl_in(pid), (false, vec![]), "before the call");
    c.b.command("dial", "sip:alice@127.0.0.1");
    let call = wait_active(&sb);
    assert_eq!(call["media_encryption"], "dtls", "{call}");
    let (loaded, helpers) = openssl_in(pid);
    assert!(!loaded && helpers.len() == 1, "in the call: {helpers:?}");
    // Sandboxed (Landlock sets no_new_privs; the filter refuses new sockets): what the
    // Landlock rules refuse is the helper's own unit test.
    let status = std::fs::read_to_string(format!("/proc/{}/status", helpers[0]))
        .expect("the helper's status");
    assert!(
        status.contains("NoNewPrivs:\t1") && status.contains("Seccomp:\t2"),
        "the DTLS helper is not sandboxed: {status}"
    );
    talk_and_hang_up(&sb, &c.b);
    assert_both_ways(&sb, &c.b);
    wait_until(
        || openssl_in(pid) == (false, vec![]),
        "the DTLS helper to exit and be reaped after the call",
    );
    let log = c.b.log();
    assert!(log.contains("DTLS-SRTP complete (audio/RTP)"), "{log}");
    assert!(log.contains("DTLS-SRTP complete (audio/RTCP)"), "{log}");

    let sb = Sandbox::new();
    let c = start(&sb, "media_encryption = \"dtls\"", Some("dtls_srtp"));
    let out = sb.voipctl(&["dial", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    let call = wait_active(&sb);
    assert_eq!(call["media_encryption"], "dtls", "{call}");
    talk_and_hang_up(&sb, &c.b);
    assert_both_ways(&sb, &c.b);
    let h = history(&sb);
    assert_eq!(h[0]["media_encryption"], "dtls", "{h:?}");
}
