//! Home Assistant's MQTT discovery: one device per daemon, its entities announced as
//! retained JSON under `DISCOVERY/<component>/<node>/<object>/config`.

use serde_json::{Value, json};

use crate::config::MqttConfig;

/// The digits a door station's keypad sends, and their names in object ids.
const DIGITS: [(char, &str); 16] = [
    ('0', "0"),
    ('1', "1"),
    ('2', "2"),
    ('3', "3"),
    ('4', "4"),
    ('5', "5"),
    ('6', "6"),
    ('7', "7"),
    ('8', "8"),
    ('9', "9"),
    ('*', "star"),
    ('#', "hash"),
    ('A', "a"),
    ('B', "b"),
    ('C', "c"),
    ('D', "d"),
];

/// Every discovery message for this daemon with `accounts`: (topic, payload).
pub(super) fn announcements(c: &MqttConfig, accounts: &[String]) -> Vec<(String, String)> {
    let p = &c.prefix;
    let node = &c.node_id;
    let device = json!({
        "identifiers": [format!("voipd_{node}")],
        "name": format!("voipd {}", c.client_id),
        "manufacturer": "voipd",
        "model": "voipd SIP phone",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let origin = json!({"name": "voipd", "sw_version": env!("CARGO_PKG_VERSION")});
    let status = format!("{p}/status");
    let state = format!("{p}/state");
    let entity = |name: &str, object: &str, mut v: Value| {
        v["name"] = json!(name);
        v["unique_id"] = json!(format!("voipd_{node}_{object}"));
        v["device"] = device.clone();
        v["origin"] = origin.clone();
        v["availability_topic"] = json!(status);
        v["payload_available"] = json!("online");
        v["payload_not_available"] = json!("offline");
        v
    };
    let sensor = |name: &str, object: &str, field: &str, icon: &str| {
        entity(
            name,
            object,
            json!({
                "state_topic": state,
                "value_template": format!("{{{{ value_json.{field} }}}}"),
                "icon": icon,
            }),
        )
    };
    let mut out: Vec<(String, &str, Value)> = vec![
        (
            "call_state".into(),
            "sensor",
            sensor("Call", "call_state", "call", "mdi:phone"),
        ),
        (
            "last_caller".into(),
            "sensor",
            sensor(
                "Last caller",
                "last_caller",
                "last_caller",
                "mdi:phone-incoming",
            ),
        ),
        (
            "missed_calls".into(),
            "sensor",
            sensor(
                "Missed calls",
                "missed_calls",
                "missed_calls",
                "mdi:phone-missed",
            ),
        ),
        (
            "unread_messages".into(),
            "sensor",
            sensor(
                "Unread messages",
                "unread_messages",
                "unread_messages",
                "mdi:message-text",
            ),
        ),
        (
            "new_voicemails".into(),
            "sensor",
            sensor(
                "New voicemails",
                "new_voicemails",
                "new_voicemails",
                "mdi:voicemail",
            ),
        ),
        (
            "incoming_call".into(),
            "event",
            entity(
                "Incoming call",
                "incoming_call",
                json!({
                    "state_topic": format!("{p}/event/call_incoming"),
                    "event_types": ["call_incoming"],
                    "value_template": "{{ {'event_type': 'call_incoming', 'caller': value_json.kind.call_changed.remote_uri, 'call_id': value_json.kind.call_changed.id} | tojson }}",
                    "device_class": "doorbell",
                }),
            ),
        ),
        (
            "dtmf".into(),
            "event",
            entity(
                "DTMF digit",
                "dtmf",
                json!({
                    "state_topic": format!("{p}/event/dtmf"),
                    "event_types": DIGITS.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>(),
                    "value_template": "{{ {'event_type': value_json.kind.dtmf_received.digit, 'call_id': value_json.kind.dtmf_received.call_id} | tojson }}",
                    "device_class": "button",
                }),
            ),
        ),
        (
            "answer".into(),
            "button",
            entity(
                "Answer",
                "answer",
                json!({
                    "command_topic": format!("{p}/command"),
                    "payload_press": "{\"command\":\"answer\"}",
                    "icon": "mdi:phone-check",
                }),
            ),
        ),
        (
            "hangup".into(),
            "button",
            entity(
                "Hang up",
                "hangup",
                json!({
                    "command_topic": format!("{p}/command"),
                    "payload_press": "{\"command\":\"hangup\"}",
                    "icon": "mdi:phone-hangup",
                }),
            ),
        ),
    ];
    for id in accounts {
        let object = format!("account_{id}");
        out.push((
            object.clone(),
            "sensor",
            entity(
                &format!("Account {id}"),
                &object,
                json!({
                    "state_topic": state,
                    "value_template": format!("{{{{ value_json.accounts['{id}'] | default('removed') }}}}"),
                    "icon": "mdi:account-network",
                }),
            ),
        ));
    }
    // Device triggers, for automations: "doorbell rang" and "digit N pressed".
    out.push((
        "doorbell".into(),
        "device_automation",
        json!({
            "automation_type": "trigger",
            "topic": format!("{p}/event/call_incoming"),
            "type": "doorbell",
            "subtype": "rang",
            "device": device,
            "origin": origin,
        }),
    ));
    for (d, name) in DIGITS {
        out.push((
            format!("digit_{name}"),
            "device_automation",
            json!({
                "automation_type": "trigger",
                "topic": format!("{p}/event/dtmf"),
                "type": "digit_pressed",
                "subtype": d.to_string(),
                "payload": d.to_string(),
                "value_template": "{{ value_json.kind.dtmf_received.digit }}",
                "device": device,
                "origin": origin,
            }),
        ));
    }
    out.into_iter()
        .map(|(object, component, v)| {
            (
                format!("{}/{component}/{node}/{object}/config", c.discovery_prefix),
                v.to_string(),
            )
        })
        .collect()
}
