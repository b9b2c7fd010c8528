//! The address book through voipctl: vCards another program wrote come in, go out as
//! vCard 4.0 and come back the same; contacts are added, changed, found and removed;
//! a name that means several contacts is refused with the list; bad input changes nothing.

use serde_json::Value;
use voipd_tests::*;

fn json(sb: &Sandbox, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = sb.voipctl(&a);
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn contacts(sb: &Sandbox) -> Vec<Value> {
    json(sb, &["contacts", "list"])["contacts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// What a contact is, without what the store gave it (id) or what is live (presence).
fn essence(list: &[Value]) -> Vec<(String, String, Vec<String>, bool, String)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|c| {
            (
                c["uid"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
                c["addresses"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
                c["favourite"].as_bool().unwrap_or(false),
                c["notes"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn daemon(sb: &Sandbox) -> Daemon {
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n");
    sb.start_daemon()
}

#[test]
fn vcards_from_another_program_round_trip() {
    let sb = Sandbox::new();
    let _d = daemon(&sb);
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/phone-export.vcf");
    let out = sb.voipctl(&["contacts", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out).trim(), "3 added, 0 updated");
    // What voipd does not keep is said, one line a card; the cards' bookkeeping (PRODID,
    // X-ABLabel, KIND, REV) is not.
    let err = stderr(&out);
    let kept = "not imported (voipd keeps names, SIP addresses, numbers and notes)";
    for line in [
        format!("left out: card 1 (Alice Liddell): ORG, IMPP (xmpp), EMAIL, PHOTO {kept}"),
        format!("left out: card 2 (Jürgen Müller): X-ANDROID-CUSTOM (nickname) {kept}"),
        format!("left out: card 3 (Bob \"the Builder\" O'Neil): TEL extension 12, ADR {kept}"),
    ] {
        assert!(
            err.lines().any(|l| l.ends_with(&line)),
            "{line}\n{}",
            describe(&out)
        );
    }
    assert_eq!(err.matches("left out:").count(), 3, "{}", describe(&out));
    for quiet in ["PRODID", "X-ABLABEL", "KIND", "REV", "CATEGORIES"] {
        assert!(!err.contains(quiet), "{quiet}: {}", describe(&out));
    }

    let first = contacts(&sb);
    let by_name = |list: &[Value], name: &str| {
        list.iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {list:?}"))
    };
    // Favourites first.
    assert_eq!(first[0]["name"], "Alice Liddell", "{first:?}");
    let alice = by_name(&first, "Alice Liddell");
    assert_eq!(
        alice["addresses"],
        serde_json::json!(["+441865270000", "sip:alice@127.0.0.1"]),
        "numbers and SIP addresses, xmpp left out: {alice}"
    );
    assert_eq!(alice["favourite"], true);
    assert_eq!(
        alice["notes"],
        "Lives down the rabbit hole, mostly.\nRing twice."
    );
    assert_eq!(alice["uid"], "8F2C5A1E-3B4D-4E5F-9A8B-7C6D5E4F3A2B");
    let juergen = by_name(&first, "Jürgen Müller");
    assert_eq!(
        juergen["addresses"],
        serde_json::json!(["01707654321", "+49301234567", "sip:juergen@sip.example.de"]),
        "the preferred number first: {juergen}"
    );
    let bob = by_name(&first, "Bob \"the Builder\" O'Neil");
    assert_eq!(bob["addresses"], serde_json::json!(["+15550100"]));
    assert_eq!(bob["notes"], "Door code 4711; the gate sticks");

    // Importing the same file again changes nothing, even for the card without a UID.
    let again = sb.voipctl(&["contacts", "import", file.to_str().unwrap()]);
    assert_eq!(
        stdout(&again).trim(),
        "0 added, 3 updated",
        "{}",
        describe(&again)
    );
    assert_eq!(essence(&contacts(&sb)), essence(&first));

    // Out as vCard 4.0, into an empty address book: the same contacts.
    let exported = sb.path().join("out.vcf");
    let out = sb.voipctl(&["contacts", "export", "-o", exported.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{text}");
    assert_eq!(text.matches("BEGIN:VCARD").count(), 3);
    let other = Sandbox::new();
    let _d2 = daemon(&other);
    let out = other.voipctl(&["contacts", "import", exported.to_str().unwrap()]);
    assert_eq!(
        stdout(&out).trim(),
        "3 added, 0 updated",
        "{}",
        describe(&out)
    );
    assert!(
        !stderr(&out).contains("left out"),
        "our own cards lose nothing: {}",
        describe(&out)
    );
    // Without an account there is no domain for phone-context: the local number is text.
    assert!(
        text.contains("\r\nTEL;VALUE=text;PREF=1:01707654321\r\n"),
        "{text}"
    );
    assert_eq!(essence(&contacts(&other)), essence(&first));
    // And back into the first: known by UID, updated in place.
    let out = sb.voipctl(&["contacts", "import", exported.to_str().unwrap()]);
    assert_eq!(
        stdout(&out).trim(),
        "0 added, 3 updated",
        "{}",
        describe(&out)
    );
    assert_eq!(essence(&contacts(&sb)), essence(&first));
}

#[test]
fn a_broken_vcard_file_is_refused_whole_with_its_line() {
    let sb = Sandbox::new();
    let _d = daemon(&sb);
    let bad = sb.path().join("bad.vcf");
    std::fs::write(
        &bad,
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Fine\r\nEND:VCARD\r\n\
         BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Broken\r\nthis line has no colon\r\nEND:VCARD\r\n",
    )
    .unwrap();
    let out = sb.voipctl(&["contacts", "import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("FILE: line 8"),
        "names the field and line: {}",
        describe(&out)
    );
    assert!(
        contacts(&sb).is_empty(),
        "the good card before it was not kept either"
    );
    // A number written with letters is left out, and said so; the rest comes in.
    std::fs::write(
        &bad,
        "BEGIN:VCARD\nVERSION:3.0\nFN:Flowers\nTEL:1-800-FLOWERS\nTEL:+1 800 356 9377\nEND:VCARD\n",
    )
    .unwrap();
    let out = sb.voipctl(&["contacts", "import", bad.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stderr(&out).contains("1-800-FLOWERS"), "{}", describe(&out));
    assert_eq!(
        contacts(&sb)[0]["addresses"],
        serde_json::json!(["+18003569377"])
    );
    let missing = sb.voipctl(&["contacts", "import", "/nonexistent.vcf"]);
    assert_eq!(missing.status.code(), Some(2), "{}", describe(&missing));
}

#[test]
fn contacts_are_added_changed_found_and_removed_and_names_must_be_unique() {
    let sb = Sandbox::new();
    let _d = daemon(&sb);
    let add = |args: &[&str]| {
        let mut a = vec!["--json", "contacts", "add"];
        a.extend_from_slice(args);
        let out = sb.voipctl(&a);
        assert!(out.status.success(), "{}", describe(&out));
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()
    };
    let alice = add(&[
        "Alice Liddell",
        "-a",
        "alice@example.com",
        "-a",
        "+44 1865 270000",
    ]);
    assert_eq!(
        alice["addresses"],
        serde_json::json!(["sip:alice@example.com", "+441865270000"])
    );
    assert_eq!(alice["presence"]["status"], "unknown");
    add(&["Alicia Keys", "-a", "sip:alicia@example.com", "--favourite"]);
    add(&["Bob", "-a", "bob@example.com", "--notes", "builder"]);

    // Search by a piece of the name or of an address.
    let found = json(&sb, &["contacts", "list", "ali"]);
    assert_eq!(found["contacts"].as_array().unwrap().len(), 2, "{found}");
    assert_eq!(
        found["contacts"][0]["name"], "Alicia Keys",
        "favourites first"
    );
    let found = json(&sb, &["contacts", "list", "1865"]);
    assert_eq!(found["contacts"][0]["name"], "Alice Liddell");

    // "ali" means two people: refused, both named; nothing is dialled or sent.
    for args in [
        vec!["dial", "ali"],
        vec!["message", "send", "ali", "hello"],
        vec!["contacts", "show", "ali"],
    ] {
        let out = sb.voipctl(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        let err = stderr(&out);
        assert!(
            err.contains("Alice Liddell (") && err.contains("Alicia Keys ("),
            "{args:?}: {err}"
        );
    }
    assert!(
        json(&sb, &["message", "list"])["messages"]
            .as_array()
            .is_none_or(|m| m.is_empty())
    );

    // Changes: only what is given; a bad address changes nothing at all.
    let edited = json(
        &sb,
        &[
            "contacts",
            "edit",
            "liddell",
            "--add",
            "alice@wonderland.example",
            "--remove",
            "+44 1865 270000",
            "--favourite",
            "true",
        ],
    );
    assert_eq!(
        edited["addresses"],
        serde_json::json!(["sip:alice@example.com", "sip:alice@wonderland.example"])
    );
    assert_eq!(edited["favourite"], true);
    let out = sb.voipctl(&[
        "contacts",
        "edit",
        "liddell",
        "--name",
        "Alice",
        "--add",
        "not an address",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(stderr(&out).contains("--add:"), "{}", describe(&out));
    assert_eq!(
        json(&sb, &["contacts", "show", "liddell"])["name"],
        "Alice Liddell"
    );
    let out = sb.voipctl(&["contacts", "add", "", "-a", "x@y"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("NAME:"), "{}", describe(&out));
    assert_eq!(contacts(&sb).len(), 3);

    let out = sb.voipctl(&["contacts", "remove", "Bob"]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = sb.voipctl(&["contacts", "show", "Bob"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("no contact"), "{}", describe(&out));
    // The table shows them, favourites marked.
    let table = stdout(&sb.voipctl(&["contacts", "list"]));
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("Alicia Keys ★"), "{table}");
}
