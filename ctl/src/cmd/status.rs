use tonic::transport::Channel;
use voipd_proto::v1::GetStatusRequest;
use voipd_proto::v1::daemon_client::DaemonClient;

use crate::exit::Failure;
use crate::output::{Output, duration};

pub async fn run(conn: Channel, out: Output) -> Result<(), Failure> {
    let s = DaemonClient::new(conn)
        .get_status(GetStatusRequest {})
        .await?
        .into_inner();
    if out.json {
        out.json_line(&s);
        return Ok(());
    }
    let config = s.config.unwrap_or_default();
    let counts = s.counts.unwrap_or_default();
    // One write, not one per line: this command is timed against /bin/true (issue #20).
    let mut text = format!(
        "voipd {} (pid {}), up {}\nconfig     {}{}\n",
        s.version,
        s.pid,
        duration(s.uptime_seconds),
        config.path,
        if config.embedded_default {
            " (absent: embedded default)"
        } else {
            ""
        }
    );
    for (i, addr) in s.listening.iter().enumerate() {
        let label = if i == 0 { "listening " } else { "          " };
        text.push_str(&format!("{label} {addr}\n"));
    }
    text.push_str(&format!(
        "accounts   {} ({} registered)\ncalls      {}\nwatchers   {}\nstrangers  {} refused ({} sources lately)\n",
        counts.accounts,
        counts.accounts_registered,
        counts.calls,
        counts.watchers,
        counts.strangers_refused,
        counts.stranger_sources
    ));
    print!("{text}");
    Ok(())
}
