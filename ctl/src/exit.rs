//! Exit codes scripts can trust, and the failures that lead to them.

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
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Refused(_) => DAEMON_SAID_NO,
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

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused(s) => write!(f, "{}", s.message()),
            Failure::Unreachable(m) | Failure::Usage(m) => f.write_str(m),
        }
    }
}
