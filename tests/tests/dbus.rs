//! The D-Bus face, driven by the stock clients a desktop uses (busctl, gdbus) on a private
//! dbus-daemon: objects, properties, methods, signals and named errors, while a real call
//! to baresip through Kamailio runs; the committed introspection is what the daemon serves.

use std::time::Duration;

use voipd_tests::audio::assert_tone;
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::dbus::{Bus, NAME, ROOT};
use voipd_tests::peers::{Kamailio, Sipp};
use voipd_tests::*;

const MANAGER: &str = "org.voipd.Manager1";
const ACCOUNT: &str = "org.voipd.Account1";
const CALL: &str = "org.voipd.Call1";
const CONTACTS: &str = "org.voipd.Contacts1";

fn start_daemon(sb: &Sandbox, bus: &Bus) -> Daemon {
    let mut d = sb.spawn_daemon(&[], &bus.env());
    sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    bus.wait_for_voipd();
    d
}

/// gdbus call on voipd; its stdout, or the error it printed.
fn gdbus_call(bus: &Bus, path: &str, method: &str, args: &[&str]) -> Result<String, String> {
    let mut a = vec![
        "call",
        "--dest",
        NAME,
        "--object-path",
        path,
        "--method",
        method,
    ];
    a.extend_from_slice(args);
    let out = bus.gdbus(&a);
    if out.status.success() {
        Ok(stdout(&out))
    } else {
        Err(stderr(&out))
    }
}

#[test]
fn a_desktop_client_sees_and_drives_a_real_call_over_dbus() {
    let sb = Sandbox::new();
    let bus = Bus::start(sb.path());
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"tone:440\"\noutput = \"file:{}\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\ncodecs = [\"pcmu\"]\n",
        sb.path().join("voipd-heard.wav").display(),
        kam.port
    ));
    let _d = start_daemon(&sb, &bus);

    // The manager and the account object, with their properties.
    assert_eq!(
        bus.property(ROOT, MANAGER, "Version"),
        format!("s \"{}\"", env!("CARGO_PKG_VERSION"))
    );
    let acct = format!("{ROOT}/account/alice");
    wait_until(
        || bus.property(&acct, ACCOUNT, "State") == "s \"registered\"",
        "the account object to say registered",
    );
    assert_eq!(bus.property(&acct, ACCOUNT, "LastError"), "s \"\"");
    let expires: u64 = bus.property(&acct, ACCOUNT, "Expires")[2..]
        .parse()
        .unwrap();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    assert!(expires > now_us, "Expires {expires} is not in the future");
    assert!(managed(&bus).contains(&acct));

    let mut b = Baresip::start(sb.path(), BaresipOptions::carol(kam.port));
    let monitor = bus.monitor();

    // Dial on the manager returns the new call's object.
    let out = gdbus_call(&bus, ROOT, "org.voipd.Manager1.Dial", &["carol", ""]).unwrap();
    let path = out
        .split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no object path in {out}"))
        .to_string();
    assert!(path.starts_with(&format!("{ROOT}/call/")), "{path}");
    wait_until(
        || bus.property(&path, CALL, "State") == "s \"active\"",
        "the call object to say active",
    );
    b.wait_event("CALL_ESTABLISHED");
    assert!(bus.property(&path, CALL, "RemoteUri").contains("carol"));
    assert_eq!(bus.property(&path, CALL, "Direction"), "s \"outgoing\"");
    assert_eq!(bus.property(&path, CALL, "Account"), "s \"alice\"");
    assert_eq!(bus.property(&path, CALL, "Codec"), "s \"PCMU\"");
    assert_eq!(bus.property(&path, CALL, "Held"), "b false");
    assert_ne!(bus.property(&path, CALL, "AnsweredAt"), "t 0");
    let listed = bus.busctl_ok(&["call", NAME, ROOT, MANAGER, "ListCalls"]);
    assert!(listed.contains(&path), "{listed}");

    // Audio both ways while the call runs.
    std::thread::sleep(Duration::from_millis(2500));

    // Digits from baresip arrive as a signal on the call object.
    b.command("sndcode", "5");
    wait_until(
        || {
            monitor
                .text()
                .contains("org.voipd.Call1.DtmfReceived ('5',)")
        },
        "a DtmfReceived signal",
    );

    // Hold and resume through methods; the property follows.
    bus.busctl_ok(&["call", NAME, &path, CALL, "Hold"]);
    wait_until(
        || bus.property(&path, CALL, "Held") == "b true",
        "Held to become true",
    );
    bus.busctl_ok(&["call", NAME, &path, CALL, "Resume"]);
    wait_until(
        || bus.property(&path, CALL, "Held") == "b false",
        "Held to become false",
    );
    bus.busctl_ok(&["call", NAME, &path, CALL, "Mute", "b", "true"]);
    wait_until(
        || bus.property(&path, CALL, "Muted") == "b true",
        "Muted to become true",
    );

    // Hang up on the call object: baresip sees it end, and the object goes.
    gdbus_call(&bus, &path, "org.voipd.Call1.Hangup", &[]).unwrap();
    b.wait_event("CALL_CLOSED");
    wait_until(
        || !managed(&bus).contains("/call/"),
        "the call object to vanish",
    );

    // What a widget listening to signals saw, in order. (gdbus monitor prints the last
    // signal a moment after the object is gone from GetManagedObjects: wait for it.)
    wait_until(
        || monitor.text().contains("InterfacesRemoved"),
        "the monitor to print InterfacesRemoved",
    );
    let seen = monitor.text();
    let pos = |what: &str| {
        seen.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in the signals:\n{seen}"))
    };
    let added = pos(&format!("InterfacesAdded (objectpath '{path}'"));
    let active = pos("'State': <'active'>");
    let held = pos("'Held': <true>");
    let ended = pos("'State': <'ended'>");
    let removed = pos(&format!("InterfacesRemoved (objectpath '{path}'"));
    assert!(
        added < active && active < held && held < ended && ended < removed,
        "{seen}"
    );
    // The call ended with our hang-up: the code is on the object's last change.
    assert!(seen.contains("'EndCode': <uint16 200>"), "{seen}");

    assert_tone(
        &sb.path().join("voipd-heard.wav"),
        1000.0,
        &[440.0, 1500.0],
        15,
    );
    let theirs = b.received_recordings();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_tone(&theirs[0], 440.0, &[1000.0, 1500.0], 15);

    // baresip calls in: the widget sees it ringing, answers it and sends digits.
    b.command("dial", "sip:alice@127.0.0.1");
    let incoming = wait_call_object(&bus, "ringing");
    assert_eq!(bus.property(&incoming, CALL, "Direction"), "s \"incoming\"");
    assert!(bus.property(&incoming, CALL, "RemoteUri").contains("carol"));
    bus.busctl_ok(&["call", NAME, &incoming, CALL, "Answer"]);
    wait_until(
        || bus.property(&incoming, CALL, "State") == "s \"active\"",
        "the incoming call to be active",
    );
    b.wait_event("CALL_ESTABLISHED");
    bus.busctl_ok(&["call", NAME, &incoming, CALL, "SendDtmf", "s", "#9"]);
    let first = b.wait_event("CALL_DTMF_START");
    let second = b.wait_event("CALL_DTMF_START");
    assert_eq!(
        (first["param"].as_str(), second["param"].as_str()),
        (Some("#"), Some("9"))
    );
    // A message for the caller: played into the call, heard there.
    bus.busctl_ok(&[
        "call",
        NAME,
        &incoming,
        CALL,
        "Play",
        "sd",
        "tone:1500",
        "1.5",
    ]);
    let e = bus.busctl(&["call", NAME, &incoming, CALL, "Play", "sd", "tone:5", "0"]);
    let e = stderr(&e);
    assert!(e.contains("what: tone frequency \"5\""), "{e}");
    std::thread::sleep(std::time::Duration::from_millis(2000));
    // The far side hangs up; the object goes.
    b.command("hangup", "");
    b.wait_event("CALL_CLOSED");
    let theirs = b.received_recordings();
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    assert_tone(&theirs[1], 1500.0, &[1000.0, 440.0], 12);
    wait_until(
        || !managed(&bus).contains("/call/"),
        "the incoming call object to vanish",
    );

    // Another incoming call, refused as busy over D-Bus: baresip hears 486.
    b.command("dial", "sip:alice@127.0.0.1");
    let refused = wait_call_object(&bus, "ringing");
    bus.busctl_ok(&["call", NAME, &refused, CALL, "Reject", "b", "true"]);
    let closed = b.wait_event("CALL_CLOSED");
    assert!(closed.to_string().contains("486"), "{closed}");

    // The history of those three calls, and no missed one (the refusal was ours).
    wait_until(
        || {
            bus.busctl_ok(&[
                "call",
                NAME,
                ROOT,
                MANAGER,
                "ListHistory",
                "ubb",
                "10",
                "false",
                "false",
            ])
            .starts_with("aa{sv} 3 ")
        },
        "three calls in the history",
    );
    assert_eq!(bus.property(ROOT, MANAGER, "MissedCalls"), "u 0");

    // The account's methods: unregister and register again, seen in its State.
    bus.busctl_ok(&["call", NAME, &acct, ACCOUNT, "Unregister"]);
    wait_until(
        || bus.property(&acct, ACCOUNT, "State") == "s \"unregistered\"",
        "the account to be unregistered",
    );
    assert_eq!(bus.property(&acct, ACCOUNT, "Expires"), "t 0");
    bus.busctl_ok(&["call", NAME, &acct, ACCOUNT, "Register"]);
    wait_until(
        || bus.property(&acct, ACCOUNT, "State") == "s \"registered\"",
        "the account to be registered again",
    );
    let seen = monitor.text();
    assert!(
        seen.contains("'State': <'unregistered'>") && seen.contains("'State': <'registering'>"),
        "{seen}"
    );

    // Call forwarding set over D-Bus: seen in the Forwarding property and its signal. A
    // bad rule is refused, naming the argument, and changes nothing.
    bus.busctl_ok(&[
        "call",
        NAME,
        &acct,
        ACCOUNT,
        "SetForward",
        "ssu",
        "no-answer",
        "bob",
        "15",
    ]);
    assert_eq!(
        bus.property(&acct, ACCOUNT, "Forwarding"),
        "a(ssub) 4 \"always\" \"\" 0 false \"busy\" \"\" 0 false \"no-answer\" \"bob\" 15 true \"unavailable\" \"\" 0 false"
    );
    let bad = bus.busctl(&[
        "call",
        NAME,
        &acct,
        ACCOUNT,
        "SetForward",
        "ssu",
        "sometimes",
        "bob",
        "0",
    ]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("rule"),
        "{}",
        describe(&bad)
    );
    bus.busctl_ok(&["call", NAME, &acct, ACCOUNT, "ClearForward", "s", ""]);
    wait_until(
        || {
            monitor
                .text()
                .contains("'Forwarding': <[('always', '', uint32 0, false)")
        },
        "Forwarding to change back in a signal",
    );
    assert!(
        monitor.text().contains("('no-answer', 'bob', 15, true)"),
        "{}",
        monitor.text()
    );
}

/// The ObjectManager's view, read in one call (`busctl tree` walks the objects one by one
/// and fails when one vanishes meanwhile).
fn managed(bus: &Bus) -> String {
    bus.busctl_ok(&[
        "call",
        NAME,
        ROOT,
        "org.freedesktop.DBus.ObjectManager",
        "GetManagedObjects",
    ])
}

/// The path of the one call object, once its State is `state`.
fn wait_call_object(bus: &Bus, state: &str) -> String {
    let mut found = String::new();
    wait_until(
        || {
            found = managed(bus)
                .split('"')
                .find(|w| w.starts_with(&format!("{ROOT}/call/")))
                .unwrap_or_default()
                .to_string();
            !found.is_empty() && bus.property(&found, CALL, "State") == format!("s \"{state}\"")
        },
        &format!("a call object in state {state}"),
    );
    found
}

#[test]
fn errors_are_named_and_change_nothing() {
    let sb = Sandbox::new();
    let bus = Bus::start(sb.path());
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\nenabled = false\n",
    );
    let _d = start_daemon(&sb, &bus);
    let e = gdbus_call(&bus, ROOT, "org.voipd.Manager1.Dial", &["carol", "nosuch"]).unwrap_err();
    assert!(e.contains("org.voipd.Error.NotFound"), "{e}");
    assert!(e.contains("nosuch"), "{e}");
    let e = gdbus_call(&bus, ROOT, "org.voipd.Manager1.Dial", &["sip:", "alice"]).unwrap_err();
    assert!(e.contains("org.voipd.Error.InvalidArgument"), "{e}");
    assert!(e.contains("uri"), "names the argument: {e}");
    assert_eq!(
        bus.busctl_ok(&["call", NAME, ROOT, MANAGER, "ListCalls"])
            .trim(),
        "ao 0"
    );
    // A call object that never was: the bus's own error, and the daemon carries on.
    let e = gdbus_call(
        &bus,
        &format!("{ROOT}/call/99"),
        "org.voipd.Call1.Hangup",
        &[],
    )
    .unwrap_err();
    assert!(e.contains("org.freedesktop.DBus.Error.Unknown"), "{e}");
    let out = sb.voipctl(&["status"]);
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn a_panel_keeps_the_address_book_and_lists_messages() {
    let sb = Sandbox::new();
    let bus = Bus::start(sb.path());
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\nenabled = false\n",
    );
    let _d = start_daemon(&sb, &bus);
    let monitor = bus.monitor();
    let call = |method: &str, args: &[&str]| {
        let mut a = vec!["call", NAME, ROOT, CONTACTS, method];
        a.extend_from_slice(args);
        bus.busctl_ok(&a)
    };
    // A phone's export in, through D-Bus.
    let vcf = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/phone-export.vcf"),
    )
    .unwrap();
    // Three added; what voipd does not keep is named, a line per card.
    let imported = call("ImportContacts", &["s", &vcf]);
    assert!(imported.starts_with("uuas 3 0 3 "), "{imported}");
    assert!(
        imported.contains("card 1 (Alice Liddell): ORG, IMPP (xmpp), EMAIL, PHOTO not imported"),
        "{imported}"
    );
    wait_until(
        || {
            monitor
                .text()
                .contains("ContactsImported (uint32 3, uint32 0)")
        },
        "a ContactsImported signal",
    );
    let found = call("ListContacts", &["s", "liddell"]);
    assert!(found.starts_with("aa{sv} 1 "), "{found}");
    assert!(found.contains("\"Alice Liddell\""), "{found}");
    assert!(found.contains("\"sip:alice@127.0.0.1\""), "{found}");
    // Not yet asked (unknown), or asked and nobody listens at 127.0.0.1:5060 (offline).
    assert!(
        found.contains("\"Presence\" s \"unknown\"")
            || found.contains("\"Presence\" s \"offline\""),
        "{found}"
    );
    assert!(found.contains("\"PresenceReason\" s"), "{found}");

    // Add, change, read back, remove; each change signalled.
    let id = call(
        "AddContact",
        &["sasbs", "Zed", "1", "zed@127.0.0.1", "false", ""],
    );
    let id = id.trim().trim_start_matches("x ").to_string();
    wait_until(
        || monitor.text().contains("ContactChanged") && monitor.text().contains("'Zed'"),
        "a ContactChanged signal for Zed",
    );
    call(
        "EditContact",
        &[
            "sa{sv}",
            "Zed",
            "2",
            "Favourite",
            "b",
            "true",
            "AddAddresses",
            "as",
            "1",
            "+1 555 0100",
        ],
    );
    let zed = call("GetContact", &["s", &id]);
    assert!(zed.contains("\"Favourite\" b true"), "{zed}");
    assert!(zed.contains("\"sip:zed@127.0.0.1\" \"+15550100\""), "{zed}");
    // A bad change is refused by name and changes nothing.
    let e = gdbus_call(
        &bus,
        ROOT,
        "org.voipd.Contacts1.EditContact",
        &[
            "Zed",
            "{'Name': <'Zed Z'>, 'AddAddresses': <['not an address']>}",
        ],
    )
    .unwrap_err();
    assert!(
        e.contains("org.voipd.Error.InvalidArgument") && e.contains("add_addresses"),
        "{e}"
    );
    let e = gdbus_call(
        &bus,
        ROOT,
        "org.voipd.Contacts1.EditContact",
        &["Zed", "{'Colour': <'red'>}"],
    )
    .unwrap_err();
    assert!(e.contains("Colour"), "{e}");
    assert!(call("GetContact", &["s", "Zed"]).contains("\"Name\" s \"Zed\""));
    let exported = call("ExportContacts", &[]);
    assert!(
        exported.contains("FN:Zed") && exported.contains("FN:Alice Liddell"),
        "{exported}"
    );
    assert_eq!(
        call("RemoveContact", &["s", "Zed"]).trim(),
        format!("x {id}")
    );
    wait_until(
        || {
            monitor
                .text()
                .contains(&format!("ContactRemoved (int64 {id},)"))
        },
        "a ContactRemoved signal",
    );
    let e = gdbus_call(&bus, ROOT, "org.voipd.Contacts1.GetContact", &["Zed"]).unwrap_err();
    assert!(e.contains("org.voipd.Error.NotFound"), "{e}");

    // A message on its way (to nobody who answers) is listed with its state.
    let out = sb.voipctl(&["message", "send", "sip:nobody@127.0.0.1:9", "hello?"]);
    assert!(out.status.success(), "{}", describe(&out));
    let list = |with: &str, mark: &str| {
        bus.busctl_ok(&[
            "call",
            NAME,
            ROOT,
            MANAGER,
            "ListMessages",
            "sub",
            with,
            "10",
            mark,
        ])
    };
    let listed = list("", "false");
    assert!(listed.starts_with("aa{sv} 1 "), "{listed}");
    assert!(
        listed.contains("\"hello?\"") && listed.contains("\"queued\""),
        "{listed}"
    );
    assert_eq!(
        list("Alice Liddell", "false").trim(),
        "aa{sv} 0",
        "Alice has none"
    );
    // One comes in (SIPp): unread until listed with mark_read.
    let mut sipp = Sipp::client(sb.path(), "message_uac.xml", sb.sip_port());
    assert_eq!(sipp.wait(Duration::from_secs(30)), 0, "{}", sipp.output());
    wait_until(
        || bus.property(ROOT, MANAGER, "UnreadMessages") == "u 1",
        "UnreadMessages 1",
    );
    let listed = list("", "true");
    assert!(
        listed.contains("\"Read\" b false"),
        "listed as it was: {listed}"
    );
    wait_until(
        || bus.property(ROOT, MANAGER, "UnreadMessages") == "u 0",
        "UnreadMessages 0 once listed",
    );
    assert!(
        monitor.text().contains("'UnreadMessages': <uint32 0>"),
        "{}",
        monitor.text()
    );

    call("SetPresence", &["ss", "away", "out"]);
    assert_eq!(call("GetPresence", &[]).trim(), "ss \"away\" \"out\"");
    let e = gdbus_call(
        &bus,
        ROOT,
        "org.voipd.Contacts1.SetPresence",
        &["sleepy", ""],
    )
    .unwrap_err();
    assert!(
        e.contains("org.voipd.Error.InvalidArgument") && e.contains("status"),
        "{e}"
    );
}

/// The interface element `name` from an introspection document, trimmed line by line.
fn interface_xml(doc: &str, name: &str) -> String {
    let start = doc
        .find(&format!("<interface name=\"{name}\">"))
        .unwrap_or_else(|| panic!("no interface {name} in:\n{doc}"));
    let end = start + doc[start..].find("</interface>").expect("closed interface");
    doc[start..end]
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

/// VOIPD_BLESS=1 rewrites the committed contract from the daemon (after a deliberate change).
fn bless(file: &std::path::Path, served: &str, iface: &str) {
    let start = served
        .find(&format!("  <interface name=\"{iface}\">"))
        .expect("interface served");
    let end = start + served[start..].find("</interface>").expect("closed") + "</interface>".len();
    let text = format!(
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \
         \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n\
         <!-- The contract of voipd's D-Bus interface {iface}, as the daemon introspects it.\n     \
         A test compares this file with the running daemon; change both together. -->\n\
         <node>\n{}\n</node>\n",
        &served[start..end]
    );
    std::fs::write(file, text).expect("write contract");
}

#[test]
fn the_committed_introspection_is_what_the_daemon_serves() {
    let sb = Sandbox::new();
    let bus = Bus::start(sb.path());
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1\"\nenabled = false\n",
    );
    let _d = start_daemon(&sb, &bus);
    // The sound test gives a call object without any peer.
    assert!(sb.voipctl(&["dial", "echo"]).status.success());
    let call = format!("{ROOT}/call/1");
    wait_until(
        || managed(&bus).contains(&call),
        "the sound test's call object",
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/dbus");
    let mut mismatches = Vec::new();
    for (iface, path) in [
        (MANAGER, ROOT.to_string()),
        (CONTACTS, ROOT.to_string()),
        ("org.voipd.Voicemail1", ROOT.to_string()),
        (ACCOUNT, format!("{ROOT}/account/alice")),
        (CALL, call.clone()),
    ] {
        let served = bus.busctl_ok(&["--xml-interface", "introspect", NAME, &path]);
        let file = dir.join(format!("{iface}.xml"));
        if std::env::var_os("VOIPD_BLESS").is_some() {
            bless(&file, &served, iface);
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        if interface_xml(&served, iface) != interface_xml(&committed, iface) {
            mismatches.push(format!(
                "{} differs from what the daemon serves:\n{}",
                file.display(),
                &served[served
                    .find(&format!("<interface name=\"{iface}\">"))
                    .unwrap_or(0)..]
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    assert!(sb.voipctl(&["hangup"]).status.success());
}

#[test]
fn without_a_bus_the_daemon_runs_on_with_grpc_and_warns_once() {
    let sb = Sandbox::new();
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n");
    let nowhere = format!("unix:path={}", sb.path().join("no-bus").display());
    let mut d = sb.spawn_daemon(&[], &[("DBUS_SESSION_BUS_ADDRESS", &nowhere)]);
    sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    wait_until(
        || d.log().contains("D-Bus unavailable"),
        "the D-Bus warning",
    );
    let out = sb.voipctl(&["status"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(d.try_exit().is_none(), "voipd exited:\n{}", d.log());
    assert_eq!(
        d.log().matches("D-Bus unavailable").count(),
        1,
        "{}",
        d.log()
    );
}

#[test]
fn on_the_system_bus_only_voipd_owns_the_name_and_only_its_group_may_call() {
    ensure_user("voipd", Some("voipd"));
    ensure_user("voipd-test-member", Some("voipd"));
    ensure_user("voipd-test-other", None);
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../systemd/dbus/org.voipd.Voipd.conf");
    let config = "[control]\ndbus = \"system\"\n\n[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n";

    let sb = Sandbox::new();
    sb.open_to_all();
    let bus = Bus::start_system(sb.path(), &policy);
    assert!(
        !bus.log().contains("policy"),
        "dbus-daemon on our policy file: {}",
        bus.log()
    );

    // root is not the voipd user: the bus refuses it the name, and it runs on without.
    let root_sb = Sandbox::new();
    root_sb.write_config(config);
    let mut d = root_sb.spawn_daemon(&[], &bus.env());
    root_sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    wait_until(
        || d.log().contains("D-Bus unavailable"),
        "the refusal to be logged",
    );
    assert!(d.log().contains("system bus"), "{}", d.log());
    drop(d);

    sb.write_config(config);
    let _d = sb.spawn_daemon_as(Some("voipd"), &[], &bus.env());
    bus.wait_for_voipd();
    let version = format!("s \"{}\"", env!("CARGO_PKG_VERSION"));
    for member in [None, Some("voipd-test-member")] {
        let out = bus.busctl_as(member, &["get-property", NAME, ROOT, MANAGER, "Version"]);
        assert_eq!(
            stdout(&out).trim(),
            version,
            "{member:?}: {}",
            describe(&out)
        );
    }
    let out = bus.busctl_as(
        Some("voipd-test-other"),
        &["get-property", NAME, ROOT, MANAGER, "Version"],
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(stderr(&out).contains("Access denied"), "{}", describe(&out));
    // Looking is allowed.
    let out = bus.busctl_as(
        Some("voipd-test-other"),
        &[
            "call",
            NAME,
            ROOT,
            "org.freedesktop.DBus.Introspectable",
            "Introspect",
        ],
    );
    assert!(stdout(&out).contains(MANAGER), "{}", describe(&out));
}

#[test]
fn a_panel_and_a_script_record_mix_and_pass_calls_on() {
    let sb = Sandbox::new();
    let bus = Bus::start(sb.path());
    let kam = Kamailio::start(sb.path(), &[]);
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[audio]\ninput = \"tone:440\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\ncodecs = [\"pcmu\"]\n",
        kam.port
    ));
    let _d = start_daemon(&sb, &bus);
    let bob = voipd_tests::baresip::kamailio_phone(sb.path(), kam.port, "bob", 660, true);
    let carol = voipd_tests::baresip::kamailio_phone(sb.path(), kam.port, "carol", 880, true);
    let mut paths = Vec::new();
    for (who, phone) in [("bob", &bob), ("carol", &carol)] {
        let out = gdbus_call(&bus, ROOT, "org.voipd.Manager1.Dial", &[who, ""]).unwrap();
        let path = out.split('\'').nth(1).unwrap_or_default().to_string();
        phone.wait_event("CALL_ESTABLISHED");
        wait_until(
            || bus.property(&path, CALL, "State") == "s \"active\"",
            "the call object to say active",
        );
        paths.push(path);
    }
    let id = |p: &str| bus.property(p, CALL, "Id")[2..].to_string();
    let (a, b) = (id(&paths[0]), id(&paths[1]));

    // The panel mixes both calls: a three-way conference.
    let out = bus.busctl_ok(&["call", NAME, ROOT, MANAGER, "Conference", "at", "2", &a, &b]);
    assert!(out.contains(&paths[1]), "{out}");
    wait_until(
        || bus.property(&paths[1], CALL, "Conference") == format!("t {a}"),
        "Conference on the second call",
    );

    // It records the first; a relative path is refused, naming the field.
    let e = gdbus_call(
        &bus,
        &paths[0],
        "org.voipd.Call1.Record",
        &["rel.wav", "false"],
    )
    .unwrap_err();
    assert!(e.contains("InvalidArgument") && e.contains("file"), "{e}");
    assert_eq!(bus.property(&paths[0], CALL, "Recording"), "s \"\"");
    let file = sb.path().join("panel.wav").display().to_string();
    bus.busctl_ok(&[
        "call", NAME, &paths[0], CALL, "Record", "sb", &file, "false",
    ]);
    wait_until(
        || bus.property(&paths[0], CALL, "Recording") == format!("s \"{file}\""),
        "Recording to name the file",
    );
    std::thread::sleep(Duration::from_secs(2));

    // A script does the rest over gRPC.
    let r = grpc_calls(&sb, "Record", &format!(r#"{{"id": {a}, "stop": true}}"#));
    assert!(r["response"].get("recording").is_none(), "{r}");
    let r = grpc_calls(
        &sb,
        "Transfer",
        &format!(r#"{{"id": {a}, "target": "carol", "to_call": {b}}}"#),
    );
    assert_eq!(r["error"]["code"], "INVALID_ARGUMENT", "{r}");
    assert!(
        r["error"]["details"]
            .as_str()
            .is_some_and(|d| d.contains("target")),
        "{r}"
    );
    let r = grpc_calls(
        &sb,
        "AnswerTransfer",
        &format!(r#"{{"id": {a}, "accept": true}}"#),
    );
    assert_eq!(r["error"]["code"], "FAILED_PRECONDITION", "{r}");
    let r = grpc_calls(&sb, "Split", &format!(r#"{{"id": {a}}}"#));
    let split = r["response"]["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(split.len(), 2, "{r}");
    assert!(split.iter().all(|c| c.get("conference").is_none()), "{r}");
    assert_eq!(bus.property(&paths[1], CALL, "Conference"), "t 0");
    // Both our calls were heard in the recording: ours left, bob and carol mixed right.
    let (ch, rate) = voipd_tests::audio::read_wav_channels(std::path::Path::new(&file));
    assert_eq!(ch.len(), 2);
    let (ours, _) = voipd_tests::audio::tone_blocks(&ch[0], rate, 440.0, &[660.0]);
    assert!(ours >= 10, "ours in {ours} blocks");

    // The panel passes bob on to carol: bob's call object goes once carol has answered.
    let carol_uri = format!("sip:carol@127.0.0.1:{}", kam.port);
    bus.busctl_ok(&["call", NAME, &paths[0], CALL, "Transfer", "s", &carol_uri]);
    carol.wait_event("CALL_ESTABLISHED");
    wait_until(
        || !managed(&bus).contains(&paths[0]),
        "bob's call object to go",
    );
    gdbus_call(&bus, &paths[1], "org.voipd.Call1.Hangup", &[]).unwrap();
    wait_until(|| !managed(&bus).contains("/call/"), "no call objects left");
    let _ = bob;
}
