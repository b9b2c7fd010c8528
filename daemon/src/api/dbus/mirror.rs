//! Keeps the bus objects in step with the core: one object per account and per call,
//! added and removed as the core's events say (ObjectManager sends InterfacesAdded and
//! InterfacesRemoved), with PropertiesChanged for each property that changed.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use tokio::sync::broadcast::error::RecvError;
use zbus::Connection;
use zbus::object_server::{Interface, SignalEmitter};

use super::contacts::Contacts;
use super::objects::{Account, Call, Manager, ROOT, account_path, call_path};
use super::voicemail::Voicemail;
use crate::core::{AccountInfo, CallInfo, CallState, EventKind, PhoneHandle};

pub(super) struct Mirror {
    conn: Connection,
    phone: PhoneHandle,
    accounts: HashSet<String>,
    calls: HashSet<u64>,
}

impl Mirror {
    pub(super) fn new(conn: Connection, phone: PhoneHandle) -> Mirror {
        Mirror {
            conn,
            phone,
            accounts: HashSet::new(),
            calls: HashSet::new(),
        }
    }

    /// Follows the core until it stops. `events` was subscribed before the first sync, so
    /// nothing falls between the snapshot and the stream.
    pub(super) async fn run(
        mut self,
        mut events: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::core::Event>>,
    ) {
        self.sync().await;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => self.apply(&ev.kind).await,
                    // Fell behind: what was missed is read back from the core.
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!("D-Bus mirror missed {n} events; resyncing");
                        self.sync().await;
                    }
                    Err(RecvError::Closed) => break,
                },
                () = self.phone.stopped() => break,
            }
        }
    }

    async fn sync(&mut self) {
        if let Ok(accounts) = self.phone.accounts().await {
            let ids: HashSet<String> = accounts.iter().map(|a| a.id.clone()).collect();
            for gone in self.accounts.difference(&ids).cloned().collect::<Vec<_>>() {
                self.remove_account(&gone).await;
            }
            for a in accounts {
                self.account(a).await;
            }
        }
        if let Ok(calls) = self.phone.calls().await {
            let ids: HashSet<u64> = calls.iter().map(|c| c.id).collect();
            for gone in self.calls.difference(&ids).copied().collect::<Vec<_>>() {
                self.remove_call(gone).await;
            }
            for c in calls {
                self.call(c).await;
            }
        }
    }

    async fn apply(&mut self, ev: &EventKind) {
        match ev {
            EventKind::AccountChanged(a) => self.account(a.clone()).await,
            EventKind::AccountRemoved { id } => self.remove_account(id).await,
            EventKind::CallChanged(c) => self.call((**c).clone()).await,
            EventKind::MessageReceived(m) => {
                if let Ok(em) = self.emitter(ROOT) {
                    let name = m.peer_name.as_deref().unwrap_or_default();
                    let _ = Manager::message_received(&em, m.id, &m.peer, name, &m.body).await;
                }
            }
            EventKind::MessageChanged(m) => {
                if let Ok(em) = self.emitter(ROOT) {
                    let code = m.code.unwrap_or_default();
                    let _ = Manager::message_changed(&em, m.id, &m.status, code).await;
                }
            }
            EventKind::ContactChanged(c) => {
                if let Ok(em) = self.emitter(ROOT) {
                    let _ = Contacts::contact_changed(
                        &em,
                        c.contact.id,
                        &c.contact.name,
                        c.presence.status.as_str(),
                    )
                    .await;
                }
            }
            EventKind::ContactRemoved { id } => {
                if let Ok(em) = self.emitter(ROOT) {
                    let _ = Contacts::contact_removed(&em, *id).await;
                }
            }
            EventKind::ContactsImported { added, updated } => {
                if let Ok(em) = self.emitter(ROOT) {
                    let _ = Contacts::contacts_imported(&em, *added, *updated).await;
                }
            }
            EventKind::UnreadMessages { count } => {
                let n = *count;
                let _ = update::<Manager>(&self.conn, ROOT, |m| m.unread = n).await;
            }
            EventKind::VoicemailReceived(v) => {
                if let Ok(em) = self.emitter(ROOT) {
                    let contact = v.caller_name.as_deref().unwrap_or_default();
                    let ms = u32::try_from(v.duration.as_millis()).unwrap_or(u32::MAX);
                    let _ = Voicemail::voicemail_received(&em, v.id, &v.caller, contact, ms).await;
                }
            }
            EventKind::VoicemailsChanged { unheard } => {
                let n = *unheard;
                let _ = update::<Voicemail>(&self.conn, ROOT, |v| v.unheard = n).await;
            }
            EventKind::HistoryChanged { missed_unseen } => {
                let n = *missed_unseen;
                let _ = update::<Manager>(&self.conn, ROOT, |m| m.missed = n).await;
            }
            EventKind::DtmfReceived { call, digit } => {
                if self.calls.contains(call)
                    && let Ok(em) = self.emitter(&call_path(*call))
                {
                    let _ = Call::dtmf_received(&em, &digit.to_string()).await;
                }
            }
            _ => {}
        }
    }

    async fn account(&mut self, info: AccountInfo) {
        let path = account_path(&info.id);
        if self.accounts.insert(info.id.clone()) {
            let obj = Account {
                phone: self.phone.clone(),
                info,
            };
            if let Err(e) = self.conn.object_server().at(path.as_str(), obj).await {
                tracing::warn!("D-Bus: cannot add {path}: {e}");
            }
            return;
        }
        let _ = update::<Account>(&self.conn, &path, |a| a.info = info).await;
    }

    async fn remove_account(&mut self, id: &str) {
        if self.accounts.remove(id) {
            let _ = self
                .conn
                .object_server()
                .remove::<Account, _>(account_path(id).as_str())
                .await;
        }
    }

    /// Signals need only the object's path, not its interface.
    fn emitter(&self, path: &str) -> zbus::Result<SignalEmitter<'static>> {
        SignalEmitter::new(&self.conn, path.to_string())
    }

    async fn call(&mut self, info: CallInfo) {
        let id = info.id;
        let ended = matches!(info.state, CallState::Ended { .. });
        if !self.calls.contains(&id) {
            if ended {
                // Began and ended between two looks (or seen first at a resync): nothing
                // to show any more.
                return;
            }
            self.calls.insert(id);
            let obj = Call {
                phone: self.phone.clone(),
                info,
            };
            if let Err(e) = self
                .conn
                .object_server()
                .at(call_path(id).as_str(), obj)
                .await
            {
                tracing::warn!("D-Bus: cannot add call {id}: {e}");
            }
            return;
        }
        let _ = update::<Call>(&self.conn, &call_path(id), |c| c.info = info).await;
        if ended {
            self.remove_call(id).await;
        }
    }

    async fn remove_call(&mut self, id: u64) {
        if self.calls.remove(&id) {
            let _ = self
                .conn
                .object_server()
                .remove::<Call, _>(call_path(id).as_str())
                .await;
        }
    }
}

/// Changes an object and sends one PropertiesChanged with every property whose value
/// differs, so that a widget sees a call's new state, codec and times at once.
async fn update<I: Interface>(
    conn: &zbus::Connection,
    path: &str,
    change: impl FnOnce(&mut I),
) -> zbus::Result<()> {
    let server = conn.object_server();
    let iface = server.interface::<_, I>(path).await?;
    let mut obj = iface.get_mut().await;
    let em = iface.signal_emitter();
    let before = obj.get_all(server, conn, None, em).await?;
    change(&mut obj);
    let after = obj.get_all(server, conn, None, em).await?;
    let changed: HashMap<&str, zbus::Variant<'_>> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .filter_map(|(k, v)| Some((k.as_str(), zbus::Variant::try_from(v).ok()?)))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    zbus::fdo::Properties::properties_changed(em, I::name(), changed, Cow::Borrowed(&[])).await
}
