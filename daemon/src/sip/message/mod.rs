//! SIP messages (RFC 3261 §7): parsed from bytes into requests and responses with ordered
//! headers, and written back.
//!
//! Our own parser rather than rsip 0.4's: rsip rejects IPv6 hosts, `tel:` URIs, unknown
//! methods, folded lines and Contacts with `+sip.instance`, and keeps only the first of
//! comma-separated Via values. Here compact names are expanded, folded lines joined and
//! list headers split while parsing, so the layers above see one normal form.

mod header;
mod name;
mod parse;

use std::fmt;

pub use header::{CSeq, DigestParams, HeaderError, NameAddr, Params, Via};
pub use name::Name;
pub(crate) use parse::split_head;
pub use parse::{MAX_MESSAGE, ParseError, ParseErrorKind, parse};

/// A request from its text, for tests.
#[cfg(test)]
pub(crate) fn request(text: &str) -> Request {
    match parse(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

use crate::sip::uri::Uri;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Publish,
    Refer,
    Message,
    /// An extension method: legal, and answered 501 unless something handles it.
    Other(String),
}

impl Method {
    pub fn from_wire(s: &str) -> Method {
        // Methods are case-sensitive (RFC 3261 §7.1).
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Headers in wire order. List headers hold one value per entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(Name, String)>);

impl Headers {
    pub fn with_capacity(n: usize) -> Headers {
        Headers(Vec::with_capacity(n))
    }

    pub fn get(&self, name: &Name) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a Name) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn push(&mut self, name: Name, value: impl Into<String>) {
        self.0.push((name, value.into()));
    }

    /// Inserts before every other header, as a proxy or a transport adds a Via.
    pub fn push_front(&mut self, name: Name, value: impl Into<String>) {
        self.0.insert(0, (name, value.into()));
    }

    pub fn set(&mut self, name: Name, value: impl Into<String>) {
        self.remove(&name);
        self.push(name, value);
    }

    /// Replaces the first value of `name` where it stands, or appends it.
    pub fn set_first(&mut self, name: Name, value: impl Into<String>) {
        match self.first_mut(&name) {
            Some(v) => *v = value.into(),
            None => self.push(name, value),
        }
    }

    pub fn remove(&mut self, name: &Name) {
        self.0.retain(|(n, _)| n != name);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Name, &str)> {
        self.0.iter().map(|(n, v)| (n, v.as_str()))
    }

    fn first_mut(&mut self, name: &Name) -> Option<&mut String> {
        self.0.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Accessors shared by requests and responses. The parser has checked that these headers
/// exist and parse, so on a parsed message they only fail for locally built ones.
pub trait SipHeaders {
    fn headers(&self) -> &Headers;
    fn headers_mut(&mut self) -> &mut Headers;

    fn call_id(&self) -> Option<&str> {
        self.headers().get(&Name::CallId)
    }
    fn cseq(&self) -> Option<CSeq> {
        self.headers()
            .get(&Name::CSeq)
            .and_then(|v| CSeq::parse(v).ok())
    }
    fn top_via(&self) -> Option<Via> {
        self.headers()
            .get(&Name::Via)
            .and_then(|v| Via::parse(v).ok())
    }
    fn from(&self) -> Option<NameAddr> {
        self.headers()
            .get(&Name::From)
            .and_then(|v| NameAddr::parse(v).ok())
    }
    fn to(&self) -> Option<NameAddr> {
        self.headers()
            .get(&Name::To)
            .and_then(|v| NameAddr::parse(v).ok())
    }
    /// Replaces the top Via, e.g. to add `received` and fill `rport`.
    fn set_top_via(&mut self, via: &Via) {
        if let Some(v) = self.headers_mut().first_mut(&Name::Via) {
            *v = via.to_string();
        }
    }
}

impl SipHeaders for Request {
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }
}

impl SipHeaders for Response {
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for (n, v) in headers.iter() {
        if *n == Name::ContentLength {
            continue;
        }
        out.extend_from_slice(n.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // Always computed here, so it can never disagree with the body.
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }

    /// A response to this request with the headers RFC 3261 §8.2.6.2 copies: Via, From,
    /// To, Call-ID, CSeq (and Record-Route for dialog-forming responses, left to callers).
    pub fn response(&self, code: u16, reason: &str) -> Response {
        // A response that makes a dialog carries the Record-Route of its request, so that
        // the far side's requests in the dialog pass the same proxies (RFC 3261 §12.1.1).
        let dialog = (101..300).contains(&code)
            && matches!(
                self.method,
                Method::Invite | Method::Subscribe | Method::Refer
            );
        let mut headers = Headers::default();
        for (n, v) in self.headers.iter() {
            if matches!(
                n,
                Name::Via | Name::From | Name::To | Name::CallId | Name::CSeq
            ) || (dialog && *n == Name::RecordRoute)
            {
                headers.push(n.clone(), v);
            }
        }
        Response {
            code,
            reason: reason.to_string(),
            headers,
            body: Vec::new(),
        }
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.code, self.reason).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }
}

/// The standard reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => "Unknown",
    }
}
