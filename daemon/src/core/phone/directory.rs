//! Who peers are: the address book and presence the core follows, and how what a user
//! types becomes a SIP URI.

use super::*;

impl Phone {
    /// Reads our presence as the user last set it.
    pub(super) fn read_own_presence(&self) {
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            match store.setting(OWN_PRESENCE).await {
                Ok(Some(v)) => {
                    let (status, note) = v.split_once('\t').unwrap_or((v.as_str(), ""));
                    if let Some(status) = PresenceStatus::settable(status) {
                        let p = Presence::now(status, note.to_string());
                        let _ = updates.send(CallUpdate::OwnPresence(p)).await;
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!("our presence not read: {e}"),
            }
        });
    }

    /// Reads the address book; the core follows it once it arrives.
    pub(super) fn read_contacts(&mut self) {
        self.contacts_reads += 1;
        let n = self.contacts_reads;
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            match store.contacts(None, false, 0).await {
                Ok(list) => {
                    let _ = updates.send(CallUpdate::Contacts(n, list)).await;
                }
                Err(e) => tracing::error!("contacts not read: {e}"),
            }
        });
    }

    /// Follows the contacts' presence as configured, from the account to dial from, and
    /// publishes ours through the registered accounts.
    pub(super) fn follow(&mut self, contacts: Option<Vec<crate::store::Contact>>) {
        let registered = self.accounts.registered_accounts();
        self.presence.publish(
            self.endpoint.as_ref(),
            registered.clone(),
            self.config.presence.publish,
        );
        // The account subscriptions go from stays while it is registered: another account
        // coming and going does not make them all again.
        let account = match self.presence.from() {
            Some(current) if registered.contains(current) => Some(current.clone()),
            _ => self.accounts.for_dialing(None).ok().flatten(),
        };
        self.presence.follow(
            contacts,
            self.config.presence.subscribe,
            self.endpoint.as_ref(),
            account,
            &self.call_updates,
        );
        self.presence.recheck_followers(self.config.presence.share);
        self.inbound.set_contacts(
            self.presence
                .sharing(crate::config::PresenceShare::Contacts),
        );
    }
}

/// Whom to reach, completed as a user types it; errors name `field` (the argument it came in).
pub(super) fn dial_target(
    field: &'static str,
    input: &str,
    account: Option<&crate::config::Account>,
) -> Result<SipUri, CoreError> {
    let input = input.trim();
    let bad = |message: String| CoreError::InvalidArgument { field, message };
    if input.is_empty() {
        return Err(bad("whom to reach is missing".into()));
    }
    let text = if input.contains(':') && (input.starts_with("sip:") || input.starts_with("sips:")) {
        input.to_string()
    } else if input.contains('@') {
        format!("sip:{input}")
    } else {
        let a = account.ok_or_else(|| {
            bad(format!(
                "{input:?} needs an account to complete it; give a full sip: URI"
            ))
        })?;
        let aor = &a.aor.0;
        match aor.port {
            Some(p) => format!("sip:{input}@{}:{p}", aor.host),
            None => format!("sip:{input}@{}", aor.host),
        }
    };
    text.parse::<SipUri>()
        .map_err(|e| bad(format!("{text:?} is not a SIP URI: {e}")))
}
