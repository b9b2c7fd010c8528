//! The helper's sandbox: OpenSSL parses what any caller sends in a handshake, so a flaw in
//! it must not reach the daemon's secrets or its control sockets. Once confined, the
//! helper opens no file (the accounts' passwords, the daemon's /proc), executes nothing,
//! opens no new socket (so it reaches neither the gRPC nor the D-Bus socket, nor the
//! network), and signals or traces no process outside its sandbox. It keeps what it
//! already holds: its socket to the daemon and its standard error.
//!
//! Landlock closes files, TCP, abstract sockets, signals and tracing; it cannot refuse a
//! connection to a named socket before Linux 7.1, so a seccomp filter refuses `socket`
//! itself (and `io_uring_setup`, which could open one on its own).

use std::collections::BTreeMap;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetError,
    RulesetStatus, Scope,
};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};

/// How far the helper could be confined.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Confinement {
    /// All of the above (Landlock ABI 6 or later: Linux 6.12).
    Full,
    /// What an older kernel's Landlock could enforce, with the seccomp filter.
    Partial(RulesetStatus),
}

/// Why the helper could not be confined.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxError {
    /// Landlock refused the ruleset (not merely an older kernel: that is `Partial`).
    #[error("Landlock: {0}")]
    Landlock(#[from] RulesetError),
    /// The seccomp filter could not be built or installed.
    #[error("seccomp: {0}")]
    Seccomp(#[from] seccompiler::Error),
}

/// Confines the calling thread, and what it starts, for good.
pub(crate) fn enter() -> Result<Confinement, SandboxError> {
    // Nothing is applied before `restrict_self`, so an older kernel's refusal of the whole
    // set leaves room to take what it has.
    let confinement = match landlock(CompatLevel::HardRequirement) {
        Ok(_) => Confinement::Full,
        Err(_) => Confinement::Partial(landlock(CompatLevel::BestEffort)?),
    };
    let no_sockets: BTreeMap<i64, Vec<_>> = [libc::SYS_socket, libc::SYS_io_uring_setup]
        .into_iter()
        .map(|call| (call, Vec::new()))
        .collect();
    let program: BpfProgram = SeccompFilter::new(
        no_sockets,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        std::env::consts::ARCH
            .try_into()
            .map_err(seccompiler::Error::from)?,
    )
    .and_then(TryInto::try_into)
    .map_err(seccompiler::Error::from)?;
    // (Allowed without privileges: Landlock has set no_new_privs.)
    seccompiler::apply_filter(&program)?;
    Ok(confinement)
}

/// Every right handled and none granted back: nothing at all is allowed. The ABI 6 set is
/// required at `level`; newer rights are taken where the kernel has them.
fn landlock(level: CompatLevel) -> Result<RulesetStatus, RulesetError> {
    let required = ABI::V6;
    let status = Ruleset::default()
        .set_compatibility(level)
        .handle_access(AccessFs::from_all(required))?
        .handle_access(AccessNet::from_all(required))?
        .scope(Scope::from_all(required))?
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(ABI::V10))?
        .create()?
        // (no_new_privs, which Landlock requires of an unprivileged process, is set too.)
        .restrict_self()?;
    Ok(status.ruleset)
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::process::Command;

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    use super::*;

    /// What an attacker who took over the helper would try first, each refused.
    #[test]
    fn a_confined_thread_reads_writes_runs_connects_and_signals_nothing() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let secret = dir.path().join("secrets.toml");
        std::fs::write(&secret, "password = \"x\"").expect("a file to read");
        let control = dir.path().join("voipd.sock");
        let _control = UnixListener::bind(&control).expect("a control socket");
        let tcp = TcpListener::bind("127.0.0.1:0").expect("a TCP listener");
        let to = tcp.local_addr().expect("its address");
        let mut outside = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("a process outside");
        let target = Pid::from_raw(outside.id() as i32);
        // Both confine the calling thread: a thread of its own leaves the other tests free.
        let confined = std::thread::spawn(move || {
            assert_eq!(
                enter().expect("the sandbox"),
                Confinement::Full,
                "Landlock ABI 6 needs Linux 6.12 or later, booted with landlock among its LSMs"
            );
            let denied = |r: std::io::Result<()>, what: &str| {
                let e = r.expect_err(what);
                assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{what}: {e}");
            };
            denied(std::fs::read(&secret).map(drop), "reading a secret");
            denied(
                std::fs::read("/proc/self/status").map(drop),
                "reading /proc",
            );
            denied(
                std::fs::write(secret.with_extension("new"), "x"),
                "writing a file",
            );
            denied(
                Command::new("/bin/true").status().map(drop),
                "running a program",
            );
            denied(TcpStream::connect(to).map(drop), "connecting over TCP");
            denied(
                UnixStream::connect(&control).map(drop),
                "the control socket",
            );
            denied(UdpSocket::bind("127.0.0.1:0").map(drop), "a UDP socket");
            assert_eq!(
                kill(target, Signal::SIGTERM),
                Err(nix::errno::Errno::EPERM),
                "signalling a process outside"
            );
        })
        .join();
        outside.kill().expect("the process outside stopped");
        outside.wait().expect("and reaped");
        if let Err(e) = confined {
            std::panic::resume_unwind(e);
        }
    }
}
