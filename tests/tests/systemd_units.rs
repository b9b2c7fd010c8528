//! The shipped units pass `systemd-analyze verify` with no output at all: an unknown key
//! or a bad value only warns there (exit 0), so any output is a failure. That includes its
//! man check: `Documentation=man:voipd(8)` is docs/voipd.8, found by man(1) through
//! MANPATH as if installed.

use std::path::Path;

use voipd_tests::*;

/// A man directory in the sandbox holding docs/voipd.8, as `install -Dm644 docs/voipd.8
/// /usr/local/share/man/man8/voipd.8` would; its path is the MANPATH to give.
fn install_man_page(sb: &Sandbox) -> std::path::PathBuf {
    let man = sb.path().join("man");
    std::fs::create_dir_all(man.join("man8")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/voipd.8"),
        man.join("man8/voipd.8"),
    )
    .unwrap();
    man
}

/// Verifies `unit` with its ExecStart pointed at the freshly built binary, since
/// /usr/local/bin/voipd need not be installed where the tests run, and the manual page
/// in the sandbox's MANPATH. Nothing else changes.
fn verify(unit: &str, user: bool) {
    let analyze = require_tool("systemd-analyze", "systemd");
    // systemd-analyze runs `man 8 voipd` for Documentation=man:voipd(8).
    require_tool("man", "man-db");
    let sb = Sandbox::new();
    let manpath = install_man_page(&sb);
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
    cmd.env("MANPATH", manpath).arg("verify");
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

#[test]
fn verify_would_catch_a_missing_manual_page() {
    // Guards the man check: with the same MANPATH, a page that is not there is reported.
    let analyze = require_tool("systemd-analyze", "systemd");
    require_tool("man", "man-db");
    let sb = Sandbox::new();
    let manpath = install_man_page(&sb);
    let unit = sb.path().join("undocumented.service");
    std::fs::write(
        &unit,
        "[Unit]\nDocumentation=man:voipd-no-such-page(8)\n\n[Service]\nType=simple\nExecStart=/bin/true\n",
    )
    .unwrap();
    let out = sb
        .command(analyze)
        .env("MANPATH", manpath)
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("voipd-no-such-page"),
        "{}",
        describe(&out)
    );
}

#[test]
fn system_unit_lets_cameras_in_and_keeps_its_hardening() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/voipd.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for want in [
        "DevicePolicy=closed",
        "DeviceAllow=char-alsa rw",
        "DeviceAllow=char-video4linux rw",
        "SupplementaryGroups=audio video",
    ] {
        assert!(lines.contains(&want), "the unit lacks {want}");
    }
    let sysusers = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/sysusers.d/voipd.conf"),
    )
    .unwrap();
    assert!(
        sysusers.lines().any(|l| l.trim() == "m voipd video"),
        "{sysusers}"
    );
    // Cameras cost no hardening: systemd's own score stays where it was (1.8, "OK").
    let out = std::process::Command::new(analyze)
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = stdout(&out);
    let score: f64 = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for voipd.service: ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level: {}", describe(&out)));
    assert!(score <= 1.8, "exposure {score}:\n{report}");
}

/// The syscalls `SystemCallFilter=` lets through: its first list (an allow list here)
/// with each later one added or, after `~`, taken out; groups expanded by systemd itself.
fn allowed_syscalls(analyze: &Path, unit: &str) -> std::collections::BTreeSet<String> {
    let expand = |item: &str| -> Vec<String> {
        if !item.starts_with('@') {
            return vec![item.to_string()];
        }
        let out = std::process::Command::new(analyze)
            .args(["syscall-filter", item])
            .output()
            .unwrap();
        assert!(out.status.success(), "{item}: {}", describe(&out));
        // Members are indented; "#" lines are comments, nested groups are expanded below.
        stdout(&out)
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let mut allowed = std::collections::BTreeSet::new();
    for line in unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("SystemCallFilter="))
    {
        let (remove, list) = match line.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let mut todo: Vec<String> = list.split_whitespace().map(str::to_string).collect();
        while let Some(item) = todo.pop() {
            for member in expand(&item) {
                if member.starts_with('@') {
                    todo.push(member);
                } else if remove {
                    allowed.remove(&member);
                } else {
                    allowed.insert(member);
                }
            }
        }
    }
    allowed
}

/// The system unit's syscall filter lets the DTLS helper sandbox itself: were any of
/// these refused, it would warn and run unconfined.
#[test]
fn system_unit_lets_the_dtls_helper_sandbox_itself() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/voipd.service"),
    )
    .unwrap();
    let allowed = allowed_syscalls(&analyze, &unit);
    // The filter is read right: what the daemon needs is in, what it was denied is out.
    assert!(allowed.contains("recvmmsg") && allowed.contains("openat"));
    assert!(!allowed.contains("mount") && !allowed.contains("setrlimit"));
    for call in [
        "prctl",
        "landlock_create_ruleset",
        "landlock_restrict_self",
        "seccomp",
    ] {
        assert!(allowed.contains(call), "the unit refuses {call}");
    }
}
