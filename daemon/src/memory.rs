//! Giving memory back after bursts. glibc's malloc keeps what was freed in its arenas (one
//! per thread that allocated) and returns only the top of the main one: after a flood of
//! messages or 2,000 connections, RSS would stay at its peak. `malloc_trim(0)` hands the
//! free pages of every arena back. It runs when a burst is over: RSS well above idle, and
//! no longer rising, so that a busy daemon is not trimmed while it grows. (mimalloc
//! returned memory too, but doubled the idle RSS: docs/benchmarks.md.)

use std::time::Duration;

/// How often the trimmer looks.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Shrinks a map that a burst left far larger than it is now (with room to grow again).
pub fn shrink<K: std::hash::Hash + Eq, V>(map: &mut std::collections::HashMap<K, V>) {
    if map.capacity() > 4 * map.len() + 64 {
        map.shrink_to(2 * map.len());
    }
}

/// Decides, at each look, whether a burst is over and the heap should be trimmed.
#[derive(Debug, Default)]
pub struct Trimmer {
    /// The fewest resident pages seen after a trim (or at the first look): idle.
    settled: u64,
    /// Resident pages at the previous look.
    previous: u64,
}

impl Trimmer {
    /// One look: trims when RSS is 10 % over idle and has stopped rising. (A trim in the
    /// middle of a burst does not raise what counts as idle.)
    pub fn tick(&mut self) {
        let Some(now) = resident_pages() else { return };
        if self.settled == 0 {
            self.settled = now;
        } else if now > self.settled + self.settled / 10 && now <= self.previous {
            trim();
            self.settled = self.settled.min(resident_pages().unwrap_or(now));
        }
        self.previous = now;
    }
}

/// RSS in pages, from /proc/self/statm.
fn resident_pages() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    statm.split_whitespace().nth(1)?.parse().ok()
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
