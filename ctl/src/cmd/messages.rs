use tonic::transport::Channel;
use voipd_proto::v1::ListMessagesRequest;
use voipd_proto::v1::messages_client::MessagesClient;

use crate::exit::Failure;
use crate::output::{Output, date_time};

pub async fn list(
    conn: Channel,
    out: Output,
    with: Option<String>,
    limit: u32,
) -> Result<(), Failure> {
    let r = MessagesClient::new(conn)
        .list(ListMessagesRequest {
            with: with.unwrap_or_default(),
            limit,
        })
        .await?
        .into_inner();
    if out.json {
        out.json_line(&r);
        return Ok(());
    }
    if r.messages.is_empty() {
        println!("no messages");
        return Ok(());
    }
    // Oldest first on screen, as a conversation reads.
    for m in r.messages.iter().rev() {
        let who = if m.peer_name.is_empty() {
            m.peer.clone()
        } else {
            format!("{} <{}>", m.peer_name, m.peer)
        };
        let dir = if m.incoming { "from" } else { "to" };
        println!("{} {dir} {who}: {}", date_time(m.unix_ms), m.body);
    }
    Ok(())
}
