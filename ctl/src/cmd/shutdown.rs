use tonic::transport::Channel;
use voipd_proto::v1::ShutdownRequest;
use voipd_proto::v1::daemon_client::DaemonClient;

use crate::exit::Failure;
use crate::output::Output;

pub async fn run(conn: Channel, out: Output) -> Result<(), Failure> {
    let r = DaemonClient::new(conn)
        .shutdown(ShutdownRequest {})
        .await?
        .into_inner();
    if out.json {
        out.json_line(&r);
    } else {
        println!("voipd is shutting down");
    }
    Ok(())
}
