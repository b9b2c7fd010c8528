//! Who may drive the daemon: gRPC over TCP only with TLS and the bearer token, the Unix
//! socket only for its owner and group. Clients are Python's grpcio and voipctl run as other
//! users.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use voipd_tests::peers::free_port;
use voipd_tests::*;

const TOKEN: &str = "s3cret-token-for-tests-0123456789";

/// A self-signed certificate for localhost and 127.0.0.1, made by openssl: (cert, key).
fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    require_tool("openssl", "openssl");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl: {}", describe(&out));
    (cert, key)
}

fn tcp_config(port: u16, cert: &Path, key: &Path, token_file: &Path) -> String {
    format!(
        "[control]\ntcp = {{ listen = \"127.0.0.1:{port}\", cert = \"{}\", key = \"{}\", token_file = \"{}\" }}\n\n\
         [sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\nenabled = false\n",
        cert.display(),
        key.display(),
        token_file.display()
    )
}

/// grpc_client.py against `target`, trusting `ca`, with `token` if any.
fn grpc(target: &str, ca: &Path, token: Option<&str>, method: &str, req: &str) -> Value {
    let (service, method) = method.rsplit_once('.').expect("Service.Method");
    let mut cmd = Command::new(python());
    cmd.arg(py_script("grpc_client.py"))
        .args([target, service, method, req])
        .env("VOIPD_CA", ca);
    if let Some(t) = token {
        cmd.env("VOIPD_TOKEN", t);
    }
    let out = cmd.output().expect("run python");
    assert!(out.status.success(), "python: {}", describe(&out));
    serde_json::from_str(&stdout(&out)).expect("JSON from the client")
}

#[test]
fn grpc_over_tcp_needs_tls_and_the_bearer_token() {
    let sb = Sandbox::new();
    let (cert, key) = make_cert(sb.path());
    let token_file = sb.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let port = free_port();
    sb.write_config(&tcp_config(port, &cert, &key, &token_file));
    let _d = sb.start_daemon();
    let tls = format!("tls:127.0.0.1:{port}");

    // With TLS and the token: the full API, reflection included.
    let ok = grpc(&tls, &cert, Some(TOKEN), "voipd.v1.Daemon.GetStatus", "{}");
    assert!(
        ok["services"].to_string().contains("voipd.v1.Calls"),
        "{ok}"
    );
    let listening = ok["response"]["listening"].to_string();
    assert!(
        listening.contains(&format!("tcp+tls:127.0.0.1:{port}")),
        "{ok}"
    );
    // Typed errors over TCP as over the socket.
    let nf = grpc(
        &tls,
        &cert,
        Some(TOKEN),
        "voipd.v1.Calls.Get",
        r#"{"id": "999"}"#,
    );
    assert_eq!(nf["error"]["code"], "NOT_FOUND", "{nf}");
    let bad = grpc(
        &tls,
        &cert,
        Some(TOKEN),
        "voipd.v1.Calls.Dial",
        r#"{"uri": "sip:"}"#,
    );
    assert_eq!(bad["error"]["code"], "INVALID_ARGUMENT", "{bad}");
    assert!(
        bad["error"]["details"].as_str().unwrap().contains("uri"),
        "{bad}"
    );

    // Without the token, or with a wrong one: refused, and nothing runs.
    for token in [None, Some("s3cret-token-for-tests-0123456788"), Some("")] {
        let r = grpc(&tls, &cert, token, "voipd.v1.Daemon.GetStatus", "{}");
        assert_eq!(r["error"]["code"], "UNAUTHENTICATED", "{token:?}: {r}");
        let r = grpc(
            &tls,
            &cert,
            token,
            "voipd.v1.Calls.Dial",
            r#"{"uri": "echo"}"#,
        );
        assert_eq!(r["error"]["code"], "UNAUTHENTICATED", "{token:?}: {r}");
    }
    // Without TLS: no gRPC at all.
    let r = grpc(
        &format!("plain:127.0.0.1:{port}"),
        &cert,
        Some(TOKEN),
        "voipd.v1.Daemon.GetStatus",
        "{}",
    );
    assert_eq!(r["error"]["code"], "UNAVAILABLE", "{r}");
    let calls = sb.voipctl(&["--json", "calls"]);
    assert_eq!(
        stdout(&calls).trim(),
        r#"{"calls":[]}"#,
        "{}",
        describe(&calls)
    );

    // The Unix socket needs no token.
    let unix = grpc(
        &sb.socket().display().to_string(),
        &cert,
        None,
        "voipd.v1.Daemon.GetStatus",
        "{}",
    );
    assert!(unix["response"].is_object(), "{unix}");
}

#[test]
fn bad_tls_settings_stop_the_start_naming_the_field() {
    let sb = Sandbox::new();
    let (cert, key) = make_cert(sb.path());
    let token_file = sb.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let short = sb.path().join("short-token");
    std::fs::write(&short, "abc").unwrap();
    let garbage_key = sb.path().join("garbage.pem");
    std::fs::write(
        &garbage_key,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = sb.path().join("missing.pem");
    let port = free_port();
    for (cert, key, token, code, words) in [
        (
            &missing,
            &key,
            &token_file,
            2,
            &["control.tcp", "cert", "missing.pem"][..],
        ),
        (
            &cert,
            &cert,
            &token_file,
            2,
            &["control.tcp", "key", "no PEM private key"][..],
        ),
        (
            &cert,
            &key,
            &short,
            2,
            &["control.tcp", "token_file", "shorter than 16"][..],
        ),
        (
            &cert,
            &garbage_key,
            &token_file,
            1,
            &["control.tcp", "cannot be used"][..],
        ),
    ] {
        sb.write_config(&tcp_config(port, cert, key, token));
        let mut d = sb.spawn_daemon(&[], &[]);
        let status = d.wait_exit();
        let log = d.log();
        assert_eq!(status.code(), Some(code), "{log}");
        for w in words {
            assert!(log.contains(w), "no {w:?} in: {log}");
        }
        assert!(!sb.socket().exists(), "a socket was left behind: {log}");
    }
}

#[test]
fn only_the_socket_owner_and_group_may_connect() {
    ensure_user("voipd-test-other", None);
    ensure_user("voipd-test-member", Some("voipd-test-group"));
    let sb = Sandbox::new();
    sb.open_to_all();
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n");
    let _d = sb.start_daemon();
    let sock = sb.socket();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode {mode:o}");
    // Let anyone reach the socket file, so that its own mode is what is tested.
    std::fs::set_permissions(
        sock.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let voipctl_as = |user: &str| {
        command_as(user, bin("voipctl"))
            .arg("--socket")
            .arg(&sock)
            .arg("status")
            .output()
            .expect("voipctl as another user")
    };
    let out = voipctl_as("voipd-test-other");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        stderr(&out).to_lowercase().contains("permission denied"),
        "{}",
        describe(&out)
    );
    let out = voipctl_as("voipd-test-member");
    assert_eq!(
        out.status.code(),
        Some(3),
        "not yet in the socket's group: {}",
        describe(&out)
    );

    // The socket's group is who may drive the daemon (the system service's is voipd).
    let out = Command::new("chgrp")
        .arg("voipd-test-group")
        .arg(&sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let out = voipctl_as("voipd-test-member");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout(&out).starts_with("voipd "), "{}", describe(&out));
    let out = voipctl_as("voipd-test-other");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
}
