//! The table of TCP connections, and its limits. Open connections cost a file descriptor
//! each, and the process has a fixed number: SIP gets what is left after a reserve for the
//! control socket, the store, the registrations and the calls' RTP, so that idle or
//! hostile connections can never lock those out. Within SIP's share, one address may hold
//! a few connections only, and when all are taken the connection that has been quiet the
//! longest (one that never sent a valid message first) makes room for the new one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{Notify, mpsc};

use super::source_key;

/// File descriptors kept for everything but SIP connections.
const FD_RESERVE: u64 = 256;
/// Past this a user agent has no use for more connections, whatever the limit allows.
const MAX_CONNECTIONS: u64 = 4096;
/// Connections from one address at once.
pub(super) const PER_SOURCE: u32 = 32;

/// What a connection's reader and the table share.
pub(super) struct Activity {
    /// The layer above took a request from it (ours count from the start).
    pub valid: AtomicBool,
    /// When it last delivered a message, in ms since the table's epoch.
    last_ms: AtomicU64,
    epoch: Instant,
    /// Asks the reader to close it.
    pub close: Notify,
}

impl Activity {
    fn new(valid: bool, epoch: Instant) -> Activity {
        let a = Activity {
            valid: AtomicBool::new(valid),
            last_ms: AtomicU64::new(0),
            epoch,
            close: Notify::new(),
        };
        a.touch();
        a
    }

    pub(super) fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn quiet_since(&self) -> u64 {
        self.last_ms.load(Ordering::Relaxed)
    }
}

pub(super) struct Conn {
    pub tx: mpsc::Sender<Vec<u8>>,
    pub activity: Arc<Activity>,
    /// TCP or TLS: a TLS target never reuses a plain connection to the same address.
    pub proto: super::Proto,
    /// Accepted from the network (ours, to a registrar or proxy, are never evicted).
    inbound: bool,
}

/// Why a new connection is not taken.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// This many are open from its address already.
    PerSource(u32),
    /// The table is full of connections that cannot make room.
    Full(usize),
}

pub(super) struct Connections {
    map: HashMap<SocketAddr, Conn>,
    per_ip: HashMap<IpAddr, u32>,
    limit: usize,
    epoch: Instant,
}

impl Connections {
    pub(super) fn new(limit: usize) -> Connections {
        Connections {
            map: HashMap::new(),
            per_ip: HashMap::new(),
            limit,
            epoch: Instant::now(),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn get(&self, peer: &SocketAddr) -> Option<&Conn> {
        self.map.get(peer)
    }

    /// Makes room for a connection accepted from `peer`, closing the quietest one if the
    /// table is full.
    pub(super) fn make_room(&mut self, peer: SocketAddr) -> Result<(), Refusal> {
        let from_there = self
            .per_ip
            .get(&source_key(peer.ip()))
            .copied()
            .unwrap_or(0);
        if from_there >= PER_SOURCE {
            return Err(Refusal::PerSource(from_there));
        }
        if self.map.len() < self.limit {
            return Ok(());
        }
        let victim = self
            .map
            .iter()
            .filter(|(_, c)| c.inbound)
            .min_by_key(|(_, c)| {
                (
                    c.activity.valid.load(Ordering::Relaxed),
                    c.activity.quiet_since(),
                )
            })
            .map(|(addr, _)| *addr);
        let Some(victim) = victim else {
            return Err(Refusal::Full(self.map.len()));
        };
        if let Some(c) = self.remove(&victim, None) {
            tracing::debug!("closing the quietest tcp connection, from {victim}, for {peer}");
            c.activity.close.notify_one();
        }
        Ok(())
    }

    /// Adds a connection; the returned state is its reader's.
    pub(super) fn insert(
        &mut self,
        peer: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
        inbound: bool,
        proto: super::Proto,
    ) -> Arc<Activity> {
        let activity = Arc::new(Activity::new(!inbound, self.epoch));
        let old = self.map.insert(
            peer,
            Conn {
                tx,
                activity: activity.clone(),
                inbound,
                proto,
            },
        );
        match old {
            None => *self.per_ip.entry(source_key(peer.ip())).or_default() += 1,
            // Two sends raced to connect: the loser's connection is closed, not leaked.
            Some(o) => o.activity.close.notify_one(),
        }
        activity
    }

    /// Takes `peer`'s connection out; with `only`, only if it is that one (a newer
    /// connection to the same peer may have replaced it).
    pub(super) fn remove(
        &mut self,
        peer: &SocketAddr,
        only: Option<&Arc<Activity>>,
    ) -> Option<Conn> {
        if let Some(a) = only
            && !self
                .map
                .get(peer)
                .is_some_and(|c| Arc::ptr_eq(&c.activity, a))
        {
            return None;
        }
        let c = self.map.remove(peer)?;
        let key = source_key(peer.ip());
        if let Some(n) = self.per_ip.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&key);
            }
        }
        Some(c)
    }

    /// Gives back the room the table grew to in a burst.
    pub(super) fn compact(&mut self) {
        crate::memory::shrink(&mut self.map);
        crate::memory::shrink(&mut self.per_ip);
    }

    pub(super) fn clear(&mut self) {
        for c in self.map.values() {
            c.activity.close.notify_one();
        }
        self.map.clear();
        self.per_ip.clear();
    }
}

/// SIP's share of the file descriptors. Raises the soft limit to the hard one first, as
/// a server should: the soft default (often 1,024) is a compatibility relic.
pub(super) fn connection_limit() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    };
    let share = soft.saturating_sub(FD_RESERVE).clamp(16, MAX_CONNECTIONS);
    usize::try_from(share).unwrap_or(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str, port: u16) -> SocketAddr {
        (ip.parse::<IpAddr>().unwrap(), port).into()
    }

    #[test]
    fn one_address_holds_a_few_and_the_quietest_makes_room() {
        let mut t = Connections::new(3);
        let (tx, _rx) = mpsc::channel(1);
        let ours = addr("192.0.2.1", 5060);
        t.insert(ours, tx.clone(), false, super::super::Proto::Tcp);
        // Few per address.
        let mut t2 = Connections::new(1000);
        for port in 0..PER_SOURCE as u16 {
            assert!(t2.make_room(addr("198.51.100.1", port)).is_ok());
            t2.insert(
                addr("198.51.100.1", port),
                tx.clone(),
                true,
                super::super::Proto::Tcp,
            );
        }
        assert_eq!(
            t2.make_room(addr("198.51.100.1", 999)),
            Err(Refusal::PerSource(PER_SOURCE))
        );
        assert!(t2.make_room(addr("198.51.100.2", 1)).is_ok());

        // Full: the one that never sent a valid message goes first, ours never.
        let quiet = addr("198.51.100.3", 1);
        let valid = addr("198.51.100.4", 1);
        t.insert(valid, tx.clone(), true, super::super::Proto::Tcp)
            .valid
            .store(true, Ordering::Relaxed);
        t.insert(quiet, tx.clone(), true, super::super::Proto::Tcp);
        assert_eq!(t.len(), 3);
        assert!(t.make_room(addr("198.51.100.5", 1)).is_ok());
        assert!(t.get(&quiet).is_none());
        assert!(t.get(&valid).is_some() && t.get(&ours).is_some());
        t.insert(
            addr("198.51.100.5", 1),
            tx.clone(),
            true,
            super::super::Proto::Tcp,
        )
        .valid
        .store(true, Ordering::Relaxed);
        // All valid: the quietest inbound one.
        assert!(t.make_room(addr("198.51.100.6", 1)).is_ok());
        assert!(t.get(&ours).is_some());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_replaced_connection_is_not_removed_by_its_old_reader() {
        let mut t = Connections::new(10);
        let (tx, _rx) = mpsc::channel(1);
        let p = addr("198.51.100.1", 1);
        let old = t.insert(p, tx.clone(), true, super::super::Proto::Tcp);
        let new = t.insert(p, tx.clone(), true, super::super::Proto::Tcp);
        assert!(t.remove(&p, Some(&old)).is_none());
        assert!(t.remove(&p, Some(&new)).is_some());
        assert_eq!(t.len(), 0);
        assert!(t.per_ip.is_empty());
    }
}
