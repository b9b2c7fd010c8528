//! Versioned migrations: `PRAGMA user_version` says how many have run. Append only; a
//! released step is never edited.

use rusqlite::Connection;

const STEPS: &[&str] = &[
    // 1: call history.
    "CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing')),
        account TEXT,
        remote_uri TEXT NOT NULL,
        remote_name TEXT,
        started_ms INTEGER NOT NULL,
        answered_ms INTEGER,
        ended_ms INTEGER NOT NULL,
        end_code INTEGER NOT NULL,
        end_reason TEXT NOT NULL,
        missed INTEGER NOT NULL,
        seen INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX calls_by_start ON calls (started_ms);
    CREATE INDEX calls_by_remote ON calls (remote_uri);
    -- Counting unseen missed calls after every call must not read the whole history.
    CREATE INDEX calls_unseen ON calls (id) WHERE missed AND NOT seen;",
    // 2: text messages. A MESSAGE that arrives twice (a retransmission, or a resend after
    // a lost 200) has the same Call-ID and CSeq, and is kept once.
    "CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        account TEXT,
        incoming INTEGER NOT NULL,
        peer TEXT NOT NULL,
        peer_name TEXT,
        body TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('received', 'queued', 'delivered', 'failed')),
        code INTEGER,
        sip_call_id TEXT,
        sip_cseq INTEGER,
        UNIQUE (sip_call_id, sip_cseq)
    );
    CREATE INDEX messages_by_peer ON messages (peer, at_ms);
    CREATE INDEX messages_by_time ON messages (at_ms);",
    // 3: contacts. `uid` is the vCard UID, so importing the same card again updates it.
    // Addresses keep their order: the first is the one dialled.
    "CREATE TABLE contacts (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        favourite INTEGER NOT NULL DEFAULT 0,
        notes TEXT NOT NULL DEFAULT '',
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX contacts_by_name ON contacts (name COLLATE NOCASE);
    CREATE TABLE contact_addresses (
        contact INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        address TEXT NOT NULL,
        PRIMARY KEY (contact, position)
    ) WITHOUT ROWID;
    CREATE INDEX contact_addresses_by_address ON contact_addresses (address);",
    // 4: incoming messages' peers are kept without URI parameters from this version on, so
    // that one peer's messages are found together; older rows are brought in line.
    "UPDATE messages SET peer = substr(peer, 1, instr(peer, ';') - 1)
        WHERE incoming AND instr(peer, ';') > 0;",
    // 5: small settings the user makes through the API (our presence) that a restart keeps.
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    // 6: whether an incoming message has been read (listed by the user). What came before
    // counts as read; the unread are counted from a partial index, like missed calls.
    "ALTER TABLE messages ADD COLUMN read INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX messages_unread ON messages (peer) WHERE incoming AND NOT read;",
];

pub(super) const VERSION: u32 = STEPS.len() as u32;

pub(super) fn migrate(conn: &Connection, from: u32) -> rusqlite::Result<()> {
    for (i, step) in STEPS.iter().enumerate().skip(from as usize) {
        // Each step and its version number commit together, or not at all.
        conn.execute_batch(&format!(
            "BEGIN; {step}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}
