//! voipctl for people: completions and a manual page generated from the CLI, and `watch`
//! as a live board on a terminal (a real pty, from script(1)) or lines into a pipe.

use std::process::{Command, Stdio};

use voipd_tests::*;

#[test]
fn completions_and_the_manual_page_come_from_the_cli() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = sb.voipctl(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", describe(&out));
        assert!(stdout(&out).contains("dial"), "{shell}: {}", stdout(&out));
    }
    // bash accepts the script, and it completes voipctl's verbs.
    let script = sb.path().join("voipctl.bash");
    std::fs::write(&script, stdout(&sb.voipctl(&["completions", "bash"]))).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(voipctl di); COMP_CWORD=1; _voipctl voipctl di voipctl; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out).trim(), "dial", "{}", describe(&out));

    // The manual page renders, with every command and the examples.
    let man = sb.voipctl(&["man"]);
    assert!(man.status.success(), "{}", describe(&man));
    let page = sb.path().join("voipctl.1");
    std::fs::write(&page, &man.stdout).unwrap();
    let groff = require_tool("groff", "groff-base");
    let out = Command::new(groff)
        .args(["-man", "-Tascii", "-P-cbou"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    for want in [
        "COMMANDS",
        "voipctl dial",
        "WHOM",
        "--account ACCOUNT",
        "voipctl answer [ID]",
        "voipctl dtmf DIGITS",
        "voipctl watch",
        "Examples:",
        "Exit codes",
    ] {
        assert!(
            text.contains(want),
            "no {want:?} in the manual page:\n{text}"
        );
    }
    let help = stdout(&sb.voipctl(&["--help"]));
    assert!(
        help.contains("Examples:") && help.contains("voipctl dial alice"),
        "{help}"
    );
}

fn start(sb: &Sandbox) -> Daemon {
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"home\"\naor = \"sip:alice@127.0.0.1\"\nenabled = false\n",
    );
    sb.start_daemon()
}

#[test]
fn watch_on_a_terminal_is_a_live_board_of_accounts_and_calls() {
    let sb = Sandbox::new();
    let _d = start(&sb);
    let screen = sb.path().join("screen.txt");
    require_tool("script", "bsdutils");
    // script(1) gives voipctl a real terminal and copies what it draws to `screen`.
    let mut watch = sb
        .command("script")
        .args(["-qfec"])
        .arg(format!("{} watch", bin("voipctl").display()))
        .arg(&screen)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&screen).unwrap_or_default();
    // The board: accounts and calls as tables, redrawn from the top of the screen.
    wait_until(|| text().contains("no calls"), "the first board");
    let t = text();
    assert!(t.contains("\x1b[H\x1b[2J"), "not drawn as a screen: {t:?}");
    assert!(t.contains("home") && t.contains("disabled"), "{t}");
    wait_until(
        || stdout(&sb.voipctl(&["--json", "status"])).contains("\"watchers\":1"),
        "the watcher",
    );
    assert!(sb.voipctl(&["dial", "echo"]).status.success());
    wait_until(
        || {
            let t = text();
            let last = t.rsplit("\x1b[2J").next().unwrap_or_default().to_string();
            last.contains("Sound test <echo>") && last.contains("active") && last.contains("PCMU")
        },
        "the call on the board",
    );
    assert!(sb.voipctl(&["hangup"]).status.success());
    wait_until(
        || {
            let t = text();
            let last = t.rsplit("\x1b[2J").next().unwrap_or_default().to_string();
            last.contains("no calls") && last.contains("sound test over")
        },
        "the board without the call, and the hang-up among the recent events",
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn watch_into_a_pipe_prints_the_board_once_then_a_line_per_event() {
    let sb = Sandbox::new();
    let _d = start(&sb);
    let log = sb.path().join("watch.txt");
    let mut watch = sb
        .command(bin("voipctl"))
        .arg("watch")
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(|| text().contains("watching voipd events"), "the board");
    assert!(sb.voipctl(&["dial", "echo"]).status.success());
    wait_until(
        || text().contains("call 1 to Sound test <echo>: active"),
        "a line for the call",
    );
    let t = text();
    assert!(!t.contains('\x1b'), "no terminal codes into a pipe: {t:?}");
    let header = t.lines().next().unwrap_or_default();
    assert!(header.starts_with("ID") && header.contains("STATE"), "{t}");
    assert!(sb.voipctl(&["hangup"]).status.success());
    wait_until(|| text().contains("sound test over"), "the end of the call");
    let _ = watch.kill();
    let _ = watch.wait();
}
