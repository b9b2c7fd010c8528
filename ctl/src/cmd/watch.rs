use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::time::Duration;

use tonic::transport::Channel;
use voipd_proto::v1::accounts_client::AccountsClient;
use voipd_proto::v1::calls_client::CallsClient;
use voipd_proto::v1::event::Kind;
use voipd_proto::v1::events_client::EventsClient;
use voipd_proto::v1::{
    Account, Call, CallState, Event, ListAccountsRequest, ListCallsRequest, WatchRequest,
};

use crate::exit::Failure;
use crate::output::{Output, clock, now_ms};

/// How many recent events the live view keeps under its tables.
const RECENT: usize = 8;

/// Follows events until the daemon shuts down (exit 0) or the stream breaks. With --json
/// one event per line; on a terminal a live view of accounts and calls, redrawn as they
/// change; otherwise (a pipe, a log) the accounts and calls once, then a line per event.
pub async fn run(conn: Channel, out: Output) -> Result<(), Failure> {
    // Watch first, then look: nothing can change unseen in between.
    let mut stream = EventsClient::new(conn.clone())
        .watch(WatchRequest {})
        .await?
        .into_inner();
    if out.json {
        while let Some(ev) = stream.message().await? {
            out.json_line(&ev);
            if matches!(ev.kind, Some(Kind::ShuttingDown(_))) {
                break;
            }
        }
        return Ok(());
    }
    let mut view = View::default();
    for a in AccountsClient::new(conn.clone())
        .list(ListAccountsRequest {})
        .await?
        .into_inner()
        .accounts
    {
        view.accounts.insert(a.id.clone(), a);
    }
    for c in CallsClient::new(conn)
        .list(ListCallsRequest {})
        .await?
        .into_inner()
        .calls
    {
        view.calls.insert(c.id, c);
    }
    let live = std::io::stdout().is_terminal();
    if live {
        view.draw();
    } else {
        print!("{}", view.tables());
        println!("watching voipd events (Ctrl-C to stop)");
    }
    // Redrawn every second too, so that call durations run.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let ev = tokio::select! {
            ev = stream.message() => match ev? {
                Some(ev) => ev,
                None => break,
            },
            _ = tick.tick(), if live => {
                view.draw();
                continue;
            }
        };
        let line = describe(&ev).map(|l| format!("{} {l}", clock(ev.unix_ms)));
        view.apply(&ev);
        if let Some(line) = line {
            if live {
                view.recent.push_back(line);
                if view.recent.len() > RECENT {
                    view.recent.pop_front();
                }
                view.draw();
            } else {
                println!("{line}");
            }
        }
        if matches!(ev.kind, Some(Kind::ShuttingDown(_))) {
            break;
        }
    }
    Ok(())
}

#[derive(Default)]
struct View {
    accounts: BTreeMap<String, Account>,
    calls: BTreeMap<u64, Call>,
    recent: VecDeque<String>,
}

impl View {
    fn apply(&mut self, ev: &Event) {
        match &ev.kind {
            Some(Kind::AccountChanged(a)) => {
                self.accounts.insert(a.id.clone(), a.clone());
            }
            Some(Kind::AccountRemoved(r)) => {
                self.accounts.remove(&r.id);
            }
            Some(Kind::CallChanged(c)) if c.state() == CallState::Ended => {
                self.calls.remove(&c.id);
            }
            Some(Kind::CallChanged(c)) => {
                self.calls.insert(c.id, c.clone());
            }
            _ => {}
        }
    }

    fn tables(&self) -> String {
        let accounts: Vec<Account> = self.accounts.values().cloned().collect();
        let calls: Vec<Call> = self.calls.values().cloned().collect();
        let mut s = if accounts.is_empty() {
            "no accounts\n".to_string()
        } else {
            super::accounts::table(&accounts)
        };
        s.push('\n');
        if calls.is_empty() {
            s.push_str("no calls\n");
        } else {
            s.push_str(&super::calls::table(&calls));
        }
        s
    }

    /// The whole screen, from the top: a status board, not a scrolling log.
    fn draw(&self) {
        let mut s = format!(
            "\x1b[H\x1b[2Jvoipd at {} (Ctrl-C to stop)\n\n{}",
            clock(now_ms()),
            self.tables()
        );
        if !self.recent.is_empty() {
            s.push_str("\nrecent:\n");
            for l in &self.recent {
                s.push_str(l);
                s.push('\n');
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(s.as_bytes());
        let _ = out.flush();
    }
}

fn describe(ev: &Event) -> Option<String> {
    Some(match ev.kind.as_ref()? {
        Kind::DaemonStarted(s) => format!("daemon started, version {}", s.version),
        Kind::ConfigReloaded(r) => {
            let mut line = format!(
                "configuration reloaded from {}",
                r.config.as_ref().map_or("?", |c| c.path.as_str())
            );
            if r.changes.is_empty() {
                line.push_str(": no changes");
            } else {
                line.push_str(&format!(": {}", r.changes.join("; ")));
            }
            if !r.restart_required.is_empty() {
                line.push_str(&format!(
                    " (after restart: {})",
                    r.restart_required.join(", ")
                ));
            }
            line
        }
        Kind::ConfigReloadFailed(f) => {
            format!("configuration reload FAILED, running one kept: {}", f.error)
        }
        Kind::ShuttingDown(s) => format!("daemon shutting down: {}", s.reason),
        Kind::AccountChanged(a) => {
            let detail = super::accounts::detail(a);
            let state = super::accounts::state_name(a);
            if detail.is_empty() {
                format!("account {}: {state}", a.id)
            } else {
                format!("account {}: {state}, {detail}", a.id)
            }
        }
        Kind::AccountRemoved(r) => format!("account {}: removed", r.id),
        Kind::CallChanged(c) => super::calls::describe(c),
        Kind::DtmfReceived(d) => format!("call {}: DTMF {} received", d.call_id, d.digit),
        Kind::MessageReceived(m) => format!(
            "message from {}: {}",
            crate::output::who(&m.contact, &m.peer_name, &m.peer),
            m.body
        ),
        Kind::MessageChanged(m) => match m.status.as_str() {
            "failed" => format!("message {} to {}: failed ({})", m.id, m.peer, m.code),
            s => format!("message {} to {}: {s}", m.id, m.peer),
        },
        // The call's own line said it all; a new missed count is worth a line.
        Kind::HistoryChanged(h) if h.missed_unseen > 0 => {
            format!(
                "{} missed call(s) unseen (voipctl history)",
                h.missed_unseen
            )
        }
        Kind::HistoryChanged(_) => return None,
        Kind::ContactChanged(c) => format!(
            "contact {} (id {}): {}",
            c.name,
            c.id,
            c.presence.as_ref().map_or("unknown", |p| p.status.as_str())
        ),
        Kind::ContactRemoved(r) => format!("contact {} removed", r.id),
        Kind::UnreadMessages(u) => format!("{} unread message(s) (voipctl message list)", u.count),
        Kind::ContactsImported(i) => {
            format!(
                "contacts imported: {} added, {} updated",
                i.added, i.updated
            )
        }
        Kind::VoicemailReceived(v) => format!(
            "voicemail {} from {}, {} s",
            v.id,
            crate::output::who(&v.contact, "", &v.caller),
            v.duration_ms / 1000
        ),
        Kind::VoicemailsChanged(c) => {
            format!("{} new voicemail(s) (voipctl voicemail list)", c.unheard)
        }
    })
}
