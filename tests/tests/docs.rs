//! The documentation that ships: the manual pages render without a groff warning and
//! voipd(8) names every flag of `voipd --help`; the Markdown tables are whole.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use voipd_tests::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `groff -ww -man -Tutf8 PAGE`: every warning on, as a reader's man(1) would format it.
fn groff_utf8(page: &Path) -> Output {
    let groff = require_tool("groff", "groff-base");
    Command::new(groff)
        .args(["-ww", "-man", "-Tutf8"])
        .arg(page)
        .output()
        .unwrap()
}

/// The page as plain text, with `\-` as '-' (-Tutf8 makes it a minus sign).
fn groff_text(page: &Path) -> String {
    let groff = require_tool("groff", "groff-base");
    let out = Command::new(groff)
        .args(["-man", "-Tascii", "-P-cbou"])
        .arg(page)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    stdout(&out)
}

/// groff reads Latin-1: a UTF-8 byte in the source is a warning or a garbled character.
fn assert_ascii(name: &str, text: &[u8]) {
    if let Some(at) = text.iter().position(|b| !b.is_ascii()) {
        let line = text[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        panic!("{name}:{line}: a character that is not ASCII; write it as \\[uXXXX]");
    }
}

#[test]
fn voipd_manual_page_renders_without_warnings() {
    let page = repo("docs/voipd.8");
    assert_ascii("docs/voipd.8", &std::fs::read(&page).unwrap());
    let out = groff_utf8(&page);
    assert!(
        out.status.success() && out.stderr.is_empty() && !out.stdout.is_empty(),
        "{}",
        describe(&out)
    );
}

#[test]
fn voipd_manual_page_names_every_flag() {
    let help = Command::new(bin("voipd")).arg("--help").output().unwrap();
    assert!(help.status.success(), "{}", describe(&help));
    let help = stdout(&help);
    // Every `--long-flag` in the help, wherever it is.
    let mut flags: Vec<String> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter_map(|w| w.strip_prefix("--"))
        .filter(|f| f.starts_with(|c: char| c.is_ascii_alphabetic()))
        .map(|f| format!("--{f}"))
        .collect();
    flags.sort();
    flags.dedup();
    for want in [
        "--config",
        "--system",
        "--check-config",
        "--help",
        "--version",
    ] {
        assert!(
            flags.iter().any(|f| f == want),
            "{want} not found in the help; is the parsing above still right?\n{help}"
        );
    }
    let text = groff_text(&repo("docs/voipd.8"));
    let missing: Vec<&String> = flags
        .iter()
        .filter(|f| !text.contains(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/voipd.8 does not document {missing:?} (from `voipd --help`):\n{help}"
    );
}

#[test]
fn voipctl_manual_page_renders_without_warnings() {
    let sb = Sandbox::new();
    let man = sb.voipctl(&["man"]);
    assert!(man.status.success(), "{}", describe(&man));
    assert_ascii("voipctl man", &man.stdout);
    let page = sb.path().join("voipctl.1");
    std::fs::write(&page, &man.stdout).unwrap();
    let out = groff_utf8(&page);
    assert!(
        out.status.success() && out.stderr.is_empty() && !out.stdout.is_empty(),
        "{}",
        describe(&out)
    );
}

fn is_table_row(line: &str) -> bool {
    line.trim_start().starts_with('|')
}

/// `| --- | :---: |`
fn is_delimiter_row(line: &str) -> bool {
    let l = line.trim();
    l.starts_with('|') && l.contains("---") && l.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// A blank line ends a Markdown table: rows after it are a paragraph of pipes. So each
/// run of table rows starts with a header row and a delimiter row (`| --- |`).
#[test]
fn markdown_tables_are_whole() {
    let mut files = vec![repo("README.md")];
    for entry in std::fs::read_dir(repo("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut fenced = false;
        for (i, &line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            let starts_table =
                !fenced && is_table_row(line) && (i == 0 || !is_table_row(lines[i - 1]));
            if starts_table && !lines.get(i + 1).copied().is_some_and(is_delimiter_row) {
                broken.push(format!(
                    "{}:{}: table rows without a header and `| --- |` row (a blank line above cut a table?)",
                    file.display(),
                    i + 1
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The README's example configuration, as a reader copies it, wants exactly the two
/// things the README says to create first, and nothing else is wrong with it.
#[test]
fn readme_example_config_checks_but_for_what_it_says_to_create() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme
        .find("example for a home server")
        .expect("README: the example configuration moved; update this test");
    let block = readme[start..]
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("README: no ```toml block after the example's heading");
    let sb = Sandbox::new();
    let file = sb.path().join("config.toml");
    std::fs::write(&file, block).unwrap();
    let out = sb
        .command(bin("voipd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    let problems: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
    // On a machine where both exist (a real install), it passes outright.
    let want: Vec<&str> = [
        (!Path::new("/var/lib/voipd").is_dir())
            .then_some("audio.output: there is no directory /var/lib/voipd"),
        (!Path::new("/etc/voipd/secrets/home").exists())
            .then_some("account[0].password_file: cannot read /etc/voipd/secrets/home"),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(problems.len(), want.len(), "{}", describe(&out));
    for w in &want {
        assert!(said.contains(w), "missing {w:?}: {}", describe(&out));
        let what = w.split(' ').next_back().unwrap_or_default();
        assert!(
            readme[start..].contains(what),
            "README does not say to create {what}"
        );
    }
    assert_eq!(out.status.code(), Some(if want.is_empty() { 0 } else { 2 }));
}

/// `./dev` without Rust on PATH, or with one too old (Debian 12's), says what is needed
/// and how to get it, instead of failing on a missing `cargo` somewhere in the middle.
#[test]
fn dev_without_a_new_enough_rust_says_how_to_get_it() {
    let sb = Sandbox::new();
    // A PATH whose rustc is Debian 12's 1.63.
    let stubs = sb.path().join("stubs");
    std::fs::create_dir(&stubs).unwrap();
    for (name, says) in [("rustc", "rustc 1.63.0"), ("cargo", "cargo 1.63.0")] {
        let f = stubs.join(name);
        std::fs::write(&f, format!("#!/bin/sh\necho '{says}'\n")).unwrap();
        let mut p = std::fs::metadata(&f).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
        std::fs::set_permissions(&f, p).unwrap();
    }
    let system = "/usr/sbin:/usr/bin:/sbin:/bin";
    // The version the workspace asks for, as ./dev reads it.
    let manifest = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    let needed = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \"")?.strip_suffix('"'))
        .expect("Cargo.toml names a rust-version");
    let mut cases = vec![(
        format!("{}:{system}", stubs.display()),
        format!("older than the Rust {needed}"),
    )];
    // With no cargo at all: only where the system has none of its own.
    if !system
        .split(':')
        .any(|d| Path::new(d).join("cargo").exists())
    {
        cases.push((system.to_string(), "cargo is not on PATH".to_string()));
    }
    for (path, want) in cases {
        for verb in ["run", "test"] {
            let out = sb
                .command("/bin/bash")
                .arg(repo("dev"))
                .arg(verb)
                .env("PATH", &path)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{verb}: {}", describe(&out));
            let e = String::from_utf8_lossy(&out.stderr);
            assert!(
                e.contains(&want) && e.contains("rustup"),
                "{verb} with {path}: {e}"
            );
        }
    }
}
