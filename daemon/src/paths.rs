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
