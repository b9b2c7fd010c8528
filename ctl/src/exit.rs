//! Exit codes scripts can trust, and the failures that lead to them. One rule: 2 when the
//! command line is wrong (a bad or ambiguous argument), 1 when the daemon would not or
//! could not do it (no such call, the call failed), 3 when there is no daemon.

use std::fmt;

pub const DAEMON_SAID_NO: u8 = 1;
pub const USAGE: u8 = 2;
pub const UNREACHABLE: u8 = 3;

pub enum Failure {
    /// The daemon answered, and refused.
    Refused(tonic::Status),
    /// No daemon to talk to; the message says which socket was tried.
    Unreachable(String),
    /// The command line does not say enough (e.g. which of several calls).
    Usage(String),
    /// Nothing to act on, or what was asked for did not happen (the call ended).
    Failed(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Refused(s) if s.code() == tonic::Code::InvalidArgument => USAGE,
            Failure::Refused(_) | Failure::Failed(_) => DAEMON_SAID_NO,
            Failure::Unreachable(_) => UNREACHABLE,
            Failure::Usage(_) => USAGE,
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        // A transport failure surfaces as UNAVAILABLE with a source error: the daemon went
        // away mid-call, which is not the daemon saying no.
        if s.code() == tonic::Code::Unavailable && std::error::Error::source(&s).is_some() {
            Failure::Unreachable(format!("lost the connection to voipd: {}", s.message()))
        } else {
            Failure::Refused(s)
        }
    }
}

/// The daemon names the API's fields (`uri: …`); a person typed the command line's
/// arguments, so those are named instead.
fn in_command_words(message: &str) -> String {
    let Some((field, rest)) = message.split_once(": ") else {
        return message.to_string();
    };
    let word = match field {
        "uri" | "to" => "WHOM",
        "with" => "--with",
        "digits" => "DIGITS",
        "contact" => "CONTACT",
        "status" => "STATUS",
        "note" => "--note",
        "input" => "--input",
        "output" => "--output",
        "account" => "--account",
        "text" => "TEXT",
        "name" => "NAME",
        "addresses" => "--address",
        "add_addresses" => "--add",
        "remove_addresses" => "--remove",
        "notes" => "--notes",
        "vcard" => "FILE",
        "limit" => "--limit",
        "what" => "WHAT",
        "secs" => "--secs",
        "file" => "--to",
        "target" => "TARGET",
        "to_call" => "--to",
        "ids" => "ID",
        _ => return message.to_string(),
    };
    format!("{word}: {rest}")
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused(s) if s.code() == tonic::Code::InvalidArgument => {
                f.write_str(&in_command_words(s.message()))
            }
            Failure::Refused(s) => write!(f, "{}", s.message()),
            Failure::Unreachable(m) | Failure::Usage(m) | Failure::Failed(m) => f.write_str(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_usage_errors_named_as_typed() {
        let f = Failure::from(tonic::Status::invalid_argument("uri: \"!!\" is not valid"));
        assert_eq!(f.code(), USAGE);
        assert_eq!(f.to_string(), "WHOM: \"!!\" is not valid");
        let f = Failure::from(tonic::Status::not_found("no call \"7\""));
        assert_eq!(f.code(), DAEMON_SAID_NO);
        assert_eq!(f.to_string(), "no call \"7\"");
        let f = Failure::from(tonic::Status::invalid_argument("sip: URIs only"));
        assert_eq!(f.to_string(), "sip: URIs only", "not a field: left alone");
    }
}
