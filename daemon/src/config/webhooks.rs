//! Events POSTed to HTTP(S) endpoints: `[[webhook]]` tables.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;
use super::hooks::event_names;

/// One `[[webhook]]`: every event it is `on` is POSTed to `url` as JSON, in order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawWebhook")]
pub struct Webhook {
    /// What the log calls it: `name`, or the URL's host.
    pub name: String,
    pub url: String,
    /// `https` or `http`.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The path and query the request goes to.
    pub path: String,
    /// Event names; all of them when the list is not given.
    pub on: Option<Vec<&'static str>>,
    /// Signs each body (HMAC-SHA256) in `X-Voipd-Signature-256`; `secret` or the first
    /// line of `secret_file`.
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    /// CA certificates to trust instead of the system's (a receiver with its own CA).
    pub ca: Option<PathBuf>,
    /// What `ca` holds, read with the configuration.
    pub ca_pem: Option<Vec<u8>>,
    /// One request may take this long.
    pub timeout: Duration,
    /// Events waiting at most (the receiver is down or slow); past it the oldest goes.
    pub queue: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: Option<String>,
    url: String,
    on: Option<Vec<String>>,
    secret: Option<Secret>,
    secret_file: Option<PathBuf>,
    ca: Option<PathBuf>,
    #[serde(default = "default_timeout")]
    timeout_secs: u32,
    #[serde(default = "default_queue")]
    queue: u32,
}

fn default_timeout() -> u32 {
    10
}
fn default_queue() -> u32 {
    1000
}

/// A URL's `host[:port]` (an IPv6 address in brackets), with the scheme's port unless
/// one is given.
pub(super) fn host_port(authority: &str, default_port: u16) -> Result<(String, u16), &'static str> {
    // An IPv6 address is in brackets, and its colons are not the port's.
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (h, after) = rest.split_once(']').ok_or("has an unclosed [")?;
            match after {
                "" => (h, None),
                p => (h, Some(p.strip_prefix(':').ok_or("is not a valid URL")?)),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("has no host");
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("has no valid port")?,
    };
    Ok((host.to_string(), port))
}

impl TryFrom<RawWebhook> for Webhook {
    type Error = String;

    fn try_from(r: RawWebhook) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "url: {:?} {why}, e.g. \"https://hass.local:8123/api/webhook/door\"",
                r.url
            )
        };
        let (tls, rest) = if let Some(rest) = r.url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = r.url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(bad("carries credentials; sign with `secret` instead"));
        }
        let (host, port) = host_port(authority, if tls { 443 } else { 80 }).map_err(bad)?;
        if path.contains(char::is_whitespace)
            || hyper::http::uri::PathAndQuery::try_from(path).is_err()
        {
            return Err(bad("is not a valid URL"));
        }
        if r.secret.is_some() && r.secret_file.is_some() {
            return Err("secret and secret_file are both set; keep one".into());
        }
        if r.ca.is_some() && !tls {
            return Err("ca: only an https:// url uses it".into());
        }
        if !(1..=300).contains(&r.timeout_secs) {
            return Err(format!(
                "timeout_secs: {} is not between 1 and 300",
                r.timeout_secs
            ));
        }
        if !(1..=100_000).contains(&r.queue) {
            return Err(format!("queue: {} is not between 1 and 100000", r.queue));
        }
        let on = r.on.as_deref().map(event_names).transpose()?;
        Ok(Webhook {
            name: r.name.unwrap_or_else(|| host.clone()),
            tls,
            host,
            port,
            path: path.to_string(),
            url: r.url,
            on,
            secret: r.secret,
            secret_file: r.secret_file,
            ca: r.ca,
            ca_pem: None,
            timeout: Duration::from_secs(u64::from(r.timeout_secs)),
            queue: r.queue,
        })
    }
}

impl Webhook {
    /// Whether events of this name go to it.
    pub fn wants(&self, name: &str) -> bool {
        self.on.as_ref().is_none_or(|on| on.contains(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(text: &str) -> Result<Webhook, String> {
        toml::from_str::<Webhook>(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn urls_are_taken_apart() {
        let w = hook(r#"url = "https://hass.local:8123/api/webhook/door?x=1""#).expect("valid");
        assert_eq!(
            (w.tls, w.host.as_str(), w.port, w.path.as_str()),
            (true, "hass.local", 8123, "/api/webhook/door?x=1")
        );
        assert!(w.wants("dtmf"));
        let w = hook(
            r#"url = "http://[::1]"
on = ["dtmf"]"#,
        )
        .expect("valid");
        assert_eq!(
            (w.tls, w.host.as_str(), w.port, w.path.as_str()),
            (false, "::1", 80, "/")
        );
        assert!(w.wants("dtmf") && !w.wants("call_incoming"));
    }

    #[test]
    fn bad_webhooks_name_the_field() {
        for (text, field) in [
            (r#"url = "ftp://x""#, "url:"),
            (r#"url = "https://u:p@x/""#, "url:"),
            (r#"url = "https://x:0/""#, "url:"),
            (r#"url = "https:///""#, "url:"),
            (
                r#"url = "https://x/"
on = ["ringing"]"#,
                "on:",
            ),
            (
                r#"url = "http://x/"
ca = "/etc/ca.pem""#,
                "ca:",
            ),
            (
                r#"url = "http://x/"
queue = 0"#,
                "queue:",
            ),
            (
                r#"url = "http://x/"
secret = "a"
secret_file = "/etc/s""#,
                "secret",
            ),
        ] {
            let e = hook(text).expect_err(text);
            assert!(e.starts_with(field), "{text}: {e}");
        }
    }
}
