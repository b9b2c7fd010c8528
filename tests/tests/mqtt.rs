//! voipd on MQTT, as a SIP doorbell with Home Assistant uses it: mosquitto as the broker
//! (passwords required, sessions kept across its restart), `mosquitto_pub`/`mosquitto_sub`
//! as Home Assistant, baresip through a Kamailio that challenges every request as the
//! flat's phone. This is the recipe in docs/home-automation.md, run.

use std::time::Duration;

use serde_json::Value;
use voipd_tests::audio::assert_tone;
use voipd_tests::baresip::kamailio_phone;
use voipd_tests::mqtt::{Mosquitto, Subscriber, USERS};
use voipd_tests::peers::Kamailio;
use voipd_tests::pki::Pki;
use voipd_tests::*;

/// Configs for one account: five sensors, two events, two buttons, the account's sensor,
/// the doorbell trigger and one trigger per DTMF digit.
const ANNOUNCED: usize = 27;

fn config(sb: &Sandbox, kam: &Kamailio, broker: &Mosquitto, door: &str) -> String {
    std::fs::write(sb.path().join("mqtt-password"), format!("{}\n", USERS[0].1))
        .expect("password file");
    format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
         [audio]\ninput = \"tone:440\"\noutput = \"null\"\n\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nusername = \"{}\"\npassword_file = \"{}\"\n\
         client_id = \"front-door\"\n\n\
         [[hook]]\nname = \"door\"\non = [\"dtmf\"]\ndigits = \"9\"\nexec = [\"{door}\"]\n\n\
         [[account]]\nid = \"door\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
         codecs = [\"pcmu\"]\n",
        broker.port,
        USERS[0].0,
        sb.path().join("mqtt-password").display(),
        kam.port
    )
}

/// The discovery configs received so far, by topic.
fn discovery(sub: &Subscriber) -> Vec<(String, Value)> {
    sub.fresh()
        .into_iter()
        .filter(|(t, p)| t.starts_with("homeassistant/") && t.ends_with("/config") && !p.is_empty())
        .map(|(t, p)| {
            let v = serde_json::from_str(&p).unwrap_or_else(|e| panic!("{t}: not JSON ({e}): {p}"));
            (t, v)
        })
        .collect()
}

/// Each config has what Home Assistant reads for its kind of entity.
fn assert_discovery_is_what_home_assistant_reads(configs: &[(String, Value)]) {
    for (topic, v) in configs {
        let parts: Vec<&str> = topic.split('/').collect();
        assert_eq!(parts.len(), 5, "{topic}");
        assert_eq!(parts[2], "front-door", "the node id: {topic}");
        assert!(v["device"]["identifiers"].is_array(), "{topic}: {v}");
        match parts[1] {
            "device_automation" => {
                assert_eq!(v["automation_type"], "trigger", "{topic}: {v}");
                for k in ["topic", "type", "subtype"] {
                    assert!(v[k].is_string(), "{topic}: no {k}: {v}");
                }
            }
            component => {
                for k in ["name", "unique_id", "availability_topic"] {
                    assert!(v[k].is_string(), "{topic}: no {k}: {v}");
                }
                match component {
                    "sensor" => assert!(
                        v["state_topic"].is_string() && v["value_template"].is_string(),
                        "{topic}: {v}"
                    ),
                    "button" => assert!(
                        v["command_topic"].is_string() && v["payload_press"].is_string(),
                        "{topic}: {v}"
                    ),
                    "event" => assert!(
                        v["state_topic"].is_string() && v["event_types"].is_array(),
                        "{topic}: {v}"
                    ),
                    other => panic!("{topic}: unexpected component {other}"),
                }
            }
        }
    }
    let has = |suffix: &str| configs.iter().any(|(t, _)| t.ends_with(suffix));
    for want in [
        "sensor/front-door/call_state/config",
        "sensor/front-door/last_caller/config",
        "sensor/front-door/missed_calls/config",
        "sensor/front-door/unread_messages/config",
        "sensor/front-door/new_voicemails/config",
        "sensor/front-door/account_door/config",
        "event/front-door/incoming_call/config",
        "event/front-door/dtmf/config",
        "button/front-door/answer/config",
        "button/front-door/hangup/config",
        "device_automation/front-door/doorbell/config",
        "device_automation/front-door/digit_9/config",
    ] {
        assert!(has(want), "no {want}");
    }
}

fn digits(sub: &Subscriber) -> String {
    sub.on("voipd/event/dtmf")
        .iter()
        .filter_map(|e| {
            e["kind"]["dtmf_received"]["digit"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

fn result(sub: &Subscriber, id: &str) -> Value {
    let mut found = Value::Null;
    wait_until(
        || {
            found = sub
                .on("voipd/command/result")
                .into_iter()
                .find(|r| r["id"] == id)
                .unwrap_or_default();
            !found.is_null()
        },
        &format!("the result of command {id}"),
    );
    found
}

#[test]
fn a_doorbell_with_home_assistant_over_mqtt() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let mut broker = Mosquitto::start(sb.path());
    let mut flat = kamailio_phone(sb.path(), kam.port, "dave", 700, true);
    let door = sb.path().join("door-opened");
    let opener = sb.path().join("open-door");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\necho \"$VOIPD_DIGIT $VOIPD_CALL_ID\" >> {}\n",
            door.display()
        ),
    )
    .expect("opener");
    std::fs::set_permissions(
        &opener,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .expect("chmod");
    let sub = broker.subscribe_all(&sb.path().join("mqtt.txt"));
    sb.write_config(&config(&sb, &kam, &broker, &opener.display().to_string()));
    broker.publish_retained(
        "voipd/command",
        r#"{"command":"dial","to":"dave","id":"kept"}"#,
    );
    let d = sb.start_daemon();
    wait_account_state(&sb, "door", "registered", PATIENCE);

    // Online, announced, and the state sensors' topic filled in.
    wait_until(
        || sub.on("voipd/status").last().is_some_and(|s| s == "online"),
        "voipd online",
    );
    wait_until(
        || discovery(&sub).len() >= ANNOUNCED,
        "the discovery configs",
    );
    let announced = discovery(&sub).len();
    assert_discovery_is_what_home_assistant_reads(&discovery(&sub));
    wait_until(
        || {
            sub.on("voipd/state")
                .last()
                .is_some_and(|s| s["accounts"]["door"] == "registered")
        },
        "the account's registration on voipd/state",
    );

    // A bad command: an error on the result topic naming the field, and no call.
    broker.publish(
        "voipd/command",
        r#"{"command":"dial","to":"sip:","id":"bad"}"#,
    );
    let r = result(&sub, "bad");
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["code"], "invalid_argument", "{r}");
    assert_eq!(r["error"]["field"], "uri", "{r}");
    broker.publish("voipd/command", r#"{"command":"ring","id":"worse"}"#);
    let r = result(&sub, "worse");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("dial, answer")),
        "{r}"
    );
    broker.publish("voipd/command", "not json");
    wait_until(
        || {
            sub.on("voipd/command/result").iter().any(|r| {
                r["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("not JSON"))
            })
        },
        "the error for a payload that is not JSON",
    );
    // A retained command, left on the broker before voipd came, is not run (it would
    // run again at every reconnect), here nor after the broker's restart below.
    wait_until(
        || {
            d.log()
                .contains("a retained command on voipd/command is ignored")
        },
        "the retained command refused",
    );
    assert!(calls(&sb).is_empty(), "{:?}", calls(&sb));

    // The bell: a command dials the flat, which answers and presses #9; the digits come
    // out on MQTT and the door hook opens the door, once.
    broker.publish(
        "voipd/command",
        r#"{"command":"dial","to":"dave","id":"ring"}"#,
    );
    let r = result(&sub, "ring");
    assert_eq!(r["ok"], true, "{r}");
    let call_id = r["call"]["id"].as_u64().expect("the call's id");
    flat.wait_event("CALL_ESTABLISHED");
    wait_until(
        || {
            sub.on("voipd/state")
                .last()
                .is_some_and(|s| s["call"] == "active")
        },
        "the call's state on voipd/state",
    );
    flat.command("sndcode", "#9");
    wait_until(|| digits(&sub) == "#9", "#9 on voipd/event/dtmf");
    wait_until(
        || std::fs::read_to_string(&door).is_ok(),
        "the door to open",
    );
    assert_eq!(
        std::fs::read_to_string(&door).expect("door"),
        format!("9 {call_id}\n")
    );

    // The broker restarts mid-call: voipd comes back, says it is online and announces
    // again; a digit pressed while the broker was away is not lost.
    let onlines = || {
        sub.fresh()
            .iter()
            .filter(|(t, p)| t == "voipd/status" && p == "online")
            .count()
    };
    let before = onlines();
    broker.restart(Duration::from_millis(300));
    flat.command("sndcode", "5");
    wait_until(
        || onlines() > before,
        "voipd online again after the broker's restart",
    );
    wait_until(
        || discovery(&sub).len() >= announced + ANNOUNCED,
        "the discovery again",
    );
    wait_until(
        || digits(&sub) == "#95",
        "the digit pressed during the restart",
    );

    // Home Assistant restarts: its birth message asks for the discovery again.
    let before = discovery(&sub).len();
    broker.publish("homeassistant/status", "online");
    wait_until(
        || discovery(&sub).len() >= before + ANNOUNCED,
        "the discovery after HA's birth",
    );

    assert!(
        sub.on("voipd/command/result")
            .iter()
            .all(|r| r["id"] != "kept"),
        "the retained command ran"
    );
    // Its hang-up button ends the call; the flat heard the door's tone throughout.
    std::thread::sleep(Duration::from_millis(1500));
    broker.publish("voipd/command", r#"{"command":"hangup"}"#);
    flat.wait_event("CALL_CLOSED");
    wait_until(
        || {
            sub.on("voipd/state")
                .last()
                .is_some_and(|s| s["call"] == "idle")
        },
        "voipd/state idle again",
    );
    let rec = flat.received_recordings();
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_tone(&rec[0], 440.0, &[700.0], 15);
    assert!(d.log().contains("mqtt: connected to"), "{}", d.log());

    // The account renamed in a reload: its old sensor is cleared, the new one announced.
    let text = std::fs::read_to_string(sb.config_path()).expect("config");
    sb.write_config(&text.replace("id = \"door\"", "id = \"home\""));
    assert!(sb.voipctl(&["reload"]).status.success());
    wait_until(
        || {
            sub.messages().iter().any(|(t, p)| {
                t == "homeassistant/sensor/front-door/account_door/config" && p.is_empty()
            }) && discovery(&sub)
                .iter()
                .any(|(t, _)| t == "homeassistant/sensor/front-door/account_home/config")
        },
        "the old account's sensor cleared and the new one's announced",
    );
}

#[test]
fn over_tls_with_the_brokers_own_ca_and_not_with_another() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.path(), "broker-ca");
    let cert = pki.issue("broker", "localhost", None);
    let broker = Mosquitto::start_tls(sb.path(), &cert);
    let tls_port = broker.tls_port.expect("a TLS listener");
    let sub = broker.subscribe_all(&sb.path().join("mqtt.txt"));
    std::fs::write(sb.path().join("mqtt-password"), format!("{}\n", USERS[0].1)).expect("pw");
    let text = |ca: &std::path::Path| {
        format!(
            "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
             [mqtt]\nurl = \"mqtts://localhost:{tls_port}\"\nusername = \"{}\"\n\
             password_file = \"{}\"\nca = \"{}\"\nclient_id = \"tls-door\"\nprefix = \"door/one\"\n",
            USERS[0].0,
            sb.path().join("mqtt-password").display(),
            ca.display()
        )
    };
    // Another CA: the broker's certificate does not verify; nothing is said, it retries.
    let other = Pki::new(sb.path(), "other-ca");
    sb.write_config(&text(&other.ca));
    let d = sb.start_daemon();
    wait_until(
        || d.log().contains("mqtt: mqtts://localhost"),
        "the refused broker in the log",
    );
    assert!(sub.on("door/one/status").is_empty(), "{:?}", sub.messages());
    // The broker's CA, by a reload: connected, online, events out.
    sb.write_config(&text(&pki.ca));
    assert!(sb.voipctl(&["reload"]).status.success());
    wait_until(
        || {
            sub.fresh()
                .iter()
                .any(|(t, p)| t == "door/one/status" && p == "online")
        },
        "online over TLS",
    );
    assert!(
        sb.voipctl(&["contacts", "add", "ann", "-a", "ann@example.com"])
            .status
            .success()
    );
    wait_until(
        || !sub.on("door/one/event/contact_changed").is_empty(),
        "an event over TLS",
    );
    // Stopping says offline at once.
    assert!(sb.voipctl(&["shutdown"]).status.success());
    wait_until(
        || {
            sub.fresh()
                .last()
                .is_some_and(|(t, p)| t == "door/one/status" && p == "offline")
        },
        "offline when voipd stops",
    );
}
