//! What a hook learns of an event: its filters' subject and its `VOIPD_*` variables.

use std::collections::HashMap;

use crate::config::HookSubject;
use crate::core::{CallDirection, CallInfo, CallState, Event, EventKind};

/// The calls the runner has seen, so that a digit's hook knows whose call it is.
#[derive(Default)]
pub(super) struct Calls(HashMap<u64, CallInfo>);

impl Calls {
    /// Follows calls through their events.
    pub(super) fn see(&mut self, ev: &Event) {
        if let EventKind::CallChanged(c) = &ev.kind {
            if matches!(c.state, CallState::Ended { .. }) {
                self.0.remove(&c.id);
            } else {
                self.0.insert(c.id, (**c).clone());
            }
        }
    }

    /// The call an event is about, if it is about one.
    pub(super) fn of<'a>(&'a self, ev: &'a Event) -> Option<&'a CallInfo> {
        match &ev.kind {
            EventKind::CallChanged(c) => Some(c),
            EventKind::DtmfReceived { call, .. } => self.0.get(call),
            _ => None,
        }
    }
}

/// What the hooks' filters look at.
pub(super) fn subject<'a>(ev: &'a Event, call: Option<&'a CallInfo>) -> HookSubject<'a> {
    let mut s = HookSubject::default();
    if let Some(c) = call {
        s.account = c.account.as_deref();
        s.remote = [Some(c.remote_uri.as_str()), c.contact.as_deref()];
    }
    match &ev.kind {
        EventKind::DtmfReceived { digit, .. } => s.digit = Some(*digit),
        EventKind::MessageReceived(m) | EventKind::MessageChanged(m) => {
            s.account = m.account.as_deref();
            s.remote = [Some(m.peer.as_str()), m.contact.as_deref()];
        }
        EventKind::AccountChanged(a) => s.account = Some(a.id.as_str()),
        EventKind::AccountRemoved { id } => s.account = Some(id.as_str()),
        _ => {}
    }
    s
}

/// The event as `VOIPD_*` variables, for hooks that do not read JSON.
pub(super) fn variables(ev: &Event, call: Option<&CallInfo>) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("VOIPD_EVENT", ev.name.to_string()),
        ("VOIPD_SEQ", ev.seq.to_string()),
        (
            "VOIPD_TIME",
            ev.at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                .to_string(),
        ),
    ];
    if let Some(c) = call {
        v.push(("VOIPD_CALL_ID", c.id.to_string()));
        v.push(("VOIPD_ACCOUNT", c.account.clone().unwrap_or_default()));
        v.push(("VOIPD_REMOTE", c.remote_uri.clone()));
        v.push((
            "VOIPD_REMOTE_NAME",
            c.remote_name.clone().unwrap_or_default(),
        ));
        v.push(("VOIPD_CONTACT", c.contact.clone().unwrap_or_default()));
        v.push((
            "VOIPD_DIRECTION",
            match c.direction {
                CallDirection::Incoming => "incoming",
                CallDirection::Outgoing => "outgoing",
            }
            .into(),
        ));
        v.push(("VOIPD_STATE", c.state.name().into()));
        if let CallState::Ended { code, reason } = &c.state {
            v.push(("VOIPD_CODE", code.to_string()));
            v.push(("VOIPD_REASON", reason.to_string()));
        }
    }
    match &ev.kind {
        EventKind::DtmfReceived { digit, .. } => v.push(("VOIPD_DIGIT", digit.to_string())),
        EventKind::MessageReceived(m) | EventKind::MessageChanged(m) => {
            v.push(("VOIPD_MESSAGE_ID", m.id.to_string()));
            v.push(("VOIPD_ACCOUNT", m.account.clone().unwrap_or_default()));
            v.push(("VOIPD_REMOTE", m.peer.clone()));
            v.push(("VOIPD_REMOTE_NAME", m.peer_name.clone().unwrap_or_default()));
            v.push(("VOIPD_CONTACT", m.contact.clone().unwrap_or_default()));
            v.push(("VOIPD_TEXT", m.body.clone()));
            v.push(("VOIPD_STATUS", m.status.clone()));
        }
        EventKind::AccountChanged(a) => {
            v.push(("VOIPD_ACCOUNT", a.id.clone()));
        }
        EventKind::AccountRemoved { id } => v.push(("VOIPD_ACCOUNT", id.clone())),
        EventKind::UnreadMessages { count } => v.push(("VOIPD_COUNT", count.to_string())),
        EventKind::VoicemailsChanged { unheard } => {
            v.push(("VOIPD_COUNT", unheard.to_string()));
        }
        EventKind::HistoryChanged { missed_unseen } => {
            v.push(("VOIPD_COUNT", missed_unseen.to_string()));
        }
        _ => {}
    }
    v
}
