//! Assembles the daemon: control socket, core, faces, signals and the systemd protocol,
//! and takes it down again in order.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use crate::api::grpc;
use crate::config::{ConfigLocation, Loaded};
use crate::control_socket::{ControlSocket, SocketError};
use crate::core::{Phone, PhoneHandle, SipStack};
use crate::logging::Logging;
use crate::sdnotify::Notifier;
use crate::sip::transaction::{Endpoint, Timers};
use crate::sip::transport::{Transport, TransportError};
use crate::store::Store;

/// How long running gRPC calls get to finish once shutdown has begun.
const DRAIN: Duration = Duration::from_secs(5);
/// How long the core gets to stop: more than the sum of its steps' own bounds (the calls'
/// ends 3 s, un-SUBSCRIBEs about 2 s each for MWI and presence, un-REGISTERs 4 s).
const CORE_STOP_WAIT: Duration = Duration::from_secs(12);
/// How long the core and the faces that follow it get to end after that. A stop that
/// overruns these bounds is named in the log, rather than hanging silently until systemd's
/// SIGKILL (TimeoutStopSec=15s).
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// How long after "ready" the start-up-only code is given back: what start-up left running
/// in other tasks (the store's check, the bus name) has finished by then, so that it does
/// not fault the code back in.
const STARTUP_SETTLE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error(transparent)]
    Grpc(#[from] grpc::GrpcError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Sip(#[from] TransportError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("control.tcp: cannot listen on {0}: {1}")]
    Tcp(std::net::SocketAddr, std::io::Error),
    /// Checked when the configuration was read: the files changed since.
    #[error("sip.{}: {}", if .0.field.is_empty() { "tls_certificate" } else { .0.field }, .0.message)]
    Tls(crate::sip::transport::tls::TlsSetupError),
}

pub struct Options {
    pub location: ConfigLocation,
    pub loaded: Loaded,
    pub socket: PathBuf,
    /// The bus to offer D-Bus control on; None: no D-Bus.
    pub dbus: Option<crate::api::dbus::Bus>,
    pub state_dir: PathBuf,
    pub logging: Option<Logging>,
}

pub async fn run(opts: Options) -> Result<(), RunError> {
    let notifier = Arc::new(Notifier::from_env());
    let (control, listener) = ControlSocket::bind(&opts.socket)?;
    let mut signals = Signals::new().map_err(RunError::Signals)?;

    let sip_conf = &opts.loaded.config.sip;
    // Checked when the configuration was read.
    let server_tls = match &sip_conf.tls_pem {
        Some((cert, key)) => Some(
            crate::sip::transport::tls::server_config(cert, key.expose().as_bytes())
                .map_err(RunError::Tls)?,
        ),
        None => None,
    };
    let (transport, incoming) =
        Transport::start(&sip_conf.listen(), sip_conf.listen.is_none(), server_tls).await?;
    // The DTLS-SRTP certificate is made at the first offer or answer that needs it (about a
    // millisecond), not here: making it at start brought 3 MB of OpenSSL into every idle
    // daemon's memory, DTLS or not.
    let timers = Timers {
        t1: sip_conf.t1_ms.duration(),
        t2: sip_conf.t2_ms.duration(),
        t4: sip_conf.t4_ms.duration(),
    };
    let (endpoint, requests) = Endpoint::start(
        transport.clone(),
        incoming,
        timers,
        sip_conf.user_agent.clone(),
        crate::sip::resolve::Locator::new(sip_conf.dns.clone()).with_tls(transport.tls()),
    );
    let sip = SipStack {
        endpoint: endpoint.clone(),
        requests,
        instance: crate::paths::instance_id(&opts.state_dir),
    };
    // The history and what else must survive; a damaged file is moved aside (logged).
    let (store, _) = Store::open(&opts.state_dir.join("voipd.db"))?;
    let mut listening = vec![format!("unix:{}", control.path().display())];
    let tcp = match &opts.loaded.config.control.tcp {
        Some(conf) => {
            grpc::check_tls(conf)?;
            let l = tokio::net::TcpListener::bind(conf.listen)
                .await
                .map_err(|e| RunError::Tcp(conf.listen, e))?;
            let addr = l.local_addr().map_err(|e| RunError::Tcp(conf.listen, e))?;
            listening.push(format!("tcp+tls:{addr}"));
            Some((l, conf.clone()))
        }
        None => None,
    };
    listening.extend(transport.listening());

    let (phone, core_task) = Phone::start(
        opts.location,
        opts.loaded,
        opts.logging,
        listening.clone(),
        Some(sip),
        store.clone(),
    );
    let mut server = tokio::spawn(grpc::serve(listener, phone.clone()));
    if let Some((listener, conf)) = tcp {
        let phone = phone.clone();
        tokio::spawn(async move {
            if let Err(e) = grpc::serve_tcp(listener, conf, phone.clone()).await {
                tracing::error!("gRPC over TCP: {e}");
                let _ = phone.shutdown("the TCP gRPC server stopped").await;
            }
        });
    }
    let hooks = crate::api::hooks::start(phone.clone());
    let webhooks = crate::api::webhooks::start(phone.clone());
    let mqtt = crate::api::mqtt::start(phone.clone());
    if let Some(bus) = opts.dbus {
        tokio::spawn(crate::api::dbus::serve(bus, phone.clone()));
    }

    if let Some(every) = notifier.watchdog_interval() {
        tokio::spawn(watchdog(phone.clone(), notifier.clone(), every));
    }
    // Now that the faces that follow events listen (the D-Bus one as soon as it is on
    // the bus), they hear that the daemon started.
    let _ = phone.started().await;
    let ready = format!("listening on {}", listening.join(", "));
    tracing::info!("voipd {} ready, {ready}", env!("CARGO_PKG_VERSION"));
    notifier.ready(&ready);

    let mut failure = None;
    let mut trimmer = crate::memory::Trimmer::new();
    let settle = tokio::time::sleep(STARTUP_SETTLE);
    tokio::pin!(settle);
    let mut settled = false;
    loop {
        tokio::select! {
            () = phone.stopped() => break,
            () = &mut settle, if !settled => {
                settled = true;
                let released = crate::memory::release_startup_code();
                tracing::debug!("gave back {} kB of start-up code", released / 1024);
                trimmer.rebase();
            }
            () = trimmer.due() => {
                endpoint.compact();
                if trimmer.tick() {
                    store.release_memory();
                }
            }
            res = &mut server => {
                let err = match res {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(e) => {
                        tracing::error!("gRPC task died: {e}");
                        None
                    }
                };
                stop_core(&phone, "the gRPC server stopped").await;
                failure = err;
                break;
            }
            sig = signals.next() => match sig {
                Sig::Stop(name) => {
                    if !stop_core(&phone, format!("{name} received")).await {
                        break;
                    }
                }
                Sig::Reload => reload(&phone, &notifier).await,
            },
        }
    }
    notifier.stopping("shutting down");
    if !server.is_finished() && tokio::time::timeout(DRAIN, &mut server).await.is_err() {
        tracing::warn!("gRPC calls still running after {DRAIN:?}; closing them");
        server.abort();
    }
    // Each ends with the core (the hooks killing what still runs past their grace).
    let deadline = tokio::time::Instant::now() + JOIN_WAIT;
    for (name, task) in [
        ("the core", core_task),
        ("the hooks", hooks),
        ("the webhooks", webhooks),
        ("MQTT", mqtt),
    ] {
        join_by(deadline, name, task).await;
    }
    // The calls have ended, and the DTLS helper with the last; this reaps it, or stops
    // one a stuck call still held.
    if let Err(e) = tokio::task::spawn_blocking(crate::media::dtls::shutdown).await {
        tracing::warn!("stopping the DTLS helper: {e}");
    }
    transport.shutdown();
    drop(control);
    tracing::info!("stopped");
    failure.map_or(Ok(()), |e| Err(e.into()))
}

/// Asks the core to stop and waits for it, at most CORE_STOP_WAIT; false (and a warning)
/// when it did not finish in time, so the caller goes on without waiting for its signal.
async fn stop_core(phone: &PhoneHandle, reason: impl Into<String>) -> bool {
    let done = tokio::time::timeout(CORE_STOP_WAIT, phone.shutdown(reason)).await;
    if done.is_err() {
        tracing::warn!("the core did not finish stopping within {CORE_STOP_WAIT:?}");
    }
    done.is_ok()
}

/// Waits for a task the daemon owns until `deadline`; one still running then is named in
/// the log and aborted.
async fn join_by(deadline: tokio::time::Instant, name: &str, mut task: JoinHandle<()>) {
    if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
        tracing::warn!("{name} did not stop within {JOIN_WAIT:?} of the shutdown; aborted");
        task.abort();
    }
}

async fn reload(phone: &PhoneHandle, notifier: &Notifier) {
    notifier.reloading();
    // The outcome is logged and emitted as an event by the core.
    let outcome = phone.reload().await;
    notifier.ready(match outcome {
        Ok(_) => "configuration reloaded",
        Err(_) => "configuration reload failed; running configuration kept",
    });
}

/// Pings through the core task, so a wedged core stops the pings and systemd restarts us.
async fn watchdog(phone: PhoneHandle, notifier: Arc<Notifier>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if phone.status().await.is_err() {
            return;
        }
        notifier.watchdog();
    }
}

enum Sig {
    Stop(&'static str),
    Reload,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Sig {
        tokio::select! {
            _ = self.term.recv() => Sig::Stop("SIGTERM"),
            _ = self.int.recv() => Sig::Stop("SIGINT"),
            _ = self.hup.recv() => Sig::Reload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_does_not_stop_is_aborted_at_the_deadline() {
        let (mut tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stuck = tokio::spawn(async move {
            // Holds the sender's end until it is dropped by the abort.
            let _rx = rx;
            std::future::pending::<()>().await;
        });
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
        tokio::time::timeout(Duration::from_secs(5), join_by(deadline, "stuck", stuck))
            .await
            .expect("join_by waited past its deadline");
        // The abort dropped the task's future, and with it the receiver.
        tokio::time::timeout(Duration::from_secs(5), tx.closed())
            .await
            .expect("the stuck task was not aborted");
    }
}
