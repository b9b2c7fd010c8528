//! Contacts as the core checks them: names, addresses (SIP URIs or numbers, kept in one
//! form so the same address is always found), and what a typed name means.

use super::phone::check_limit;
use super::presence::Presence;
use super::{AccountInfo, CoreError, EventKind, PhoneHandle, vcard};
use crate::sip::uri::{Host, SipUri};
use crate::store::{Contact, ContactEdit, Imported, NewContact};

/// A contact with what is known of its presence now.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactInfo {
    pub contact: Contact,
    pub presence: Presence,
}

const MAX_NAME: usize = 200;
const MAX_NOTES: usize = 8192;
const MAX_ADDRESSES: usize = 32;
/// Properties named in one card's "not imported" line; a card with more (a file made to
/// flood the report) has the rest counted.
const MAX_NAMED: usize = 12;
/// Said with what a card loses, so nobody looks for it elsewhere.
const KEPT: &str = "voipd keeps names, SIP addresses, numbers and notes";

fn bad(field: &'static str, message: String) -> CoreError {
    CoreError::InvalidArgument { field, message }
}

pub(super) fn check_name(name: &str) -> Result<String, CoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(bad("name", "a contact needs a name".into()));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(bad(
            "name",
            format!("{name:?}: up to {MAX_NAME} characters, no control characters"),
        ));
    }
    Ok(name.to_string())
}

pub(super) fn check_notes(notes: &str) -> Result<String, CoreError> {
    if notes.len() > MAX_NOTES {
        return Err(bad(
            "notes",
            format!("{} bytes; up to {MAX_NOTES}", notes.len()),
        ));
    }
    Ok(notes.to_string())
}

/// Addresses normalised, duplicates dropped; errors name `field` (the argument they came in).
pub(super) fn check_addresses(
    field: &'static str,
    list: &[String],
) -> Result<Vec<String>, CoreError> {
    if list.len() > MAX_ADDRESSES {
        return Err(bad(
            field,
            format!("{} given; up to {MAX_ADDRESSES}", list.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for a in list {
        let a = normalise_address(a).map_err(|m| bad(field, m))?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// A contact as given through the API or a vCard, checked.
pub(super) fn check_new(c: NewContact) -> Result<NewContact, CoreError> {
    Ok(NewContact {
        name: check_name(&c.name)?,
        addresses: check_addresses("addresses", &c.addresses)?,
        notes: check_notes(&c.notes)?,
        ..c
    })
}

/// One form for an address: a SIP URI (`sip:user@host`, parameters kept) or a number of
/// digits with an optional leading + (and * or #), separators dropped.
pub(super) fn normalise_address(input: &str) -> Result<String, String> {
    let a = input.trim();
    let lower = a.to_ascii_lowercase();
    let scheme = lower.starts_with("sip:") || lower.starts_with("sips:");
    if scheme || a.contains('@') {
        let text = if scheme {
            a.to_string()
        } else {
            format!("sip:{a}")
        };
        let uri: SipUri = text
            .parse()
            .map_err(|e| format!("{input:?} is not a SIP URI: {e}"))?;
        if uri.user.is_none() {
            return Err(format!("{input:?} has no user part (sip:user@host)"));
        }
        return Ok(uri.to_string());
    }
    let a = lower.strip_prefix("tel:").unwrap_or(&lower);
    let mut number = String::new();
    for (i, ch) in a.chars().enumerate() {
        match ch {
            '0'..='9' | '*' | '#' => number.push(ch),
            '+' if i == 0 => number.push(ch),
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => {
                return Err(format!(
                    "{input:?} is neither a SIP address (user@host) nor a number"
                ));
            }
        }
    }
    if !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!("{input:?} has no digits"));
    }
    Ok(number)
}

/// Whether a typed target is meant as a contact's name rather than an address: a word
/// that is not a URI, not user@host and not a number.
pub(super) fn looks_like_name(input: &str) -> bool {
    let t = input.trim();
    !t.is_empty() && !t.contains(['@', ':']) && normalise_address(t).is_err()
}

/// The one contact `matches` names, or an error listing them all with what does pick
/// one: for `contact` arguments the id, elsewhere (where an id would be dialled as a
/// number) an address.
pub(super) fn one_of(
    field: &'static str,
    typed: &str,
    mut matches: Vec<Contact>,
) -> Result<Option<Contact>, CoreError> {
    if matches.len() < 2 {
        return Ok(matches.pop());
    }
    let by_id = field == "contact";
    let each: Vec<String> = matches
        .iter()
        .map(|c| match (by_id, c.addresses.first()) {
            (true, _) => format!("{} (id {})", c.name, c.id),
            (false, Some(a)) => format!("{} ({a})", c.name),
            (false, None) => format!("{} (no address)", c.name),
        })
        .collect();
    Err(bad(
        field,
        format!(
            "{typed:?} matches {} contacts: {}; use a longer name or the {}",
            matches.len(),
            each.join(", "),
            if by_id { "id" } else { "address" }
        ),
    ))
}

/// What a typed target means: the contact it names with its addresses in order, or the
/// input itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resolved {
    /// The contact's name and id, when it named one.
    pub contact: Option<(String, i64)>,
    /// The contact's addresses, or the input alone.
    pub addresses: Vec<String>,
}

impl PhoneHandle {
    /// Favourites first, then by name; those whose name or an address contains `query`.
    pub async fn contacts(
        &self,
        query: Option<String>,
        favourites_only: bool,
        limit: u32,
    ) -> Result<Vec<ContactInfo>, CoreError> {
        check_limit(limit)?;
        let list = self
            .store
            .contacts(query.filter(|q| !q.is_empty()), favourites_only, limit)
            .await
            .map_err(CoreError::Store)?;
        self.with_presence(list).await
    }

    /// A contact by id or by name (see [`Store::contacts_named`]).
    pub async fn contact(&self, reference: &str) -> Result<ContactInfo, CoreError> {
        let c = self.find_contact(reference).await?;
        Ok(self.with_presence(vec![c]).await?.remove(0))
    }

    pub async fn add_contact(&self, c: NewContact) -> Result<ContactInfo, CoreError> {
        let c = check_new(NewContact {
            uid: new_uid(),
            ..c
        })?;
        let added = self.store.add_contact(c).await.map_err(CoreError::Store)?;
        self.changed(added).await
    }

    /// Changes the fields `edit` gives; checks them all before changing any.
    pub async fn edit_contact(
        &self,
        reference: &str,
        mut edit: ContactEdit,
    ) -> Result<ContactInfo, CoreError> {
        let c = self.find_contact(reference).await?;
        edit.name = edit.name.as_deref().map(check_name).transpose()?;
        edit.notes = edit.notes.as_deref().map(check_notes).transpose()?;
        edit.addresses = edit
            .addresses
            .as_deref()
            .map(|a| check_addresses("addresses", a))
            .transpose()?;
        edit.add_addresses = check_addresses("add_addresses", &edit.add_addresses)?;
        edit.remove_addresses = edit
            .remove_addresses
            .iter()
            .map(|a| normalise_address(a).map_err(|m| bad("remove_addresses", m)))
            .collect::<Result<_, _>>()?;
        // The addresses it will have, checked before anything is written.
        let mut after = c.clone();
        after.apply(edit.clone());
        if after.addresses.len() > MAX_ADDRESSES {
            return Err(bad(
                "add_addresses",
                format!(
                    "it would have {} addresses; up to {MAX_ADDRESSES}",
                    after.addresses.len()
                ),
            ));
        }
        let edited = self
            .store
            .edit_contact(c.id, edit)
            .await
            .map_err(CoreError::Store)?
            .ok_or_else(|| not_found(reference))?;
        self.changed(edited).await
    }

    /// Removes a contact; returns its id.
    pub async fn remove_contact(&self, reference: &str) -> Result<i64, CoreError> {
        let c = self.find_contact(reference).await?;
        if !self
            .store
            .remove_contact(c.id)
            .await
            .map_err(CoreError::Store)?
        {
            return Err(not_found(reference));
        }
        self.contacts_event(EventKind::ContactRemoved { id: c.id })
            .await?;
        Ok(c.id)
    }

    /// Reads vCards and keeps them all, or none if one is wrong. An address that is
    /// neither a SIP address nor a number (1-800-FLOWERS) is left out and reported, and
    /// so, in one line per card, is what voipd has no place for (EMAIL, ADR, PHOTO, …).
    pub async fn import_vcard(&self, text: &str) -> Result<(Imported, Vec<String>), CoreError> {
        let cards = vcard::parse(text).map_err(|e| bad("vcard", e.to_string()))?;
        let mut checked = Vec::with_capacity(cards.len());
        let mut skipped = Vec::new();
        for (i, mut card) in cards.into_iter().enumerate() {
            let mut addresses: Vec<String> = Vec::new();
            for a in &card.addresses {
                match normalise_address(a) {
                    Ok(a) if !addresses.contains(&a) => addresses.push(a),
                    Ok(_) => {}
                    Err(why) => skipped.push(format!("card {} ({}): {why}", i + 1, card.name)),
                }
            }
            // What does not fit is left out and said, rather than refusing the whole file.
            if addresses.len() > MAX_ADDRESSES {
                skipped.push(format!(
                    "card {} ({}): {} addresses; the first {MAX_ADDRESSES} are kept",
                    i + 1,
                    card.name,
                    addresses.len()
                ));
                addresses.truncate(MAX_ADDRESSES);
            }
            if card.notes.len() > MAX_NOTES {
                skipped.push(format!(
                    "card {} ({}): notes cut to {MAX_NOTES} bytes",
                    i + 1,
                    card.name
                ));
                let mut end = MAX_NOTES;
                while !card.notes.is_char_boundary(end) {
                    end -= 1;
                }
                card.notes.truncate(end);
            }
            if card.name.is_empty() {
                match addresses.first() {
                    Some(a) => card.name = a.clone(),
                    None => {
                        skipped.push(format!("card {}: no name and no address", i + 1));
                        continue;
                    }
                }
            }
            if !card.skipped.is_empty() {
                skipped.push(format!(
                    "card {} ({}): {} not imported ({KEPT})",
                    i + 1,
                    card.name,
                    listed(&card.skipped)
                ));
            }
            // A card without a UID gets one from what it says, so importing the same file
            // twice updates rather than doubles.
            let uid = card
                .uid
                .clone()
                .unwrap_or_else(|| derived_uid(&card.name, &addresses));
            let c = NewContact {
                uid,
                name: card.name,
                addresses,
                favourite: card.favourite,
                notes: card.notes,
            };
            let c = check_new(c).map_err(|e| bad("vcard", format!("card {}: {e}", i + 1)))?;
            checked.push(c);
        }
        let done = self
            .store
            .import_contacts(checked)
            .await
            .map_err(CoreError::Store)?;
        self.contacts_event(EventKind::ContactsImported {
            added: done.added,
            updated: done.updated,
        })
        .await?;
        Ok((done, skipped))
    }

    /// Every contact as vCard 4.0; local numbers say they are local to the first enabled
    /// account's domain.
    pub async fn export_vcard(&self) -> Result<String, CoreError> {
        let all = self
            .store
            .contacts(None, false, 0)
            .await
            .map_err(CoreError::Store)?;
        let context = phone_context(&self.accounts().await?);
        Ok(vcard::write(&all, context.as_deref()))
    }

    /// What a typed target means: a contact's address when it is a contact's name (the
    /// first SIP address when `sip_only` and it has one), else the input as it is.
    pub(super) async fn resolve_target(
        &self,
        field: &'static str,
        input: &str,
        sip_only: bool,
    ) -> Result<String, CoreError> {
        let r = self.resolve(field, input).await?;
        let pick = if sip_only {
            r.addresses
                .iter()
                .find(|a| a.starts_with("sip"))
                .or(r.addresses.first())
        } else {
            r.addresses.first()
        };
        match (pick, r.contact) {
            (Some(a), _) => Ok(a.clone()),
            (None, Some((name, id))) => Err(bad(
                field,
                format!("contact {name} (id {id}) has no address"),
            )),
            (None, None) => Ok(input.to_string()),
        }
    }

    /// The contact a typed target names, with all its addresses; else the input.
    pub(super) async fn resolve(
        &self,
        field: &'static str,
        input: &str,
    ) -> Result<Resolved, CoreError> {
        let itself = || Resolved {
            contact: None,
            addresses: vec![input.to_string()],
        };
        if !looks_like_name(input) {
            return Ok(itself());
        }
        let matches = self
            .store
            .contacts_named(input.trim().to_string())
            .await
            .map_err(CoreError::Store)?;
        Ok(match one_of(field, input, matches)? {
            Some(c) => Resolved {
                contact: Some((c.name, c.id)),
                addresses: c.addresses,
            },
            None => itself(),
        })
    }

    /// The addresses a `with` filter means: a contact's (by name or id), else the one given.
    pub(super) async fn peers_of(&self, with: &str) -> Result<Vec<String>, CoreError> {
        let addresses = if looks_like_name(with) {
            let matches = self
                .store
                .contacts_named(with.trim().to_string())
                .await
                .map_err(CoreError::Store)?;
            match one_of("with", with, matches)? {
                Some(c) => c.addresses,
                None => vec![with.to_string()],
            }
        } else {
            vec![with.to_string()]
        };
        self.complete(addresses).await
    }

    async fn find_contact(&self, reference: &str) -> Result<Contact, CoreError> {
        let r = reference.trim();
        if let Ok(id) = r.parse::<i64>() {
            return self
                .store
                .contact(id)
                .await
                .map_err(CoreError::Store)?
                .ok_or_else(|| not_found(r));
        }
        if r.is_empty() {
            return Err(bad("contact", "give a contact's id or name".into()));
        }
        let matches = self
            .store
            .contacts_named(r.to_string())
            .await
            .map_err(CoreError::Store)?;
        one_of("contact", r, matches)?.ok_or_else(|| not_found(r))
    }

    async fn changed(&self, c: Contact) -> Result<ContactInfo, CoreError> {
        let info = self.with_presence(vec![c]).await?.remove(0);
        self.contacts_event(EventKind::ContactChanged(info.clone()))
            .await?;
        Ok(info)
    }
}

fn not_found(reference: &str) -> CoreError {
    CoreError::NotFound {
        what: "contact",
        id: reference.to_string(),
    }
}

/// "EMAIL, ADR, PHOTO", the names past [`MAX_NAMED`] counted.
fn listed(names: &[String]) -> String {
    let shown = names.get(..MAX_NAMED).unwrap_or(names).join(", ");
    match names.len().saturating_sub(MAX_NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// The domain a contact's local number (one without +) is dialled in, for its tel: URI's
/// phone-context: the provider's, as its numbering plan is the one the number was saved
/// for. The first enabled account's, as dialling falls back to it (a registered one is
/// not preferred, so an export does not change with the network); else the first with a
/// domain name. None without accounts, or with IP addresses only.
fn phone_context(accounts: &[AccountInfo]) -> Option<String> {
    let domain = |a: &AccountInfo| match a.aor.parse::<SipUri>().ok()?.host {
        Host::Domain(d) => Some(d),
        Host::V4(_) | Host::V6(_) => None,
    };
    let (enabled, disabled): (Vec<&AccountInfo>, Vec<&AccountInfo>) =
        accounts.iter().partition(|a| a.enabled);
    enabled.into_iter().chain(disabled).find_map(domain)
}

/// A random version-4 UUID URN, as vCard 4.0 suggests for UID.
fn new_uid() -> String {
    let mut b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A UID that is the same whenever the same card (name and addresses) is imported.
fn derived_uid(name: &str, addresses: &[String]) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(name)
        .chain(addresses.iter().map(String::as_str))
        .flat_map(|s| s.bytes().chain([0]))
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("voipd:{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_have_one_form() {
        assert_eq!(
            normalise_address(" +44 (1865) 270-000 ").unwrap(),
            "+441865270000"
        );
        assert_eq!(normalise_address("tel:+1-555-0100").unwrap(), "+15550100");
        assert_eq!(
            normalise_address("alice@example.com").unwrap(),
            "sip:alice@example.com"
        );
        assert_eq!(
            normalise_address("SIP:alice@example.com:5080").unwrap(),
            "sip:alice@example.com:5080"
        );
        assert_eq!(
            normalise_address("sipgate@example.com:5060").unwrap(),
            "sip:sipgate@example.com:5060"
        );
        assert!(normalise_address("alice").is_err());
        assert!(normalise_address("sip:example.com").is_err());
        assert!(normalise_address("12+3").is_err());
        assert!(normalise_address("--").is_err());
    }

    #[test]
    fn a_card_keeps_its_derived_uid() {
        let a = vec!["sip:a@x".to_string()];
        assert_eq!(derived_uid("A", &a), derived_uid("A", &a));
        assert_ne!(derived_uid("A", &a), derived_uid("B", &a));
        assert!(new_uid().starts_with("urn:uuid:"));
        assert_ne!(new_uid(), new_uid());
    }

    #[test]
    fn a_long_list_of_skipped_properties_is_cut() {
        let names: Vec<String> = (1..=15).map(|i| format!("X-{i}")).collect();
        assert_eq!(listed(&names[..3]), "X-1, X-2, X-3");
        let all = listed(&names);
        assert!(all.starts_with("X-1, X-2,"), "{all}");
        assert!(all.ends_with("X-12 and 3 more"), "{all}");
    }

    #[test]
    fn local_numbers_are_local_to_the_first_enabled_accounts_domain() {
        let account = |aor: &str, enabled: bool| AccountInfo {
            id: aor.into(),
            aor: aor.into(),
            display_name: None,
            enabled,
            state: super::super::RegState::Unregistered,
            forwarding: Vec::new(),
            voicemail: None,
        };
        assert_eq!(phone_context(&[]), None);
        assert_eq!(
            phone_context(&[
                account("sip:a@old.example", false),
                account("sip:b@192.0.2.1", true),
                account("sip:c@sip.example.com:5080", true),
            ]),
            Some("sip.example.com".into())
        );
        assert_eq!(
            phone_context(&[account("sip:a@old.example", false)]),
            Some("old.example".into())
        );
        assert_eq!(phone_context(&[account("sip:b@[2001:db8::1]", true)]), None);
    }

    #[test]
    fn names_are_told_from_addresses() {
        assert!(looks_like_name("alice"));
        assert!(looks_like_name("Alice Liddell"));
        assert!(!looks_like_name("alice@example.com"));
        assert!(!looks_like_name("sip:alice@example.com"));
        assert!(!looks_like_name("+49 30 1234"));
        assert!(!looks_like_name("100"));
    }
}
