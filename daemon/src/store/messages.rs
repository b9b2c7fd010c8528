//! Text messages (SIP MESSAGE, RFC 3428): what came in is written, and committed, before
//! the 200 goes out, so an acknowledged message is never lost.

use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, ms, time};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEntry {
    pub id: i64,
    pub account: Option<String>,
    pub incoming: bool,
    /// The other side's URI, and its display name if it gave one.
    pub peer: String,
    pub peer_name: Option<String>,
    /// The contact's name, when the peer is one now (filled in by the core, not kept).
    pub contact: Option<String>,
    pub body: String,
    pub at: SystemTime,
    /// received, queued, delivered or failed.
    pub status: String,
    /// The SIP status of a delivery attempt that ended (2xx or the failure).
    pub code: Option<u16>,
    /// An incoming one the user has listed; ours always are.
    pub read: bool,
}

/// One that came in, with the SIP identity that makes a repeat recognisable.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub account: Option<String>,
    pub peer: String,
    pub peer_name: Option<String>,
    pub body: String,
    pub sip_call_id: String,
    pub sip_cseq: u32,
}

impl Store {
    /// Keeps an incoming message, once: returns it, whether it is new (a repeat of one
    /// already kept returns the kept one), and how many are unread now.
    pub async fn receive_message(
        &self,
        m: Incoming,
    ) -> Result<(MessageEntry, bool, u32), StoreError> {
        self.run(move |db| {
            let inserted = db
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages (account, incoming, peer, peer_name, body,
                        at_ms, status, sip_call_id, sip_cseq, read)
                     VALUES (?1, 1, ?2, ?3, ?4, ?5, 'received', ?6, ?7, 0)",
                )?
                .execute(params![
                    m.account,
                    m.peer,
                    m.peer_name,
                    m.body,
                    ms(SystemTime::now()),
                    m.sip_call_id,
                    m.sip_cseq
                ])?;
            let id: i64 = db
                .prepare_cached("SELECT id FROM messages WHERE sip_call_id = ?1 AND sip_cseq = ?2")?
                .query_row(params![m.sip_call_id, m.sip_cseq], |r| r.get(0))?;
            let entry = get(db, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            Ok((entry, inserted == 1, count_unread(db)?))
        })
        .await
    }

    /// Newest first: all, or those with any of `peers` (URIs as stored); at most `limit`
    /// (0: 100). With `mark_read`, the unread ones of those peers (of all, without a
    /// filter) are read from now on; the list shows them as they were. Also: how many are
    /// unread in all, before and after.
    pub async fn messages(
        &self,
        peers: Vec<String>,
        limit: u32,
        mark_read: bool,
    ) -> Result<(Vec<MessageEntry>, u32, u32), StoreError> {
        let limit = if limit == 0 { 100 } else { limit };
        self.run(move |db| {
            let list = list(db, &peers, limit)?;
            let before = count_unread(db)?;
            if mark_read {
                if peers.is_empty() {
                    db.prepare_cached("UPDATE messages SET read = 1 WHERE incoming AND NOT read")?
                        .execute([])?;
                }
                for p in &peers {
                    db.prepare_cached(
                        "UPDATE messages SET read = 1 WHERE incoming AND NOT read AND peer = ?1",
                    )?
                    .execute([p])?;
                }
            }
            Ok((list, before, count_unread(db)?))
        })
        .await
    }

    /// Incoming messages not read yet.
    pub async fn unread_messages(&self) -> Result<u32, StoreError> {
        self.run(|db| count_unread(db)).await
    }
}

/// Kept up to date by triggers (schema step 6), so asking costs nothing.
fn count_unread(db: &rusqlite::Connection) -> rusqlite::Result<u32> {
    db.prepare_cached("SELECT n FROM unread")?
        .query_row([], |r| r.get(0))
}

fn list(
    db: &rusqlite::Connection,
    peers: &[String],
    limit: u32,
) -> rusqlite::Result<Vec<MessageEntry>> {
    if peers.is_empty() {
        let mut stmt = db.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages ORDER BY at_ms DESC, id DESC LIMIT ?1"
        ))?;
        return stmt.query_map([limit], row)?.collect();
    }
    // One walk of the (peer, time) index per peer, merged: never a sort of a whole
    // conversation, however long.
    let mut stmt = db.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE peer = ?1
         ORDER BY at_ms DESC, id DESC LIMIT ?2"
    ))?;
    let mut all = Vec::new();
    for p in peers {
        for m in stmt.query_map(params![p, limit], row)? {
            all.push(m?);
        }
    }
    all.sort_by_key(|m| std::cmp::Reverse((m.at, m.id)));
    all.dedup_by_key(|m| m.id);
    all.truncate(limit as usize);
    Ok(all)
}

impl Store {
    /// Keeps a message to send, queued; `sip_call_id` names it on the wire for good, so
    /// that a resend after a restart is recognisably the same message.
    pub async fn queue_message(
        &self,
        account: Option<String>,
        peer: String,
        body: String,
        sip_call_id: String,
    ) -> Result<MessageEntry, StoreError> {
        self.run(move |db| {
            db.prepare_cached(
                "INSERT INTO messages (account, incoming, peer, body, at_ms, status, sip_call_id,
                    sip_cseq) VALUES (?1, 0, ?2, ?3, ?4, 'queued', ?5, 1)",
            )?
            .execute(params![
                account,
                peer,
                body,
                ms(SystemTime::now()),
                sip_call_id
            ])?;
            get(db, db.last_insert_rowid())?.ok_or(rusqlite::Error::QueryReturnedNoRows)
        })
        .await
    }

    /// Records how sending ended: delivered or failed, with the SIP status.
    pub async fn message_sent(
        &self,
        id: i64,
        delivered: bool,
        code: u16,
    ) -> Result<MessageEntry, StoreError> {
        self.run(move |db| {
            db.prepare_cached("UPDATE messages SET status = ?2, code = ?3 WHERE id = ?1")?
                .execute(params![
                    id,
                    if delivered { "delivered" } else { "failed" },
                    code
                ])?;
            get(db, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
        })
        .await
    }

    /// Messages still to send (after a restart), oldest first, with their Call-IDs.
    pub async fn queued_messages(&self) -> Result<Vec<(MessageEntry, String)>, StoreError> {
        self.run(|db| {
            let mut stmt = db.prepare_cached(&format!(
                "SELECT {COLUMNS}, sip_call_id FROM messages WHERE status = 'queued' ORDER BY id"
            ))?;
            let rows = stmt.query_map([], |r| Ok((row(r)?, r.get(10)?)))?;
            rows.collect()
        })
        .await
    }
}

const COLUMNS: &str = "id, account, incoming, peer, peer_name, body, at_ms, status, code, read";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageEntry> {
    Ok(MessageEntry {
        id: r.get(0)?,
        account: r.get(1)?,
        incoming: r.get(2)?,
        peer: r.get(3)?,
        peer_name: r.get(4)?,
        contact: None,
        body: r.get(5)?,
        at: time(r.get(6)?),
        status: r.get(7)?,
        code: r.get(8)?,
        read: r.get(9)?,
    })
}

fn get(db: &rusqlite::Connection, id: i64) -> rusqlite::Result<Option<MessageEntry>> {
    db.prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"))?
        .query_row([id], row)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(call_id: &str, body: &str) -> Incoming {
        Incoming {
            account: Some("home".into()),
            peer: "sip:carol@example.com".into(),
            peer_name: Some("Carol".into()),
            body: body.into(),
            sip_call_id: call_id.into(),
            sip_cseq: 1,
        }
    }

    #[tokio::test]
    async fn a_message_is_kept_once_and_listed_by_peer() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("v.db")).unwrap();
        let (first, new, unread) = s
            .receive_message(incoming("a@x", "héllo 👋"))
            .await
            .unwrap();
        assert_eq!(unread, 1);
        assert!(!first.read);
        assert!(new);
        assert_eq!(first.body, "héllo 👋");
        let (again, new, unread) = s
            .receive_message(incoming("a@x", "héllo 👋"))
            .await
            .unwrap();
        assert_eq!(unread, 1, "a repeat is not unread twice");
        assert!(!new, "a repeat is not a new message");
        assert_eq!(again.id, first.id);
        s.receive_message(incoming("b@x", "second")).await.unwrap();
        let (_, before, after) = s
            .messages(vec!["sip:nobody@x".into()], 0, true)
            .await
            .unwrap();
        assert_eq!((before, after), (2, 2), "another peer's are not read");
        let (listed, before, after) = s.messages(Vec::new(), 0, true).await.unwrap();
        assert_eq!((before, after), (2, 0));
        assert!(!listed[0].read, "listed as they were");
        assert!(s.messages(Vec::new(), 0, false).await.unwrap().0[0].read);
        let (all, _, _) = s.messages(Vec::new(), 0, false).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].body, "second");
        assert_eq!(
            s.messages(vec!["sip:carol@example.com".into()], 1, false)
                .await
                .unwrap()
                .0
                .len(),
            1
        );
        assert!(
            s.messages(vec!["sip:nobody@x".into()], 0, false)
                .await
                .unwrap()
                .0
                .is_empty()
        );
    }
}
