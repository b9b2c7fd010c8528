//! Where SIP is received: `udp:0.0.0.0:5060`, as the configuration writes it.

use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;

/// The transport of a listening address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenProto {
    Udp,
    Tcp,
    Tls,
}

/// A SIP listening address, written `udp:0.0.0.0:5060`, `tcp:[::]:5060` or `tls:…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ListenAddr {
    pub transport: ListenProto,
    pub addr: SocketAddr,
}

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let (t, addr) = s.split_once(':').ok_or_else(|| {
            format!("{s:?} is not TRANSPORT:ADDRESS:PORT, e.g. \"udp:0.0.0.0:5060\"")
        })?;
        let transport = match t {
            "udp" => ListenProto::Udp,
            "tcp" => ListenProto::Tcp,
            "tls" => ListenProto::Tls,
            _ => {
                return Err(format!(
                    "unknown transport {t:?} in {s:?}; expected udp, tcp or tls"
                ));
            }
        };
        let addr = addr.parse().map_err(|_| {
            format!(
                "{addr:?} in {s:?} is not an IP address and port, e.g. 0.0.0.0:5060 or [::]:5060"
            )
        })?;
        Ok(ListenAddr { transport, addr })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.transport {
            ListenProto::Udp => "udp",
            ListenProto::Tcp => "tcp",
            ListenProto::Tls => "tls",
        };
        write!(f, "{t}:{}", self.addr)
    }
}
