use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::accounts::Accounts;
use super::events::EventBus;
use super::{AccountInfo, ConfigSource, CoreError, Event, EventKind, ReloadReport, Status, uas};
use crate::config::{AccountId, Config, ConfigLocation, Loaded};
use crate::logging::Logging;
use crate::sip::registration::{RegCommand, RegState};
use crate::sip::transaction::{Endpoint, TuRequest};

/// Commands queue here; callers wait (not fail) when it is full, which bounds memory.
const COMMAND_QUEUE: usize = 64;

enum Command {
    Status(oneshot::Sender<Status>),
    Reload(oneshot::Sender<Result<ReloadReport, CoreError>>),
    Shutdown {
        reason: String,
        done: oneshot::Sender<()>,
    },
    ListAccounts(oneshot::Sender<Vec<AccountInfo>>),
    GetAccount(String, oneshot::Sender<Result<AccountInfo, CoreError>>),
    Register(String, oneshot::Sender<Result<AccountInfo, CoreError>>),
    Unregister(String, oneshot::Sender<Result<AccountInfo, CoreError>>),
}

/// The signalling stack the core drives, started before it.
pub struct SipStack {
    pub endpoint: Endpoint,
    pub requests: mpsc::Receiver<TuRequest>,
    /// RFC 5626 instance id of this installation.
    pub instance: String,
}

/// The core's state, owned by one task: no locks, and every change happens in order.
pub struct Phone {
    location: ConfigLocation,
    config: Config,
    embedded: bool,
    config_loaded: SystemTime,
    started: SystemTime,
    started_at: Instant,
    listening: Vec<String>,
    logging: Option<Logging>,
    events: EventBus,
    stop: watch::Sender<bool>,
    accounts: Accounts,
    endpoint: Option<Endpoint>,
}

/// The one API every face uses. Cheap to clone.
#[derive(Clone)]
pub struct PhoneHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Arc<Event>>,
    stop: watch::Receiver<bool>,
}

impl Phone {
    /// Starts the core task. `listening` names the control addresses already bound.
    pub fn start(
        location: ConfigLocation,
        loaded: Loaded,
        logging: Option<Logging>,
        listening: Vec<String>,
        sip: Option<SipStack>,
    ) -> (PhoneHandle, tokio::task::JoinHandle<()>) {
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let (stop, stop_rx) = watch::channel(false);
        let (endpoint, requests, instance) = match sip {
            Some(s) => (Some(s.endpoint), Some(s.requests), s.instance),
            None => (None, None, String::new()),
        };
        let (accounts, reg_updates) =
            Accounts::new(endpoint.clone(), instance, &loaded.config.accounts);
        let mut phone = Phone {
            accounts,
            endpoint,
            location,
            config: loaded.config,
            embedded: loaded.embedded,
            config_loaded: SystemTime::now(),
            started: SystemTime::now(),
            started_at: Instant::now(),
            listening,
            logging,
            events: EventBus::new(),
            stop,
        };
        let handle = PhoneHandle {
            commands,
            events: phone.events.sender(),
            stop: stop_rx,
        };
        phone.events.emit(EventKind::DaemonStarted {
            version: env!("CARGO_PKG_VERSION").into(),
        });
        let task = tokio::spawn(phone.run(rx, reg_updates, requests));
        (handle, task)
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut reg_updates: mpsc::Receiver<(AccountId, RegState)>,
        mut requests: Option<mpsc::Receiver<TuRequest>>,
    ) {
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return };
                    if let Some(done) = self.command(cmd) {
                        self.accounts.shutdown().await;
                        let _ = self.stop.send(true);
                        let _ = done.send(());
                        return;
                    }
                }
                Some((id, state)) = reg_updates.recv() => {
                    if let Some(info) = self.accounts.update(&id, state) {
                        self.events.emit(EventKind::AccountChanged(info));
                    }
                }
                Some(req) = recv_opt(&mut requests) => {
                    if let Some(resp) = uas::answer(&req) {
                        tokio::spawn(async move { req.tx.respond(resp).await });
                    }
                }
            }
        }
    }

    /// Handles one command; returns the reply channel when it is a shutdown.
    fn command(&mut self, cmd: Command) -> Option<oneshot::Sender<()>> {
        match cmd {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Reload(reply) => {
                let _ = reply.send(self.reload());
            }
            Command::ListAccounts(reply) => {
                let _ = reply.send(self.accounts.infos());
            }
            Command::GetAccount(id, reply) => {
                let _ = reply.send(self.accounts.get(&id));
            }
            Command::Register(id, reply) => {
                let _ = reply.send(self.accounts.command(&id, RegCommand::Register));
            }
            Command::Unregister(id, reply) => {
                let _ = reply.send(self.accounts.command(&id, RegCommand::Unregister));
            }
            Command::Shutdown { reason, done } => {
                tracing::info!("shutting down: {reason}");
                self.events.emit(EventKind::ShuttingDown { reason });
                return Some(done);
            }
        }
        None
    }

    fn source(&self) -> ConfigSource {
        ConfigSource {
            path: self.location.path.clone(),
            embedded: self.embedded,
        }
    }

    fn status(&self) -> Status {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Status {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            started: self.started,
            uptime: self.started_at.elapsed(),
            config: self.source(),
            config_loaded: self.config_loaded,
            listening: self.listening.clone(),
            accounts: count(self.config.accounts.len()),
            accounts_registered: count(self.accounts.registered()),
            calls: 0,
            watchers: count(self.events.sender().receiver_count()),
        }
    }

    fn reload(&mut self) -> Result<ReloadReport, CoreError> {
        let loaded = match self.location.load() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("configuration not reloaded, keeping the running one: {e}");
                self.events.emit(EventKind::ConfigReloadFailed {
                    config: self.source(),
                    error: e.to_string(),
                });
                return Err(e.into());
            }
        };
        let diff = loaded.config.diff(&self.config);
        if let Some(logging) = &self.logging {
            logging.apply(&loaded.config.log);
        }
        if let Some(ep) = &self.endpoint {
            ep.set_user_agent(loaded.config.sip.user_agent.clone());
        }
        let (removed, changed) = self.accounts.reconcile(&loaded.config.accounts);
        self.config = loaded.config;
        self.embedded = loaded.embedded;
        self.config_loaded = SystemTime::now();
        tracing::info!(
            "configuration reloaded from {}{}: {} change(s){}",
            self.location.path.display(),
            if self.embedded {
                " (absent: embedded default)"
            } else {
                ""
            },
            diff.applied.len(),
            if diff.restart_required.is_empty() {
                String::new()
            } else {
                format!("; needs a restart: {}", diff.restart_required.join(", "))
            }
        );
        let report = ReloadReport {
            config: self.source(),
            applied: diff.applied,
            restart_required: diff.restart_required,
        };
        self.events.emit(EventKind::ConfigReloaded {
            config: report.config.clone(),
            applied: report.applied.clone(),
            restart_required: report.restart_required.clone(),
        });
        for id in removed {
            self.events.emit(EventKind::AccountRemoved { id });
        }
        for info in changed {
            self.events.emit(EventKind::AccountChanged(info));
        }
        Ok(report)
    }
}

impl PhoneHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CoreError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| CoreError::Stopped)?;
        rx.await.map_err(|_| CoreError::Stopped)
    }

    pub async fn status(&self) -> Result<Status, CoreError> {
        self.ask(Command::Status).await
    }

    /// Re-reads the configuration file. On error the running configuration stays.
    pub async fn reload(&self) -> Result<ReloadReport, CoreError> {
        self.ask(Command::Reload).await?
    }

    pub async fn shutdown(&self, reason: impl Into<String>) -> Result<(), CoreError> {
        let reason = reason.into();
        self.ask(|done| Command::Shutdown { reason, done }).await
    }

    pub async fn accounts(&self) -> Result<Vec<AccountInfo>, CoreError> {
        self.ask(Command::ListAccounts).await
    }

    pub async fn account(&self, id: &str) -> Result<AccountInfo, CoreError> {
        let id = id.to_string();
        self.ask(|r| Command::GetAccount(id, r)).await?
    }

    pub async fn register(&self, id: &str) -> Result<AccountInfo, CoreError> {
        let id = id.to_string();
        self.ask(|r| Command::Register(id, r)).await?
    }

    pub async fn unregister(&self, id: &str) -> Result<AccountInfo, CoreError> {
        let id = id.to_string();
        self.ask(|r| Command::Unregister(id, r)).await?
    }

    /// Events from now on. See [`super::EVENT_QUEUE`] for what happens to a slow reader.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Resolves once shutdown has begun.
    pub async fn stopped(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
