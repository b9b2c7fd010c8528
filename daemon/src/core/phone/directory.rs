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
pub(in crate::core) fn dial_target(
    field: &'static str,
    input: &str,
    account: Option<&crate::config::Account>,
) -> Result<SipUri, CoreError> {
    let input = input.trim();
    let bad = |message: String| CoreError::InvalidArgument { field, message };
    if input.is_empty() {
        return Err(bad("whom to reach is missing".into()));
    }
    let lower = input.to_ascii_lowercase();
    let text = if lower.starts_with("sip:") || lower.starts_with("sips:") {
        input.to_string()
    } else if input.contains('@') {
        format!("sip:{input}")
    } else {
        let Some(user) = typed_user(input) else {
            return Err(bad(format!(
                "{input:?} is not valid: give a contact's name, a number, a user name, \
                 user@host or a sip: URI"
            )));
        };
        let number = user.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '*');
        // Not the command line's fault: what is missing is an account.
        let a = account.ok_or_else(|| {
            CoreError::FailedPrecondition(if number {
                format!(
                    "{input:?} is a number, and numbers are called through an account's \
                     provider; configure an account, or give user@host or a sip: URI"
                )
            } else {
                format!(
                    "no contact is named {input:?}, and without an account there is no \
                     domain to call it at; give user@host or a sip: URI, or configure an \
                     account"
                )
            })
        })?;
        let aor = &a.aor.0;
        // An account that is sips: calls sips: too: the whole way secured (RFC 3261 §26.2).
        let scheme = match aor.scheme {
            crate::sip::uri::Scheme::Sips => "sips",
            crate::sip::uri::Scheme::Sip => "sip",
        };
        match aor.port {
            Some(p) => format!("{scheme}:{user}@{}:{p}", aor.host),
            None => format!("{scheme}:{user}@{}", aor.host),
        }
    };
    text.parse::<SipUri>()
        .map_err(|e| bad(format!("{input:?} is not a valid SIP address: {e}")))
}

/// A number (digits, a leading +, * and #, with separators people type) or a user name
/// (letters, digits and `.-_+~`), as it goes into a SIP URI's user part; None when it is
/// neither, which is a typo rather than someone to call.
fn typed_user(input: &str) -> Option<String> {
    let visual = |c: char| matches!(c, ' ' | '-' | '.' | '(' | ')' | '/');
    let dialable = input.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, '*' | '#') || (c == '+' && i == 0) || visual(c)
    });
    if dialable && input.chars().any(|c| c.is_ascii_digit()) {
        // '#' is not allowed bare in a user part (RFC 3261 §25.1).
        return Some(
            input
                .chars()
                .filter(|c| !visual(*c))
                .map(|c| {
                    if c == '#' {
                        "%23".to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        );
    }
    let mut chars = input.chars();
    let user = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '~'));
    user.then(|| input.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_people_type_becomes_a_user_part_or_is_refused() {
        assert_eq!(
            typed_user("+44 1865 270000").as_deref(),
            Some("+441865270000")
        );
        assert_eq!(typed_user("*97#").as_deref(), Some("*97%23"));
        assert_eq!(typed_user("alice.smith").as_deref(), Some("alice.smith"));
        assert_eq!(typed_user("1001").as_deref(), Some("1001"));
        for junk in ["!!!garbage###", "a b", "-x", "é", "#", "+"] {
            assert_eq!(typed_user(junk), None, "{junk}");
        }
        let e = dial_target("uri", "!!!garbage###", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not valid"), "{e}");
        let e = dial_target("uri", "bob", None).unwrap_err().to_string();
        assert!(e.contains("no contact is named"), "{e}");
        let e = dial_target("uri", "+44 1865", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a number"), "{e}");
        assert!(dial_target("uri", "bob@example.com", None).is_ok());
    }
}
