//! From a SIP URI to where packets go.

use std::net::SocketAddr;

use crate::sip::transport::{Proto, Target};
use crate::sip::uri::{Host, Scheme, SipUri};

/// Resolves a SIP URI to a transport target: IP literals directly, names through the
/// system resolver (A/AAAA; SRV and NAPTR are not looked up).
pub async fn resolve(uri: &SipUri) -> Result<Target, String> {
    let proto = match uri.param("transport").flatten() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Proto::Tcp,
        Some(t) if t.eq_ignore_ascii_case("udp") => Proto::Udp,
        Some(t) => return Err(format!("transport {t:?} is not supported")),
        None if uri.scheme == Scheme::Sips => return Err("sips: (TLS) is not supported yet".into()),
        None => Proto::Udp,
    };
    let port = uri.port.unwrap_or(5060);
    let addr = match &uri.host {
        Host::V4(ip) => SocketAddr::new((*ip).into(), port),
        Host::V6(ip) => SocketAddr::new((*ip).into(), port),
        Host::Domain(name) => tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {name}: {e}"))?
            .next()
            .ok_or_else(|| format!("{name} has no address"))?,
    };
    Ok(Target { proto, addr })
}
