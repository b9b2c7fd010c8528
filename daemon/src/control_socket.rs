//! The control socket's file: one daemon per socket path, a stale file from a crash is
//! taken over, a live one never stolen.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another voipd{} already listens on {}; stop it first, or give this one another socket ([control] socket in the config)", pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), path.display())]
    InUse { path: PathBuf, pid: Option<u32> },
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The lock that proves we own the socket path. Dropping it removes the socket file; the
/// lock file stays, as removing a lock file that others may have open races.
#[must_use = "dropping the ControlSocket removes the socket file"]
pub struct ControlSocket {
    path: PathBuf,
    _lock: File,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SocketError {
    let path = path.to_path_buf();
    move |source| SocketError::Io { what, path, source }
}

impl ControlSocket {
    /// Binds `path` with mode 0660. Must be called inside the tokio runtime.
    pub fn bind(path: &Path) -> Result<(ControlSocket, tokio::net::UnixListener), SocketError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io("create directory", dir))?;
        }
        let lock_path = lock_path(path);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io("open lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = lock.read_to_string(&mut pid);
                return Err(SocketError::InUse {
                    path: path.into(),
                    pid: pid.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io("lock", &lock_path)(e)),
        }
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| write!(lock, "{}", std::process::id()))
            .map_err(io("write lock file", &lock_path))?;

        match std::fs::symlink_metadata(path) {
            Ok(m) if !m.file_type().is_socket() => {
                return Err(SocketError::NotASocket { path: path.into() });
            }
            Ok(_) => {
                // We hold the lock, so no voipd owns this file; but a process that does not
                // take the lock (an older build, another program) might still serve it.
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(SocketError::InUse {
                        path: path.into(),
                        pid: None,
                    });
                }
                tracing::info!("taking over stale socket {}", path.display());
                std::fs::remove_file(path).map_err(io("remove stale socket", path))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("inspect", path)(e)),
        }
        let listener = tokio::net::UnixListener::bind(path).map_err(io("bind", path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(io("set mode of", path))?;
        let guard = ControlSocket {
            path: path.into(),
            _lock: lock,
        };
        Ok((guard, listener))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lock_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_bind_is_refused_and_stale_file_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/voipd.sock");
        let first = ControlSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        match ControlSocket::bind(&path) {
            Err(SocketError::InUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected InUse, got {:?}", other.err()),
        }
        drop(first);
        assert!(!path.exists(), "socket file removed on drop");

        // A crash leaves the socket file behind, with nobody listening and no lock held.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let _again = ControlSocket::bind(&path).unwrap();
    }

    #[tokio::test]
    async fn regular_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voipd.sock");
        std::fs::write(&path, "precious").unwrap();
        assert!(matches!(
            ControlSocket::bind(&path),
            Err(SocketError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }
}
