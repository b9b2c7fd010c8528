//! The accounts the core keeps registered: one registration task each, started, replaced
//! and stopped as the configuration says, their states gathered for the faces.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::forward::{ForwardSetting, Live};
use super::{AccountInfo, CoreError};
use crate::config::{Account, ForwardRule, ForwardTarget};
use crate::sip::registration::{self, RegAccount, RegCommand, RegHandle, RegState};
use crate::sip::transaction::Endpoint;

pub(super) struct Accounts {
    ep: Option<Endpoint>,
    instance: String,
    list: Vec<Entry>,
    updates: mpsc::Sender<(String, RegState)>,
}

struct Entry {
    config: Account,
    state: RegState,
    task: Option<RegHandle>,
    /// Forwarding set through the API; it wins over the configuration's.
    live: Live,
    /// The provider's voicemail summary, once one came.
    voicemail: Option<super::MessageSummary>,
}

impl Entry {
    /// Where `rule` sends calls now, if anywhere.
    fn forward(&self, rule: ForwardRule) -> Option<ForwardTarget> {
        match self.live.get(&rule) {
            Some(live) => live.clone(),
            None => self.config.forward.0.get(&rule).cloned(),
        }
    }

    fn info(&self) -> AccountInfo {
        AccountInfo {
            id: self.config.id.to_string(),
            aor: self.config.aor.to_string(),
            display_name: self.config.display_name.clone(),
            enabled: self.config.enabled,
            state: self.state.clone(),
            forwarding: ForwardRule::ALL
                .into_iter()
                .map(|rule| ForwardSetting {
                    rule,
                    target: self.forward(rule),
                    live: self.live.contains_key(&rule),
                })
                .collect(),
            voicemail: self.voicemail,
        }
    }
}

/// How long a shutdown waits for all un-REGISTERs together.
const UNREGISTER_WAIT: Duration = Duration::from_secs(4);

impl Accounts {
    pub(super) fn new(
        ep: Option<Endpoint>,
        instance: String,
        accounts: &[Account],
    ) -> (Accounts, mpsc::Receiver<(String, RegState)>) {
        let (updates, rx) = mpsc::channel(256);
        let mut a = Accounts {
            ep,
            instance,
            list: Vec::new(),
            updates,
        };
        for acc in accounts {
            let e = a.entry(acc.clone());
            a.list.push(e);
        }
        (a, rx)
    }

    fn entry(&self, config: Account) -> Entry {
        if let Some(ep) = &self.ep {
            trust_for(ep, &config);
        }
        let task = self.ep.as_ref().map(|ep| {
            registration::spawn(
                ep.clone(),
                reg_account(&config),
                self.instance.clone(),
                self.updates.clone(),
            )
        });
        Entry {
            state: RegState::Unregistered,
            config,
            task,
            live: BTreeMap::new(),
            voicemail: None,
        }
    }

    pub(super) fn infos(&self) -> Vec<AccountInfo> {
        self.list.iter().map(Entry::info).collect()
    }

    /// The accounts registered now.
    pub(super) fn registered_accounts(&self) -> Vec<Account> {
        self.list
            .iter()
            .filter(|e| matches!(e.state, RegState::Registered { .. }))
            .map(|e| e.config.clone())
            .collect()
    }

    pub(super) fn registered(&self) -> usize {
        self.list
            .iter()
            .filter(|e| matches!(e.state, RegState::Registered { .. }))
            .count()
    }

    fn find(&self, id: &str) -> Result<&Entry, CoreError> {
        if id.is_empty() {
            return Err(CoreError::InvalidArgument {
                field: "id",
                message: "an account id is required".into(),
            });
        }
        self.list
            .iter()
            .find(|e| e.config.id.as_str() == id)
            .ok_or_else(|| CoreError::NotFound {
                what: "account",
                id: id.into(),
            })
    }

    pub(super) fn get(&self, id: &str) -> Result<AccountInfo, CoreError> {
        self.find(id).map(Entry::info)
    }

    /// Sends a command to an account's task.
    pub(super) fn command(&self, id: &str, cmd: RegCommand) -> Result<AccountInfo, CoreError> {
        let e = self.find(id)?;
        if !e.config.enabled && matches!(cmd, RegCommand::Register) {
            return Err(CoreError::FailedPrecondition(format!(
                "account {id} is disabled in the configuration (enabled = false)"
            )));
        }
        let task = e
            .task
            .as_ref()
            .ok_or_else(|| CoreError::FailedPrecondition("SIP is not running".into()))?;
        task.commands.try_send(cmd).map_err(|_| {
            CoreError::FailedPrecondition(format!("account {id} is busy; try again"))
        })?;
        Ok(e.info())
    }

    /// The account an incoming request is for: the one whose AOR user is the Request-URI's
    /// user, else the first one (a provider may rewrite the user part), else none.
    pub(super) fn for_request_uri(&self, uri: &crate::sip::uri::Uri) -> Option<Account> {
        let user = match uri {
            crate::sip::uri::Uri::Sip(u) => u.user.as_deref(),
            _ => None,
        };
        self.list
            .iter()
            .find(|e| user.is_some() && e.config.aor.0.user.as_deref() == user)
            .or_else(|| self.list.first())
            .map(|e| e.config.clone())
    }

    /// The account to call from: the one named, else the first registered, else the first
    /// enabled; none for direct IP calls when there are no accounts.
    pub(super) fn for_dialing(&self, id: Option<&str>) -> Result<Option<Account>, CoreError> {
        if let Some(id) = id.filter(|i| !i.is_empty()) {
            return self.find(id).map(|e| Some(e.config.clone()));
        }
        Ok(self
            .list
            .iter()
            .find(|e| matches!(e.state, RegState::Registered { .. }))
            .or_else(|| self.list.iter().find(|e| e.config.enabled))
            .map(|e| e.config.clone()))
    }

    /// Where `rule` of account `id` sends calls now.
    pub(super) fn forward(&self, id: &str, rule: ForwardRule) -> Option<ForwardTarget> {
        self.find(id).ok()?.forward(rule)
    }

    /// Sets (Some) or clears (None) `rule` of account `id` live: Some(None) is "off".
    /// None for `rule` is every rule (clearing only).
    pub(super) fn set_live(
        &mut self,
        id: &str,
        rule: Option<ForwardRule>,
        setting: Option<Option<ForwardTarget>>,
    ) -> Result<AccountInfo, CoreError> {
        self.find(id)?;
        let e = self
            .list
            .iter_mut()
            .find(|e| e.config.id.as_str() == id)
            .ok_or_else(|| CoreError::NotFound {
                what: "account",
                id: id.into(),
            })?;
        match (rule, setting) {
            (Some(rule), Some(s)) => {
                e.live.insert(rule, s);
            }
            (Some(rule), None) => {
                e.live.remove(&rule);
            }
            (None, _) => e.live.clear(),
        }
        Ok(e.info())
    }

    /// The provider's voicemail summary for `id`; the account to announce if it changed.
    pub(super) fn set_voicemail(
        &mut self,
        id: &str,
        summary: super::MessageSummary,
    ) -> Option<AccountInfo> {
        let e = self.list.iter_mut().find(|e| e.config.id.as_str() == id)?;
        if e.voicemail == Some(summary) {
            return None;
        }
        e.voicemail = Some(summary);
        Some(e.info())
    }

    /// The accounts that follow their provider's voicemail (`mwi`), registered now.
    pub(super) fn mwi_registered(&self) -> Vec<Account> {
        self.list
            .iter()
            .filter(|e| e.config.mwi && matches!(e.state, RegState::Registered { .. }))
            .map(|e| e.config.clone())
            .collect()
    }

    /// Whether account `id` is configured and follows its voicemail.
    pub(super) fn wants_mwi(&self, id: &str) -> bool {
        self.list
            .iter()
            .any(|e| e.config.id.as_str() == id && e.config.mwi)
    }

    /// A state report from a task; returns the account to announce if it is still ours.
    pub(super) fn update(&mut self, id: &str, state: RegState) -> Option<AccountInfo> {
        let e = self.list.iter_mut().find(|e| e.config.id.as_str() == id)?;
        if e.state == state {
            return None;
        }
        e.state = state;
        Some(e.info())
    }

    /// Applies a reloaded account list: unchanged accounts are not touched. Returns the
    /// ids removed and the accounts added or changed.
    pub(super) fn reconcile(&mut self, new: &[Account]) -> (Vec<String>, Vec<AccountInfo>) {
        let mut old: Vec<Entry> = std::mem::take(&mut self.list);
        let mut changed = Vec::new();
        for acc in new {
            match old.iter().position(|e| e.config.id == acc.id) {
                Some(i) if old[i].config.same_settings(acc) => self.list.push(old.remove(i)),
                // Only how its calls go changed: the registration goes on untouched.
                Some(i) if same_registration(&old[i].config, acc) => {
                    let mut e = old.remove(i);
                    e.config = acc.clone();
                    changed.push(e.info());
                    self.list.push(e);
                }
                Some(i) => {
                    let was = old.remove(i);
                    let mut e = self.entry(acc.clone());
                    e.live = was.live.clone();
                    e.voicemail = if acc.mwi { was.voicemail } else { None };
                    stop(was);
                    changed.push(e.info());
                    self.list.push(e);
                }
                None => {
                    let e = self.entry(acc.clone());
                    changed.push(e.info());
                    self.list.push(e);
                }
            }
        }
        let removed = old.iter().map(|e| e.config.id.to_string()).collect();
        for e in old {
            stop(e);
        }
        (removed, changed)
    }

    /// Un-REGISTERs every account, waiting a bounded time.
    pub(super) async fn shutdown(&mut self) {
        let mut waits = Vec::new();
        for e in self.list.drain(..) {
            if let Some(task) = e.task {
                let (done, wait) = oneshot::channel();
                if task.commands.send(RegCommand::Stop(done)).await.is_ok() {
                    waits.push(wait);
                }
            }
        }
        let all = async {
            for w in waits {
                let _ = w.await;
            }
        };
        if tokio::time::timeout(UNREGISTER_WAIT, all).await.is_err() {
            tracing::warn!("some accounts did not unregister within {UNREGISTER_WAIT:?}");
        }
    }
}

/// Stops a task in the background: it un-REGISTERs and ends.
fn stop(e: Entry) {
    if let Some(task) = e.task {
        let (done, _) = oneshot::channel();
        let _ = task.commands.try_send(RegCommand::Stop(done));
    }
}

/// An account with its own CA or client certificate: TLS to its registrar and outbound
/// proxies uses them (by the names those servers are found under).
fn trust_for(ep: &crate::sip::transaction::Endpoint, a: &Account) {
    let Some(tls) = &a.tls else { return };
    if tls.ca_pem.is_none() && tls.identity.is_none() {
        return;
    }
    let identity = tls
        .identity
        .as_ref()
        .map(|(c, k)| (c.as_slice(), k.expose().as_bytes()));
    // Checked when the configuration was read; a failure here means the files changed.
    let config = match crate::sip::transport::tls::client_config(tls.ca_pem.as_deref(), identity) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(account = %a.id, "tls: {e}; its servers are checked against the system's CAs");
            return;
        }
    };
    let hosts = std::iter::once(&a.aor.0).chain(a.outbound_proxy.iter().map(|p| &p.0));
    for uri in hosts {
        // As the locator names servers: a domain, or an IP address without brackets.
        let name = match &uri.host {
            crate::sip::uri::Host::Domain(d) => d.trim_end_matches('.').to_string(),
            crate::sip::uri::Host::V4(ip) => ip.to_string(),
            crate::sip::uri::Host::V6(ip) => ip.to_string(),
        };
        ep.transport().tls().client_for(&name, config.clone());
    }
}

/// Whether `a` and `b` register alike ([`reg_account`] and the TLS trust are made of
/// these): then a change of the rest leaves the registration be.
fn same_registration(a: &Account, b: &Account) -> bool {
    a.aor == b.aor
        && a.display_name == b.display_name
        && a.username == b.username
        && a.password == b.password
        && a.realm == b.realm
        && a.outbound_proxy == b.outbound_proxy
        && a.expires == b.expires
        && a.keepalive_secs == b.keepalive_secs
        && a.enabled == b.enabled
        && a.tls == b.tls
        && a.mwi == b.mwi
}

/// The account as its registration needs it.
fn reg_account(a: &Account) -> RegAccount {
    RegAccount {
        id: a.id.as_str().to_string(),
        aor: a.aor.0.clone(),
        display_name: a.display_name.clone(),
        credentials: super::request::credentials(a),
        outbound_proxy: a.outbound_proxy.iter().map(|p| p.0.clone()).collect(),
        expires: a.expires,
        keepalive_secs: a.keepalive_secs,
        enabled: a.enabled,
    }
}
