//! What must survive a restart (call history, messages and contacts), in one
//! SQLite file in the state directory. One thread owns the connection and runs jobs from a
//! bounded queue in order, so the async core never blocks on disk and writes never race.
//!
//! At start the file is checked (`PRAGMA quick_check`); a damaged one is moved aside with
//! a loud log line and a new one made — never silently emptied.

mod contacts;
mod forwarding;
mod history;
mod messages;
mod schema;
mod settings;
mod voicemail;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

pub use contacts::{Contact, ContactEdit, Imported, NewContact};
pub use forwarding::LiveForward;
pub use history::{CallRecord, HistoryEntry, HistoryQuery};
pub use messages::{Incoming, MessageEntry};
pub use voicemail::{NewVoicemail, Retention, Voicemail};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("store {path}: {message}")]
    Unusable { path: PathBuf, message: String },
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("store: not written: {0}")]
    Commit(String),
    #[error("the store has stopped")]
    Closed,
}

/// A job does its work and hands back how to answer, which the thread calls once the
/// work is committed (with the commit's error, if it failed).
type Job = Box<dyn FnOnce(&mut Connection) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

/// Jobs that wait together are committed together: one disk sync for a burst (a thousand
/// calls ending a second) instead of one each.
const BATCH: usize = 256;

/// Cheap to clone. The store thread ends when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    /// The highest call id given out before this start.
    calls_given: u64,
    /// The directory the store's file is in: messages' audio is kept under it.
    dir: std::sync::Arc<Path>,
    /// Answering-machine recordings under way (room reserved for each).
    recording: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

/// Call ids are marked as given this many at a time, so that not every call waits on a
/// write; a restart skips what was marked but not used.
pub const CALL_ID_BLOCK: u64 = 64;

/// Jobs are small and quick; a full queue makes callers wait rather than grow memory.
const QUEUE: usize = 1024;

/// How the file was found at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Fine,
    /// It was damaged and now lies here; a new, empty store took its place.
    MovedAside(PathBuf),
}

impl Store {
    /// Opens (or makes) the store at `path`, checked and migrated, and starts its thread.
    pub fn open(path: &Path) -> Result<(Store, Opened), StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unusable {
                path: path.to_path_buf(),
                message: format!("cannot make its directory: {e}"),
            })?;
        }
        let (conn, opened) = match open_checked(path) {
            Ok(c) => (c, Opened::Fine),
            Err(Damage::Damaged(why)) => {
                let aside = move_aside(path)?;
                tracing::error!(
                    "store {} is damaged ({why}); moved it to {} and started a new one",
                    path.display(),
                    aside.display()
                );
                let c = open_checked(path).map_err(|e| e.into_error(path))?;
                (c, Opened::MovedAside(aside))
            }
            Err(e) => return Err(e.into_error(path)),
        };
        let calls_given = conn
            .query_row("SELECT last FROM id_marks WHERE name = 'calls'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?
            .try_into()
            .unwrap_or_default();
        // The first block of ids is ours before any call is made: a crash right after the
        // first call cannot give its id again.
        conn.execute(
            "UPDATE id_marks SET last = max(last, ?1) WHERE name = 'calls'",
            [i64::try_from(calls_given + CALL_ID_BLOCK).unwrap_or(i64::MAX)],
        )
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // The start-up check read every page of the file into the connection's cache (up
        // to 2 MB, SQLite's default): a daemon with a year of history held it all while idle.
        release(&conn);
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("voipd-store".into())
            .spawn(move || {
                let mut conn = conn;
                while let Some(first) = rx.blocking_recv() {
                    run_batch(&mut conn, first, &mut rx);
                }
            })
            .map_err(|e| StoreError::Unusable {
                path: path.to_path_buf(),
                message: format!("cannot start its thread: {e}"),
            })?;
        Ok((
            Store {
                jobs: tx,
                calls_given,
                dir: path.parent().unwrap_or(Path::new(".")).into(),
                recording: Default::default(),
            },
            opened,
        ))
    }

    /// The highest call id given out before this start: new calls' ids are above it, and
    /// the next [`CALL_ID_BLOCK`] are marked as given already.
    pub fn calls_given(&self) -> u64 {
        self.calls_given
    }

    /// Empties the connection's page cache and hands the freed heap back, once the job
    /// queue reaches it; never waits (a full queue is a busy store, whose next burst's end
    /// asks again).
    pub fn release_memory(&self) {
        let job: Job = Box::new(|c| {
            release(c);
            Box::new(|_| ())
        });
        let _ = self.jobs.try_send(job);
    }

    /// Runs `f` on the store's thread and returns what it returned.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |c| {
            let result = f(c);
            Box::new(move |commit_error: Option<&rusqlite::Error>| {
                let result = match (result, commit_error) {
                    (Ok(_), Some(e)) => Err(StoreError::Commit(e.to_string())),
                    (r, _) => r.map_err(StoreError::Sql),
                };
                let _ = tx.send(result);
            })
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Runs `first` and whatever else is queued (up to BATCH) in one transaction, then
/// answers them all: only what is on disk is reported done.
fn run_batch(conn: &mut Connection, first: Job, rx: &mut mpsc::Receiver<Job>) {
    let began = conn.execute_batch("BEGIN IMMEDIATE");
    let mut replies = vec![first(conn)];
    while replies.len() < BATCH {
        match rx.try_recv() {
            Ok(job) => replies.push(job(conn)),
            Err(_) => break,
        }
    }
    let committed = began.and_then(|()| conn.execute_batch("COMMIT"));
    if let Err(e) = &committed {
        tracing::error!("store: commit failed: {e}");
        let _ = conn.execute_batch("ROLLBACK");
    }
    for reply in replies {
        reply(committed.as_ref().err());
    }
}

/// What the page cache holds is read again from the file (the kernel's cache) when next
/// needed: a few pages for a query of the history, the whole file only for the start-up
/// check.
fn release(conn: &Connection) {
    if let Err(e) = conn.execute_batch("PRAGMA shrink_memory") {
        tracing::debug!("store: cannot empty its page cache: {e}");
    }
    crate::memory::trim();
}

/// Times are kept as ms since the Unix epoch.
fn ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn time(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}

enum Damage {
    Damaged(String),
    Other(rusqlite::Error),
    Newer(u32),
}

impl Damage {
    fn into_error(self, path: &Path) -> StoreError {
        match self {
            Damage::Damaged(why) => StoreError::Unusable {
                path: path.to_path_buf(),
                message: format!("damaged: {why}"),
            },
            Damage::Other(source) => StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
            Damage::Newer(v) => StoreError::Unusable {
                path: path.to_path_buf(),
                message: format!(
                    "made by a newer voipd (schema {v}, this one knows up to {}); \
                     upgrade voipd or move the file away",
                    schema::VERSION
                ),
            },
        }
    }
}

impl From<rusqlite::Error> for Damage {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                Damage::Damaged(e.to_string())
            }
            _ => Damage::Other(e),
        }
    }
}

fn open_checked(path: &Path) -> Result<Connection, Damage> {
    let conn = Connection::open(path)?;
    // WAL: readers do not wait for the writer; FULL: a commit is on disk before we go on,
    // so what was acknowledged (a received message's 200) survives even a power cut.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(Damage::Damaged(check));
    }
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > schema::VERSION {
        return Err(Damage::Newer(version));
    }
    schema::migrate(&conn, version)?;
    Ok(conn)
}

/// Moves the file (and its WAL and shared-memory files) to `NAME.damaged-UNIXTIME`.
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = PathBuf::from(format!("{}.damaged-{stamp}", path.display()));
    std::fs::rename(path, &aside).map_err(|e| StoreError::Unusable {
        path: path.to_path_buf(),
        message: format!("damaged, and cannot be moved aside: {e}"),
    })?;
    for ext in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{ext}", path.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, format!("{}{ext}", aside.display()));
        }
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_damaged_file_is_moved_aside_not_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voipd.db");
        std::fs::write(
            &path,
            b"this is not a database, but someone's data".repeat(100),
        )
        .unwrap();
        let (store, opened) = Store::open(&path).unwrap();
        let Opened::MovedAside(aside) = opened else {
            panic!("not moved aside: {opened:?}")
        };
        assert!(
            std::fs::read(&aside)
                .unwrap()
                .starts_with(b"this is not a database")
        );
        let n: i64 = store
            .run(|c| c.query_row("SELECT count(*) FROM calls", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_burst_is_committed_together_and_one_bad_job_spoils_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("voipd.db")).unwrap();
        let jobs: Vec<_> = (0..600)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.run(move |c| {
                        if i == 300 {
                            c.execute("INSERT INTO nowhere VALUES (1)", [])
                        } else {
                            c.execute("INSERT INTO calls (direction, remote_uri, started_ms, ended_ms, end_code, end_reason, missed) VALUES ('outgoing', 'sip:x@y', ?1, ?1, 200, 'hung up', 0)", [i])
                        }
                    })
                    .await
                })
            })
            .collect();
        let mut failed = 0;
        for j in jobs {
            if j.await.unwrap().is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 1);
        let n: i64 = s
            .run(|c| c.query_row("SELECT count(*) FROM calls", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(n, 599);
    }

    /// Bytes the connection's page cache holds.
    fn cache_used(c: &Connection) -> i32 {
        let (mut now, mut highest) = (0, 0);
        #[allow(unsafe_code)]
        // SAFETY: the handle is the live connection's, on the thread that uses it; the
        // out-pointers are to locals.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                c.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                &mut now,
                &mut highest,
                0,
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        now
    }

    #[tokio::test]
    async fn the_page_cache_is_given_back_after_the_start_check_and_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voipd.db");
        {
            // 2 MB of history, as much as SQLite's cache holds by default.
            let (s, _) = Store::open(&path).unwrap();
            s.run(|c| {
                let name = "x".repeat(400);
                for i in 0..5000 {
                    c.execute("INSERT INTO calls (direction, remote_uri, remote_name, started_ms, ended_ms, end_code, end_reason, missed) VALUES ('outgoing', 'sip:x@y', ?2, ?1, ?1, 200, 'hung up', 0)", rusqlite::params![i, name])?;
                }
                Ok(())
            })
            .await
            .unwrap();
        }
        // The start-up check read the whole file.
        let (s, _) = Store::open(&path).unwrap();
        let at_start = s.run(|c| Ok(cache_used(c))).await.unwrap();
        let read_all = s
            .run(|c| {
                let n: i64 =
                    c.query_row("SELECT sum(length(remote_name)) FROM calls", [], |r| {
                        r.get(0)
                    })?;
                assert_eq!(n, 2_000_000);
                Ok(cache_used(c))
            })
            .await
            .unwrap();
        s.release_memory();
        let released = s.run(|c| Ok(cache_used(c))).await.unwrap();
        assert!(
            read_all > 1_000_000,
            "the query read {read_all} B into the cache"
        );
        assert!(
            at_start < read_all / 10 && released < read_all / 10,
            "cache at start {at_start} B, after a release {released} B, full {read_all} B"
        );
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voipd.db");
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 999).unwrap();
        drop(c);
        let e = Store::open(&path).err().unwrap().to_string();
        assert!(e.contains("newer voipd"), "{e}");
        assert!(path.exists());
    }

    #[tokio::test]
    async fn reopening_keeps_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voipd.db");
        {
            let (s, _) = Store::open(&path).unwrap();
            s.run(|c| c.execute("INSERT INTO calls (direction, remote_uri, started_ms, ended_ms, end_code, end_reason, missed) VALUES ('incoming', 'sip:a@b', 1, 2, 487, 'cancelled', 1)", []))
                .await
                .unwrap();
        }
        let (s, opened) = Store::open(&path).unwrap();
        assert_eq!(opened, Opened::Fine);
        let n: i64 = s
            .run(|c| c.query_row("SELECT count(*) FROM calls", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
