//! What Home Assistant's sensors show, kept from the event stream and published retained
//! as one JSON object on `PREFIX/state`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::core::{AccountInfo, CallDirection, CallInfo, CallState, Event, EventKind};

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub(super) struct State {
    /// `idle`, or the state of the call that matters most: ringing, dialing, active, held.
    pub call: &'static str,
    pub calls: usize,
    pub last_caller: String,
    pub last_caller_name: String,
    pub missed_calls: u32,
    pub unread_messages: u32,
    pub new_voicemails: u32,
    /// Each account's registration state, by id.
    pub accounts: BTreeMap<String, &'static str>,
    #[serde(skip)]
    live: HashMap<u64, (CallDirection, &'static str)>,
}

impl State {
    /// The state as the core has it now.
    pub(super) fn new(
        accounts: &[AccountInfo],
        calls: &[CallInfo],
        counts: (u32, u32, u32),
    ) -> State {
        let mut s = State {
            missed_calls: counts.0,
            unread_messages: counts.1,
            new_voicemails: counts.2,
            ..State::default()
        };
        for a in accounts {
            s.accounts.insert(a.id.clone(), a.state.name());
        }
        for c in calls {
            s.call_changed(c);
        }
        s.summarise();
        s
    }

    fn call_changed(&mut self, c: &CallInfo) {
        if matches!(c.state, CallState::Ended { .. }) {
            self.live.remove(&c.id);
        } else {
            self.live.insert(c.id, (c.direction, c.state.name()));
        }
        if c.direction == CallDirection::Incoming && c.state == CallState::Ringing {
            self.last_caller.clone_from(&c.remote_uri);
            self.last_caller_name = c
                .contact
                .clone()
                .or_else(|| c.remote_name.clone())
                .unwrap_or_default();
        }
    }

    fn summarise(&mut self) {
        // What a panel shows first: a ringing call, then one being set up, then talk.
        const ORDER: [&str; 6] = ["ringing", "dialing", "early", "active", "held", "ending"];
        self.calls = self.live.len();
        self.call = ORDER
            .iter()
            .find(|s| self.live.values().any(|(_, st)| st == *s))
            .copied()
            .unwrap_or("idle");
    }

    /// Follows an event; true when what the sensors show changed.
    pub(super) fn apply(&mut self, ev: &Event) -> bool {
        let before = self.clone();
        match &ev.kind {
            EventKind::CallChanged(c) => self.call_changed(c),
            EventKind::AccountChanged(a) => {
                self.accounts.insert(a.id.clone(), a.state.name());
            }
            EventKind::AccountRemoved { id } => {
                self.accounts.remove(id);
            }
            EventKind::HistoryChanged { missed_unseen } => self.missed_calls = *missed_unseen,
            EventKind::UnreadMessages { count } => self.unread_messages = *count,
            EventKind::VoicemailsChanged { unheard } => self.new_voicemails = *unheard,
            _ => return false,
        }
        self.summarise();
        *self != before
    }
}
