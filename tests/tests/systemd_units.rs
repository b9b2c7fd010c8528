//! The shipped units pass `systemd-analyze verify` with no output at all: an unknown key
//! or a bad value only warns there (exit 0), so any output is a failure.

use std::path::Path;

use voipd_tests::*;

/// Verifies `unit` with its ExecStart pointed at the freshly built binary, since
/// /usr/local/bin/voipd need not be installed where the tests run. Nothing else changes.
fn verify(unit: &str, user: bool) {
    let analyze = require_tool("systemd-analyze", "systemd");
    let sb = Sandbox::new();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../systemd")
            .join(unit),
    )
    .unwrap();
    assert!(
        text.contains("ExecStart=/usr/local/bin/voipd"),
        "{unit}: ExecStart moved; update this test"
    );
    let built = bin("voipd");
    let copy = sb.path().join("voipd.service");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/voipd", built.to_str().unwrap()),
    )
    .unwrap();
    let mut cmd = sb.command(analyze);
    cmd.arg("verify").arg("--man=no");
    if user {
        cmd.arg("--user");
    }
    let out = cmd.arg(&copy).output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{unit}: {}",
        describe(&out)
    );
}

#[test]
fn system_unit_verifies_cleanly() {
    verify("voipd.service", false);
}

#[test]
fn user_unit_verifies_cleanly() {
    verify("user/voipd.service", true);
}

#[test]
fn verify_would_catch_a_mistake() {
    // Guards the guard: a unit with an unknown key must make verify print something.
    let analyze = require_tool("systemd-analyze", "systemd");
    let sb = Sandbox::new();
    let unit = sb.path().join("broken.service");
    std::fs::write(
        &unit,
        "[Service]\nType=simple\nExecStart=/bin/true\nBogusKey=1\n",
    )
    .unwrap();
    let out = sb
        .command(analyze)
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        !out.stderr.is_empty() || !out.stdout.is_empty(),
        "{}",
        describe(&out)
    );
}
