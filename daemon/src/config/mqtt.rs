//! An MQTT broker to publish events to and take commands from, with Home Assistant's
//! discovery: `[mqtt]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;

/// `[mqtt]`: where the broker is and how voipd shows itself there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawMqtt")]
pub struct MqttConfig {
    pub url: String,
    /// `mqtts://`: TLS, checked against the system's trust store or `ca`.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    /// `password`, or the first line of `password_file` (read with the configuration).
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    /// What `ca` holds, read with the configuration.
    pub ca_pem: Option<Vec<u8>>,
    pub client_id: String,
    /// Topics are `PREFIX/status`, `PREFIX/state`, `PREFIX/event/NAME`, `PREFIX/command`.
    pub prefix: String,
    /// Home Assistant's MQTT discovery, under `discovery_prefix`.
    pub discovery: bool,
    pub discovery_prefix: String,
    /// The device's id in discovery topics: the client id, in the characters allowed.
    pub node_id: String,
    pub keepalive: Duration,
    /// Publications waiting at most while the broker is away; past it new ones are dropped
    /// (counted).
    pub queue: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    url: String,
    username: Option<String>,
    password: Option<Secret>,
    password_file: Option<PathBuf>,
    ca: Option<PathBuf>,
    client_id: Option<String>,
    #[serde(default = "default_prefix")]
    prefix: String,
    #[serde(default = "default_true")]
    discovery: bool,
    #[serde(default = "default_discovery_prefix")]
    discovery_prefix: String,
    #[serde(default = "default_keepalive")]
    keepalive_secs: u16,
    #[serde(default = "default_queue")]
    queue: u32,
}

fn default_prefix() -> String {
    "voipd".into()
}
fn default_true() -> bool {
    true
}
fn default_discovery_prefix() -> String {
    "homeassistant".into()
}
fn default_keepalive() -> u16 {
    30
}
fn default_queue() -> u32 {
    10_000
}

/// A topic prefix: levels without wildcards, not starting or ending with `/`.
fn check_prefix(field: &str, p: &str) -> Result<(), String> {
    if p.is_empty() || p.starts_with('/') || p.ends_with('/') || p.contains(['+', '#', '\0']) {
        return Err(format!(
            "{field}: {p:?} is not a topic prefix (no +, #, leading or trailing /), e.g. \"voipd\""
        ));
    }
    Ok(())
}

/// This machine's name, for the default client id.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

impl TryFrom<RawMqtt> for MqttConfig {
    type Error = String;

    fn try_from(r: RawMqtt) -> Result<Self, String> {
        let bad = |why: &str| format!("url: {:?} {why}, e.g. \"mqtt://broker.local:1883\"", r.url);
        let (tls, rest) = if let Some(rest) = r.url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = r.url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(bad("is not an mqtt:// or mqtts:// URL"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains(['/', '@', '?']) {
            return Err(bad(
                "has a path or credentials; give username and password_file instead",
            ));
        }
        let (host, port) =
            super::webhooks::host_port(rest, if tls { 8883 } else { 1883 }).map_err(bad)?;
        if r.password.is_some() && r.password_file.is_some() {
            return Err("password and password_file are both set; keep one".into());
        }
        if (r.password.is_some() || r.password_file.is_some()) && r.username.is_none() {
            return Err("username: a password needs a username".into());
        }
        if r.ca.is_some() && !tls {
            return Err("ca: only an mqtts:// url uses it".into());
        }
        check_prefix("prefix", &r.prefix)?;
        check_prefix("discovery_prefix", &r.discovery_prefix)?;
        let client_id = r.client_id.unwrap_or_else(|| {
            // Within the 64 characters allowed, however long the host's name.
            format!("voipd-{}", hostname().chars().take(57).collect::<String>())
        });
        if client_id.is_empty() || client_id.len() > 64 {
            return Err(format!(
                "client_id: {client_id:?} is not 1 to 64 characters"
            ));
        }
        let node_id: String = client_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if r.keepalive_secs < 5 {
            return Err(format!("keepalive_secs: {} is below 5", r.keepalive_secs));
        }
        if !(100..=1_000_000).contains(&r.queue) {
            return Err(format!("queue: {} is not between 100 and 1000000", r.queue));
        }
        Ok(MqttConfig {
            tls,
            host,
            port,
            url: r.url,
            username: r.username,
            password: r.password,
            password_file: r.password_file,
            ca: r.ca,
            ca_pem: None,
            client_id,
            prefix: r.prefix,
            discovery: r.discovery,
            discovery_prefix: r.discovery_prefix,
            node_id,
            keepalive: Duration::from_secs(u64::from(r.keepalive_secs)),
            queue: r.queue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mqtt(text: &str) -> Result<MqttConfig, String> {
        toml::from_str::<MqttConfig>(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn a_broker_url_and_the_defaults() {
        let m = mqtt(
            r#"url = "mqtt://broker.local"
client_id = "voipd door.1""#,
        )
        .expect("valid");
        assert_eq!(
            (m.tls, m.host.as_str(), m.port),
            (false, "broker.local", 1883)
        );
        assert_eq!(
            (m.prefix.as_str(), m.node_id.as_str()),
            ("voipd", "voipd_door_1")
        );
        assert!(m.discovery);
        let m = mqtt(r#"url = "mqtts://[::1]:8884""#).expect("valid");
        assert_eq!((m.tls, m.host.as_str(), m.port), (true, "::1", 8884));
        assert!(m.client_id.starts_with("voipd-"));
    }

    #[test]
    fn bad_settings_name_the_field() {
        for (text, field) in [
            (r#"url = "http://x""#, "url:"),
            (r#"url = "mqtt://u:p@x""#, "url:"),
            (r#"url = "mqtt://x:0""#, "url:"),
            (
                r#"url = "mqtt://x"
prefix = "voipd/#""#,
                "prefix:",
            ),
            (
                r#"url = "mqtt://x"
password = "p""#,
                "username:",
            ),
            (
                r#"url = "mqtt://x"
ca = "/etc/ca.pem""#,
                "ca:",
            ),
            (
                r#"url = "mqtt://x"
keepalive_secs = 1"#,
                "keepalive_secs:",
            ),
        ] {
            let e = mqtt(text).expect_err(text);
            assert!(e.starts_with(field), "{text}: {e}");
        }
    }
}
