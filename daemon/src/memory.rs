//! Giving memory back after bursts. glibc's malloc keeps what was freed in its arenas (one
//! per thread that allocated) and returns only the top of the main one: after a flood of
//! messages or 2,000 connections, RSS would stay at its peak. `malloc_trim(0)` hands the
//! free pages of every arena back. It runs when a burst is over: RSS well above idle, and
//! no work for 10 s, so that a busy daemon is not trimmed while it grows. (mimalloc
//! returned memory too, but doubled the idle RSS: docs/benchmarks.md.)
//!
//! An idle daemon must not wake at all (a board on battery, a laptop), so the trimmer looks
//! only after work came in ([`busy`]), until the work stops; then it sleeps until the next.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How often the trimmer looks while there is work.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Set by [`busy`] since the trimmer last looked.
static BUSY: AtomicBool = AtomicBool::new(false);
/// Wakes a trimmer that sleeps until work.
static WORK: Notify = Notify::const_new();

/// Says that work came in (a SIP message, a connection, a command), which may grow the
/// heap. Cheap enough for every packet: a load, and a store once per look.
pub fn busy() {
    if !BUSY.load(Ordering::Relaxed) && !BUSY.swap(true, Ordering::AcqRel) {
        WORK.notify_one();
    }
}

/// Shrinks a map that a burst left far larger than it is now (with room to grow again).
pub fn shrink<K: std::hash::Hash + Eq, V>(map: &mut std::collections::HashMap<K, V>) {
    if map.capacity() > 4 * map.len() + 64 {
        map.shrink_to(2 * map.len());
    }
}

/// Decides, at each look, whether a burst is over and the heap should be trimmed.
#[derive(Debug)]
pub struct Trimmer {
    /// The fewest resident pages seen after a trim (or at start): idle.
    settled: u64,
    /// When to look next; None: not until work comes in.
    due: Option<Instant>,
}

impl Default for Trimmer {
    fn default() -> Trimmer {
        Trimmer::new()
    }
}

impl Trimmer {
    /// Takes the RSS now, with the daemon started, as idle.
    pub fn new() -> Trimmer {
        BUSY.store(false, Ordering::Release);
        let now = resident_pages().unwrap_or(0);
        Trimmer {
            settled: now,
            due: None,
        }
    }

    /// Takes the RSS now as idle, where it is lower (the start-up code given back); a look
    /// already due stays due.
    pub fn rebase(&mut self) {
        if let Some(now) = resident_pages() {
            self.settled = self.settled.min(now);
        }
    }

    /// Waits until the next look is due: [`TRIM_EVERY`] after work came in, and on every
    /// [`TRIM_EVERY`] while it goes on. Cancel-safe (it is one arm of a select).
    pub async fn due(&mut self) {
        let due = match self.due {
            Some(due) => due,
            None => {
                WORK.notified().await;
                // What counts from here is work after this: the work that woke us is the
                // burst's start.
                BUSY.store(false, Ordering::Release);
                *self.due.insert(Instant::now() + TRIM_EVERY)
            }
        };
        tokio::time::sleep_until(due).await;
    }

    /// One look. While work keeps coming, another look follows; once a look finds none
    /// since the one before (the burst is over), the heap is trimmed if RSS is 10 % over
    /// idle, and the trimmer sleeps until the next work. Says whether it trimmed: the
    /// caches that keep their own memory are then asked to let it go too.
    pub fn tick(&mut self) -> bool {
        if BUSY.swap(false, Ordering::AcqRel) {
            self.due = Some(Instant::now() + TRIM_EVERY);
            return false;
        }
        self.due = None;
        let Some(now) = resident_pages() else {
            return false;
        };
        if now <= self.settled + self.settled / 10 {
            return false;
        }
        trim();
        self.settled = self.settled.min(resident_pages().unwrap_or(now));
        true
    }
}

/// RSS in pages, from /proc/self/statm.
fn resident_pages() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// Marks where the code that runs only during start-up begins: the linker places it just
/// before that code (`daemon/layout/startup.names` lists it there). Never called; a body
/// of its own keeps it from being merged with its pair.
#[inline(never)]
pub fn startup_code_begin() -> u32 {
    0x5747_4152
}

/// Marks where the code that runs only during start-up ends (see [`startup_code_begin`]).
#[inline(never)]
pub fn startup_code_end() -> u32 {
    0x454e_4421
}

/// Gives back the pages of the code that ran only during start-up (config parsing, the
/// store's check, setting up the bus and the listeners: 2 MB of a release build), once the
/// daemon is up. The pages stay in the page cache, where the kernel may drop them when it
/// wants the memory; should any of that code run again (a reload), it faults back in.
/// Only in builds laid out by `daemon/layout/cc` (`voipd_layout`): elsewhere the markers
/// are anywhere and between them is code that runs all the time. Returns the bytes given
/// back.
pub fn release_startup_code() -> usize {
    #[cfg(all(voipd_layout, target_os = "linux"))]
    {
        let begin = startup_code_begin as fn() -> u32 as usize;
        let end = startup_code_end as fn() -> u32 as usize;
        const PAGE: usize = 4096;
        let (from, to) = (begin.next_multiple_of(PAGE), end / PAGE * PAGE);
        // A laid-out block is a few MB; anything else means the layout did not take.
        if to <= from || to - from > 32 << 20 {
            return 0;
        }
        #[allow(unsafe_code)]
        // SAFETY: [from, to) lies between two functions of this binary, inside its code
        // segment, mapped private and read-only from the file: no Rust object lives there.
        // MADV_DONTNEED drops the range's page-table entries; pages of a clean file mapping
        // come back from the file at the next execution, so nothing can be lost, and a
        // thread running there meanwhile only faults.
        let done =
            unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED) };
        if done == 0 { to - from } else { 0 }
    }
    #[cfg(not(all(voipd_layout, target_os = "linux")))]
    0
}

/// Returns free heap pages to the system.
pub fn trim() {
    #[cfg(target_env = "gnu")]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes no pointers and only walks the allocator's own free lists,
    // under its own locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_only_lowers_idle_and_keeps_a_look_that_is_due() {
        let mut t = Trimmer {
            settled: 1,
            due: Some(Instant::now()),
        };
        t.rebase();
        assert_eq!(t.settled, 1, "never raised");
        t.settled = u64::MAX;
        t.rebase();
        assert!(t.settled < u64::MAX && t.settled > 0, "{}", t.settled);
        assert!(t.due.is_some());
    }
}
