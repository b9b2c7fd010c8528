//! Server location (RFC 3263): from a SIP URI to the targets a request may go to, in the
//! order to try them. Names go through NAPTR, SRV (priority, then weight) and A/AAAA, by a
//! DNS resolver that reads /etc/resolv.conf (or the servers `[sip] dns` names) and keeps
//! answers for their TTL. Built at the first name it meets: a daemon that only ever sees
//! IP addresses carries no resolver.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::sip::transport::{Proto, Target, TlsContext};
use crate::sip::uri::{Host, Scheme, SipUri};

/// Finds targets for SIP URIs. Cheap to clone.
#[derive(Clone, Default)]
pub struct Locator {
    /// Name servers to ask instead of the system's.
    servers: Arc<Vec<SocketAddr>>,
    dns: Arc<OnceLock<TokioResolver>>,
    /// Where the name each TLS target was found under is noted, for the server's
    /// certificate to be checked against it (RFC 5922 §4.1).
    tls: Option<Arc<TlsContext>>,
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locator")
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

/// One SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Srv {
    priority: u16,
    weight: u16,
    port: u16,
    target: String,
}

impl Locator {
    /// Asks `servers` (IP:port) instead of the system's name servers, when any are given.
    pub fn new(servers: Vec<SocketAddr>) -> Locator {
        Locator {
            servers: Arc::new(servers),
            dns: Arc::default(),
            tls: None,
        }
    }

    /// Notes in `tls` the name each TLS target was found under.
    pub fn with_tls(mut self, tls: Arc<TlsContext>) -> Locator {
        self.tls = Some(tls);
        self
    }

    /// The resolver, built at first use; a failed build is tried again next time (a daemon
    /// started before the network is up).
    fn dns(&self) -> Result<&TokioResolver, String> {
        if let Some(r) = self.dns.get() {
            return Ok(r);
        }
        let mut b = if self.servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| format!("no DNS configuration: {e}"))?
        } else {
            let servers = self
                .servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                    ns.connections = vec![udp, tcp];
                    ns
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        // A name server that is down must not hold a call for the default 10 s.
        let o = b.options_mut();
        o.timeout = Duration::from_secs(2);
        o.attempts = 1;
        let built = b
            .build()
            .map_err(|e| format!("cannot start the DNS resolver: {e}"))?;
        Ok(self.dns.get_or_init(|| built))
    }

    /// The first target for `uri`.
    pub async fn resolve(&self, uri: &SipUri) -> Result<Target, String> {
        let mut all = self.locate(uri).await?;
        Ok(all.remove(0))
    }

    /// Every target for `uri`, in the order to try them (never empty).
    pub async fn locate(&self, uri: &SipUri) -> Result<Vec<Target>, String> {
        let sips = uri.scheme == Scheme::Sips;
        let proto = match uri.param("transport").flatten() {
            Some(t) if t.eq_ignore_ascii_case("tls") => Some(Proto::Tls),
            // sips: over TCP is TLS (RFC 3261 §26.2.2).
            Some(t) if t.eq_ignore_ascii_case("tcp") && sips => Some(Proto::Tls),
            Some(t) if t.eq_ignore_ascii_case("tcp") => Some(Proto::Tcp),
            Some(t) if t.eq_ignore_ascii_case("udp") && sips => {
                return Err("a sips: URI cannot go over UDP".into());
            }
            Some(t) if t.eq_ignore_ascii_case("udp") => Some(Proto::Udp),
            Some(t) => return Err(format!("transport {t:?} is not supported")),
            None if sips => Some(Proto::Tls),
            None => None,
        };
        let ip = |ip: IpAddr| {
            let proto = proto.unwrap_or(Proto::Udp);
            vec![Target {
                proto,
                addr: SocketAddr::new(ip, uri.port.unwrap_or(proto.default_port())),
            }]
        };
        let name = match &uri.host {
            Host::V4(v) => return Ok(ip((*v).into())),
            Host::V6(v) => return Ok(ip((*v).into())),
            Host::Domain(name) => name.trim_end_matches('.'),
        };
        let targets = match (uri.port, proto) {
            // RFC 3263 §4.2: a port means A/AAAA; a transport alone means SRV for it.
            (Some(port), p) => self.addresses(name, port, p.unwrap_or(Proto::Udp)).await?,
            // sips: alone: NAPTR as for sip:, taking only its TLS services (RFC 3263 §4.1).
            (None, Some(Proto::Tls)) if uri.param("transport").is_none() => {
                let mut t: Vec<Target> = self.naptr_targets(name).await;
                t.retain(|t| t.proto == Proto::Tls);
                if t.is_empty() {
                    t = self.srv_targets(name, Proto::Tls).await;
                }
                if t.is_empty() {
                    t = self
                        .addresses(name, Proto::Tls.default_port(), Proto::Tls)
                        .await?;
                }
                t
            }
            (None, Some(p)) => match self.srv_targets(name, p).await {
                t if !t.is_empty() => t,
                _ => self.addresses(name, p.default_port(), p).await?,
            },
            (None, None) => {
                let mut t = self.naptr_targets(name).await;
                if t.is_empty() {
                    for p in [Proto::Udp, Proto::Tcp] {
                        t.extend(self.srv_targets(name, p).await);
                    }
                }
                if t.is_empty() {
                    t = self.addresses(name, 5060, Proto::Udp).await?;
                }
                t
            }
        };
        if let Some(tls) = &self.tls {
            // The domain the user gave, not the SRV target's name (RFC 5922 §4.1).
            for t in targets.iter().filter(|t| t.proto == Proto::Tls) {
                tls.name_for(t.addr, name);
            }
        }
        Ok(targets)
    }

    /// NAPTR (RFC 3403) for the transports we speak, in order and preference, each
    /// followed through its SRV name.
    async fn naptr_targets(&self, name: &str) -> Vec<Target> {
        let Ok(dns) = self.dns() else {
            return Vec::new();
        };
        let Ok(lookup) = dns.lookup(format!("{name}."), RecordType::NAPTR).await else {
            return Vec::new();
        };
        let mut records: Vec<(u16, u16, Proto, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::NAPTR(n) if n.flags.eq_ignore_ascii_case(b"s") => {
                    let proto = match n.services.to_ascii_uppercase().as_slice() {
                        b"SIP+D2U" => Proto::Udp,
                        b"SIP+D2T" => Proto::Tcp,
                        b"SIPS+D2T" => Proto::Tls,
                        _ => return None,
                    };
                    Some((n.order, n.preference, proto, n.replacement.to_string()))
                }
                _ => None,
            })
            .collect();
        records.sort_by_key(|r| (r.0, r.1));
        let mut out = Vec::new();
        for (_, _, proto, srv_name) in records {
            out.extend(self.srv_at(&srv_name, proto).await);
        }
        out
    }

    async fn srv_targets(&self, name: &str, proto: Proto) -> Vec<Target> {
        let label = match proto {
            Proto::Udp => "_sip._udp",
            Proto::Tcp => "_sip._tcp",
            Proto::Tls => "_sips._tcp",
        };
        self.srv_at(&format!("{label}.{name}."), proto).await
    }

    /// The SRV records at `srv_name` in the order to try them, each resolved.
    async fn srv_at(&self, srv_name: &str, proto: Proto) -> Vec<Target> {
        let Ok(dns) = self.dns() else {
            return Vec::new();
        };
        let Ok(lookup) = dns.lookup(srv_name, RecordType::SRV).await else {
            return Vec::new();
        };
        let records: Vec<Srv> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(Srv {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_string(),
                }),
                _ => None,
            })
            // "." means: no such service here (RFC 2782).
            .filter(|s| s.target != ".")
            .collect();
        let mut out = Vec::new();
        for s in srv_order(records, fastrand::u32) {
            if let Ok(t) = self.addresses(&s.target, s.port, proto).await {
                out.extend(t);
            }
        }
        out
    }

    /// A and AAAA records of `name`; failing that, what the system's resolver says (NSS:
    /// /etc/hosts, mDNS), unless other DNS servers were named.
    async fn addresses(&self, name: &str, port: u16, proto: Proto) -> Result<Vec<Target>, String> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let found = match self.dns() {
            Ok(dns) => dns
                .lookup_ip(fqdn.as_str())
                .await
                .map(|ips| ips.iter().collect::<Vec<IpAddr>>())
                .map_err(|e| format!("cannot resolve {name}: {e}")),
            Err(e) => Err(e),
        };
        let ips = match found {
            Ok(ips) if !ips.is_empty() => ips,
            Err(e) if !self.servers.is_empty() => return Err(e),
            _ => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("cannot resolve {name}: {e}"))?
                .map(|a| a.ip())
                .collect(),
        };
        let targets: Vec<Target> = ips
            .into_iter()
            .map(|ip| Target {
                proto,
                addr: SocketAddr::new(ip, port),
            })
            .collect();
        if targets.is_empty() {
            return Err(format!("{name} has no address"));
        }
        Ok(targets)
    }
}

/// RFC 2782's order: by priority, and within one priority a weighted random draw
/// (`random(n)` gives 0..n), zero weights last.
fn srv_order(
    mut records: Vec<Srv>,
    mut random: impl FnMut(std::ops::Range<u32>) -> u32,
) -> Vec<Srv> {
    records.sort_by_key(|s| (s.priority, s.weight != 0));
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let p = records[0].priority;
        let n = records.iter().take_while(|s| s.priority == p).count();
        let mut group: Vec<Srv> = records.drain(..n).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|s| u32::from(s.weight)).sum();
            let pick = random(0..total + 1);
            let mut sum = 0;
            let i = group
                .iter()
                .position(|s| {
                    sum += u32::from(s.weight);
                    sum >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(i));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn srv_priority_first_then_weight() {
        let records = vec![srv(20, 0, "backup"), srv(10, 10, "a"), srv(10, 90, "b")];
        // A draw at the top of the range picks the heaviest-but-last, b.
        let order = srv_order(records.clone(), |r| r.end - 1);
        let names: Vec<&str> = order.iter().map(|s| s.target.as_str()).collect();
        assert_eq!(names, ["b", "a", "backup"]);
        let order = srv_order(records, |_| 1);
        let names: Vec<&str> = order.iter().map(|s| s.target.as_str()).collect();
        assert_eq!(names, ["a", "b", "backup"]);
    }

    #[test]
    fn weights_share_the_draws() {
        let records = vec![srv(10, 25, "light"), srv(10, 75, "heavy")];
        let heavy_first = (0..2000)
            .filter(|_| srv_order(records.clone(), fastrand::u32)[0].target == "heavy")
            .count();
        assert!((1300..1700).contains(&heavy_first), "{heavy_first}");
    }

    #[tokio::test]
    async fn ip_literals_need_no_dns() {
        let l = Locator::new(Vec::new());
        let uri: SipUri = "sip:a@127.0.0.1;transport=tcp".parse().unwrap();
        let t = l.locate(&uri).await.unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].proto, Proto::Tcp);
        assert_eq!(t[0].addr.port(), 5060);
        assert!(l.dns.get().is_none(), "no resolver was built");
    }
}
