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
    println!(
        "voipd {} (pid {}), up {}",
        s.version,
        s.pid,
        duration(s.uptime_seconds)
    );
    println!(
        "config     {}{}",
        config.path,
        if config.embedded_default {
            " (absent: embedded default)"
        } else {
            ""
        }
    );
    for (i, addr) in s.listening.iter().enumerate() {
        println!(
            "{} {addr}",
            if i == 0 { "listening " } else { "          " }
        );
    }
    println!(
        "accounts   {} ({} registered)",
        counts.accounts, counts.accounts_registered
    );
    println!("calls      {}", counts.calls);
    println!("watchers   {}", counts.watchers);
    println!(
        "strangers  {} refused ({} sources lately)",
        counts.strangers_refused, counts.stranger_sources
    );
    Ok(())
}
