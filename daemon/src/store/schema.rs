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
    // counts as read. The count is kept by triggers: every message that arrives asks for
    // it, and counting a hundred thousand unread ones each time would not do.
    "ALTER TABLE messages ADD COLUMN read INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX messages_unread ON messages (peer) WHERE incoming AND NOT read;
    CREATE TABLE unread (n INTEGER NOT NULL);
    INSERT INTO unread VALUES (0);
    CREATE TRIGGER unread_in AFTER INSERT ON messages WHEN NEW.incoming AND NOT NEW.read
        BEGIN UPDATE unread SET n = n + 1; END;
    CREATE TRIGGER unread_read AFTER UPDATE OF read ON messages
        WHEN OLD.incoming AND NOT OLD.read AND NEW.read
        BEGIN UPDATE unread SET n = n - 1; END;
    CREATE TRIGGER unread_gone AFTER DELETE ON messages WHEN OLD.incoming AND NOT OLD.read
        BEGIN UPDATE unread SET n = n - 1; END;
    -- Unseen missed calls the same way (a flood of missed calls asks after each one).
    CREATE TABLE unseen (n INTEGER NOT NULL);
    INSERT INTO unseen SELECT count(*) FROM calls WHERE missed AND NOT seen;
    CREATE TRIGGER unseen_in AFTER INSERT ON calls WHEN NEW.missed AND NOT NEW.seen
        BEGIN UPDATE unseen SET n = n + 1; END;
    CREATE TRIGGER unseen_seen AFTER UPDATE OF seen ON calls
        WHEN OLD.missed AND NOT OLD.seen AND NEW.seen
        BEGIN UPDATE unseen SET n = n - 1; END;
    CREATE TRIGGER unseen_gone AFTER DELETE ON calls WHEN OLD.missed AND NOT OLD.seen
        BEGIN UPDATE unseen SET n = n - 1; END;",
    // 7: ids are never given twice. SQLite hands out max(id) + 1, so removing the newest
    // contact would give its id to the next one, and a script holding that id would act
    // on someone else. The highest id ever given is kept here; calls' ids (which the
    // history keeps) are reserved by the core ahead of use, so a restart does not reuse
    // those of calls that never reached the history.
    "CREATE TABLE id_marks (name TEXT PRIMARY KEY, last INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO id_marks SELECT 'contacts', coalesce(max(id), 0) FROM contacts;
    INSERT INTO id_marks SELECT 'calls', coalesce(max(id), 0) FROM calls;
    CREATE TRIGGER contacts_mark AFTER INSERT ON contacts
        BEGIN UPDATE id_marks SET last = max(last, NEW.id) WHERE name = 'contacts'; END;
    CREATE TRIGGER calls_mark AFTER INSERT ON calls
        BEGIN UPDATE id_marks SET last = max(last, NEW.id) WHERE name = 'calls'; END;",
    // 8: how a call's media was protected ('none', 'sdes', 'dtls') and the SIP transport
    // its signalling went over. Older calls had no SRTP, so they were clear; which
    // transport they used was not kept ('').
    "ALTER TABLE calls ADD COLUMN media_encryption TEXT NOT NULL DEFAULT 'none';
    ALTER TABLE calls ADD COLUMN transport TEXT NOT NULL DEFAULT '';",
    // 9: call forwarding set through the API, per account and rule; they win over the
    // configuration until cleared. A NULL target is "off", which wins too.
    "CREATE TABLE forwarding (
        account TEXT NOT NULL,
        rule TEXT NOT NULL,
        target TEXT,
        after_secs INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, rule)
    ) WITHOUT ROWID;",
    // 10: the answering machine's messages; their audio is a file each (`file`), which
    // exists before its row and outlives it. AUTOINCREMENT: an id is never given twice.
    "CREATE TABLE voicemails (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        caller TEXT NOT NULL,
        caller_name TEXT,
        at_ms INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        file TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        heard INTEGER NOT NULL DEFAULT 0,
        call_id INTEGER NOT NULL
    );
    CREATE INDEX voicemails_by_time ON voicemails (at_ms);",
    // 11: the files a call was recorded into, one per line ('' for none).
    "ALTER TABLE calls ADD COLUMN recordings TEXT NOT NULL DEFAULT '';",
];

pub(super) const VERSION: u32 = STEPS.len() as u32;

pub(super) fn migrate(conn: &Connection, from: u32) -> rusqlite::Result<()> {
    migrate_until(conn, from, VERSION)
}

fn migrate_until(conn: &Connection, from: u32, to: u32) -> rusqlite::Result<()> {
    for (i, step) in STEPS
        .iter()
        .enumerate()
        .take(to as usize)
        .skip(from as usize)
    {
        // Each step and its version number commit together, or not at all.
        conn.execute_batch(&format!(
            "BEGIN; {step}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counters_start_from_what_is_there() {
        let conn = Connection::open_in_memory().unwrap();
        migrate_until(&conn, 0, 5).unwrap();
        conn.execute_batch(
            "INSERT INTO calls (direction, remote_uri, started_ms, ended_ms, end_code,
                 end_reason, missed) VALUES ('incoming', 'sip:a@b', 1, 2, 487, 'cancelled', 1);
             INSERT INTO messages (incoming, peer, body, at_ms, status)
                 VALUES (1, 'sip:a@b', 'old', 1, 'received');",
        )
        .unwrap();
        migrate(&conn, 5).unwrap();
        let n = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, u32>(0)).unwrap();
        assert_eq!(n("SELECT n FROM unseen"), 1);
        assert_eq!(
            n("SELECT n FROM unread"),
            0,
            "what came before counts as read"
        );
        conn.execute_batch(
            "INSERT INTO messages (incoming, peer, body, at_ms, status, read)
                 VALUES (1, 'sip:a@b', 'new', 2, 'received', 0);
             UPDATE calls SET seen = 1;",
        )
        .unwrap();
        assert_eq!(n("SELECT n FROM unread"), 1);
        assert_eq!(n("SELECT n FROM unseen"), 0);
        conn.execute_batch("UPDATE messages SET read = 1").unwrap();
        assert_eq!(n("SELECT n FROM unread"), 0);
    }

    #[test]
    fn calls_kept_before_the_media_encryption_was_are_clear() {
        let conn = Connection::open_in_memory().unwrap();
        migrate_until(&conn, 0, 7).unwrap();
        conn.execute_batch(
            "INSERT INTO calls (direction, remote_uri, started_ms, ended_ms, end_code,
                 end_reason, missed) VALUES ('outgoing', 'sip:a@b', 1, 2, 200, 'hung up', 0);",
        )
        .unwrap();
        migrate(&conn, 7).unwrap();
        let (enc, transport): (String, String) = conn
            .query_row("SELECT media_encryption, transport FROM calls", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((enc.as_str(), transport.as_str()), ("none", ""));
    }
}
