//! Header names: case-insensitive on the wire, compact forms (RFC 3261 §7.3.3 and later
//! RFCs) expanded, so the rest of the stack compares enums, not strings.

use std::fmt;

macro_rules! names {
    ($( $variant:ident = $canon:literal $(| $compact:literal)? ),* $(,)?) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Name {
            $( $variant, )*
            /// Any other header, as written on the wire.
            Other(String),
        }

        impl Name {
            pub fn as_str(&self) -> &str {
                match self {
                    $( Name::$variant => $canon, )*
                    Name::Other(s) => s,
                }
            }

            /// The header a wire name stands for, long or compact, in any case.
            pub fn from_wire(s: &str) -> Name {
                $(
                    if s.eq_ignore_ascii_case($canon) $(|| s.eq_ignore_ascii_case($compact))? {
                        return Name::$variant;
                    }
                )*
                Name::Other(s.to_string())
            }
        }
    };
}

names! {
    Via = "Via" | "v",
    From = "From" | "f",
    To = "To" | "t",
    CallId = "Call-ID" | "i",
    CSeq = "CSeq",
    Contact = "Contact" | "m",
    MaxForwards = "Max-Forwards",
    ContentLength = "Content-Length" | "l",
    ContentType = "Content-Type" | "c",
    ContentEncoding = "Content-Encoding" | "e",
    Expires = "Expires",
    MinExpires = "Min-Expires",
    Route = "Route",
    RecordRoute = "Record-Route",
    Path = "Path",
    Authorization = "Authorization",
    ProxyAuthorization = "Proxy-Authorization",
    WwwAuthenticate = "WWW-Authenticate",
    ProxyAuthenticate = "Proxy-Authenticate",
    Allow = "Allow",
    AllowEvents = "Allow-Events" | "u",
    Supported = "Supported" | "k",
    Require = "Require",
    Unsupported = "Unsupported",
    Accept = "Accept",
    UserAgent = "User-Agent",
    Server = "Server",
    RetryAfter = "Retry-After",
    Event = "Event" | "o",
    SubscriptionState = "Subscription-State",
    ReferTo = "Refer-To" | "r",
    ReferredBy = "Referred-By" | "b",
    Replaces = "Replaces",
    Subject = "Subject" | "s",
    SessionExpires = "Session-Expires" | "x",
    Reason = "Reason",
    MinSe = "Min-SE",
    RSeq = "RSeq",
    RAck = "RAck",
    Date = "Date",
    Timestamp = "Timestamp",
    SipETag = "SIP-ETag",
    SipIfMatch = "SIP-If-Match",
    Warning = "Warning",
}

impl Name {
    /// Headers whose comma-separated values are separate entries (RFC 3261 §7.3.1). Only
    /// those the stack reads one by one are split; the others keep their text.
    pub(super) fn is_list(&self) -> bool {
        matches!(
            self,
            Name::Via | Name::Contact | Name::Route | Name::RecordRoute | Name::Path
        )
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive() {
        assert_eq!(Name::from_wire("v"), Name::Via);
        assert_eq!(Name::from_wire("VIA"), Name::Via);
        assert_eq!(Name::from_wire("i"), Name::CallId);
        assert_eq!(Name::from_wire("call-id"), Name::CallId);
        assert_eq!(Name::from_wire("m"), Name::Contact);
        assert_eq!(Name::from_wire("l"), Name::ContentLength);
        assert_eq!(Name::from_wire("X-Foo"), Name::Other("X-Foo".into()));
        assert_eq!(Name::CallId.as_str(), "Call-ID");
    }
}
