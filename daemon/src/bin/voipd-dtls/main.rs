//! voipd-dtls: runs OpenSSL's DTLS (RFC 6347) for voipd's DTLS-SRTP calls, so that the
//! daemon itself never loads OpenSSL (see `media/dtls/helper.rs`). voipd starts it with
//! one end of a SOCK_SEQPACKET pair as its standard input and stops it by closing that
//! end; the messages are `media/dtls/wire.rs`'s. It is not meant to be run by hand.

mod sandbox;
mod session;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::process::ExitCode;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use openssl::ssl::{SslContext, SslMethod};
use voipd::media::dtls::DtlsError;
use voipd::media::dtls::wire::{FromHelper, MAX_MESSAGE, ToHelper};

use sandbox::Confinement;
use session::Session;

/// How often running handshakes are looked at for their retransmission timers (DTLS's
/// first is a second; this is well under it).
const TIMER_STEP: u16 = 50;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voipd-dtls: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let sock = UnixDatagram::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    // OpenSSL reads its configuration file at its first context: before the sandbox, which
    // closes the file system, and before anything the daemon passes on is read.
    SslContext::builder(SslMethod::dtls()).map_err(std::io::Error::other)?;
    match sandbox::enter() {
        Ok(Confinement::Full) => {}
        Ok(Confinement::Partial(status)) => eprintln!(
            "voipd-dtls: this kernel's Landlock confines the helper only in part ({status:?}); \
             Linux 6.12 or later, with landlock among its LSMs, confines it fully"
        ),
        // (A Landlock error comes before anything is applied; a seccomp one after it.)
        Err(e) => eprintln!("voipd-dtls: not sandboxed as it should be: {e}"),
    }
    sock.set_nonblocking(true)?;
    let mut helper = Helper {
        sock,
        context: Err("no identity was sent".into()),
        sessions: HashMap::new(),
    };
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let timeout = if helper.sessions.values().any(Session::running) {
            PollTimeout::from(TIMER_STEP)
        } else {
            PollTimeout::NONE
        };
        wait(&helper.sock, PollFlags::POLLIN, timeout)?;
        let mut touched = Vec::new();
        loop {
            match helper.sock.recv(&mut buf) {
                // The daemon closed its end: it wants us gone.
                Ok(0) => return Ok(()),
                Ok(n) => match ToHelper::decode(&buf[..n]) {
                    Ok(m) => touched.extend(helper.take(m)?),
                    Err(e) => eprintln!("voipd-dtls: {e}"),
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        helper.drive(&touched)?;
    }
}

struct Helper {
    sock: UnixDatagram,
    context: Result<SslContext, String>,
    sessions: HashMap<u32, Session>,
}

impl Helper {
    /// Takes a message from the daemon; the association it touched, if any.
    fn take(&mut self, m: ToHelper<'_>) -> std::io::Result<Option<u32>> {
        match m {
            ToHelper::Identity { cert, key } => {
                self.context = session::context(cert, key).map_err(|e| e.to_string());
                if let Err(e) = &self.context {
                    eprintln!("voipd-dtls: the daemon's certificate: {e}");
                }
            }
            ToHelper::Open { id, params } => {
                let made = match &self.context {
                    Ok(c) => Session::new(c, params),
                    Err(e) => Err(DtlsError::Identity(e.clone())),
                };
                match made {
                    Ok(s) => {
                        self.sessions.insert(id, s);
                        return Ok(Some(id));
                    }
                    Err(error) => self.send(&FromHelper::Failed { id, error })?,
                }
            }
            ToHelper::Input { id, datagram } => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.input(datagram);
                    return Ok(Some(id));
                }
            }
            ToHelper::Close { id } => {
                self.sessions.remove(&id);
            }
        }
        Ok(None)
    }

    /// Moves on the handshakes that run (their timers) and those `touched`, sending what
    /// they wrote and how they ended.
    fn drive(&mut self, touched: &[u32]) -> std::io::Result<()> {
        let mut sent = Vec::new();
        for (&id, s) in &mut self.sessions {
            if !s.running() && !touched.contains(&id) {
                continue;
            }
            let ended = s.drive();
            sent.extend(
                s.outgoing()
                    .map(|d| FromHelper::Output { id, datagram: &d }.encode()),
            );
            match ended {
                Some(Ok((profile, material))) => sent.push(
                    FromHelper::Keyed {
                        id,
                        profile,
                        material: &material,
                    }
                    .encode(),
                ),
                Some(Err(error)) => sent.push(FromHelper::Failed { id, error }.encode()),
                None => {}
            }
        }
        for m in sent {
            self.send_raw(&m)?;
        }
        Ok(())
    }

    fn send(&self, m: &FromHelper<'_>) -> std::io::Result<()> {
        self.send_raw(&m.encode())
    }

    /// Sends, waiting while the daemon's end is full: it reads at its next tick.
    fn send_raw(&self, m: &[u8]) -> std::io::Result<()> {
        loop {
            match self.sock.send(m) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    wait(&self.sock, PollFlags::POLLOUT, PollTimeout::NONE)?;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn wait(sock: &UnixDatagram, events: PollFlags, timeout: PollTimeout) -> std::io::Result<()> {
    let mut fds = [PollFd::new(sock.as_fd(), events)];
    match poll(&mut fds, timeout) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
