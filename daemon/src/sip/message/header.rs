//! Typed views of the headers the stack reads: Via, name-addr (From/To/Contact/Route),
//! CSeq and digest challenges. Each parses from the header's text and prints back.

use std::fmt;

use super::Method;
use crate::sip::uri::Uri;

pub type Params = Vec<(String, Option<String>)>;

fn param<'a>(params: &'a Params, name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

fn set_param(params: &mut Params, name: &str, value: Option<String>) {
    match params
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        Some(p) => p.1 = value,
        None => params.push((name.to_string(), value)),
    }
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &Params) -> fmt::Result {
    for (n, v) in params {
        match v {
            Some(v) => write!(f, ";{n}={v}")?,
            None => write!(f, ";{n}")?,
        }
    }
    Ok(())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// `;name[=value]` pairs; a value may be a token, a host (IPv6 included) or a quoted
/// string.
fn parse_params(s: &str) -> Result<Params, HeaderError> {
    let mut out = Vec::new();
    for part in split_outside_quotes(s, ';') {
        let part = part.trim_ascii();
        if part.is_empty() {
            return Err(HeaderError("empty parameter"));
        }
        let (n, v) = match part.split_once('=') {
            Some((n, v)) => (n.trim_ascii(), Some(v.trim_ascii())),
            None => (part, None),
        };
        if !is_token(n) {
            return Err(HeaderError("bad parameter name"));
        }
        if let Some(v) = v {
            let ok = if v.starts_with('"') {
                v.len() >= 2 && v.ends_with('"')
            } else {
                !v.is_empty()
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~[]:".contains(&b))
            };
            if !ok {
                return Err(HeaderError("bad parameter value"));
            }
        }
        out.push((n.to_string(), v.map(str::to_string)));
    }
    Ok(out)
}

fn find_outside_quotes(s: &str, want: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == want && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits at `sep` where it is not inside a quoted string or `<…>`. Works on bytes: every
/// delimiter is ASCII, and UTF-8 continuation bytes never equal one.
pub(super) fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let sep = sep as u8;
    let bytes = s.as_bytes();
    // Most values have no quotes or brackets: a plain split.
    if !bytes.iter().any(|&b| b == b'"' || b == b'<') {
        return s.split(sep as char).collect();
    }
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut start) = (false, false, false, 0);
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            _ if b == sep && !quoted && !angle => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub &'static str);

/// One Via value: `SIP/2.0/UDP host:port;branch=…;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    /// As written; an IPv6 address keeps its brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn parse(s: &str) -> Result<Via, HeaderError> {
        // Whitespace is allowed around the slashes: "SIP / 2.0 / UDP host".
        let mut p = s.splitn(3, '/');
        let (name, version, rest) = (p.next(), p.next(), p.next());
        if !name.is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case("SIP"))
            || version.map(str::trim_ascii) != Some("2.0")
        {
            return Err(HeaderError("Via protocol is not SIP/2.0"));
        }
        let (transport, rest) = rest
            .map(str::trim_ascii_start)
            .and_then(|r| r.split_once([' ', '\t']))
            .ok_or(HeaderError("Via without sent-by"))?;
        if !is_token(transport) {
            return Err(HeaderError("Via transport"));
        }
        let rest = rest.trim_ascii();
        let (sent_by, params) = match rest.split_once(';') {
            Some((h, p)) => (h.trim_ascii(), parse_params(p)?),
            None => (rest, Vec::new()),
        };
        let (host, port) = if let Some(v6) = sent_by.strip_prefix('[') {
            let end = v6.find(']').ok_or(HeaderError("Via IPv6 host"))?;
            let host = &sent_by[..end + 2];
            (host, sent_by[end + 2..].strip_prefix(':'))
        } else {
            match sent_by.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (sent_by, None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(HeaderError("Via host"));
        }
        let port = port
            .map(|p| {
                p.trim_ascii()
                    .parse::<u16>()
                    .map_err(|_| HeaderError("Via port"))
            })
            .transpose()?;
        if let Some(Some(b)) = param(&params, "branch")
            && !is_token(b)
        {
            return Err(HeaderError("Via branch"));
        }
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_string(),
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch").flatten()
    }

    pub fn received(&self) -> Option<&str> {
        param(&self.params, "received").flatten()
    }

    /// `Some(None)` for a bare `;rport` (asking for it), `Some(Some(port))` once filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        param(&self.params, "rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        set_param(&mut self.params, name, value);
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

/// `"Display" <uri>;params` or `uri;params` (From, To, Contact, Route, Refer-To, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters (tag, expires, +sip.instance, …), not URI parameters.
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    pub fn parse(s: &str) -> Result<NameAddr, HeaderError> {
        let s = s.trim_ascii();
        let (display, uri, rest) = if let Some(open) = find_outside_quotes(s, '<') {
            let close = s[open..].find('>').ok_or(HeaderError("unclosed <"))? + open;
            let display = s[..open].trim_ascii();
            let display = if display.is_empty() {
                None
            } else if let Some(q) = display.strip_prefix('"') {
                let inner = q
                    .strip_suffix('"')
                    .ok_or(HeaderError("unbalanced quotes in display name"))?;
                Some(unquote(inner))
            } else {
                // Unquoted display names are tokens separated by whitespace.
                if !display.split_whitespace().all(is_token) {
                    return Err(HeaderError("display name must be quoted"));
                }
                Some(display.to_string())
            };
            (display, &s[open + 1..close], &s[close + 1..])
        } else if s.starts_with('"') {
            return Err(HeaderError("display name without <uri>"));
        } else {
            // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
            match s.find(';') {
                Some(i) => (None, &s[..i], &s[i..]),
                None => (None, s, ""),
            }
        };
        let uri: Uri = uri
            .trim_ascii()
            .parse()
            .map_err(|_| HeaderError("bad URI"))?;
        let rest = rest.trim_ascii();
        let params = match rest.strip_prefix(';') {
            Some(p) => parse_params(p)?,
            None if rest.is_empty() => Vec::new(),
            None => return Err(HeaderError("text after URI")),
        };
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        param(&self.params, name)
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        set_param(&mut self.params, name, value);
    }
}

fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, HeaderError> {
        let mut it = s.split_whitespace();
        let (num, method) = (it.next(), it.next());
        if it.next().is_some() {
            return Err(HeaderError("CSeq has extra text"));
        }
        let seq = num
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n < 1 << 31)
            .ok_or(HeaderError("CSeq number"))?;
        let method = method
            .filter(|m| is_token(m))
            .ok_or(HeaderError("CSeq method"))?;
        Ok(CSeq {
            seq,
            method: Method::from_wire(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A `Digest k=v, k="v"` challenge or credentials, keys lowercased, quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestParams(pub Vec<(String, String)>);

impl DigestParams {
    pub fn parse(s: &str) -> Result<DigestParams, HeaderError> {
        let s = s.trim_ascii();
        let rest = s
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("digest"))
            .map(|_| &s[6..])
            .ok_or(HeaderError("not a Digest challenge"))?;
        let mut out = Vec::new();
        for part in split_outside_quotes(rest, ',') {
            let part = part.trim_ascii();
            if part.is_empty() {
                continue;
            }
            let (k, v) = part
                .split_once('=')
                .ok_or(HeaderError("digest parameter without value"))?;
            let v = v.trim_ascii();
            let v = match v.strip_prefix('"') {
                Some(q) => unquote(
                    q.strip_suffix('"')
                        .ok_or(HeaderError("unbalanced quotes"))?,
                ),
                None => v.to_string(),
            };
            out.push((k.trim_ascii().to_ascii_lowercase(), v));
        }
        Ok(DigestParams(out))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_forms() {
        let v = Via::parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport").unwrap();
        assert_eq!(
            (v.transport.as_str(), v.host.as_str(), v.port),
            ("UDP", "192.0.2.1", Some(5060))
        );
        assert_eq!(v.branch(), Some("z9hG4bK776"));
        assert_eq!(v.rport(), Some(None));
        let v =
            Via::parse("SIP / 2.0 / tcp [2001:db8::9]:5061 ; branch=z9hG4bKx ; received=10.0.0.1")
                .unwrap();
        assert_eq!(
            (v.transport.as_str(), v.host.as_str(), v.port),
            ("TCP", "[2001:db8::9]", Some(5061))
        );
        assert_eq!(v.received(), Some("10.0.0.1"));
        let mut v = Via::parse("SIP/2.0/UDP h;rport").unwrap();
        v.set_param("rport", Some("4000".into()));
        v.set_param("received", Some("1.2.3.4".into()));
        assert_eq!(v.to_string(), "SIP/2.0/UDP h;rport=4000;received=1.2.3.4");
        for bad in [
            "SIP/2.0/UDP",
            "SIP/3.0/UDP h",
            "SIP/2.0/UDP h:port",
            "SIP/2.0/UDP h;branch=a b",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            "\"Alice \\\"A\\\" Liddell\" <sip:alice@example.com;transport=tcp>;tag=88",
        )
        .unwrap();
        assert_eq!(n.display.as_deref(), Some("Alice \"A\" Liddell"));
        assert_eq!(n.tag(), Some("88"));
        let n = NameAddr::parse("sip:bob@example.com;tag=x").unwrap();
        assert_eq!(
            n.tag(),
            Some("x"),
            "addr-spec parameters belong to the header"
        );
        let n = NameAddr::parse("Bob Smith <sip:bob@example.com>").unwrap();
        assert_eq!(n.display.as_deref(), Some("Bob Smith"));
        let n = NameAddr::parse("<sip:a@b.c>;+sip.instance=\"<urn:uuid:0C67446E-F1A1-11D9-94D3-000A95A0E128>\";reg-id=1").unwrap();
        assert_eq!(n.param("reg-id"), Some(Some("1")));
        assert!(n.param("+sip.instance").is_some());
        assert_eq!(
            NameAddr::parse("<tel:+1-212-555-0100>")
                .unwrap()
                .uri
                .to_string(),
            "tel:+1-212-555-0100"
        );
        for bad in [
            "\"unclosed <sip:a@b>",
            "<sip:a@b",
            "Bad\"Name <sip:a@b>",
            "\"x\" sip:a@b",
            "<sip:a@b> junk",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cseq_and_digest() {
        assert_eq!(
            CSeq::parse("4711 INVITE").unwrap(),
            CSeq {
                seq: 4711,
                method: Method::Invite
            }
        );
        for bad in [
            "-1 INVITE",
            "4294967301 INVITE",
            "1",
            "1 INVITE x",
            "abc INVITE",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
        let d = DigestParams::parse(
            "Digest realm=\"a, b\", nonce=\"n\", qop=\"auth,auth-int\", stale=TRUE, algorithm=MD5",
        )
        .unwrap();
        assert_eq!(d.get("realm"), Some("a, b"));
        assert_eq!(d.get("qop"), Some("auth,auth-int"));
        assert_eq!(d.get("stale"), Some("TRUE"));
        assert!(DigestParams::parse("Basic realm=x").is_err());
    }
}
