use tonic::transport::Channel;
use voipd_proto::v1::event::Kind;
use voipd_proto::v1::events_client::EventsClient;
use voipd_proto::v1::{Event, WatchRequest};

use crate::exit::Failure;
use crate::output::{Output, clock};

/// Follows events until the daemon shuts down (exit 0) or the stream breaks.
pub async fn run(conn: Channel, out: Output) -> Result<(), Failure> {
    let mut stream = EventsClient::new(conn)
        .watch(WatchRequest {})
        .await?
        .into_inner();
    if !out.json {
        println!("watching voipd events (Ctrl-C to stop)");
    }
    while let Some(ev) = stream.message().await? {
        if out.json {
            out.json_line(&ev);
        } else if let Some(line) = describe(&ev) {
            println!("{} {line}", clock(ev.unix_ms));
        }
        if matches!(ev.kind, Some(Kind::ShuttingDown(_))) {
            break;
        }
    }
    Ok(())
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
    })
}
