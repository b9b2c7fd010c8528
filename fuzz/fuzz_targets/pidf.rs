//! Fuzzes the PIDF presence document reader (`voipd::core::pidf::parse`, for NOTIFY
//! bodies) with the input as bytes. A status it reads is written again with
//! `voipd::core::pidf::write` (as our PUBLISH/NOTIFY bodies are) and must read back as
//! the same status and note.
//!
//! Needs `voipd::core::pidf` to be public (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use voipd::core::{PresenceStatus, pidf};

fuzz_target!(|data: &[u8]| {
    let Ok((status, note)) = pidf::parse(data) else { return };
    // Unknown is never written: write() says "open" for it.
    if status == PresenceStatus::Unknown {
        return;
    }
    let doc = pidf::write("sip:fuzz@voipd.test", status, &note);
    let (back, back_note) = pidf::parse(doc.as_bytes())
        .unwrap_or_else(|e| panic!("our document does not parse: {e}\n{doc}"));
    assert_eq!(back, status, "{doc}");
    // A CR (from &#13;) is written literally, and XML reads a literal CR as a line feed.
    if !note.contains('\r') {
        assert_eq!(back_note, note, "{doc}");
    }
});
