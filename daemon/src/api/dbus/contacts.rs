//! `org.voipd.Contacts1` at the root: the address book and presence, for a panel's contact
//! list. The same core calls as gRPC `Contacts`.

use std::collections::HashMap;

use zbus::object_server::SignalEmitter;
use zbus::{Variant, interface};

use super::objects::VoipdError;
use crate::core::{ContactInfo, PhoneHandle};
use crate::store::{ContactEdit, NewContact};

pub(super) struct Contacts {
    pub phone: PhoneHandle,
}

type Dict = HashMap<String, Variant<'static>>;

/// Id, Uid, Name, Addresses (as), Favourite, Notes, Presence (unknown, online, away, busy,
/// offline), PresenceNote, PresenceReason (why it is unknown).
fn dict(c: ContactInfo) -> Dict {
    HashMap::from([
        ("Id".to_string(), Variant::from(c.contact.id)),
        ("Uid".into(), Variant::from(c.contact.uid)),
        ("Name".into(), Variant::from(c.contact.name)),
        ("Addresses".into(), Variant::from(c.contact.addresses)),
        ("Favourite".into(), Variant::from(c.contact.favourite)),
        ("Notes".into(), Variant::from(c.contact.notes)),
        ("Presence".into(), Variant::from(c.presence.status.as_str())),
        ("PresenceNote".into(), Variant::from(c.presence.note)),
        ("PresenceReason".into(), Variant::from(c.presence.reason)),
    ])
}

/// A value of `changes` as `T`, or an error naming the key.
fn take<T>(
    changes: &HashMap<String, zbus::OwnedVariant>,
    key: &str,
) -> Result<Option<T>, VoipdError>
where
    T: TryFrom<zbus::OwnedVariant>,
{
    match changes.get(key) {
        None => Ok(None),
        Some(v) => v
            .try_clone()
            .ok()
            .and_then(|v| T::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| VoipdError::InvalidArgument(format!("{key}: of the wrong type"))),
    }
}

#[interface(name = "org.voipd.Contacts1")]
impl Contacts {
    /// Favourites first, then by name: all, or those whose name or an address contains
    /// `query` (any case). Each entry as GetContact gives it.
    #[zbus(out_args("contacts"))]
    async fn list_contacts(&self, query: &str) -> Result<Vec<Dict>, VoipdError> {
        let list = self
            .phone
            .contacts(Some(query.to_string()), false, 0)
            .await?;
        Ok(list.into_iter().map(dict).collect())
    }

    /// One contact, by id ("12") or name (exact, any case; else a word of it that starts
    /// so): Id, Uid, Name, Addresses (as), Favourite, Notes, Presence (unknown, online,
    /// away, busy, offline), PresenceNote, PresenceReason (why it is unknown).
    /// InvalidArgument when a name fits several.
    #[zbus(out_args("contact"))]
    async fn get_contact(&self, contact: &str) -> Result<Dict, VoipdError> {
        Ok(dict(self.phone.contact(contact).await?))
    }

    /// Adds a contact with SIP addresses (alice@example.com) or numbers (+44 1865 270000),
    /// the first dialled; returns its id.
    #[zbus(out_args("id"))]
    async fn add_contact(
        &self,
        name: String,
        addresses: Vec<String>,
        favourite: bool,
        notes: String,
    ) -> Result<i64, VoipdError> {
        let c = self
            .phone
            .add_contact(NewContact {
                uid: String::new(),
                name,
                addresses,
                favourite,
                notes,
            })
            .await?;
        Ok(c.contact.id)
    }

    /// Changes what `changes` names, nothing else: Name (s), Addresses (as: all of them),
    /// AddAddresses (as), RemoveAddresses (as), Favourite (b), Notes (s). Nothing is
    /// changed when one is refused.
    async fn edit_contact(
        &self,
        contact: &str,
        changes: HashMap<String, zbus::OwnedVariant>,
    ) -> Result<(), VoipdError> {
        const KEYS: [&str; 6] = [
            "Name",
            "Addresses",
            "AddAddresses",
            "RemoveAddresses",
            "Favourite",
            "Notes",
        ];
        if let Some(k) = changes.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(VoipdError::InvalidArgument(format!(
                "{k}: not a contact field (use {})",
                KEYS.join(", ")
            )));
        }
        let edit = ContactEdit {
            name: take(&changes, "Name")?,
            addresses: take(&changes, "Addresses")?,
            add_addresses: take(&changes, "AddAddresses")?.unwrap_or_default(),
            remove_addresses: take(&changes, "RemoveAddresses")?.unwrap_or_default(),
            favourite: take(&changes, "Favourite")?,
            notes: take(&changes, "Notes")?,
        };
        self.phone.edit_contact(contact, edit).await?;
        Ok(())
    }

    /// Removes a contact (by id or name); returns its id.
    #[zbus(out_args("id"))]
    async fn remove_contact(&self, contact: &str) -> Result<i64, VoipdError> {
        Ok(self.phone.remove_contact(contact).await?)
    }

    /// Reads vCards (4.0, 3.0 or 2.1), all or none; a known UID updates its contact.
    /// Returns how many were added and updated, and what was left out and why.
    #[zbus(out_args("added", "updated", "skipped"))]
    async fn import_contacts(&self, vcard: &str) -> Result<(u32, u32, Vec<String>), VoipdError> {
        let (done, skipped) = self.phone.import_vcard(vcard).await?;
        Ok((done.added, done.updated, skipped))
    }

    /// Every contact as vCard 4.0.
    #[zbus(out_args("vcard"))]
    async fn export_contacts(&self) -> Result<String, VoipdError> {
        Ok(self.phone.export_vcard().await?)
    }

    /// Sets the presence others see of us: online, away, busy or offline, with a note of up
    /// to 256 characters. Kept across restarts.
    async fn set_presence(&self, status: &str, note: &str) -> Result<(), VoipdError> {
        self.phone.set_presence(status, note).await?;
        Ok(())
    }

    /// The presence others see of us: its status and note.
    #[zbus(out_args("status", "note"))]
    async fn get_presence(&self) -> Result<(String, String), VoipdError> {
        let p = self.phone.own_presence().await?;
        Ok((p.status.as_str().to_string(), p.note))
    }

    /// A contact was added or changed, or its presence did: its id, name and presence.
    #[zbus(signal)]
    pub(super) async fn contact_changed(
        emitter: &SignalEmitter<'_>,
        id: i64,
        name: &str,
        presence: &str,
    ) -> zbus::Result<()>;

    /// A contact was removed.
    #[zbus(signal)]
    pub(super) async fn contact_removed(emitter: &SignalEmitter<'_>, id: i64) -> zbus::Result<()>;

    /// Many contacts changed at once (an import): list them again.
    #[zbus(signal)]
    pub(super) async fn contacts_imported(
        emitter: &SignalEmitter<'_>,
        added: u32,
        updated: u32,
    ) -> zbus::Result<()>;
}
