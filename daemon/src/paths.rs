//! Where things live, for a user daemon and for the system service.

use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Started by a user (or a systemd user unit): XDG directories.
    User,
    /// The system service (`voipd --system`): /etc, /run, /var/lib.
    System,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

impl Mode {
    pub fn default_config(self) -> PathBuf {
        match self {
            Mode::System => env_path("CONFIGURATION_DIRECTORY")
                .unwrap_or_else(|| PathBuf::from("/etc/voipd"))
                .join("config.toml"),
            Mode::User => env_path("XDG_CONFIG_HOME")
                .unwrap_or_else(|| home().join(".config"))
                .join("voipd/config.toml"),
        }
    }

    /// Where state that survives restarts lives. `STATE_DIRECTORY` comes from systemd's
    /// StateDirectory=.
    pub fn state_dir(self) -> PathBuf {
        match self {
            Mode::System => {
                env_path("STATE_DIRECTORY").unwrap_or_else(|| PathBuf::from("/var/lib/voipd"))
            }
            Mode::User => env_path("XDG_STATE_HOME")
                .unwrap_or_else(|| home().join(".local/state"))
                .join("voipd"),
        }
    }

    /// `RUNTIME_DIRECTORY` is set by systemd from the unit's RuntimeDirectory=.
    pub fn default_socket(self) -> PathBuf {
        match self {
            Mode::System => env_path("RUNTIME_DIRECTORY").map_or_else(
                || PathBuf::from(voipd_proto::socket::SYSTEM_SOCKET),
                |d| d.join("voipd.sock"),
            ),
            Mode::User => voipd_proto::socket::user_socket(),
        }
    }
}

/// This installation's RFC 5626 instance id (`urn:uuid:…`), made once and kept in the
/// state directory so that registrars see the same device across restarts.
pub fn instance_id(state_dir: &std::path::Path) -> String {
    let path = state_dir.join("instance-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if s.starts_with("urn:uuid:") && s.len() == 45 {
            return s.to_string();
        }
    }
    // A version 4 UUID.
    let mut b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    let saved =
        std::fs::create_dir_all(state_dir).and_then(|()| std::fs::write(&path, format!("{id}\n")));
    if let Err(e) = saved {
        tracing::warn!(
            "cannot keep the instance id in {}: {e}; using a new one each start",
            path.display()
        );
    }
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn instance_id_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = super::instance_id(dir.path());
        assert!(a.starts_with("urn:uuid:") && a.len() == 45, "{a}");
        assert_eq!(super::instance_id(dir.path()), a);
    }
}
