//! Giving memory back after bursts. glibc's malloc keeps what was freed in its arenas (one
//! per thread that allocated) and returns only the top of the main one: after a flood of
//! messages or 2,000 connections, RSS would stay at its peak. `malloc_trim(0)` hands the
//! free pages of every arena back; it takes well under a millisecond on a heap this size,
//! so it simply runs every few seconds. (mimalloc returns memory too, but doubled the idle
//! RSS, and only purged on a thread's next allocation: docs/benchmarks.md.)

use std::time::Duration;

/// How often free pages are handed back.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Shrinks a map that a burst left far larger than it is now (with room to grow again).
pub fn shrink<K: std::hash::Hash + Eq, V>(map: &mut std::collections::HashMap<K, V>) {
    if map.capacity() > 4 * map.len() + 64 {
        map.shrink_to(2 * map.len());
    }
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
