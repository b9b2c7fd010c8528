//! Call history: one row per call that ended, with whether it was missed (incoming and
//! never answered) and whether the user has looked at it since.

use std::time::{Duration, SystemTime};

use rusqlite::{Connection, params};

use super::{Store, StoreError, ms, time};

/// A call in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: i64,
    pub call: CallRecord,
    /// The contact's name, when the peer is one now (filled in by the core, not kept).
    pub contact: Option<String>,
}

impl HistoryEntry {
    /// The talk time: from the answer to the end.
    pub fn duration(&self) -> Duration {
        let c = &self.call;
        c.answered
            .and_then(|a| c.ended.duration_since(a).ok())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Newest first, at most this many (0: a default of 100).
    pub limit: u32,
    pub missed_only: bool,
    /// Marks the missed calls as seen (the user has looked).
    pub mark_seen: bool,
}

/// A call that has ended, as the history keeps it. Whether it was missed is the core's
/// word, not the store's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The call's id while it ran, kept as the entry's id: one id from `dial` to the
    /// history.
    pub id: u64,
    pub incoming: bool,
    pub account: Option<String>,
    pub remote_uri: String,
    pub remote_name: Option<String>,
    pub started: SystemTime,
    pub answered: Option<SystemTime>,
    pub ended: SystemTime,
    pub end_code: u16,
    pub end_reason: String,
    pub missed: bool,
    /// How its media was protected: "none", "sdes" or "dtls".
    pub media_encryption: String,
    /// The SIP transport its signalling went over ("udp", "tcp", "tls"); empty for calls
    /// kept before this was.
    pub transport: String,
    /// The files the call was recorded into.
    pub recordings: Vec<String>,
}

impl Store {
    /// Writes a call that has ended; returns the missed calls not yet seen, counting it.
    pub async fn record_call(&self, c: CallRecord) -> Result<u32, StoreError> {
        self.run(move |db| {
            db.prepare_cached(
                // An id already taken (a store carried over from elsewhere) gets a new one
                // rather than losing the call.
                "INSERT INTO calls (id, direction, account, remote_uri, remote_name, started_ms,
                    answered_ms, ended_ms, end_code, end_reason, missed, media_encryption,
                    transport, recordings)
                 VALUES (CASE WHEN EXISTS (SELECT 1 FROM calls WHERE id = ?11) THEN NULL
                    ELSE ?11 END, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?13, ?14)",
            )?
            .execute(params![
                if c.incoming { "incoming" } else { "outgoing" },
                c.account,
                c.remote_uri,
                c.remote_name,
                ms(c.started),
                c.answered.map(ms),
                ms(c.ended),
                c.end_code,
                c.end_reason,
                c.missed,
                i64::try_from(c.id).ok(),
                c.media_encryption,
                c.transport,
                c.recordings.join("\n")
            ])?;
            count_unseen(db)
        })
        .await
    }

    /// Marks call ids up to `last` as given, so that after a restart new calls start
    /// above them.
    pub async fn reserve_call_ids(&self, last: u64) -> Result<(), StoreError> {
        let last = i64::try_from(last).unwrap_or(i64::MAX);
        self.run(move |db| {
            db.prepare_cached("UPDATE id_marks SET last = max(last, ?1) WHERE name = 'calls'")?
                .execute([last])
                .map(|_| ())
        })
        .await
    }

    /// The history, newest first, and how many missed calls are still unseen (counted
    /// before `mark_seen` applies).
    pub async fn history(&self, q: HistoryQuery) -> Result<(Vec<HistoryEntry>, u32), StoreError> {
        self.run(move |db| {
            // A savepoint, not a transaction: the store thread has one open already.
            let tx = db.savepoint()?;
            let entries = list(&tx, q)?;
            let unseen = count_unseen(&tx)?;
            if q.mark_seen {
                tx.execute("UPDATE calls SET seen = 1 WHERE missed AND NOT seen", [])?;
            }
            tx.commit()?;
            Ok((entries, unseen))
        })
        .await
    }

    /// Missed calls nobody has looked at yet.
    pub async fn missed_unseen(&self) -> Result<u32, StoreError> {
        self.run(|db| count_unseen(db)).await
    }
}

/// Kept up to date by triggers (schema step 6), so asking after every call costs nothing.
fn count_unseen(db: &Connection) -> rusqlite::Result<u32> {
    db.prepare_cached("SELECT n FROM unseen")?
        .query_row([], |r| r.get(0))
}

fn list(db: &Connection, q: HistoryQuery) -> rusqlite::Result<Vec<HistoryEntry>> {
    let limit = if q.limit == 0 { 100 } else { q.limit };
    let mut stmt = db.prepare_cached(
        "SELECT id, direction, account, remote_uri, remote_name, started_ms, answered_ms,
                ended_ms, end_code, end_reason, missed, media_encryption, transport, recordings
         FROM calls WHERE (?1 = 0 OR missed) ORDER BY started_ms DESC, id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![q.missed_only, limit], |r| {
        Ok(HistoryEntry {
            id: r.get(0)?,
            call: CallRecord {
                id: r.get::<_, i64>(0)?.try_into().unwrap_or_default(),
                incoming: r.get::<_, String>(1)? == "incoming",
                account: r.get(2)?,
                remote_uri: r.get(3)?,
                remote_name: r.get(4)?,
                started: time(r.get(5)?),
                answered: r.get::<_, Option<i64>>(6)?.map(time),
                ended: time(r.get(7)?),
                end_code: r.get(8)?,
                end_reason: r.get(9)?,
                missed: r.get(10)?,
                media_encryption: r.get(11)?,
                transport: r.get(12)?,
                recordings: r
                    .get::<_, String>(13)?
                    .lines()
                    .map(str::to_string)
                    .collect(),
            },
            contact: None,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: u64, incoming: bool, answered: bool, code: u16) -> CallRecord {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + id);
        CallRecord {
            id,
            incoming,
            account: Some("home".into()),
            remote_uri: format!("sip:peer{id}@example.com"),
            remote_name: Some("Zoë 📞".into()),
            started: t0,
            answered: answered.then(|| t0 + Duration::from_secs(2)),
            ended: t0 + Duration::from_secs(10),
            end_code: code,
            end_reason: "done".into(),
            missed: incoming && !answered,
            media_encryption: if id.is_multiple_of(2) { "sdes" } else { "none" }.into(),
            transport: if id.is_multiple_of(2) { "tcp" } else { "udp" }.into(),
            recordings: vec![format!("/r/call-{id}.wav"), format!("/r/call-{id}-2.wav")],
        }
    }

    #[tokio::test]
    async fn a_call_keeps_its_id_and_ids_are_not_given_twice_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        {
            let (s, _) = Store::open(&path).unwrap();
            assert_eq!(s.calls_given(), 0);
            s.record_call(call(7, false, true, 200)).await.unwrap();
            // Taken already: kept under a new id rather than lost.
            s.record_call(call(7, true, false, 487)).await.unwrap();
            s.reserve_call_ids(70).await.unwrap();
            let (all, _) = s.history(HistoryQuery::default()).await.unwrap();
            let mut ids: Vec<i64> = all.iter().map(|e| e.id).collect();
            ids.sort();
            assert_eq!(ids, [7, 8]);
        }
        let (s, _) = Store::open(&path).unwrap();
        assert_eq!(
            s.calls_given(),
            70,
            "reserved ids stay given after a restart"
        );
        s.reserve_call_ids(10).await.unwrap();
        drop(s);
        // Each start marks a block as given before any call; a lower mark changes nothing.
        assert_eq!(
            Store::open(&path).unwrap().0.calls_given(),
            70 + super::super::CALL_ID_BLOCK,
            "never lowered"
        );
    }

    #[tokio::test]
    async fn calls_are_kept_newest_first_and_missed_ones_counted_until_seen() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("v.db")).unwrap();
        for c in [
            call(1, false, true, 200),
            call(2, true, false, 487),
            call(3, true, true, 200),
            call(4, false, false, 486),
        ] {
            s.record_call(c).await.unwrap();
        }
        // One we refused ourselves is not missed: the core says so.
        let refused = CallRecord {
            missed: false,
            ..call(0, true, false, 603)
        };
        s.record_call(refused).await.unwrap();
        let (all, unseen) = s.history(HistoryQuery::default()).await.unwrap();
        assert_eq!(unseen, 1);
        assert_eq!(all.len(), 5);
        let all = &all[..4];
        assert_eq!(
            all.iter()
                .map(|e| e.call.remote_uri.as_str())
                .collect::<Vec<_>>(),
            [
                "sip:peer4@example.com",
                "sip:peer3@example.com",
                "sip:peer2@example.com",
                "sip:peer1@example.com"
            ]
        );
        // An unanswered outgoing call is not "missed"; an unanswered incoming one is.
        assert_eq!(all.iter().filter(|e| e.call.missed).count(), 1);
        assert_eq!(all[1].duration(), Duration::from_secs(8));
        assert_eq!(all[0].call.remote_name.as_deref(), Some("Zoë 📞"));
        assert_eq!(
            (
                all[0].call.media_encryption.as_str(),
                all[0].call.transport.as_str()
            ),
            ("sdes", "tcp")
        );
        assert_eq!(
            (
                all[1].call.media_encryption.as_str(),
                all[1].call.transport.as_str()
            ),
            ("none", "udp")
        );
        let (missed, _) = s
            .history(HistoryQuery {
                missed_only: true,
                mark_seen: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].call.end_code, 487);
        assert_eq!(s.missed_unseen().await.unwrap(), 0);
        let (two, _) = s
            .history(HistoryQuery {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(two.len(), 2);
    }
}
