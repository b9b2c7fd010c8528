//! The accounts' providers as addresses: each registrar and outbound proxy looked up as
//! RFC 3263 says (every host DNS names), for the inbound gate. A look-up that fails keeps
//! what the last one found and is tried again soon: a DNS hiccup, or a start before the
//! network is up, must not make the provider's calls strangers'.

use super::*;

/// The look-ups are made again this often (DNS changes, failover hosts).
pub(super) const RESOLVE_EVERY: Duration = Duration::from_secs(300);
/// A hop whose look-up failed is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(15);

impl Phone {
    /// Every account's registrar (the AOR's host) and outbound proxies.
    fn provider_hops(&self) -> Vec<SipUri> {
        let mut hops = Vec::new();
        for a in &self.config.accounts {
            hops.push(a.aor.0.domain());
            hops.extend(a.outbound_proxy.iter().map(|p| p.0.clone()));
        }
        hops
    }

    /// Looks the providers up off the core task; what is found comes back as updates.
    pub(super) fn resolve_providers(&mut self) {
        // Hops no longer configured (a reload) are forgotten at once.
        self.providers_found(Vec::new());
        let Some(ep) = self.endpoint.clone() else {
            return;
        };
        let mut pending = self.provider_hops();
        let updates = self.call_updates.clone();
        if let Some(old) = self.resolving.take() {
            old.abort();
        }
        self.resolving = Some(tokio::spawn(async move {
            for attempt in 0u32.. {
                let mut found = Vec::new();
                let mut failed = Vec::new();
                for hop in pending {
                    match ep.locator().locate(&hop).await {
                        Ok(targets) => found.push((
                            hop.to_string(),
                            targets.iter().map(|t| t.addr.ip().to_canonical()).collect(),
                        )),
                        Err(e) => {
                            // Once: a resolver that stays down would fill the log.
                            if attempt == 0 {
                                tracing::warn!(
                                    "cannot resolve {hop} ({e}); calls from it are taken from \
                                     where it was found before, and from where accounts \
                                     registered; trying again every {}s",
                                    RETRY_AFTER.as_secs()
                                );
                            }
                            failed.push(hop);
                        }
                    }
                }
                if !found.is_empty() && updates.send(CallUpdate::Providers(found)).await.is_err() {
                    return;
                }
                if failed.is_empty() {
                    return;
                }
                tokio::time::sleep(RETRY_AFTER).await;
                pending = failed;
            }
        }));
    }

    /// Applies a look-up: hops found replace what was known of them; hops no longer
    /// configured are forgotten; the rest keep their last addresses.
    pub(super) fn providers_found(&mut self, found: Vec<(String, Vec<std::net::IpAddr>)>) {
        self.providers.extend(found);
        let current: std::collections::HashSet<String> = self
            .provider_hops()
            .iter()
            .map(ToString::to_string)
            .collect();
        self.providers.retain(|hop, _| current.contains(hop));
        let ips = self.providers.values().flatten().copied().collect();
        tracing::debug!("providers' addresses: {ips:?}");
        self.inbound.set_resolved(ips);
    }
}
