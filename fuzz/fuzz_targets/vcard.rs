//! Fuzzes the vCard reader (`voipd::core::vcard::parse`, the contacts import) with the
//! input as text (lossy UTF-8). What it reads is exported again with
//! `voipd::core::vcard::write` and must import again: as many cards, with the same UID,
//! favourite mark and notes.
//!
//! Needs `voipd::core::vcard` to be public (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use voipd::core::vcard;
use voipd::store::Contact;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(cards) = vcard::parse(&text) else { return };
    let contacts: Vec<Contact> = cards
        .iter()
        .zip(1..)
        .map(|(c, id)| Contact {
            id,
            uid: c.uid.clone().unwrap_or_default(),
            name: c.name.clone(),
            // The importer stores only what normalise_address() accepts, never a line
            // break; the exporter writes addresses as they are.
            addresses: c
                .addresses
                .iter()
                .filter(|a| !a.contains(['\r', '\n']))
                .cloned()
                .collect(),
            favourite: c.favourite,
            notes: c.notes.clone(),
        })
        .collect();
    let written = vcard::write(&contacts, None);
    let back = vcard::parse(&written)
        .unwrap_or_else(|e| panic!("our export does not import: {e}\n{written}"));
    assert_eq!(back.len(), contacts.len(), "{written}");
    for (b, c) in back.iter().zip(&cards) {
        assert_eq!(b.uid, c.uid, "{written}");
        assert_eq!(b.favourite, c.favourite, "{written}");
        // The writer drops CRs (they cannot be escaped in a vCard value).
        assert_eq!(b.notes, c.notes.replace('\r', ""), "{written}");
    }
});
