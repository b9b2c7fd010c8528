use super::*;

fn invalid(text: &str) -> Invalid {
    match Config::parse(text, "test.toml") {
        Err(ConfigError::Invalid(i)) => *i,
        Err(e) => panic!("expected a validation error, got {e}"),
        Ok(c) => panic!("expected an error, parsed {c:?}"),
    }
}

#[test]
fn embedded_default_is_valid_and_has_no_accounts() {
    let c = Config::embedded_default();
    assert!(c.accounts.is_empty());
    assert_eq!(c.log, LogConfig::default());
    assert_eq!(c.sip, SipConfig::default());
    assert_eq!(c.audio, AudioConfig::default());
}

#[test]
fn documented_example_is_valid() {
    let text = include_str!("../../../docs/config.example.toml");
    let c = Config::parse(text, "config.example.toml").unwrap();
    assert_eq!(c.accounts.len(), 2);
    let home = &c.accounts[0];
    assert_eq!(home.username, "alice", "username defaults to the AOR user");
    assert_eq!(
        home.password.as_ref().map(Secret::expose),
        Some("correct horse battery staple")
    );
    assert_eq!(home.outbound_proxy.len(), 1);
    assert_eq!(
        home.answer,
        Answer {
            mode: AnswerMode::Auto,
            delay_ms: 500
        }
    );
    let work = &c.accounts[1];
    assert_eq!(work.username, "4711-auth");
    assert_eq!(work.expires, 600);
    assert_eq!(work.outbound_proxy.len(), 2);
    assert!(!work.enabled);
    assert_eq!(c.sip.listen()[2].to_string(), "udp:[::]:5060");
    assert_eq!(c.audio.input, AudioEndpoint::Null);
}

#[test]
fn unknown_key_names_field_and_line() {
    let e = invalid("[log]\nlevel = \"info\"\nlevle = \"debug\"\n");
    assert_eq!((e.line, e.field.as_str()), (3, "log.levle"));
    assert!(e.message.contains("unknown field `levle`"), "{e}");
    let e = invalid("colour = 1\n");
    assert_eq!((e.line, e.field.as_str()), (1, "colour"));
}

#[test]
fn wrong_type_names_field_and_line() {
    let e = invalid("[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nexpires = \"soon\"\n");
    assert_eq!(
        (e.line, e.column, e.field.as_str()),
        (4, 11, "account[0].expires")
    );
    assert!(e.message.contains("invalid type"), "{e}");
    assert_eq!(
        e.to_string(),
        "test.toml:4:11: account[0].expires: invalid type: string \"soon\", expected u32"
    );
}

#[test]
fn bad_values_are_refused_with_the_field() {
    for (text, field, needle) in [
        (
            "[[account]]\nid = \"a\"\naor = \"alice@example.com\"\n",
            "account[0].aor",
            "must start with sip:",
        ),
        (
            "[[account]]\nid = \"a b\"\naor = \"sip:a@b.c\"\n",
            "account[0].id",
            "letters, digits",
        ),
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nexpires = 10\n",
            "account[0].expires",
            "60..=86400",
        ),
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\ncodecs = [\"gsm\"]\n",
            "account[0].codecs[0]",
            "unknown variant",
        ),
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nanswer = { mode = \"auto\", delai_ms = 1 }\n",
            "account[0].answer.delai_ms",
            "unknown field",
        ),
        (
            "[sip]\nlisten = [\"sctp:0.0.0.0:5060\"]\n",
            "sip.listen[0]",
            "unknown transport",
        ),
        (
            "[audio]\ninput = \"tone:5\"\n",
            "audio.input",
            "20 to 20000",
        ),
        (
            "[log]\ntarget = \"syslog\"\n",
            "log.target",
            "unknown variant",
        ),
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\n100rel = \"always\"\n",
            "account[0].100rel",
            "unknown variant",
        ),
        (
            "[sip]\ndns = [\"8.8.8.8\"]\n",
            "sip.dns[0]",
            "socket address",
        ),
        (
            "[sip]\naccept_direct = \"everyone\"\n[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\n",
            "sip.accept_direct",
            "only for a voipd without accounts",
        ),
        (
            "[sip]\nstranger_reply = \"404\"\n",
            "sip.stranger_reply",
            "unknown variant",
        ),
        (
            "[sip]\ntrusted = [\"203.0.113.0/33\"]\n",
            "sip.trusted[0]",
            "not an IP address or a network",
        ),
        (
            "[sip]\nring_timeout_secs = 0\n",
            "sip.ring_timeout_secs",
            "at least 1 second",
        ),
        ("[sip]\nmax_ringing = 0\n", "sip.max_ringing", "at least 1"),
    ] {
        let e = invalid(text);
        assert_eq!(e.field, field, "{text}");
        assert!(e.message.contains(needle), "{text}: {e}");
    }
}

#[test]
fn account_level_rules() {
    let e = invalid("[[account]]\nid = \"a\"\naor = \"sip:example.com\"\n");
    assert!(
        e.to_string()
            .contains("account[0]: aor: sip:example.com has no user part"),
        "{e}"
    );
    let e = invalid(
        "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\npassword = \"x\"\npassword_file = \"/x\"\n",
    );
    assert!(e.message.contains("both set"), "{e}");
    let e =
        invalid("[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\ncodecs = [\"pcmu\", \"pcmu\"]\n");
    assert!(e.message.contains("listed twice"), "{e}");
    let e = invalid(
        "[[account]]\nid = \"x\"\naor = \"sip:a@b.c\"\n\n[[account]]\nid = \"x\"\naor = \"sip:b@b.c\"\n",
    );
    assert_eq!((e.line, e.field.as_str()), (6, "account[1].id"));
    let e = invalid(
        "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nsession_expires = 60\nmin_se = 90\n",
    );
    assert!(
        e.message.contains("session_expires: 60 is below min_se"),
        "{e}"
    );
    let e = invalid("[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nmin_se = 0\n");
    assert!(e.message.contains("min_se: must be at least 1"), "{e}");
}

#[test]
fn syntax_error_has_position() {
    let e = invalid("[sip\nlisten = []\n");
    assert_eq!(e.line, 1);
    assert_eq!(e.field, "");
}

#[test]
fn password_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let text = format!(
        "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\npassword_file = {:?}\n",
        pw.display().to_string()
    );
    let c = Config::parse(&text, "t").unwrap();
    assert_eq!(
        c.accounts[0].password.as_ref().map(Secret::expose),
        Some("s3cret")
    );
    assert!(
        !format!("{:?}", c.accounts[0]).contains("s3cret"),
        "Debug must not show passwords"
    );

    let missing = text.replace("/pw", "/absent");
    assert!(
        invalid(&missing)
            .message
            .contains("password_file: cannot read")
    );
}

#[test]
fn location_falls_back_to_embedded_only_when_implicit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let implicit = ConfigLocation {
        path: path.clone(),
        explicit: false,
    };
    assert!(implicit.load().unwrap().embedded);
    let explicit = ConfigLocation {
        path: path.clone(),
        explicit: true,
    };
    assert!(matches!(explicit.load(), Err(ConfigError::Read { .. })));
    std::fs::write(&path, "[log]\nlevel = \"debug\"\n").unwrap();
    let l = implicit.load().unwrap();
    assert!(!l.embedded);
    assert_eq!(l.config.log.level, LogLevel::Debug);
}

#[test]
fn diff_lists_what_changed() {
    let old = Config::parse("[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\n[[account]]\nid = \"b\"\naor = \"sip:b@b.c\"\n", "t").unwrap();
    // Same account "a" at another line: not a change.
    let new = Config::parse(
        "[log]\nlevel = \"debug\"\n[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n\n[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\n[[account]]\nid = \"c\"\naor = \"sip:c@b.c\"\n",
        "t",
    )
    .unwrap();
    let d = new.diff(&old);
    assert_eq!(
        d.applied,
        vec![
            "log.level: info -> debug",
            "account c: added",
            "account b: removed"
        ]
    );
    assert_eq!(d.restart_required, vec!["sip.listen"]);
    assert_eq!(old.diff(&old), ConfigDiff::default());
}

#[test]
fn control_dbus_and_tcp_are_checked_by_name() {
    let e = invalid("[control]\ndbus = \"sometimes\"\n").to_string();
    assert!(e.contains("control.dbus"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef\n").unwrap();
    let tcp = |cert: &str, token: &std::path::Path| {
        format!(
            "[control]\ntcp = {{ listen = \"127.0.0.1:7443\", cert = \"{cert}\", key = \"/nonexistent/key.pem\", token_file = \"{}\" }}\n",
            token.display()
        )
    };
    let e = invalid(&tcp("cert.pem", &token)).to_string();
    assert!(
        e.contains("control.tcp") && e.contains("cert: cert.pem is not an absolute path"),
        "{e}"
    );
    let e = invalid(&tcp("/nonexistent/cert.pem", &token)).to_string();
    assert!(e.contains("cert: cannot read /nonexistent/cert.pem"), "{e}");
    let e = invalid("[control]\ntcp = { listen = \"127.0.0.1:7443\" }\n").to_string();
    assert!(e.contains("control.tcp") && e.contains("cert"), "{e}");
}
