//! SIP over TLS against Kamailio's tls module, with a CA made by openssl in the test:
//! voipd finds the registrar by RFC 3263 (`sips:` → NAPTR SIPS+D2T → `_sips._tcp` SRV →
//! A, from dnsmasq), registers, and calls baresip, which is on TLS too; certificates that
//! do not verify (another CA, expired, another name) are refused with the reason shown.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::dns::Dnsmasq;
use voipd_tests::peers::{Kamailio, free_port};
use voipd_tests::pki::{Issued, Pki};
use voipd_tests::*;

const DOMAIN: &str = "voipd.test";
const VOIPD_TONE: f64 = 440.0;
const BARESIP_TONE: f64 = 1000.0;

/// Kamailio with TLS on a port of its own, presenting `server`.
fn kamailio_tls(dir: &Path, server: &Issued) -> (Kamailio, u16) {
    kamailio_tls_with(dir, server, &[])
}

fn kamailio_tls_with(dir: &Path, server: &Issued, more: &[&str]) -> (Kamailio, u16) {
    let tls_port = free_port();
    let cfg = dir.join("kamailio-tls.cfg");
    std::fs::write(
        &cfg,
        format!(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
             private_key = {}\ncertificate = {}\n\n[client:default]\nmethod = TLSv1.2+\n\
             verify_certificate = no\nrequire_certificate = no\n",
            server.key.display(),
            server.cert.display()
        ),
    )
    .expect("tls.cfg");
    let port = format!("TLS_PORT={tls_port}");
    let config = format!("TLS_CONFIG=\"{}\"", cfg.display());
    let mut defines = vec!["WITH_TLS", port.as_str(), config.as_str()];
    defines.extend_from_slice(more);
    let kam = Kamailio::start(dir, &defines);
    (kam, tls_port)
}

/// dnsmasq with what a provider publishes for SIP over TLS.
fn dns(dir: &Path, tls_port: u16) -> Dnsmasq {
    Dnsmasq::start(
        dir,
        &[
            format!("--naptr-record={DOMAIN},10,50,s,SIPS+D2T,,_sips._tcp.{DOMAIN}"),
            format!("--srv-host=_sips._tcp.{DOMAIN},sip.{DOMAIN},{tls_port},10,50"),
            format!("--host-record=sip.{DOMAIN},127.0.0.1"),
        ],
    )
}

/// voipd as alice@voipd.test over TLS, trusting `ca`; more account lines in `extra`.
fn voipd_config(sb: &Sandbox, dns: &Dnsmasq, ca: &Path, extra: &str) -> String {
    format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\ndns = [\"{}\"]\n\n[audio]\ninput = \"tone:{VOIPD_TONE}\"\n\
         output = \"file:{}\"\nrtp_timeout_secs = 5\n\n\
         [[account]]\nid = \"alice\"\naor = \"sips:alice@{DOMAIN}\"\npassword = \"alicepw\"\ncodecs = [\"pcmu\"]\n\
         tls = {{ ca = \"{}\" }}\n{extra}\n",
        dns.addr,
        sb.path().join("voipd-heard.wav").display(),
        ca.display()
    )
}

#[test]
fn voipd_registers_over_tls_and_calls_baresip_over_tls() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.path(), "provider-ca");
    // The server is checked against the domain the user gave (RFC 5922 §4.1), not the
    // SRV target's name, so that a forged SRV answer cannot lead elsewhere.
    let server = pki.issue("server", DOMAIN, None);
    let (kam, tls_port) = kamailio_tls(sb.path(), &server);
    let dns = dns(sb.path(), tls_port);
    sb.write_config(&voipd_config(&sb, &dns, &pki.ca, ""));
    let _d = sb.start_daemon();
    let a = wait_account_state(&sb, "alice", "registered", PATIENCE);
    assert_eq!(
        a["registrar"],
        format!("tls:127.0.0.1:{tls_port}"),
        "found through NAPTR and SRV: {a}"
    );
    let b = Baresip::start(
        sb.path(),
        BaresipOptions {
            tone: BARESIP_TONE as u32,
            tls_port: Some(tls_port),
            ..BaresipOptions::carol(kam.port)
        },
    );
    let out = sb.voipctl(&["dial", "--wait", "carol"]);
    assert!(out.status.success(), "{}", describe(&out));
    let c = calls(&sb);
    assert_eq!(
        (
            c[0]["transport"].as_str(),
            c[0]["media_encryption"].as_str()
        ),
        (Some("tls"), Some("none")),
        "{c:?}"
    );
    // TLS signalling with clear media is allowed, and said.
    let table = stdout(&sb.voipctl(&["calls"]));
    assert!(
        table.contains("signalling is encrypted (tls) but media is not"),
        "{table}"
    );
    b.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(sb.voipctl(&["hangup"]).status.success());
    b.wait_event("CALL_CLOSED");
    wait_until(|| calls(&sb).is_empty(), "the call to end");
    b.assert_both_ways(&sb.path().join("voipd-heard.wav"), VOIPD_TONE, BARESIP_TONE);
    // Every request of ours went over TLS: the INVITE (challenged, then taken) and BYE.
    let log = kam.log_text();
    for m in ["REGISTER", "INVITE", "BYE"] {
        let from_us: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains(&format!("SIP-REQUEST method={m} ")) && l.contains("from=sips:alice@")
            })
            .collect();
        assert!(!from_us.is_empty(), "no {m} from alice");
        assert!(
            from_us.iter().all(|l| l.contains("proto=tls")),
            "{m} not over TLS: {from_us:?}"
        );
    }
    // And the far side's leg was TLS too.
    assert!(
        log.lines()
            .any(|l| l.contains("REGISTER-SAVED aor=sip:carol@") && l.contains("proto=tls")),
        "baresip registered over TLS"
    );
}

/// Each certificate that does not verify fails the registration, and the account says
/// why; voipd never falls back to accepting it.
#[test]
fn certificates_that_do_not_verify_are_refused_with_the_reason() {
    let sb = Sandbox::new();
    let ours = Pki::new(sb.path(), "provider-ca");
    let stranger = Pki::new(sb.path(), "stranger-ca");
    let cases = [
        (
            "another CA",
            stranger.issue("other-ca", DOMAIN, None),
            "not signed by a CA we trust",
        ),
        (
            "expired",
            ours.issue(
                "expired",
                DOMAIN,
                Some(("20200101000000Z", "20200201000000Z")),
            ),
            "it has expired",
        ),
        (
            "another name",
            ours.issue("wrong-name", "other.test", None),
            "it is not for voipd.test",
        ),
    ];
    for (what, cert, reason) in cases {
        let dir = sb.path().join(what.replace(' ', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let (kam, tls_port) = kamailio_tls(&dir, &cert);
        let dns = dns(&dir, tls_port);
        sb.write_config(&voipd_config(&sb, &dns, &ours.ca, ""));
        let d = sb.start_daemon();
        let mut a = Value::Null;
        wait_until(
            || {
                a = account(&sb, "alice");
                a["last_reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(reason)
            },
            &format!("{what}: the reason on the account"),
        );
        assert_ne!(a["state"], "registered", "{what}: {a}");
        assert!(
            a["last_reason"]
                .as_str()
                .unwrap_or_default()
                .contains("certificate does not verify"),
            "{what}: {a}"
        );
        // voipctl accounts shows it to a person too.
        let table = stdout(&sb.voipctl(&["accounts"]));
        assert!(table.contains(reason), "{what}: {table}");
        // The handshake failure is logged with the peer and the reason.
        assert!(
            d.log().contains(&format!(
                "TLS with tls:127.0.0.1:{tls_port} (voipd.test) failed"
            )),
            "{what}: {}",
            d.log()
        );
        // Nothing reached Kamailio's SIP layer.
        assert!(
            !kam.log_text().contains("REGISTER-RECEIVED"),
            "{what}: a REGISTER got through"
        );
        drop(d);
    }
}

/// A tls: listener presents sip.tls_certificate, and answers SIP over it: openssl's own
/// client, checking the certificate against the CA, sends an OPTIONS and gets 200.
#[test]
fn a_tls_listener_answers_over_tls() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.path(), "our-ca");
    let ours = pki.issue("voipd", "phone.voipd.test", None);
    let port = free_port();
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\", \"tls:127.0.0.1:{port}\"]\n\
         tls_certificate = \"{}\"\ntls_key = \"{}\"\n",
        ours.cert.display(),
        ours.key.display()
    ));
    let _d = sb.start_daemon();
    let status = stdout(&sb.voipctl(&["status"]));
    assert!(
        status.contains(&format!("tls:127.0.0.1:{port}")),
        "{status}"
    );
    let options = format!(
        "OPTIONS sip:127.0.0.1:{port};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls-1;rport\r\n\
         From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1:{port}>\r\n\
         Call-ID: tls-probe-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let mut child = std::process::Command::new(require_tool("openssl", "openssl"))
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "phone.voipd.test",
            "-verify_return_error",
            "-verify_hostname",
            "phone.voipd.test",
            "-CAfile",
        ])
        .arg(&pki.ca)
        .arg("-quiet")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(options.as_bytes()).unwrap();
        // Time for the answer before the pipe closes and s_client leaves.
        std::thread::sleep(Duration::from_millis(1500));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("SIP/2.0 200"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Many accounts on one provider registering at once share one TLS connection: the first
/// send connects, the others wait for it rather than each connecting and closing the
/// others' connections with their answers still to come (which cost 32 s of Timer F).
#[test]
fn accounts_registering_at_once_share_one_tls_connection() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.path(), "provider-ca");
    let server = pki.issue("server", DOMAIN, None);
    let (kam, tls_port) = kamailio_tls_with(sb.path(), &server, &["OPEN_REGISTRAR"]);
    let dns = dns(sb.path(), tls_port);
    let mut config = format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\ndns = [\"{}\"]\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n",
        dns.addr
    );
    const N: usize = 40;
    for i in 0..N {
        config.push_str(&format!(
            "\n[[account]]\nid = \"u{i}\"\naor = \"sips:u{i}@{DOMAIN}\"\npassword = \"x\"\ntls = {{ ca = \"{}\" }}\n",
            pki.ca.display()
        ));
    }
    sb.write_config(&config);
    let _d = sb.start_daemon();
    let registered = || {
        let out = sb.voipctl(&["--json", "accounts"]);
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
        v["accounts"].as_array().map_or(0, |a| {
            a.iter().filter(|a| a["state"] == "registered").count()
        })
    };
    // Well within Timer F (32 s): no REGISTER was lost with a closed connection.
    let t = std::time::Instant::now();
    wait_until(|| registered() == N, "every account registered");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let log = kam.log_text();
    assert_eq!(
        log.matches("REGISTER-SAVED").count(),
        N,
        "each REGISTER once"
    );
    let sources: std::collections::HashSet<&str> = log
        .lines()
        .filter(|l| l.contains("REGISTER-SAVED"))
        .filter_map(|l| l.split(" src=").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(sources.len(), 1, "one connection: {sources:?}");
}
