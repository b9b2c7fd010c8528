use tonic::transport::Channel;
use voipd_proto::v1::messages_client::MessagesClient;
use voipd_proto::v1::{ListMessagesRequest, SendMessageRequest};

use crate::exit::Failure;
use crate::output::{Output, date_time, who};

pub async fn send(
    conn: Channel,
    out: Output,
    to: String,
    text: String,
    account: Option<String>,
) -> Result<(), Failure> {
    let m = MessagesClient::new(conn)
        .send(SendMessageRequest {
            to,
            text,
            account: account.unwrap_or_default(),
        })
        .await?
        .into_inner();
    if out.json {
        out.json_line(&m);
    } else {
        println!(
            "message {} to {}: queued (follow with `voipctl watch`)",
            m.id, m.peer
        );
    }
    Ok(())
}

pub async fn list(
    conn: Channel,
    out: Output,
    with: Option<String>,
    limit: u32,
    peek: bool,
) -> Result<(), Failure> {
    let r = MessagesClient::new(conn)
        .list(ListMessagesRequest {
            with: with.unwrap_or_default(),
            limit,
            mark_read: !peek,
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
        let who = who(&m.contact, &m.peer_name, &m.peer);
        let dir = if m.incoming { "from" } else { "to" };
        let status = match (m.incoming, m.status.as_str()) {
            (true, _) => String::new(),
            (false, "failed") => format!(" [failed: {}]", m.code),
            (false, s) => format!(" [{s}]"),
        };
        // Not read before this listing.
        let new = if m.incoming && !m.read { "● " } else { "" };
        println!(
            "{new}{} {dir} {who}: {}{status}",
            date_time(m.unix_ms),
            m.body
        );
    }
    if peek && r.unread > 0 {
        println!("({} unread)", r.unread);
    }
    Ok(())
}
