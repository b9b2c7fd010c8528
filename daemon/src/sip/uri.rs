//! URIs as SIP carries them: `sip:`/`sips:` (RFC 3261 §19.1, IPv6 references included),
//! `tel:` (RFC 3966), and any other absolute URI kept as text so that a request for an
//! unknown scheme can be answered with 416 rather than rejected as malformed.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Domain(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// A `sip:` or `sips:` URI. Parameters keep their order; names compare case-insensitively
/// as RFC 3261 §19.1.4 asks, so they are stored lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub scheme: Scheme,
    pub user: Option<String>,
    /// `sip:user:password@host` is deprecated but legal on the wire.
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
    /// The raw `?h=v&…` part, without the `?`.
    pub headers: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("must start with sip: or sips:")]
    Scheme,
    #[error("user part has a character not allowed in a SIP URI: {0:?}")]
    User(char),
    #[error("missing host")]
    MissingHost,
    #[error("invalid host {0:?}")]
    Host(String),
    #[error("invalid port {0:?}")]
    Port(String),
    #[error("invalid parameter {0:?}")]
    Param(String),
}

impl SipUri {
    /// The address alone, without parameters or headers: what names one peer.
    pub fn bare(&self) -> SipUri {
        SipUri {
            params: Vec::new(),
            headers: None,
            ..self.clone()
        }
    }

    /// The host (and port) alone: an address of record's domain, where its registrar is.
    pub fn domain(&self) -> SipUri {
        SipUri {
            user: None,
            password: None,
            params: Vec::new(),
            headers: None,
            ..self.clone()
        }
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

// RFC 3261 §25.1: unreserved / escaped / user-unreserved.
fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/%".contains(c)
}

fn is_param_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()[]/:&+$%".contains(c)
}

fn is_hostname(s: &str) -> bool {
    // One pass over the bytes: labels of 1 to 63 letters, digits and inner hyphens.
    let b = s.strip_suffix('.').unwrap_or(s).as_bytes();
    if b.is_empty() || s.len() > 253 {
        return false;
    }
    let (mut len, mut prev) = (0usize, b'.');
    for &c in b {
        if c == b'.' {
            if len == 0 || prev == b'-' {
                return false;
            }
            len = 0;
        } else if c.is_ascii_alphanumeric() || (c == b'-' && len > 0) {
            len += 1;
            if len > 63 {
                return false;
            }
        } else {
            return false;
        }
        prev = c;
    }
    len > 0 && prev != b'-'
}

fn parse_host(s: &str) -> Result<Host, UriError> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| UriError::Host(s.into()))?;
        return inner
            .parse()
            .map(Host::V6)
            .map_err(|_| UriError::Host(s.into()));
    }
    if let Ok(v4) = s.parse() {
        return Ok(Host::V4(v4));
    }
    // A dotted all-numeric string that is not an IPv4 address is a typo, not a domain.
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') || !is_hostname(s) {
        return Err(UriError::Host(s.into()));
    }
    Ok(Host::Domain(s.to_ascii_lowercase()))
}

/// Splits `host[:port]`, where host may be an IPv6 reference.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), UriError> {
    if s.starts_with('[') {
        let end = s.find(']').ok_or_else(|| UriError::Host(s.into()))?;
        let (host, rest) = s.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(UriError::Host(s.into())),
        };
    }
    Ok(match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

impl FromStr for SipUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let (scheme, rest) = if let Some(r) = strip_prefix_ci(s, "sips:") {
            (Scheme::Sips, r)
        } else if let Some(r) = strip_prefix_ci(s, "sip:") {
            (Scheme::Sip, r)
        } else {
            return Err(UriError::Scheme);
        };
        // The user part may itself hold ';' and '?' (user-unreserved), so split at the
        // last '@' first; headers start at the first '?' after it.
        let (user, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((r, h)) => (r, Some(h.to_string())),
            None => (hostpart, None),
        };
        let (user, password) =
            match user.map(|u| u.split_once(':').map_or((u, None), |(u, p)| (u, Some(p)))) {
                Some((u, pw)) => {
                    if u.is_empty() {
                        return Err(UriError::User('@'));
                    }
                    if let Some(bad) = u
                        .chars()
                        .chain(pw.unwrap_or_default().chars())
                        .find(|c| !is_user_char(*c))
                    {
                        return Err(UriError::User(bad));
                    }
                    (Some(u), pw)
                }
                None => (None, None),
            };
        let mut parts = hostpart.split(';');
        let hostport = parts.next().unwrap_or_default();
        if hostport.is_empty() {
            return Err(UriError::MissingHost);
        }
        let (host, port) = split_host_port(hostport)?;
        let host = parse_host(host)?;
        let port = port
            .map(|p| match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(UriError::Port(p.into())),
            })
            .transpose()?;
        let params = parts
            .map(|p| {
                let (name, value) = match p.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (p, None),
                };
                let ok = !name.is_empty()
                    && name.chars().all(is_param_char)
                    && value.is_none_or(|v| !v.is_empty() && v.chars().all(is_param_char));
                if !ok {
                    return Err(UriError::Param(p.into()));
                }
                Ok((name.to_ascii_lowercase(), value.map(str::to_string)))
            })
            .collect::<Result<_, _>>()?;
        Ok(SipUri {
            scheme,
            user: user.map(str::to_string),
            password: password.map(str::to_string),
            host,
            port,
            params,
            headers,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.scheme {
            Scheme::Sip => "sip:",
            Scheme::Sips => "sips:",
        })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// A `tel:` URI: the number as written (visual separators kept) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    pub number: String,
    pub params: Vec<(String, Option<String>)>,
}

impl FromStr for TelUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let rest = strip_prefix_ci(s, "tel:").ok_or(UriError::Scheme)?;
        let mut parts = rest.split(';');
        let number = parts.next().unwrap_or_default();
        let digits = number.strip_prefix('+').unwrap_or(number);
        let ok = !digits.is_empty()
            && digits
                .chars()
                .any(|c| c.is_ascii_hexdigit() || c == '*' || c == '#')
            && digits
                .chars()
                .all(|c| c.is_ascii_hexdigit() || "*#-.()pPwW".contains(c));
        if !ok {
            return Err(UriError::Host(number.into()));
        }
        let params = parts
            .map(|p| match p.split_once('=') {
                Some((n, v))
                    if !n.is_empty()
                        && n.chars().all(is_param_char)
                        && v.chars().all(is_param_char) =>
                {
                    Ok((n.to_ascii_lowercase(), Some(v.to_string())))
                }
                None if !p.is_empty() && p.chars().all(is_param_char) => {
                    Ok((p.to_ascii_lowercase(), None))
                }
                _ => Err(UriError::Param(p.into())),
            })
            .collect::<Result<_, _>>()?;
        Ok(TelUri {
            number: number.into(),
            params,
        })
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}", self.number)?;
        for (n, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// Any URI a SIP message may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    /// Another scheme, syntactically an absolute URI; kept verbatim.
    Other(String),
}

impl FromStr for Uri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let (scheme, rest) = s.split_once(':').ok_or(UriError::Scheme)?;
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return s.parse().map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("tel") {
            return s.parse().map(Uri::Tel);
        }
        // RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then no whitespace.
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !scheme_ok
            || rest.is_empty()
            || rest
                .chars()
                .any(|c| c.is_ascii_whitespace() || c.is_control() || c == '<' || c == '>')
        {
            return Err(UriError::Scheme);
        }
        Ok(Uri::Other(s.into()))
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(u) => u.fmt(f),
            Uri::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> SipUri {
        match s.parse() {
            Ok(u) => u,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_common_forms() {
        let u = ok("sip:alice@example.com");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, Host::Domain("example.com".into()));
        let u = ok("SIPS:bob@10.0.0.1:5061;transport=tcp;lr");
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.param("Transport"), Some(Some("tcp")));
        assert_eq!(u.param("lr"), Some(None));
        let u = ok("sip:[2001:db8::1]:5070");
        assert_eq!(u.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(5070));
        assert_eq!(ok("sip:proxy.example.com").user, None);
        assert_eq!(
            ok("sip:+1-212-555;x=1@gw.example.com").user.as_deref(),
            Some("+1-212-555;x=1")
        );
    }

    #[test]
    fn tel_and_other_schemes() {
        let Ok(Uri::Tel(t)) = "tel:+1-201-555-0123;phone-context=example.com".parse::<Uri>() else {
            panic!("tel URI");
        };
        assert_eq!(t.number, "+1-201-555-0123");
        assert_eq!(
            t.to_string(),
            "tel:+1-201-555-0123;phone-context=example.com"
        );
        assert!("tel:abc-x".parse::<TelUri>().is_err());
        assert_eq!(
            "im:alice@example.com".parse::<Uri>(),
            Ok(Uri::Other("im:alice@example.com".into()))
        );
        assert!("<sip:a@b>".parse::<Uri>().is_err());
        assert!("sip:a@b c".parse::<Uri>().is_err());
        let u = ok("sip:alice:secret@example.com");
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref()),
            (Some("alice"), Some("secret"))
        );
        assert_eq!(u.to_string(), "sip:alice:secret@example.com");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "sip:alice@example.com",
            "sips:bob@[2001:db8::1]:5061;transport=tls",
            "sip:proxy.example.com;lr?subject=x",
        ] {
            assert_eq!(ok(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_uris() {
        for (s, want) in [
            ("alice@example.com", UriError::Scheme),
            ("http://example.com", UriError::Scheme),
            ("sip:", UriError::MissingHost),
            ("sip:alice@", UriError::MissingHost),
            ("sip:al ice@example.com", UriError::User(' ')),
            ("sip:a:p w@example.com", UriError::User(' ')),
            (
                "sip:alice@exa mple.com",
                UriError::Host("exa mple.com".into()),
            ),
            ("sip:alice@999.1.1.1", UriError::Host("999.1.1.1".into())),
            ("sip:alice@[::1", UriError::Host("[::1".into())),
            ("sip:alice@example.com:0", UriError::Port("0".into())),
            (
                "sip:alice@example.com:70000",
                UriError::Port("70000".into()),
            ),
            ("sip:alice@example.com;=x", UriError::Param("=x".into())),
        ] {
            assert_eq!(s.parse::<SipUri>(), Err(want), "{s}");
        }
    }
}
