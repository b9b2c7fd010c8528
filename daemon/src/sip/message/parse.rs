//! Bytes to a [`Message`], normalised: compact names expanded, folded lines joined, list
//! headers split. Anything that does not parse is an error that says what and, for a
//! request whose dialog-identifying headers are intact, keeps them so a 400 can be sent.

use std::borrow::Cow;
use std::fmt;

use super::header::split_outside_quotes;
use super::{CSeq, Headers, Message, Method, Name, NameAddr, Request, Response, Via};
use crate::sip::uri::Uri;

/// The most a message (head and body) may be: a UDP datagram's limit, and the bound on
/// what a TCP peer can make us buffer.
pub const MAX_MESSAGE: usize = 65_535;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Nothing but line ends.
    Empty,
    /// The first line is neither a request line nor a status line.
    NotSip,
    BadRequestLine(&'static str),
    BadStatusLine(&'static str),
    BadVersion,
    BadHeaderLine,
    MissingHeader(Name),
    DuplicateHeader(Name),
    BadHeader(Name, &'static str),
    CSeqMethodMismatch,
    BadContentLength,
    /// Content-Length says more than arrived.
    Truncated,
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// For a request: Via, From, To, Call-ID and CSeq as received, when all are there, so
    /// that the error can be answered (RFC 3261 §8.2.6).
    pub answerable: Option<Headers>,
}

impl ParseError {
    /// The status to answer with: 505 for another SIP version, 513 for too large, else 400.
    pub fn status(&self) -> u16 {
        match self.kind {
            ParseErrorKind::BadVersion => 505,
            ParseErrorKind::TooLarge => 513,
            _ => 400,
        }
    }

    /// A 4xx/5xx response naming the problem, if the request can be answered at all.
    pub fn response(&self) -> Option<Response> {
        let headers = self.answerable.clone()?;
        Some(Response {
            code: self.status(),
            // Our own text, never the peer's bytes, so it is safe on the status line.
            reason: self.to_string(),
            headers,
            body: Vec::new(),
        })
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::Empty => f.write_str("Empty message"),
            ParseErrorKind::NotSip => f.write_str("Not a SIP message"),
            ParseErrorKind::BadRequestLine(w) => write!(f, "Bad Request-Line: {w}"),
            ParseErrorKind::BadStatusLine(w) => write!(f, "Bad Status-Line: {w}"),
            ParseErrorKind::BadVersion => f.write_str("Version Not Supported"),
            ParseErrorKind::BadHeaderLine => f.write_str("Malformed header line"),
            ParseErrorKind::MissingHeader(n) => write!(f, "Missing {n} header"),
            ParseErrorKind::DuplicateHeader(n) => write!(f, "More than one {n} header"),
            ParseErrorKind::BadHeader(n, w) => write!(f, "Bad {n} header: {w}"),
            ParseErrorKind::CSeqMethodMismatch => {
                f.write_str("CSeq method does not match the request method")
            }
            ParseErrorKind::BadContentLength => f.write_str("Bad Content-Length"),
            ParseErrorKind::Truncated => f.write_str("Body shorter than Content-Length"),
            ParseErrorKind::TooLarge => f.write_str("Message Too Large"),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for ParseError {}

fn err(kind: ParseErrorKind) -> ParseError {
    ParseError {
        kind,
        answerable: None,
    }
}

/// Where the head ends: the blank line, CRLF CRLF or (tolerated) LF LF. Returns the head
/// and the body.
pub(crate) fn split_head(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((&buf[..i], &buf[i + 2..]));
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some((&buf[..i], &buf[i + 3..]));
            }
        }
        i += 1;
    }
    None
}

/// Lines with continuation lines (starting with SP or HTAB) folded into the one before;
/// borrowed unless folding joined them.
fn logical_lines(head: &str) -> Vec<Cow<'_, str>> {
    let mut out: Vec<Cow<'_, str>> = Vec::with_capacity(24);
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match out.last_mut() {
            Some(prev) if line.starts_with([' ', '\t']) => {
                let p = prev.to_mut();
                p.push(' ');
                p.push_str(line.trim_ascii());
            }
            _ => out.push(Cow::Borrowed(line)),
        }
    }
    out
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseErrorKind> {
    if let Some(rest) = line
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &line[4..])
    {
        let (version, rest) = rest
            .split_once(' ')
            .ok_or(ParseErrorKind::BadStatusLine("no status code"))?;
        if version != "2.0" {
            return Err(ParseErrorKind::BadVersion);
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseErrorKind::BadStatusLine(
                "status code is not three digits",
            ));
        }
        let code: u16 = code
            .parse()
            .map_err(|_| ParseErrorKind::BadStatusLine("status code"))?;
        if !(100..=699).contains(&code) {
            return Err(ParseErrorKind::BadStatusLine("status code out of range"));
        }
        return Ok(StartLine::Response(code, reason.to_string()));
    }
    let mut parts = line.split(' ');
    let (method, uri, version) = (parts.next(), parts.next(), parts.next());
    let method = method
        .filter(|m| is_token(m))
        .ok_or(ParseErrorKind::NotSip)?;
    let (Some(uri), Some(version)) = (uri, version) else {
        return Err(ParseErrorKind::NotSip);
    };
    if parts.next().is_some() || uri.is_empty() {
        return Err(ParseErrorKind::BadRequestLine("extra whitespace"));
    }
    let Some(v) = version
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &version[4..])
    else {
        return Err(ParseErrorKind::NotSip);
    };
    if v != "2.0" {
        return Err(ParseErrorKind::BadVersion);
    }
    let uri: Uri = uri
        .parse()
        .map_err(|_| ParseErrorKind::BadRequestLine("bad Request-URI"))?;
    Ok(StartLine::Request(Method::from_wire(method), uri))
}

fn header_lines(lines: &[Cow<'_, str>]) -> (Headers, bool) {
    // List headers may split into more entries than lines; this is the usual count.
    let mut headers = Headers::with_capacity(lines.len() + 4);
    let mut ok = true;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            ok = false;
            continue;
        };
        let name = name.trim_ascii_end();
        if !is_token(name) {
            ok = false;
            continue;
        }
        let name = Name::from_wire(name);
        let value = value.trim_ascii();
        if name.is_list() {
            for v in split_outside_quotes(value, ',') {
                let v = v.trim_ascii();
                if v.is_empty() {
                    ok = false;
                } else {
                    headers.push(name.clone(), v);
                }
            }
        } else {
            headers.push(name, value);
        }
    }
    (headers, ok)
}

/// The headers a response to a broken request needs, if all are present.
fn answerable(headers: &Headers) -> Option<Headers> {
    let mut out = Headers::default();
    for want in [Name::Via, Name::From, Name::To, Name::CallId, Name::CSeq] {
        let mut any = false;
        for v in headers.all(&want) {
            out.push(want.clone(), v);
            any = true;
        }
        if !any {
            return None;
        }
    }
    Some(out)
}

fn single<'a>(h: &'a Headers, name: &'a Name) -> Result<&'a str, ParseErrorKind> {
    let mut it = h.all(name);
    let v = it
        .next()
        .ok_or_else(|| ParseErrorKind::MissingHeader(name.clone()))?;
    if it.next().is_some() {
        return Err(ParseErrorKind::DuplicateHeader(name.clone()));
    }
    Ok(v)
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Checks what every request and response needs (RFC 3261 §8.1.1, §20).
fn validate(h: &Headers, method: Option<&Method>) -> Result<(), ParseErrorKind> {
    let bad = |n: Name, w| ParseErrorKind::BadHeader(n, w);
    // Only the top Via is ours to read; the others go back verbatim in responses.
    let top_via = h
        .get(&Name::Via)
        .ok_or(ParseErrorKind::MissingHeader(Name::Via))?;
    Via::parse(top_via).map_err(|e| bad(Name::Via, e.0))?;
    for n in [Name::From, Name::To] {
        let na = NameAddr::parse(single(h, &n)?).map_err(|e| bad(n.clone(), e.0))?;
        if let Uri::Sip(u) = &na.uri
            && u.headers.is_some()
            && !single(h, &n)?.contains('<')
        {
            return Err(bad(n, "URI with '?' must be in <>"));
        }
    }
    let call_id = single(h, &Name::CallId)?;
    if call_id.is_empty() || call_id.contains(char::is_whitespace) {
        return Err(bad(Name::CallId, "empty or with whitespace"));
    }
    let cseq = CSeq::parse(single(h, &Name::CSeq)?).map_err(|e| bad(Name::CSeq, e.0))?;
    if let Some(m) = method
        && cseq.method != *m
    {
        return Err(ParseErrorKind::CSeqMethodMismatch);
    }
    for c in h.all(&Name::Contact) {
        if c == "*" {
            continue;
        }
        let na = NameAddr::parse(c).map_err(|e| bad(Name::Contact, e.0))?;
        if !c.contains('<') && matches!(&na.uri, Uri::Sip(u) if u.headers.is_some()) {
            return Err(bad(Name::Contact, "URI with '?' must be in <>"));
        }
    }
    for n in [Name::MaxForwards, Name::Expires, Name::MinExpires] {
        for v in h.all(&n) {
            if digits(v).is_none() {
                return Err(bad(n.clone(), "not a number"));
            }
        }
    }
    Ok(())
}

/// Parses one message. `buf` is a whole datagram, or exactly one message cut by the stream
/// framer. In a datagram, bytes past Content-Length are ignored (RFC 3261 §18.3).
pub fn parse(buf: &[u8]) -> Result<Message, ParseError> {
    if buf.len() > MAX_MESSAGE {
        return Err(err(ParseErrorKind::TooLarge));
    }
    // Line ends before the start line are keepalives or padding (RFC 3261 §7.5).
    let start = buf
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .ok_or_else(|| err(ParseErrorKind::Empty))?;
    let buf = &buf[start..];
    let (head, rest, complete) = match split_head(buf) {
        Some((h, r)) => (h, r, true),
        None => (buf, &[][..], false),
    };
    // Valid UTF-8 is the rule; only broken input pays for the lossy copy.
    let head = match std::str::from_utf8(head) {
        Ok(h) => Cow::Borrowed(h),
        Err(_) => String::from_utf8_lossy(head),
    };
    let lines = logical_lines(&head);
    let (first, header_text) = lines
        .split_first()
        .ok_or_else(|| err(ParseErrorKind::Empty))?;
    let start_line = parse_start_line(first);
    let (headers, lines_ok) = header_lines(header_text);
    let is_request = !matches!(start_line, Ok(StartLine::Response(..)))
        && !first
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"));
    let fail = |kind: ParseErrorKind| ParseError {
        answerable: if is_request && kind != ParseErrorKind::NotSip {
            answerable(&headers)
        } else {
            None
        },
        kind,
    };
    let start_line = start_line.map_err(fail)?;
    if !lines_ok {
        return Err(fail(ParseErrorKind::BadHeaderLine));
    }
    if !complete {
        return Err(fail(ParseErrorKind::Truncated));
    }
    let method = match &start_line {
        StartLine::Request(m, _) => Some(m),
        StartLine::Response(..) => None,
    };
    validate(&headers, method).map_err(fail)?;
    let body_len = match headers
        .all(&Name::ContentLength)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => rest.len(),
        [one] => {
            let n = digits(one).ok_or_else(|| fail(ParseErrorKind::BadContentLength))? as usize;
            if n > rest.len() {
                return Err(fail(ParseErrorKind::Truncated));
            }
            n
        }
        _ => return Err(fail(ParseErrorKind::DuplicateHeader(Name::ContentLength))),
    };
    let body = rest[..body_len].to_vec();
    Ok(match start_line {
        StartLine::Request(method, uri) => Message::Request(Request {
            method,
            uri,
            headers,
            body,
        }),
        StartLine::Response(code, reason) => Message::Response(Response {
            code,
            reason,
            headers,
            body,
        }),
    })
}

#[cfg(test)]
mod tests;
