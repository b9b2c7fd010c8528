use super::*;

fn invalid(text: &str) -> Invalid {
    match Config::parse(text, "test.toml") {
        Err(ConfigError::Invalid(i)) => *i,
        Err(e) => panic!("expected a validation error, got {e}"),
        Ok(c) => panic!("expected an error, parsed {c:?}"),
    }
}

/// Every problem `text` has, one or several.
fn problems(text: &str) -> Vec<Invalid> {
    match Config::parse(text, "test.toml") {
        Err(e @ ConfigError::Read { .. }) => panic!("expected validation errors, got {e}"),
        Err(e) => e.problems().into_iter().cloned().collect(),
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
        "test.toml:4:11: account[0].expires: invalid type: string \"soon\", expected a whole number"
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
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nforward = { busy = \"sip:\" }\n",
            "account[0].forward",
            "busy: \"sip:\" is not a valid SIP URI",
        ),
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nforward = { sometimes = \"bob\" }\n",
            "account[0].forward.sometimes",
            "unknown field",
        ),
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nforward = { no_answer = { to = \"bob\", after_secs = 0 } }\n",
            "account[0].forward",
            "no_answer.after_secs: 0 is not between 1",
        ),
        (
            "[sip]\nring_timeout_secs = 10\n[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nforward = { no_answer = { to = \"bob\", after_secs = 10 } }\n",
            "account[0].forward.no_answer.after_secs",
            "not below sip.ring_timeout_secs (10)",
        ),
        (
            "[sip]\nring_timeout_secs = 10\n[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nanswering_machine = { after_secs = 12 }\n",
            "account[0].answering_machine.after_secs",
            "not below sip.ring_timeout_secs (10)",
        ),
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nanswering_machine = { min_secs = 5, max_secs = 5 }\n",
            "account[0].answering_machine",
            "min_secs: 5 is not below max_secs (5)",
        ),
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
    let e = invalid(&missing);
    assert_eq!((e.line, e.field.as_str()), (4, "account[0].password_file"));
    assert!(
        e.message.contains("cannot read") && e.message.contains("there is no such file"),
        "{e}"
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
    // Both the relative cert and the missing key, each at its own key.
    let p = problems(&tcp("cert.pem", &token));
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[0].field, "control.tcp.cert");
    assert!(
        p[0].message
            .starts_with("\"cert.pem\" must be an absolute path, e.g. \"/etc/voipd/cert.pem\""),
        "{}",
        p[0]
    );
    assert_eq!(p[1].field, "control.tcp.key");
    assert!(
        p[1].message.contains("cannot read /nonexistent/key.pem"),
        "{}",
        p[1]
    );
    let p = problems(&tcp("/nonexistent/cert.pem", &token));
    assert!(
        p[0].to_string()
            .contains("control.tcp.cert: cannot read /nonexistent/cert.pem"),
        "{p:?}"
    );
    let e = invalid("[control]\ntcp = { listen = \"127.0.0.1:7443\" }\n").to_string();
    assert!(e.contains("control.tcp") && e.contains("cert"), "{e}");
}

#[test]
fn type_names_are_put_in_words() {
    use super::error::in_words;
    for (serde, words) in [
        (
            "invalid type: string \"600\", expected u32",
            "invalid type: string \"600\", expected a whole number",
        ),
        (
            "invalid value: integer `-5`, expected u32",
            "invalid value: integer `-5`, expected a whole number from 0 to 4294967295",
        ),
        (
            "invalid value: integer `70000`, expected u16",
            "invalid value: integer `70000`, expected a whole number from 0 to 65535",
        ),
        (
            "invalid type: string \"x\", expected u8",
            "invalid type: string \"x\", expected a whole number from 0 to 255",
        ),
        (
            "invalid value: integer `-1`, expected u64",
            "invalid value: integer `-1`, expected a whole number, 0 or more",
        ),
        (
            "invalid type: floating point `1.5`, expected u64",
            "invalid type: decimal number `1.5`, expected a whole number",
        ),
        (
            "invalid type: string \"x\", expected f32",
            "invalid type: string \"x\", expected a number",
        ),
        (
            "invalid type: string \"yes\", expected a boolean",
            "invalid type: string \"yes\", expected true or false",
        ),
        (
            "invalid type: string \"opus\", expected a sequence",
            "invalid type: string \"opus\", expected a list",
        ),
        (
            "invalid type: string \"auto\", expected struct Answer",
            "invalid type: string \"auto\", expected a table",
        ),
        (
            "invalid type: integer `1`, expected a map",
            "invalid type: integer `1`, expected a table",
        ),
        (
            "invalid type: sequence, expected a string",
            "invalid type: list, expected a string",
        ),
        (
            "invalid type: map, expected u32",
            "invalid type: table, expected a whole number",
        ),
        (
            "invalid type: integer `5`, expected path string",
            "invalid type: integer `5`, expected a path, as a string",
        ),
        ("wanted string or table", "expected a string"),
    ] {
        assert_eq!(in_words(serde), words, "{serde}");
    }
    // Words already, or voipd's own: untouched.
    for same in [
        "invalid type: integer `5`, expected a string",
        "invalid type: integer `5`, expected a string or a list of strings",
        "unknown field `levle`, expected `level` or `target`",
        "unknown variant `gsm`, expected one of `opus`, `g722`, `pcmu`, `pcma`",
        "60 is outside 10..=60000 milliseconds",
        "invalid type: integer `5`, expected socket address",
    ] {
        assert_eq!(in_words(same), same);
    }
}

#[test]
fn wrong_types_are_named_in_words_in_the_file() {
    for (text, field, message) in [
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nexpires = \"600\"\n",
            "account[0].expires",
            "invalid type: string \"600\", expected a whole number",
        ),
        (
            "[sip]\nring_timeout_secs = 99999999999\n",
            "sip.ring_timeout_secs",
            "invalid value: integer `99999999999`, expected a whole number from 0 to 4294967295",
        ),
        (
            "[presence]\nsubscribe = 1\n",
            "presence.subscribe",
            "invalid type: integer `1`, expected true or false",
        ),
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\ncodecs = \"opus\"\n",
            "account[0].codecs",
            "invalid type: string \"opus\", expected a list",
        ),
        (
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nanswer = \"auto\"\n",
            "account[0].answer",
            "invalid type: string \"auto\", expected a table",
        ),
        ("[log]\nlevel = 5\n", "log.level", "expected a string"),
    ] {
        let e = invalid(text);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (field, message),
            "{text}"
        );
    }
}

#[test]
fn relative_paths_are_refused_at_their_key() {
    for (text, line, field, needle) in [
        (
            "[audio]\ninput = \"null\"\noutput = \"file:rec.wav\"\n",
            3,
            "audio.output",
            "\"rec.wav\" must be an absolute path, e.g. \"file:/var/lib/voipd/rec.wav\"",
        ),
        (
            "[audio]\ninput = \"file-once:sounds/hello.wav\"\n",
            2,
            "audio.input",
            "e.g. \"file-once:/var/lib/voipd/hello.wav\"",
        ),
        (
            "[control]\nsocket = \"voipd.sock\"\n",
            2,
            "control.socket",
            "e.g. \"/run/voipd/voipd.sock\"",
        ),
        (
            "\n[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\npassword_file = \"secrets/a\"\n",
            5,
            "account[0].password_file",
            "\"secrets/a\" must be an absolute path, e.g. \"/etc/voipd/a\"",
        ),
        (
            "[control.tcp]\nlisten = \"127.0.0.1:7443\"\ncert = \"/c\"\nkey = \"/k\"\n\
             token_file = \"token\"\n",
            5,
            "control.tcp.token_file",
            "must be an absolute path",
        ),
        (
            "[audio]\noutput = \"file:~/calls/{id}.wav\"\n",
            2,
            "audio.output",
            "voipd does not expand ~",
        ),
    ] {
        let p = problems(text);
        let e = p
            .iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("no {field} in {p:?}"));
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains(needle), "{e}");
        assert!(
            e.message.contains("under systemd it runs in /") || e.message.contains('~'),
            "{e}"
        );
    }
    // Absolute ones, and "{id}" in them, are fine.
    let c = Config::parse(
        "[audio]\ninput = \"file-once:/var/lib/voipd/hello.wav\"\noutput = \"file:/var/lib/voipd/{id}.wav\"\n",
        "t",
    )
    .unwrap();
    assert_eq!(
        c.audio.output,
        AudioEndpoint::File("/var/lib/voipd/{id}.wav".into())
    );
}

#[test]
fn tilde_is_explained_not_expanded() {
    let e = AudioEndpoint::try_from("file:~/x.wav".to_string())
        .unwrap()
        .check_absolute()
        .unwrap_err();
    assert!(e.starts_with("\"~/x.wav\": voipd does not expand ~"), "{e}");
    assert!(
        e.contains("/x.wav\""),
        "an example with the home directory: {e}"
    );
}

#[test]
fn every_file_problem_is_reported_at_once_in_file_order() {
    let text = "[audio]\noutput = \"file:rec.wav\"\n\n[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\n\
                password_file = \"/nonexistent/voipd/a\"\n\n[[account]]\nid = \"b\"\n\
                aor = \"sip:b@b.c\"\npassword_file = \"/nonexistent/voipd/b\"\n";
    let e = Config::parse(text, "test.toml").unwrap_err();
    let p = e.problems();
    let at: Vec<(usize, &str)> = p.iter().map(|i| (i.line, i.field.as_str())).collect();
    assert_eq!(
        at,
        [
            (2, "audio.output"),
            (7, "account[0].password_file"),
            (12, "account[1].password_file")
        ]
    );
    // One line each, as --check-config prints them.
    assert_eq!(e.to_string().lines().count(), 3, "{e}");
    assert!(
        e.to_string()
            .contains("test.toml:7:17: account[0].password_file: cannot read /nonexistent/voipd/a"),
        "{e}"
    );
}

#[test]
fn unreadable_password_file_says_what_to_do() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let text = |p: &std::path::Path| {
        format!(
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\npassword_file = \"{}\"\n",
            p.display()
        )
    };
    // A directory where the file should be.
    let e = invalid(&text(dir.path()));
    assert_eq!(e.field, "account[0].password_file");
    assert!(e.message.contains("it is a directory"), "{e}");
    // An empty file.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    assert!(invalid(&text(&empty)).message.contains("is empty"));
    // Mode 0000: only root reads it anyway, and then there is nothing to see.
    let locked = dir.path().join("locked");
    std::fs::write(&locked, "pw\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_err() {
        let e = invalid(&text(&locked));
        assert_eq!((e.line, e.field.as_str()), (4, "account[0].password_file"));
        assert!(
            e.message.contains("permission denied") && e.message.contains("group voipd, mode 0640"),
            "{e}"
        );
    }
}

fn devices(inputs: &[&str], outputs: &[&str]) -> SoundDevices {
    SoundDevices {
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        error: None,
    }
}

/// What `--check-config` adds to `text` (which must otherwise be valid) given `present`.
fn lacking(text: &str, present: SoundDevices) -> Vec<Invalid> {
    let config = Config::parse(text, "test.toml").unwrap();
    checks::machine_problems(&config, text, "test.toml", || present)
}

#[test]
fn absent_sound_devices_are_named_with_a_guess() {
    let p = lacking(
        "[audio]\ninput = \"nul\"\noutput = \"usb headset\"\n",
        devices(&["default", "USB Headset"], &["default", "USB Headset"]),
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(
        p[0].to_string(),
        "test.toml:2:9: audio.input: no sound device \"nul\" here (did you mean \"null\"?); \
         devices: \"default\", \"USB Headset\""
    );
    assert_eq!((p[1].line, p[1].field.as_str()), (3, "audio.output"));
    assert!(
        p[1].message.contains("(did you mean \"USB Headset\"?)"),
        "{}",
        p[1]
    );

    let p = lacking("[audio]\ninput = \"Headset\"\n", devices(&[], &[]));
    assert_eq!(
        p[0].message,
        "no sound device \"Headset\" here; there are no sound devices"
    );
    let failed = SoundDevices {
        error: Some("ALSA is broken".into()),
        ..SoundDevices::default()
    };
    let p = lacking("[audio]\noutput = \"Headset\"\n", failed);
    assert!(
        p[0].message
            .ends_with("; the sound devices cannot be listed: ALSA is broken"),
        "{}",
        p[0]
    );

    // A device that is there, and inputs checked against inputs only.
    let present = devices(&["Mic"], &["Speaker"]);
    assert!(
        lacking(
            "[audio]\ninput = \"Mic\"\noutput = \"Speaker\"\n",
            present.clone()
        )
        .is_empty()
    );
    let p = lacking("[audio]\ninput = \"Speaker\"\n", present);
    assert_eq!(p.len(), 1);

    // No device named: the sound system is not asked at all.
    let config = Config::parse("[audio]\ninput = \"null\"\n", "t").unwrap();
    let p = checks::machine_problems(&config, "", "t", || -> SoundDevices {
        panic!("devices listed though none is named")
    });
    assert!(p.is_empty());
}

#[test]
fn long_device_lists_are_cut() {
    let many: Vec<String> = (0..20).map(|i| format!("dev{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let p = lacking("[audio]\ninput = \"Headset\"\n", devices(&many, &[]));
    assert!(p[0].message.ends_with("\"dev11\" and 8 more"), "{}", p[0]);
}

#[test]
fn guesses_for_names_that_are_no_device() {
    let devices = ["USB Headset".to_string(), "hw:CARD=PCH,DEV=0".to_string()];
    for (name, guess) in [
        ("nul", Some("null")),
        ("nulll", Some("null")),
        ("nlul", Some("null")),
        ("NULL", Some("null")),
        ("defualt", Some("default")),
        ("tone", Some("tone:440")),
        ("tnoe:440", Some("tone:440")),
        (
            "flie:/var/lib/voipd/x.wav",
            Some("file:/var/lib/voipd/x.wav"),
        ),
        ("file_once:/x.wav", Some("file-once:/x.wav")),
        ("usb headset", Some("USB Headset")),
        ("USB Headst", Some("USB Headset")),
        ("hw:CARD=PCH,DEV=1", Some("hw:CARD=PCH,DEV=0")),
        ("Headset", None),
        ("hw:1", None),
        ("x", None),
    ] {
        assert_eq!(
            checks::suggestion(name, true, &devices).as_deref(),
            guess,
            "{name}"
        );
    }
    // A tone is no output.
    assert_eq!(checks::suggestion("tnoe:440", false, &devices), None);
    assert_eq!(checks::suggestion("tone", false, &devices), None);
    assert_eq!(
        checks::suggestion("flie:/x.wav", false, &devices).as_deref(),
        Some("file:/x.wav")
    );
    assert_eq!(checks::distance("nul", "null"), 1);
    assert_eq!(checks::distance("nlul", "null"), 1);
    assert_eq!(checks::distance("", "abc"), 3);
    assert_eq!(checks::distance("kitten", "sitting"), 3);
}

#[test]
fn missing_input_file_and_output_directory_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[audio]\ninput = \"file:{0}/absent.wav\"\noutput = \"file:{0}/no/dir/{{id}}.wav\"\n",
        dir.path().display()
    );
    let p = lacking(&text, SoundDevices::default());
    let at: Vec<(usize, &str)> = p.iter().map(|i| (i.line, i.field.as_str())).collect();
    assert_eq!(at, [(2, "audio.input"), (3, "audio.output")], "{p:?}");
    assert!(p[0].message.contains("there is no such file"), "{}", p[0]);
    assert!(p[1].message.contains("no directory"), "{}", p[1]);
    // Present, or made per call: nothing to say.
    std::fs::write(dir.path().join("absent.wav"), b"RIFF").unwrap();
    let text = format!(
        "[audio]\ninput = \"file:{0}/absent.wav\"\noutput = \"file:{0}/{{id}}.wav\"\n",
        dir.path().display()
    );
    assert!(lacking(&text, SoundDevices::default()).is_empty());
}

/// Unit tests run from target/…/deps, where the helper never is: what a daemon installed
/// without voipd-dtls beside it is told.
#[test]
fn dtls_without_its_helper_is_named() {
    let text = "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nmedia_encryption = \"dtls\"\n";
    let p = lacking(text, SoundDevices::default());
    let at: Vec<(usize, &str)> = p.iter().map(|i| (i.line, i.field.as_str())).collect();
    assert_eq!(at, [(4, "account[0].media_encryption")], "{p:?}");
    assert!(p[0].message.contains("deps/voipd-dtls"), "{}", p[0]);
    let sdes = text.replace("\"dtls\"", "\"sdes\"");
    assert!(lacking(&sdes, SoundDevices::default()).is_empty());
}

#[test]
fn check_refuses_what_load_only_warns_of() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[log]\nlevel = \"info\"\n\n[audio]\ninput = \"nul\"\n",
    )
    .unwrap();
    let location = ConfigLocation {
        path: path.clone(),
        explicit: true,
    };
    // "nul" is no device on any machine, whatever this one has.
    let loaded = location.load().unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(
        (loaded.warnings[0].line, loaded.warnings[0].field.as_str()),
        (5, "audio.input")
    );
    let e = location.check().unwrap_err();
    let p = e.problems();
    assert_eq!((p[0].line, p[0].field.as_str()), (5, "audio.input"));
    assert!(
        p[0].message
            .starts_with("no sound device \"nul\" here (did you mean \"null\"?)"),
        "{e}"
    );

    // With a file problem besides, check() reports both; load() stops at the file.
    std::fs::write(
        &path,
        "[audio]\ninput = \"nul\"\noutput = \"file:rec.wav\"\n",
    )
    .unwrap();
    let e = location.check().unwrap_err();
    let fields: Vec<&str> = e.problems().into_iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["audio.input", "audio.output"]);
    let e = location.load().unwrap_err();
    let fields: Vec<&str> = e.problems().into_iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["audio.output"]);
}

#[test]
fn media_encryption_and_srtp_suites_are_checked() {
    let c = Config::parse(
        "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nmedia_encryption = \"sdes-optional\"\n\
         srtp_suites = [\"AES_CM_128_HMAC_SHA1_32\"]\n",
        "t",
    )
    .unwrap();
    assert_eq!(
        c.accounts[0].media_encryption,
        MediaEncryptionPolicy::SdesOptional
    );
    assert_eq!(c.accounts[0].srtp_suites, [SrtpSuite::AesCm128HmacSha1_32]);
    let e = invalid("[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nsrtp_suites = [\"F8\"]\n");
    assert!(
        e.message
            .contains("srtp_suites: \"F8\" is not a suite voipd speaks; use AEAD_AES_128_GCM"),
        "{e}"
    );
    let e = invalid("[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nmedia_encryption = \"zrtp\"\n");
    assert_eq!(e.field, "account[0].media_encryption", "{e}");
}

#[test]
fn stun_servers_are_rfc_7064_uris() {
    let stun = |v: &str| {
        Config::parse(
            &format!("[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nstun = \"{v}\"\n"),
            "t",
        )
        .map(|c| c.accounts[0].stun.clone().unwrap())
    };
    let s = stun("stun:stun.example.com").unwrap();
    assert_eq!((s.host.as_str(), s.port), ("stun.example.com", 3478));
    assert_eq!(stun("STUN:192.0.2.1:19302").unwrap().port, 19302);
    let v6 = stun("stun:[2001:db8::1]:3479").unwrap();
    assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 3479));
    assert_eq!(v6.to_string(), "stun:[2001:db8::1]:3479");
    for (bad, why) in [
        ("stun.example.com", "is not a stun: URI"),
        ("stuns:stun.example.com", "STUN over TLS"),
        ("stun:", "has no host"),
        ("stun:h:0", "not 1-65535"),
        ("stun:h:99999", "not 1-65535"),
        ("stun:[2001:db8::1", "open '['"),
    ] {
        let e = invalid(&format!(
            "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\nstun = \"{bad}\"\n"
        ));
        assert_eq!(e.field, "account[0].stun", "{e}");
        assert!(e.message.contains(why), "{bad}: {e}");
    }
}

#[test]
fn turn_needs_ice_and_a_turn_url() {
    let base = "[[account]]\nid = \"a\"\naor = \"sip:a@b.c\"\n";
    let c = Config::parse(
        &format!("{base}ice = true\nturn = {{ url = \"turn:203.0.113.1\", username = \"u\", password = \"p\" }}\n"),
        "t",
    )
    .unwrap();
    let t = c.accounts[0].turn.clone().unwrap();
    assert_eq!(
        (t.host.as_str(), t.port, t.username.as_str()),
        ("203.0.113.1", 3478, "u")
    );
    assert!(c.accounts[0].ice);
    let e = invalid(&format!(
        "{base}turn = {{ url = \"turn:h\", username = \"u\", password = \"p\" }}\n"
    ));
    assert!(e.message.contains("set ice = true"), "{e}");
    for (bad, why) in [
        ("stun:h", "is not a turn: URI"),
        ("turns:h", "TURN over TLS"),
        ("turn:h?transport=tcp", "other than UDP"),
    ] {
        let e = invalid(&format!(
            "{base}ice = true\nturn = {{ url = \"{bad}\", username = \"u\", password = \"p\" }}\n"
        ));
        assert!(e.message.contains(why), "{bad}: {e}");
        assert!(e.field.starts_with("account[0].turn"), "{e}");
    }
}

#[test]
fn tls_files_are_read_and_checked_at_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let e = invalid(&format!(
        "[[account]]\nid = \"a\"\naor = \"sips:a@b.c\"\ntls = {{ ca = {:?} }}\n",
        junk.display().to_string()
    ));
    assert_eq!((e.line, e.field.as_str()), (4, "account[0].tls.ca"), "{e}");
    assert!(e.message.contains("no PEM certificate"), "{e}");
    let e = invalid(&format!(
        "[[account]]\nid = \"a\"\naor = \"sips:a@b.c\"\ntls = {{ client_cert = {:?} }}\n",
        junk.display().to_string()
    ));
    assert!(
        e.message.contains("client_cert and client_key go together"),
        "{e}"
    );
    let e = invalid("[sip]\nlisten = [\"tls:127.0.0.1:5061\"]\n");
    assert_eq!((e.line, e.field.as_str()), (2, "sip.listen"), "{e}");
    assert!(
        e.message
            .contains("needs sip.tls_certificate and sip.tls_key"),
        "{e}"
    );
    let e = invalid(&format!(
        "[sip]\ntls_certificate = {:?}\ntls_key = \"/nonexistent/key.pem\"\n",
        junk.display().to_string()
    ));
    assert_eq!(e.field, "sip.tls_key", "{e}");
}
