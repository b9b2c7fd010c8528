//! Voicemail: the answering machine's messages, a row each with its WAV file in the
//! state directory's `voicemail/`. A row never outlives its file: a file is in place
//! before its row is written, and a row goes before its file. Retention removes the
//! oldest heard messages first and never an unheard one.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError};

/// A kept message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voicemail {
    pub id: i64,
    pub account: String,
    /// Who called, as their From said.
    pub caller: String,
    pub caller_name: Option<String>,
    pub at: SystemTime,
    pub duration: Duration,
    pub file: PathBuf,
    pub bytes: u64,
    pub heard: bool,
    /// The call it was left in.
    pub call_id: u64,
}

/// A message just recorded, to be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVoicemail {
    pub account: String,
    pub caller: String,
    pub caller_name: Option<String>,
    pub at: SystemTime,
    pub call_id: u64,
}

/// How many messages may be kept, and how many bytes together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_count: u64,
    pub max_bytes: u64,
}

/// What a recording in progress is named: kept out of listings until finished.
const PART: &str = "part";

fn ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn row(r: &Row<'_>) -> rusqlite::Result<Voicemail> {
    let at: i64 = r.get(4)?;
    let duration: i64 = r.get(5)?;
    let file: String = r.get(6)?;
    let bytes: i64 = r.get(7)?;
    let call_id: i64 = r.get(9)?;
    Ok(Voicemail {
        id: r.get(0)?,
        account: r.get(1)?,
        caller: r.get(2)?,
        caller_name: r.get(3)?,
        at: SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0)),
        duration: Duration::from_millis(u64::try_from(duration).unwrap_or(0)),
        file: file.into(),
        bytes: u64::try_from(bytes).unwrap_or(0),
        heard: r.get(8)?,
        call_id: u64::try_from(call_id).unwrap_or(0),
    })
}

const COLUMNS: &str =
    "id, account, caller, caller_name, at_ms, duration_ms, file, bytes, heard, call_id";

impl Store {
    /// Where call recordings go that were not given a file.
    pub fn recordings_dir(&self) -> PathBuf {
        self.dir.join("recordings")
    }

    /// Where messages are kept.
    pub fn voicemail_dir(&self) -> PathBuf {
        self.dir.join("voicemail")
    }

    /// Where call `call_id` records its message until it is kept, made ready. The
    /// caller's details go beside it, so that a recording a crash cut short can still be
    /// kept at the next start.
    pub async fn voicemail_part(&self, v: &NewVoicemail) -> Result<PathBuf, StoreError> {
        let dir = self.voicemail_dir();
        let path = dir.join(format!("{}-{}.wav.{PART}", ms(v.at), v.call_id));
        let about = format!(
            "{}\n{}\n{}\n{}\n{}\n",
            v.account,
            v.caller,
            v.caller_name.as_deref().unwrap_or(""),
            ms(v.at),
            v.call_id
        );
        let (d, details) = (dir.clone(), path.with_extension("about"));
        let made = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&d)?;
            std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o750))?;
            std::fs::write(details, about)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        made.map_err(|e| StoreError::Unusable {
            path: dir,
            message: e.to_string(),
        })?;
        Ok(path)
    }

    /// Keeps a finished recording: renamed into place, then its row, then its details
    /// file goes (until then a crash leaves it for [`Store::recover_voicemails`]). One
    /// shorter than `min` is removed instead (None). Returns the message and the ids
    /// retention removed. Ends the reservation [`Store::reserve_voicemail`] made.
    pub async fn keep_voicemail(
        &self,
        part: PathBuf,
        v: NewVoicemail,
        min: Duration,
        keep: Retention,
    ) -> Result<Option<(Voicemail, Vec<i64>)>, StoreError> {
        let kept = self.keep_part(part, v, min, keep).await;
        self.release_voicemail();
        kept
    }

    async fn keep_part(
        &self,
        part: PathBuf,
        v: NewVoicemail,
        min: Duration,
        keep: Retention,
    ) -> Result<Option<(Voicemail, Vec<i64>)>, StoreError> {
        let about = part.with_extension("about");
        let finished = tokio::task::spawn_blocking(move || finish_part(&part, min))
            .await
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        let Some((file, bytes, duration)) = finished else {
            let _ = tokio::fs::remove_file(&about).await;
            return Ok(None);
        };
        let f = file.to_string_lossy().into_owned();
        // On an error the file and its details stay: the next start tries again.
        let (vm, removed) = self
            .run(move |db| {
                // One savepoint: the row and what retention removes commit together.
                let tx = db.savepoint()?;
                let known: Option<i64> = tx
                    .prepare_cached("SELECT id FROM voicemails WHERE file = ?1")?
                    .query_row([&f], |r| r.get(0))
                    .optional()?;
                let id = match known {
                    // Kept already; a crash came before its details file went.
                    Some(id) => id,
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO voicemails (account, caller, caller_name, at_ms,
                                duration_ms, file, bytes, call_id)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        )?
                        .execute(params![
                            v.account,
                            v.caller,
                            v.caller_name,
                            ms(v.at),
                            i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
                            f,
                            i64::try_from(bytes).unwrap_or(i64::MAX),
                            i64::try_from(v.call_id).unwrap_or(i64::MAX),
                        ])?;
                        tx.last_insert_rowid()
                    }
                };
                let vm = tx
                    .prepare_cached(&format!("SELECT {COLUMNS} FROM voicemails WHERE id = ?1"))?
                    .query_row([id], row)?;
                let removed = retain(&tx, keep)?;
                tx.commit()?;
                Ok((vm, removed))
            })
            .await?;
        let _ = tokio::fs::remove_file(&about).await;
        remove_files(removed.iter().map(|(_, f)| f.clone()).collect()).await;
        Ok(Some((vm, removed.into_iter().map(|(id, _)| id).collect())))
    }

    /// Reserves room for a message about to be recorded: true when, even with every
    /// recording under way kept and every heard message removed, it fits both limits.
    /// A reservation ends with [`Store::keep_voicemail`] or [`Store::release_voicemail`].
    pub async fn reserve_voicemail(&self, keep: Retention) -> Result<bool, StoreError> {
        // Taken before looking, so that recordings starting together cannot all fit.
        let under_way = u64::from(self.recording.fetch_add(1, Ordering::SeqCst)) + 1;
        let room = self
            .run(move |db| {
                let (unheard, bytes): (i64, i64) = db
                    .prepare_cached(
                        "SELECT count(*), coalesce(sum(bytes), 0) FROM voicemails WHERE NOT heard",
                    )?
                    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(unheard as u64 + under_way <= keep.max_count && (bytes as u64) < keep.max_bytes)
            })
            .await;
        if !matches!(room, Ok(true)) {
            self.release_voicemail();
        }
        room
    }

    /// Ends a reservation whose recording will not be kept.
    pub fn release_voicemail(&self) {
        let _ = self
            .recording
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Removes a recording that will not be kept (its call failed before the message),
    /// and ends its reservation. Blocking, briefly: two unlinks.
    pub fn discard_voicemail(&self, part: &Path) {
        let _ = std::fs::remove_file(part);
        let _ = std::fs::remove_file(part.with_extension("about"));
        self.release_voicemail();
    }

    /// Messages, newest first.
    pub async fn voicemails(&self, limit: u32) -> Result<Vec<Voicemail>, StoreError> {
        self.run(move |db| {
            let mut stmt = db.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM voicemails ORDER BY at_ms DESC, id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], row)?;
            rows.collect()
        })
        .await
    }

    pub async fn voicemail(&self, id: i64) -> Result<Option<Voicemail>, StoreError> {
        self.run(move |db| {
            db.prepare_cached(&format!("SELECT {COLUMNS} FROM voicemails WHERE id = ?1"))?
                .query_row([id], row)
                .optional()
        })
        .await
    }

    /// Marks a message heard (or not); None when there is no such message.
    pub async fn set_heard(&self, id: i64, heard: bool) -> Result<Option<Voicemail>, StoreError> {
        self.run(move |db| {
            db.prepare_cached("UPDATE voicemails SET heard = ?2 WHERE id = ?1")?
                .execute(params![id, heard])?;
            db.prepare_cached(&format!("SELECT {COLUMNS} FROM voicemails WHERE id = ?1"))?
                .query_row([id], row)
                .optional()
        })
        .await
    }

    /// Removes a message, its row first; false when there is none.
    pub async fn delete_voicemail(&self, id: i64) -> Result<bool, StoreError> {
        let file: Option<String> = self
            .run(move |db| {
                let f = db
                    .prepare_cached("SELECT file FROM voicemails WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?;
                db.prepare_cached("DELETE FROM voicemails WHERE id = ?1")?
                    .execute([id])?;
                Ok(f)
            })
            .await?;
        let Some(f) = file else { return Ok(false) };
        remove_files(vec![f]).await;
        Ok(true)
    }

    /// Messages not heard yet.
    pub async fn unheard_voicemails(&self) -> Result<u32, StoreError> {
        self.run(|db| {
            db.prepare_cached("SELECT count(*) FROM voicemails WHERE NOT heard")?
                .query_row([], |r| r.get(0))
        })
        .await
    }

    /// At start: recordings a crash cut short are kept (their headers repaired) when they
    /// hold at least `min`, else removed; so is a message whose row a crash kept from being
    /// written. Rows whose file is gone are dropped. Returns the messages kept now.
    pub async fn recover_voicemails(
        &self,
        min: Duration,
        keep: Retention,
    ) -> Result<Vec<Voicemail>, StoreError> {
        let dir = self.voicemail_dir();
        // On the store's thread, which is there for blocking work: a blocking-pool thread
        // would be started for this alone, and leave 10 s later.
        let leftovers: Vec<PathBuf> = self
            .run(move |_| {
                Ok(std::fs::read_dir(&dir)
                    .map(|d| {
                        d.filter_map(Result::ok)
                            .map(|e| e.path())
                            .filter(|p| p.extension().is_some_and(|x| x == "about" || x == PART))
                            .collect()
                    })
                    .unwrap_or_default())
            })
            .await
            .unwrap_or_default();
        let mut kept = Vec::new();
        for path in leftovers {
            let is_part = path.extension().is_some_and(|x| x == PART);
            let about = path.with_extension("about");
            if is_part {
                // Its details decide; without them it cannot be listed.
                if !about.exists() {
                    tracing::warn!("voicemail: {} has no details; removed", path.display());
                    remove_files(vec![path.to_string_lossy().into_owned()]).await;
                }
                continue;
            }
            let part = path.with_extension(PART);
            let text = std::fs::read_to_string(&about).unwrap_or_default();
            let Some(v) = read_about(&text) else {
                tracing::warn!("voicemail: {} is unreadable; removed", about.display());
                remove_files(vec![
                    about.to_string_lossy().into_owned(),
                    part.to_string_lossy().into_owned(),
                ])
                .await;
                continue;
            };
            tracing::info!(
                "voicemail: recovering {} (cut short by a crash)",
                part.display()
            );
            self.recording.fetch_add(1, Ordering::SeqCst);
            if let Some((vm, _)) = self.keep_voicemail(part, v, min, keep).await? {
                kept.push(vm);
            }
        }
        let mut gone = Vec::new();
        for v in self.voicemails(u32::MAX).await? {
            // Only a file surely absent: an unreadable directory is not a lost message.
            if matches!(tokio::fs::try_exists(&v.file).await, Ok(false)) {
                gone.push(v.id);
            }
        }
        for id in gone {
            tracing::warn!("voicemail {id}: its file is gone; removed from the list");
            self.run(move |db| db.execute("DELETE FROM voicemails WHERE id = ?1", [id]))
                .await?;
        }
        Ok(kept)
    }
}

/// Closes a recording's file: its header repaired, renamed into place (or found there,
/// renamed before a crash). None (and removed) when it holds less than `min` or cannot be
/// read. Its details file is left to the caller.
fn finish_part(part: &Path, min: Duration) -> Option<(PathBuf, u64, Duration)> {
    let file = part.with_extension("");
    let from = if part.exists() { part } else { file.as_path() };
    let done = (|| {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(from)
            .ok()?;
        let data = crate::media::wav::repair(&f).ok()?;
        let mut rate = [0u8; 4];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut rate, 24).ok()?;
        let rate = u64::from(u32::from_le_bytes(rate).max(1));
        let duration = Duration::from_millis(data / 2 * 1000 / rate);
        if duration < min {
            return None;
        }
        if from == part {
            std::fs::rename(part, &file).ok()?;
        }
        Some((file.clone(), data + 44, duration))
    })();
    if done.is_none() {
        let _ = std::fs::remove_file(from);
    }
    done
}

fn read_about(text: &str) -> Option<NewVoicemail> {
    let mut l = text.lines();
    let account = l.next()?.to_string();
    let caller = l.next()?.to_string();
    let name = l.next()?;
    let at: u64 = l.next()?.parse().ok()?;
    let call_id = l.next()?.parse().ok()?;
    Some(NewVoicemail {
        account,
        caller,
        caller_name: (!name.is_empty()).then(|| name.to_string()),
        at: SystemTime::UNIX_EPOCH + Duration::from_millis(at),
        call_id,
    })
}

/// Removes the oldest heard messages while past either limit; returns their ids and files.
fn retain(db: &rusqlite::Savepoint<'_>, keep: Retention) -> rusqlite::Result<Vec<(i64, String)>> {
    let (mut count, mut bytes): (i64, i64) = db
        .prepare_cached("SELECT count(*), coalesce(sum(bytes), 0) FROM voicemails")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut removed = Vec::new();
    let heard: Vec<(i64, String, i64)> = db
        .prepare_cached("SELECT id, file, bytes FROM voicemails WHERE heard ORDER BY at_ms, id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, file, b) in heard {
        if (count as u64) <= keep.max_count && (bytes as u64) <= keep.max_bytes {
            break;
        }
        db.prepare_cached("DELETE FROM voicemails WHERE id = ?1")?
            .execute([id])?;
        count -= 1;
        bytes -= b;
        removed.push((id, file));
    }
    Ok(removed)
}

async fn remove_files(files: Vec<String>) {
    for f in files {
        if let Err(e) = tokio::fs::remove_file(&f).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("voicemail: cannot remove {f}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::wav::WavWriter;

    fn new(call_id: u64) -> NewVoicemail {
        NewVoicemail {
            account: "alice".into(),
            caller: "sip:carol@example.com".into(),
            caller_name: Some("Carol".into()),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + call_id),
            call_id,
        }
    }

    async fn record(s: &Store, call_id: u64, secs: u32) -> PathBuf {
        let part = s.voicemail_part(&new(call_id)).await.unwrap();
        let mut w = WavWriter::create(&part, 8000).unwrap();
        w.write(&vec![100; 8000 * secs as usize]).unwrap();
        w.finish(8000).unwrap();
        part
    }

    const ROOMY: Retention = Retention {
        max_count: 100,
        max_bytes: 1 << 30,
    };

    #[tokio::test]
    async fn messages_are_kept_listed_heard_and_deleted_with_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("v.db")).unwrap();
        let part = record(&s, 1, 3).await;
        let (vm, removed) = s
            .keep_voicemail(part.clone(), new(1), Duration::from_secs(2), ROOMY)
            .await
            .unwrap()
            .unwrap();
        assert!(removed.is_empty());
        assert!(!part.exists() && vm.file.exists());
        assert_eq!(
            (vm.duration.as_secs(), vm.bytes, vm.heard),
            (3, 48_044, false)
        );
        assert_eq!(s.unheard_voicemails().await.unwrap(), 1);
        // Too short: nothing is kept, not even the file.
        let short = record(&s, 2, 1).await;
        assert!(
            s.keep_voicemail(short.clone(), new(2), Duration::from_secs(2), ROOMY)
                .await
                .unwrap()
                .is_none()
        );
        assert!(!short.exists());
        assert!(s.set_heard(vm.id, true).await.unwrap().unwrap().heard);
        assert_eq!(s.unheard_voicemails().await.unwrap(), 0);
        assert!(s.delete_voicemail(vm.id).await.unwrap());
        assert!(!vm.file.exists());
        assert!(!s.delete_voicemail(vm.id).await.unwrap());
    }

    #[tokio::test]
    async fn retention_removes_the_oldest_heard_and_never_an_unheard_one() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("v.db")).unwrap();
        let two = Retention {
            max_count: 2,
            max_bytes: 1 << 30,
        };
        let mut ids = Vec::new();
        for n in 1..=2 {
            assert!(s.reserve_voicemail(two).await.unwrap());
            let part = record(&s, n, 1).await;
            let (vm, removed) = s
                .keep_voicemail(part, new(n), Duration::ZERO, two)
                .await
                .unwrap()
                .unwrap();
            assert!(removed.is_empty());
            ids.push(vm.id);
        }
        // Two unheard: no room for a third, and nothing is removed to make it.
        assert!(!s.reserve_voicemail(two).await.unwrap());
        s.set_heard(ids[0], true).await.unwrap();
        assert!(s.reserve_voicemail(two).await.unwrap());
        // A second recording at the same time finds the room taken.
        assert!(!s.reserve_voicemail(two).await.unwrap());
        let part = record(&s, 3, 1).await;
        let (_, removed) = s
            .keep_voicemail(part, new(3), Duration::ZERO, two)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(removed, vec![ids[0]]);
        let left: Vec<u64> = s
            .voicemails(10)
            .await
            .unwrap()
            .iter()
            .map(|v| v.call_id)
            .collect();
        assert_eq!(left, vec![3, 2]);
    }

    #[tokio::test]
    async fn a_recording_cut_short_is_recovered_and_a_row_without_a_file_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("v.db")).unwrap();
        let kept = record(&s, 1, 2).await;
        let (vm, _) = s
            .keep_voicemail(kept, new(1), Duration::ZERO, ROOMY)
            .await
            .unwrap()
            .unwrap();
        std::fs::remove_file(&vm.file).unwrap();
        // Killed mid-recording: sizes never written.
        let part = s.voicemail_part(&new(2)).await.unwrap();
        let mut w = WavWriter::create(&part, 8000).unwrap();
        w.write(&vec![100; 8000 * 3]).unwrap();
        drop(w);
        // Renamed into place, and a crash before its row: found by its details.
        let renamed = record(&s, 3, 2).await;
        std::fs::rename(&renamed, renamed.with_extension("")).unwrap();
        let got = s
            .recover_voicemails(Duration::from_secs(1), ROOMY)
            .await
            .unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        let got: Vec<Voicemail> = got.into_iter().filter(|v| v.call_id == 2).collect();
        assert_eq!((got[0].call_id, got[0].duration.as_secs()), (2, 3));
        assert_eq!(
            crate::media::wav::read(&got[0].file).unwrap().0.len(),
            8000 * 3
        );
        let all = s.voicemails(10).await.unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        // Nothing is left over to recover twice.
        assert!(
            s.recover_voicemails(Duration::ZERO, ROOMY)
                .await
                .unwrap()
                .is_empty()
        );
        let names: Vec<String> = std::fs::read_dir(s.voicemail_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".wav")), "{names:?}");
    }
}
