//! The address book: a contact is a name, its addresses in order (SIP URIs or numbers, the
//! first is the one dialled), a favourite flag and notes. Checking what is written is the
//! core's work; this keeps it and finds it.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: i64,
    /// The vCard UID: stable across export and import.
    pub uid: String,
    pub name: String,
    pub addresses: Vec<String>,
    pub favourite: bool,
    pub notes: String,
}

/// A contact to add, or to import (then matched to a kept one by `uid`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewContact {
    pub uid: String,
    pub name: String,
    pub addresses: Vec<String>,
    pub favourite: bool,
    pub notes: String,
}

/// What to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ContactEdit {
    pub name: Option<String>,
    /// Replaces all addresses.
    pub addresses: Option<Vec<String>>,
    pub add_addresses: Vec<String>,
    pub remove_addresses: Vec<String>,
    pub favourite: Option<bool>,
    pub notes: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Imported {
    pub added: u32,
    pub updated: u32,
}

impl Store {
    pub async fn add_contact(&self, c: NewContact) -> Result<Contact, StoreError> {
        self.run(move |db| {
            // All of it or none: the batch around this job may commit other jobs' work.
            let sp = db.savepoint()?;
            let id = insert(&sp, &c)?;
            sp.commit()?;
            get(db, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
        })
        .await
    }

    /// The changed contact; `None` if there is no contact `id`.
    pub async fn edit_contact(
        &self,
        id: i64,
        edit: ContactEdit,
    ) -> Result<Option<Contact>, StoreError> {
        self.run(move |db| {
            let Some(mut c) = get(db, id)? else {
                return Ok(None);
            };
            c.apply(edit);
            // All of it or none: the batch around this job may commit other jobs' work.
            let sp = db.savepoint()?;
            update(&sp, id, &c.name, c.favourite, &c.notes, &c.addresses)?;
            sp.commit()?;
            get(db, id)
        })
        .await
    }

    /// Whether there was a contact `id`.
    pub async fn remove_contact(&self, id: i64) -> Result<bool, StoreError> {
        self.run(move |db| {
            Ok(db
                .prepare_cached("DELETE FROM contacts WHERE id = ?1")?
                .execute([id])?
                == 1)
        })
        .await
    }

    pub async fn contact(&self, id: i64) -> Result<Option<Contact>, StoreError> {
        self.run(move |db| get(db, id)).await
    }

    /// Favourites first, then by name: those whose name or an address contains `query`
    /// (any case), or all; at most `limit` (0: all).
    pub async fn contacts(
        &self,
        query: Option<String>,
        favourites_only: bool,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError> {
        self.run(move |db| {
            let pattern = query.map(|q| format!("%{}%", escape_like(&q)));
            let limit = if limit == 0 { -1 } else { i64::from(limit) };
            let ids: Vec<i64> = db
                .prepare_cached(
                    "SELECT id FROM contacts c
                     WHERE (?1 IS NULL OR name LIKE ?1 ESCAPE '\\' OR EXISTS (
                         SELECT 1 FROM contact_addresses a
                         WHERE a.contact = c.id AND a.address LIKE ?1 ESCAPE '\\'))
                       AND (NOT ?2 OR favourite)
                     ORDER BY favourite DESC, name COLLATE NOCASE, id LIMIT ?3",
                )?
                .query_map(params![pattern, favourites_only, limit], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            ids.into_iter()
                .filter_map(|id| get(db, id).transpose())
                .collect()
        })
        .await
    }

    /// Contacts a typed name may mean: those named exactly so (any case), else those with
    /// a word of their name starting with it.
    pub async fn contacts_named(&self, name: String) -> Result<Vec<Contact>, StoreError> {
        self.run(move |db| {
            let mut ids: Vec<i64> = db
                .prepare_cached(
                    "SELECT id FROM contacts WHERE name = ?1 COLLATE NOCASE ORDER BY id",
                )?
                .query_map([&name], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if ids.is_empty() {
                let word = escape_like(&name);
                ids = db
                    .prepare_cached(
                        "SELECT id FROM contacts WHERE name LIKE ?1 ESCAPE '\\'
                         OR name LIKE ?2 ESCAPE '\\' ORDER BY name COLLATE NOCASE, id",
                    )?
                    .query_map(params![format!("{word}%"), format!("% {word}%")], |r| {
                        r.get(0)
                    })?
                    .collect::<rusqlite::Result<_>>()?;
            }
            ids.into_iter()
                .filter_map(|id| get(db, id).transpose())
                .collect()
        })
        .await
    }

    /// Adds the new and updates the known (same `uid`), all in one go: an import that
    /// fails part way changes nothing.
    pub async fn import_contacts(&self, cards: Vec<NewContact>) -> Result<Imported, StoreError> {
        self.run(move |db| {
            let sp = db.savepoint()?;
            let mut done = Imported::default();
            for c in &cards {
                let known: Option<i64> = sp
                    .prepare_cached("SELECT id FROM contacts WHERE uid = ?1")?
                    .query_row([&c.uid], |r| r.get(0))
                    .optional()?;
                match known {
                    Some(id) => {
                        update(&sp, id, &c.name, c.favourite, &c.notes, &c.addresses)?;
                        done.updated += 1;
                    }
                    None => {
                        insert(&sp, c)?;
                        done.added += 1;
                    }
                }
            }
            sp.commit()?;
            Ok(done)
        })
        .await
    }
}

impl Contact {
    /// The contact as `edit` leaves it.
    pub fn apply(&mut self, edit: ContactEdit) {
        if let Some(n) = edit.name {
            self.name = n;
        }
        if let Some(a) = edit.addresses {
            self.addresses = a;
        }
        self.addresses
            .retain(|a| !edit.remove_addresses.contains(a));
        for a in edit.add_addresses {
            if !self.addresses.contains(&a) {
                self.addresses.push(a);
            }
        }
        if let Some(f) = edit.favourite {
            self.favourite = f;
        }
        if let Some(n) = edit.notes {
            self.notes = n;
        }
    }
}

fn insert(db: &Connection, c: &NewContact) -> rusqlite::Result<i64> {
    db.prepare_cached(
        "INSERT INTO contacts (id, uid, name, favourite, notes, updated_ms)
         VALUES ((SELECT last + 1 FROM id_marks WHERE name = 'contacts'), ?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        c.uid,
        c.name,
        c.favourite,
        c.notes,
        ms(SystemTime::now())
    ])?;
    let id = db.last_insert_rowid();
    set_addresses(db, id, &c.addresses)?;
    Ok(id)
}

fn update(
    db: &Connection,
    id: i64,
    name: &str,
    favourite: bool,
    notes: &str,
    addresses: &[String],
) -> rusqlite::Result<()> {
    db.prepare_cached(
        "UPDATE contacts SET name = ?2, favourite = ?3, notes = ?4, updated_ms = ?5 WHERE id = ?1",
    )?
    .execute(params![id, name, favourite, notes, ms(SystemTime::now())])?;
    set_addresses(db, id, addresses)
}

fn set_addresses(db: &Connection, id: i64, addresses: &[String]) -> rusqlite::Result<()> {
    db.prepare_cached("DELETE FROM contact_addresses WHERE contact = ?1")?
        .execute([id])?;
    let mut add = db.prepare_cached(
        "INSERT INTO contact_addresses (contact, position, address) VALUES (?1, ?2, ?3)",
    )?;
    for (i, a) in addresses.iter().enumerate() {
        add.execute(params![id, i as i64, a])?;
    }
    Ok(())
}

fn get(db: &Connection, id: i64) -> rusqlite::Result<Option<Contact>> {
    let Some(mut c) = db
        .prepare_cached("SELECT id, uid, name, favourite, notes FROM contacts WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(Contact {
                id: r.get(0)?,
                uid: r.get(1)?,
                name: r.get(2)?,
                addresses: Vec::new(),
                favourite: r.get(3)?,
                notes: r.get(4)?,
            })
        })
        .optional()?
    else {
        return Ok(None);
    };
    c.addresses = db
        .prepare_cached(
            "SELECT address FROM contact_addresses WHERE contact = ?1 ORDER BY position",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(c))
}

/// `%`, `_` and the escape itself match literally.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(uid: &str, name: &str, addresses: &[&str]) -> NewContact {
        NewContact {
            uid: uid.into(),
            name: name.into(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            ..NewContact::default()
        }
    }

    #[tokio::test]
    async fn contacts_are_found_by_name_and_address() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("v.db")).unwrap();
        let alice = s
            .add_contact(card(
                "u1",
                "Alice Liddell",
                &["sip:alice@example.com", "+44 1865 270000"],
            ))
            .await
            .unwrap();
        assert_eq!(alice.addresses[1], "+44 1865 270000");
        s.add_contact(card("u2", "Alicia Keys", &["sip:ak@example.com"]))
            .await
            .unwrap();
        s.add_contact(card("u3", "Bob 100%", &["sip:bob@example.com"]))
            .await
            .unwrap();
        let names = |v: Vec<Contact>| v.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(
            names(s.contacts(Some("ALI".into()), false, 0).await.unwrap()),
            ["Alice Liddell", "Alicia Keys"]
        );
        assert_eq!(
            names(s.contacts(Some("1865".into()), false, 0).await.unwrap()),
            ["Alice Liddell"]
        );
        assert_eq!(
            names(s.contacts(Some("0%".into()), false, 0).await.unwrap()),
            ["Bob 100%"],
            "% is a character, not a wildcard"
        );
        assert_eq!(
            names(s.contacts_named("liddell".into()).await.unwrap()),
            ["Alice Liddell"]
        );
        assert_eq!(s.contacts_named("ali".into()).await.unwrap().len(), 2);
        assert_eq!(
            names(s.contacts_named("alice liddell".into()).await.unwrap()),
            ["Alice Liddell"]
        );
    }

    #[tokio::test]
    async fn a_removed_contacts_id_is_not_given_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let (s, _) = Store::open(&path).unwrap();
        let a = s.add_contact(card("u1", "A", &[])).await.unwrap();
        let b = s.add_contact(card("u2", "B", &[])).await.unwrap();
        assert!(s.remove_contact(b.id).await.unwrap());
        let c = s.add_contact(card("u3", "C", &[])).await.unwrap();
        assert!(c.id > b.id && b.id > a.id, "{} {} {}", a.id, b.id, c.id);
        assert!(s.remove_contact(c.id).await.unwrap());
        drop(s);
        let (s, _) = Store::open(&path).unwrap();
        let d = s.add_contact(card("u4", "D", &[])).await.unwrap();
        assert!(d.id > c.id, "not after a restart either: {} {}", c.id, d.id);
    }

    #[tokio::test]
    async fn edits_and_imports_change_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("v.db")).unwrap();
        let a = s
            .add_contact(card("u1", "Alice", &["sip:a@x", "sip:b@x"]))
            .await
            .unwrap();
        let edited = s
            .edit_contact(
                a.id,
                ContactEdit {
                    favourite: Some(true),
                    add_addresses: vec!["sip:c@x".into()],
                    remove_addresses: vec!["sip:a@x".into()],
                    ..ContactEdit::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(edited.addresses, ["sip:b@x", "sip:c@x"]);
        assert!(edited.favourite);
        assert!(
            s.edit_contact(999, ContactEdit::default())
                .await
                .unwrap()
                .is_none()
        );

        let done = s
            .import_contacts(vec![
                card("u1", "Alice L.", &["sip:a@x"]),
                card("u9", "Zed", &[]),
            ])
            .await
            .unwrap();
        assert_eq!(
            done,
            Imported {
                added: 1,
                updated: 1
            }
        );
        assert_eq!(s.contact(a.id).await.unwrap().unwrap().name, "Alice L.");
        let before = s.contacts(None, false, 0).await.unwrap();
        assert!(
            s.import_contacts(vec![card("n1", "New", &[]), card("n1", "New", &[])])
                .await
                .is_ok(),
            "the second is an update of the first"
        );
        assert_eq!(
            s.contacts(None, false, 0).await.unwrap().len(),
            before.len() + 1
        );
        assert!(s.remove_contact(a.id).await.unwrap());
        assert!(!s.remove_contact(a.id).await.unwrap());
    }
}
