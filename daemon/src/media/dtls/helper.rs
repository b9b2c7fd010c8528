//! The daemon's end of `voipd-dtls`, the process that runs OpenSSL's DTLS for it.
//!
//! Why a process: libcrypto and libssl cost an idle daemon 1.2 to 1.4 MB of RSS (their
//! relocations, symbols and code, loaded at start by the dynamic linker) although only a
//! DTLS-SRTP call uses them. The daemon does not link them at all; the helper is started
//! at the first DTLS association and stopped when the last one closes, so a daemon between
//! DTLS calls is as small as one that never had any. The code that parses strangers'
//! handshakes also no longer shares an address space with the accounts' passwords, and the
//! helper sandboxes itself before it reads anything (Landlock and seccomp: no file, no new
//! socket, no signal; see its `sandbox.rs`), so it is a boundary even as the daemon's user.
//!
//! One SOCK_SEQPACKET pair joins them (`wire.rs`). The daemon's end never blocks: the media
//! tick must not wait on another process. Datagrams that find the socket full are dropped,
//! as the network would (DTLS retransmits); the messages that open and close associations
//! wait in a backlog instead.

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use super::identity::Identity;
use super::wire::{FromHelper, HEADER, MAX_MESSAGE, ToHelper};
use super::{DtlsError, DtlsParams};

/// The helper's file name, looked for beside the daemon's own binary.
const HELPER: &str = "voipd-dtls";
/// How long a stopping helper gets to exit before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(2);
/// How long closing the last association waits for the helper to exit.
const REAP_WAIT: Duration = Duration::from_millis(20);

/// What came for one association since it last looked.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    /// Datagrams for its far side.
    pub(super) out: Vec<Vec<u8>>,
    /// How its handshake ended: the SRTP profile and the material exported, or why not.
    pub(super) ended: Option<Result<(u16, Vec<u8>), DtlsError>>,
}

/// A running helper.
struct Link {
    child: Child,
    sock: UnixDatagram,
    /// Open and close messages the socket had no room for, sent before anything else.
    backlog: VecDeque<Vec<u8>>,
    /// What a message is read into: made once, as it is read at every tick a handshake runs.
    buf: Box<[u8]>,
}

/// The associations and the helper that runs them, when any are open.
#[derive(Default)]
pub(super) struct Helpers {
    link: Option<Link>,
    inboxes: HashMap<u32, Inbox>,
    next_id: u32,
    /// Helpers told to stop and not yet reaped.
    exited: Vec<Child>,
}

impl Helpers {
    /// A new association; the helper at `path` is started for it if none runs.
    pub(super) fn open(
        &mut self,
        path: &Path,
        identity: &Identity,
        params: &DtlsParams,
    ) -> Result<u32, DtlsError> {
        if self.link.is_none() {
            self.reap();
            self.link = Some(Link::spawn(path, identity)?);
        }
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        // Before the message: a helper found gone while sending it fails this one too.
        self.inboxes.insert(id, Inbox::default());
        self.control(ToHelper::Open {
            id,
            params: params.clone(),
        });
        Ok(id)
    }

    /// A datagram from the far side of association `id`.
    pub(super) fn input(&mut self, id: u32, datagram: &[u8]) {
        let (Some(link), true) = (&mut self.link, self.inboxes.contains_key(&id)) else {
            return;
        };
        if datagram.len() + HEADER > MAX_MESSAGE {
            return;
        }
        // Full: dropped, as the network would; DTLS retransmits.
        let _ = link.sock.send(&ToHelper::Input { id, datagram }.encode());
    }

    /// What came for association `id`, after reading what the helper sent.
    pub(super) fn take(&mut self, id: u32) -> Option<Inbox> {
        self.pump();
        self.inboxes.get_mut(&id).map(std::mem::take)
    }

    /// Association `id` is no longer wanted; the helper stops with the last.
    pub(super) fn close(&mut self, id: u32) {
        if self.inboxes.remove(&id).is_none() {
            return;
        }
        if self.inboxes.is_empty() {
            self.stop();
        } else {
            self.control(ToHelper::Close { id });
        }
    }

    /// Stops the helper and waits for every one started, killing what has not exited by
    /// then.
    pub(super) fn shutdown(&mut self) {
        self.inboxes.clear();
        self.stop();
        let deadline = Instant::now() + EXIT_WAIT;
        while !self.exited.is_empty() && Instant::now() < deadline {
            self.reap();
            std::thread::sleep(Duration::from_millis(10));
        }
        for mut c in self.exited.drain(..) {
            tracing::warn!("the DTLS helper (pid {}) did not exit; killed", c.id());
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn control(&mut self, m: ToHelper<'_>) {
        let Some(link) = &mut self.link else {
            return;
        };
        link.backlog.push_back(m.encode());
        if let Err(e) = link.flush() {
            self.lost(e);
        }
    }

    /// Reads everything the helper has sent into the inboxes.
    fn pump(&mut self) {
        let Some(link) = &mut self.link else {
            return;
        };
        let ended = loop {
            match link.sock.recv(&mut link.buf) {
                Ok(0) => break Some("it closed its socket".to_owned()),
                Ok(n) => match FromHelper::decode(&link.buf[..n]) {
                    Ok(m) => deliver(&mut self.inboxes, m),
                    Err(e) => tracing::warn!("{e}"),
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Some(e.to_string()),
            }
        };
        let ended = ended.or_else(|| link.flush().err());
        if let Some(why) = ended {
            self.lost(why);
        }
    }

    /// The helper is gone: every handshake still running fails, and the next association
    /// starts another.
    fn lost(&mut self, why: String) {
        let Some(mut link) = self.link.take() else {
            return;
        };
        let status = match link.child.try_wait() {
            Ok(Some(s)) => format!(" ({s})"),
            _ => String::new(),
        };
        let why = format!("the DTLS helper stopped{status}: {why}");
        tracing::warn!("{why}");
        for inbox in self.inboxes.values_mut() {
            inbox
                .ended
                .get_or_insert_with(|| Err(DtlsError::Helper(why.clone())));
        }
        drop(link.sock);
        self.exited.push(link.child);
        self.reap();
    }

    /// Closing its socket tells the helper to exit, which it does at once; it is reaped
    /// here if it has within REAP_WAIT (a millisecond or two, once per DTLS call, on the
    /// tick that ends the call), or else at the next start or at shutdown.
    fn stop(&mut self) {
        let Some(link) = self.link.take() else {
            return;
        };
        drop(link.sock);
        self.exited.push(link.child);
        let deadline = Instant::now() + REAP_WAIT;
        loop {
            self.reap();
            if self.exited.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn reap(&mut self) {
        self.exited.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }
}

fn deliver(inboxes: &mut HashMap<u32, Inbox>, m: FromHelper<'_>) {
    let (id, what) = match m {
        FromHelper::Output { id, datagram } => (id, Ok(datagram)),
        FromHelper::Keyed {
            id,
            profile,
            material,
        } => (id, Err(Ok((profile, material.to_vec())))),
        FromHelper::Failed { id, error } => (id, Err(Err(error))),
    };
    // Gone: the association was closed while the helper still answered it.
    let Some(inbox) = inboxes.get_mut(&id) else {
        return;
    };
    match what {
        // A flight is a few datagrams; more waiting means no one takes them.
        Ok(d) if inbox.out.len() < 64 => inbox.out.push(d.to_vec()),
        Ok(_) => {}
        Err(ended) => {
            inbox.ended.get_or_insert(ended);
        }
    }
}

impl Link {
    fn spawn(path: &Path, identity: &Identity) -> Result<Link, DtlsError> {
        let fail = |e: &dyn std::fmt::Display| {
            DtlsError::Helper(format!("cannot start {}: {e}", path.display()))
        };
        let (ours, theirs): (OwnedFd, OwnedFd) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| fail(&e))?;
        let sock = UnixDatagram::from(ours);
        sock.set_nonblocking(true).map_err(|e| fail(&e))?;
        let child = Command::new(path)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| fail(&e))?;
        tracing::debug!("started {} (pid {})", path.display(), child.id());
        let mut link = Link {
            child,
            sock,
            backlog: VecDeque::new(),
            buf: vec![0; MAX_MESSAGE].into_boxed_slice(),
        };
        link.backlog.push_back(
            ToHelper::Identity {
                cert: &identity.cert,
                key: &identity.key,
            }
            .encode(),
        );
        Ok(link)
    }

    /// Sends the backlog, as much as the socket takes; Err when the helper is gone.
    fn flush(&mut self) -> Result<(), String> {
        while let Some(m) = self.backlog.front() {
            match self.sock.send(m) {
                Ok(_) => {
                    self.backlog.pop_front();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}

/// The daemon's helpers.
pub(super) fn helpers() -> MutexGuard<'static, Helpers> {
    static HELPERS: LazyLock<Mutex<Helpers>> = LazyLock::new(Mutex::default);
    HELPERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the helper is: beside the daemon's binary (`/usr/local/bin/voipd-dtls` for
/// `/usr/local/bin/voipd`).
pub(super) fn helper_path() -> PathBuf {
    std::env::current_exe()
        .map(|p| p.with_file_name(HELPER))
        .unwrap_or_else(|_| PathBuf::from(HELPER))
}

#[cfg(test)]
mod tests {
    use super::super::identity::identity;
    use super::super::{DtlsRole, Fingerprint, FingerprintHash};
    use super::*;

    fn params(role: DtlsRole) -> DtlsParams {
        DtlsParams {
            role,
            remote: identity().unwrap().fingerprint.clone(),
        }
    }

    #[test]
    fn a_helper_that_dies_fails_the_handshakes_it_ran_and_the_next_one_starts_another() {
        let mut h = Helpers::default();
        let id = h
            .open(
                Path::new("/bin/true"),
                identity().unwrap(),
                &params(DtlsRole::Client),
            )
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let ended = loop {
            if let Some(Inbox { ended: Some(e), .. }) = h.take(id) {
                break e;
            }
            assert!(Instant::now() < deadline, "the helper's exit was not seen");
            std::thread::sleep(Duration::from_millis(10));
        };
        let Err(DtlsError::Helper(why)) = ended else {
            panic!("{ended:?}");
        };
        assert!(why.contains("the DTLS helper stopped"), "{why}");
        assert!(h.link.is_none());
        // The next association starts a helper again.
        let next = h.open(
            Path::new("/bin/cat"),
            identity().unwrap(),
            &params(DtlsRole::Server),
        );
        assert!(next.is_ok() && h.link.is_some());
        h.close(id);
        h.close(next.unwrap());
        assert!(h.link.is_none(), "the last close stops the helper");
        h.shutdown();
        assert!(h.exited.is_empty());
    }

    #[test]
    fn a_missing_helper_is_named() {
        let mut h = Helpers::default();
        let missing = Path::new("/nonexistent/voipd-dtls");
        let err = h
            .open(missing, identity().unwrap(), &params(DtlsRole::Client))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/voipd-dtls"), "{err}");
        assert!(h.inboxes.is_empty() && h.link.is_none());
    }

    /// Two associations through the real helper, one each side, talk to each other: the
    /// whole path, OpenSSL included, without a far phone.
    #[test]
    fn two_associations_through_the_helper_agree_on_keys_and_a_wrong_fingerprint_fails() {
        // The unit test runs from target/<profile>/deps; `cargo build --bins` put the
        // helper one up.
        let path = std::env::current_exe()
            .ok()
            .and_then(|p| Some(p.parent()?.parent()?.join(HELPER)))
            .filter(|p| p.exists())
            .expect("voipd-dtls is not built: run `cargo build --bins` first (./dev test does)");
        let id = identity().unwrap();
        let mut h = Helpers::default();
        let run = |h: &mut Helpers, client: DtlsParams| {
            let c = h.open(&path, id, &client).unwrap();
            let s = h.open(&path, id, &params(DtlsRole::Server)).unwrap();
            let (mut c_end, mut s_end) = (None, None);
            let deadline = Instant::now() + Duration::from_secs(10);
            while (c_end.is_none() || s_end.is_none()) && Instant::now() < deadline {
                for (from, to, end) in [(c, s, &mut c_end), (s, c, &mut s_end)] {
                    let inbox = h.take(from).unwrap_or_default();
                    for d in &inbox.out {
                        h.input(to, d);
                    }
                    if inbox.ended.is_some() {
                        *end = inbox.ended;
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            h.close(c);
            h.close(s);
            (c_end, s_end)
        };
        let (c, s) = run(&mut h, params(DtlsRole::Client));
        let (Some(Ok((cp, cm))), Some(Ok((sp, sm)))) = (c.clone(), s.clone()) else {
            panic!("not keyed: {c:?} {s:?}");
        };
        assert_eq!((cp, &cm), (sp, &sm), "both ends export the same material");
        let keys = super::super::wire::keys_from(cp, DtlsRole::Client, &cm).unwrap();
        assert_eq!(keys.suite, crate::media::srtp::SrtpSuite::AeadAes128Gcm);

        let mut wrong = params(DtlsRole::Client);
        wrong.remote = Fingerprint {
            hash: FingerprintHash::Sha256,
            bytes: wrong.remote.bytes.iter().map(|b| b ^ 1).collect(),
        };
        let (c, _) = run(&mut h, wrong);
        assert_eq!(c, Some(Err(DtlsError::Fingerprint)));
        h.shutdown();
    }
}
