use tonic::transport::Channel;
use voipd_proto::v1::calls_client::CallsClient;
use voipd_proto::v1::{Call, CallRequest, CallState, DialRequest, ListCallsRequest};

use crate::exit::Failure;
use crate::output::{Output, clock, duration};

pub fn state_name(c: &Call) -> &'static str {
    match c.state() {
        CallState::Unspecified => "?",
        CallState::Dialing => "dialing",
        CallState::Ringing => "ringing",
        CallState::Active => "active",
        CallState::Ended => "ended",
    }
}

pub fn describe(c: &Call) -> String {
    let who = if c.remote_name.is_empty() {
        c.remote_uri.clone()
    } else {
        format!("{} <{}>", c.remote_name, c.remote_uri)
    };
    let dir = if c.incoming { "from" } else { "to" };
    let mut s = format!("call {} {dir} {who}: {}", c.id, state_name(c));
    match c.state() {
        CallState::Active if !c.codec.is_empty() => s.push_str(&format!(" ({})", c.codec)),
        CallState::Ended => {
            s.push_str(&format!(", {} {}", c.end_code, c.end_reason));
            if let Some(m) = &c.media
                && m.packets_sent + m.packets_received > 0
            {
                s.push_str(&format!(
                    " [RTP sent {}, received {}]",
                    m.packets_sent, m.packets_received
                ));
            }
        }
        _ => {}
    }
    s
}

async fn list_calls(conn: Channel) -> Result<Vec<Call>, Failure> {
    Ok(CallsClient::new(conn)
        .list(ListCallsRequest {})
        .await?
        .into_inner()
        .calls)
}

/// The call a verb without an id means: the only one that fits.
async fn the_call(
    conn: Channel,
    id: Option<u64>,
    fits: impl Fn(&Call) -> bool,
    verb: &str,
) -> Result<u64, Failure> {
    if let Some(id) = id {
        return Ok(id);
    }
    let calls: Vec<Call> = list_calls(conn)
        .await?
        .into_iter()
        .filter(|c| fits(c))
        .collect();
    match calls.as_slice() {
        [one] => Ok(one.id),
        [] => Err(Failure::Usage(format!("no call to {verb}"))),
        many => Err(Failure::Usage(format!(
            "{} calls could be meant; say which: {}",
            many.len(),
            many.iter()
                .map(|c| format!("voipctl {verb} {}", c.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub async fn dial(
    conn: Channel,
    out: Output,
    uri: String,
    account: Option<String>,
) -> Result<(), Failure> {
    let c = CallsClient::new(conn)
        .dial(DialRequest {
            uri,
            account: account.unwrap_or_default(),
        })
        .await?
        .into_inner();
    if out.json {
        out.json_line(&c);
    } else {
        println!(
            "call {}: dialing (follow with `voipctl watch`, end with `voipctl hangup`)",
            c.id
        );
    }
    Ok(())
}

pub async fn act(conn: Channel, out: Output, id: Option<u64>, verb: &str) -> Result<(), Failure> {
    let answer = verb == "answer";
    let id = the_call(
        conn.clone(),
        id,
        |c| !answer || (c.incoming && c.state() == CallState::Ringing),
        verb,
    )
    .await?;
    let mut client = CallsClient::new(conn);
    let c = if answer {
        client.answer(CallRequest { id }).await?
    } else {
        client.hangup(CallRequest { id }).await?
    }
    .into_inner();
    if out.json {
        out.json_line(&c);
    } else {
        println!(
            "call {}: {}",
            c.id,
            if answer { "answering" } else { "hanging up" }
        );
    }
    Ok(())
}

pub async fn list(conn: Channel, out: Output) -> Result<(), Failure> {
    let calls = list_calls(conn).await?;
    if out.json {
        out.json_line(&serde_json::json!({ "calls": calls }));
        return Ok(());
    }
    if calls.is_empty() {
        println!("no calls");
    }
    for c in &calls {
        let since = if c.answered_unix_ms > 0 {
            c.answered_unix_ms
        } else {
            c.started_unix_ms
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        println!(
            "{}  since {} ({})",
            describe(c),
            clock(since),
            duration(now.saturating_sub(since) / 1000)
        );
    }
    Ok(())
}
