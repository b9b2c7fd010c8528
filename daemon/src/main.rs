use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use voipd::api::dbus::Bus;
use voipd::config::{ConfigLocation, DbusBus, EMBEDDED_DEFAULT};
use voipd::logging::Logging;
use voipd::paths::Mode;

/// Exit codes: 0 done, 1 could not run (e.g. the socket is taken), 2 bad configuration or
/// usage.
const EXIT_FAILURE: u8 = 1;
const EXIT_CONFIG: u8 = 2;

/// Headless VoIP daemon: SIP accounts and calls, controlled over gRPC and D-Bus.
#[derive(Parser)]
#[command(name = "voipd", version, about)]
struct Args {
    /// Configuration file [default: $XDG_CONFIG_HOME/voipd/config.toml, or
    /// /etc/voipd/config.toml with --system; absent: the embedded default]
    #[arg(long, env = "VOIPD_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Run as the system service: config in /etc/voipd, socket in /run/voipd
    #[arg(long)]
    system: bool,
    /// Stay in the foreground; voipd never forks, so this is always so
    #[arg(long)]
    foreground: bool,
    /// Validate the configuration and exit: 0 when valid, 2 with every problem when not,
    /// including files and sound devices that are not there
    #[arg(long)]
    check_config: bool,
    /// Print the embedded default configuration, with every key explained, and exit
    #[arg(long)]
    print_default_config: bool,
}

// bench/heap.sh: the heap profile of a loaded daemon, written when main returns.
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    let args = Args::parse();
    if args.print_default_config {
        print!("{EMBEDDED_DEFAULT}");
        return ExitCode::SUCCESS;
    }
    let mode = if args.system {
        Mode::System
    } else {
        Mode::User
    };
    let location = match args.config {
        Some(path) => ConfigLocation {
            path,
            explicit: true,
        },
        None => ConfigLocation {
            path: mode.default_config(),
            explicit: false,
        },
    };
    // --check-config also refuses what the daemon would only warn of (a sound device not
    // plugged in), and lists every problem rather than the first.
    let loaded = if args.check_config {
        location.check()
    } else {
        location.load()
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("voipd: {line}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.check_config {
        if loaded.embedded {
            println!(
                "{}: absent; the embedded default configuration is valid",
                location.path.display()
            );
        } else {
            println!("{}: valid", location.path.display());
        }
        return ExitCode::SUCCESS;
    }

    let logging = Logging::init(&loaded.config.log);
    let socket = loaded
        .config
        .control
        .socket
        .clone()
        .unwrap_or_else(|| mode.default_socket());
    tracing::info!(
        "configuration: {}{}; logging to {}",
        location.path.display(),
        if loaded.embedded {
            " (absent: embedded default)"
        } else {
            ""
        },
        logging.target
    );
    // load() logged them before there was anywhere to log to.
    loaded.log_warnings();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("voipd: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let dbus = match (loaded.config.control.dbus, mode) {
        (DbusBus::Off, _) => None,
        (DbusBus::Session, _) | (DbusBus::Auto, Mode::User) => Some(Bus::Session),
        (DbusBus::System, _) | (DbusBus::Auto, Mode::System) => Some(Bus::System),
    };
    let opts = voipd::daemon::Options {
        location,
        loaded,
        socket,
        dbus,
        state_dir: mode.state_dir(),
        logging: Some(logging),
    };
    match runtime.block_on(voipd::daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
