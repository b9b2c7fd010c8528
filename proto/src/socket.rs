//! Where the daemon's control socket is, so that the daemon and every client agree.

use std::path::PathBuf;

/// The system service's socket (`voipd --system`), unless systemd's RuntimeDirectory says
/// otherwise.
pub const SYSTEM_SOCKET: &str = "/run/voipd/voipd.sock";

/// A user daemon's socket: `$XDG_RUNTIME_DIR/voipd/voipd.sock`, or with no session (a cron
/// job, a container) `$TMPDIR/voipd-UID/voipd.sock`.
pub fn user_socket() -> PathBuf {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("voipd"),
        None => std::env::temp_dir().join(format!("voipd-{}", current_uid())),
    };
    dir.join("voipd.sock")
}

pub fn current_uid() -> u32 {
    // getuid(2) cannot fail and touches no memory.
    #[allow(unsafe_code)]
    unsafe {
        libc::getuid()
    }
}
