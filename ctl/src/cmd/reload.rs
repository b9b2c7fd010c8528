use tonic::transport::Channel;
use voipd_proto::v1::ReloadRequest;
use voipd_proto::v1::daemon_client::DaemonClient;

use crate::exit::Failure;
use crate::output::Output;

pub async fn run(conn: Channel, out: Output) -> Result<(), Failure> {
    let r = DaemonClient::new(conn)
        .reload(ReloadRequest {})
        .await?
        .into_inner();
    if out.json {
        out.json_line(&r);
        return Ok(());
    }
    let config = r.config.unwrap_or_default();
    println!(
        "reloaded {}{}",
        config.path,
        if config.embedded_default {
            " (absent: embedded default)"
        } else {
            ""
        }
    );
    if r.changes.is_empty() && r.restart_required.is_empty() {
        println!("no changes");
    }
    for c in &r.changes {
        println!("  {c}");
    }
    for c in &r.restart_required {
        println!("  {c}: changed, takes effect after a restart");
    }
    Ok(())
}
