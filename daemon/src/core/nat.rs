//! Where the far side is to send a call's media when we may be behind a NAT: with ICE,
//! the default candidate of what was gathered (the far side's ICE then finds the pair
//! that works); else the public side of the RTP port as the account's STUN server sees
//! it, or the public address the registrar saw our signalling come from.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::config::{StunServer, TurnSettings};
use crate::media::ice::{Ice, IceServers, TurnServer};
use crate::media::session::bind_rtcp;
use crate::media::stun::{self, MappingWatch};
use crate::sdp::{IceDescription, Media};

/// What an account asks for its calls' NAT traversal.
#[derive(Debug, Clone, Default)]
pub(super) struct NatPrefs {
    pub(super) stun: Option<StunServer>,
    pub(super) ice: bool,
    pub(super) turn: Option<TurnSettings>,
    /// How often a call's mapping is asked for again (kept open, and watched for moves);
    /// None: never.
    pub(super) refresh: Option<Duration>,
}

/// A call's ports and how the SDP names them.
pub(super) struct MediaPlan {
    /// RTP's address for the SDP's c= and m= lines.
    pub(super) at: SocketAddr,
    pub(super) rtcp: Option<UdpSocket>,
    /// RTCP's address when it is not the next port (`a=rtcp`, RFC 3605).
    pub(super) rtcp_at: Option<SocketAddr>,
    pub(super) mapping: Option<MappingWatch>,
    pub(super) ice: Option<Box<Ice>>,
}

impl MediaPlan {
    /// Our ICE in our media section, when the plan has ICE.
    pub(super) fn describe(&self, m: &mut Media) {
        if let Some(ice) = &self.ice {
            // Our agent checks RTCP as a component of its own: no rtcp-mux with it.
            m.other_attrs.retain(|a| a != crate::sdp::RTCP_MUX);
            let (ufrag, pwd) = ice.credentials();
            IceDescription {
                ufrag: ufrag.into(),
                pwd: pwd.into(),
                candidates: ice.candidate_attrs(),
                lite: false,
            }
            .write(m, self.rtcp_at);
        }
    }
}

/// The plan for `rtp`: `local` is the address we reach the far side from, `public` the
/// one the registrar sees it as. With `ice` (the offerer controls) candidates are
/// gathered first.
pub(super) async fn plan(
    prefs: &NatPrefs,
    rtp: &UdpSocket,
    local: IpAddr,
    public: IpAddr,
    ice: Option<bool>,
) -> MediaPlan {
    let rtcp = bind_rtcp(rtp);
    let port = rtp.local_addr().map_or(0, |a| a.port());
    if let Some(controlling) = ice.filter(|_| prefs.ice) {
        match gather(prefs, rtp, rtcp.as_ref(), local, controlling).await {
            Ok(ice) => {
                let at = ice
                    .default_address(1)
                    .unwrap_or(SocketAddr::new(local, port));
                let rtcp_at = ice
                    .default_address(2)
                    .filter(|r| *r != SocketAddr::new(at.ip(), at.port().wrapping_add(1)));
                return MediaPlan {
                    at,
                    rtcp,
                    rtcp_at,
                    mapping: None,
                    ice: Some(Box::new(ice)),
                };
            }
            Err(e) => tracing::warn!("{e}; the call goes on without ICE"),
        }
    }
    let (at, mapping) = media_address(prefs, rtp, local, public).await;
    MediaPlan {
        at,
        rtcp,
        rtcp_at: None,
        mapping,
        ice: None,
    }
}

async fn gather(
    prefs: &NatPrefs,
    rtp: &UdpSocket,
    rtcp: Option<&UdpSocket>,
    local: IpAddr,
    controlling: bool,
) -> Result<Ice, String> {
    let mut servers = IceServers::default();
    if let Some(s) = &prefs.stun {
        match resolve(&s.host, s.port, local).await {
            Ok(a) => servers.stun = Some(a),
            Err(e) => tracing::warn!("STUN server {s}: {e}"),
        }
    }
    if let Some(t) = &prefs.turn {
        match resolve(&t.host, t.port, local).await {
            Ok(addr) => {
                servers.turn = Some(TurnServer {
                    addr,
                    username: t.username.clone(),
                    password: t.password.expose().to_string(),
                })
            }
            Err(e) => tracing::warn!("TURN server {}:{}: {e}", t.host, t.port),
        }
    }
    let hosts: Vec<&UdpSocket> = std::iter::once(rtp).chain(rtcp).collect();
    let mut ice = Ice::new(controlling, &hosts, &servers).map_err(|e| e.to_string())?;
    ice.gather(&hosts).await.map_err(|e| e.to_string())?;
    Ok(ice)
}

/// The address an SDP without ICE gives for `rtp`, with a watch to keep it when STUN
/// found it.
async fn media_address(
    prefs: &NatPrefs,
    rtp: &UdpSocket,
    local: IpAddr,
    public: IpAddr,
) -> (SocketAddr, Option<MappingWatch>) {
    let port = rtp.local_addr().map_or(0, |a| a.port());
    if let Some(server) = &prefs.stun {
        match resolve(&server.host, server.port, local).await {
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

/// A server's address in the family of `local`; a lookup that takes more than 2 s is
/// given up (a call's setup waits for it).
async fn resolve(host: &str, port: u16, local: IpAddr) -> std::io::Result<SocketAddr> {
    let lookup = tokio::net::lookup_host((host, port));
    let mut found = tokio::time::timeout(Duration::from_secs(2), lookup)
        .await
        .map_err(|_| std::io::Error::other("no answer from DNS within 2 s"))??;
    found
        .find(|a| a.is_ipv4() == local.is_ipv4())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "no IPv{} address",
                if local.is_ipv4() { 4 } else { 6 }
            ))
        })
}
