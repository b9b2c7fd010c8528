//! Where the far side is to send a call's media when we may be behind a NAT: the public
//! side of the RTP port, as the account's STUN server sees it, or else the public address
//! the registrar saw our signalling come from.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::config::StunServer;
use crate::media::stun::{self, MappingWatch};

/// What an account asks for its calls' NAT traversal.
#[derive(Debug, Clone, Default)]
pub(super) struct NatPrefs {
    pub(super) stun: Option<StunServer>,
    /// How often a call's mapping is asked for again (kept open, and watched for moves);
    /// None: never.
    pub(super) refresh: Option<Duration>,
}

/// The address an SDP gives for `rtp`: `local` is the address we reach the far side from,
/// `public` the one the registrar sees it as. With a watch to keep it, when STUN found it.
pub(super) async fn media_address(
    prefs: &NatPrefs,
    rtp: &UdpSocket,
    local: IpAddr,
    public: IpAddr,
) -> (SocketAddr, Option<MappingWatch>) {
    let port = rtp.local_addr().map_or(0, |a| a.port());
    if let Some(server) = &prefs.stun {
        match stun_server(server, local).await {
            Ok(at) => match stun::discover(rtp, at).await {
                Ok(mapped) => {
                    if mapped.ip() != local || mapped.port() != port {
                        tracing::debug!("RTP port {port} is {mapped} outside (STUN {server})");
                    }
                    let watch = prefs
                        .refresh
                        .map(|every| MappingWatch::new(at, mapped, every));
                    return (mapped, watch);
                }
                Err(e) => tracing::warn!("{e} ({server}); offering our RTP port as we know it"),
            },
            Err(e) => tracing::warn!("STUN server {server}: {e}"),
        }
    }
    // Without STUN, a NAT that keeps port numbers (most do, Linux's among them) is
    // crossed by the registrar's view of our address and our own port.
    (SocketAddr::new(public, port), None)
}

/// The STUN server's address in the family of `local`.
async fn stun_server(server: &StunServer, local: IpAddr) -> std::io::Result<SocketAddr> {
    let mut found = tokio::net::lookup_host((server.host.as_str(), server.port)).await?;
    found
        .find(|a| a.is_ipv4() == local.is_ipv4())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "no IPv{} address",
                if local.is_ipv4() { 4 } else { 6 }
            ))
        })
}
