//! Logging to journald (with structured fields such as ACCOUNT and CALL_ID) when the
//! daemon's stderr is the journal, else to stderr. The level follows the config, unless
//! RUST_LOG is set, and changes on reload.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::{LogConfig, LogLevel, LogTarget};

pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
    /// RUST_LOG was set and valid, so it, not the config, sets the level.
    rust_log_rules: bool,
    pub target: &'static str,
}

fn directives(level: LogLevel) -> String {
    // Our own crate at the chosen level; libraries (h2, hyper, …) no chattier than warn.
    let floor = match level {
        LogLevel::Error => "error",
        _ => "warn",
    };
    format!("{floor},voipd={}", level.as_str())
}

/// systemd sets JOURNAL_STREAM to the device and inode of the stream it connected; it only
/// means journald if that is still our stderr (see systemd.exec(5)).
fn stderr_is_journal() -> bool {
    let Some(expected) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| expected == format!("{}:{}", m.dev(), m.ino()))
}

impl Logging {
    pub fn init(cfg: &LogConfig) -> Logging {
        let rust_log = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty());
        let (filter, bad_rust_log) = match rust_log.as_deref().map(EnvFilter::try_new) {
            Some(Ok(f)) => (f, None),
            Some(Err(e)) => (EnvFilter::new(directives(cfg.level)), Some(e)),
            None => (EnvFilter::new(directives(cfg.level)), None),
        };
        let (filter, handle) = reload::Layer::new(filter);

        let want_journal = match cfg.target {
            LogTarget::Journald => true,
            LogTarget::Stderr => false,
            LogTarget::Auto => stderr_is_journal(),
        };
        let (journal, journal_err) = if want_journal {
            match tracing_journald::layer() {
                Ok(l) => (
                    Some(
                        l.with_field_prefix(None)
                            .with_syslog_identifier("voipd".into()),
                    ),
                    None,
                ),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        let stderr = journal.is_none().then(|| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
        });
        let target = if journal.is_some() {
            "journald"
        } else {
            "stderr"
        };
        // A second init (in tests) keeps the first subscriber; that is harmless.
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(journal)
            .with(stderr)
            .try_init();

        if let Some(e) = journal_err {
            tracing::warn!("journald is not reachable ({e}); logging to stderr");
        }
        let rust_log_rules = rust_log.is_some() && bad_rust_log.is_none();
        if let Some(e) = bad_rust_log {
            tracing::warn!("RUST_LOG is not a valid filter ({e}); using log.level from the config");
        }
        Logging {
            filter: handle,
            rust_log_rules,
            target,
        }
    }

    /// Applies a reloaded `[log]` level.
    pub fn apply(&self, cfg: &LogConfig) {
        if self.rust_log_rules {
            return;
        }
        if let Err(e) = self.filter.reload(EnvFilter::new(directives(cfg.level))) {
            tracing::warn!("cannot change the log level: {e}");
        }
    }
}
