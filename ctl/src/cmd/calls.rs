use tonic::transport::Channel;
use voipd_proto::v1::calls_client::CallsClient;
use voipd_proto::v1::{
    AnswerRequest, Call, CallRequest, CallState, DialRequest, DtmfRequest, ListCallsRequest,
    MuteRequest, RejectRequest,
};

use crate::AudioArgs;
use crate::exit::Failure;
use crate::output::{Output, clock, duration, now_ms, who};

pub fn state_name(c: &Call) -> &'static str {
    match c.state() {
        CallState::Unspecified => "?",
        CallState::Dialing => "dialing",
        CallState::Ringing => "ringing",
        CallState::Active => "active",
        CallState::Ended => "ended",
        CallState::Held => "on hold",
        CallState::Early => "early media",
    }
}

pub fn describe(c: &Call) -> String {
    let who = who(&c.contact, &c.remote_name, &c.remote_uri);
    let dir = if c.incoming { "from" } else { "to" };
    let mut s = format!("call {} {dir} {who}: {}", c.id, state_name(c));
    match c.state() {
        CallState::Dialing | CallState::Ringing | CallState::Early if !c.progress.is_empty() => {
            s.push_str(&format!(" ({})", c.progress));
        }
        CallState::Active | CallState::Held if !c.codec.is_empty() => s.push_str(&format!(
            " ({}{})",
            c.codec,
            if c.muted { ", muted" } else { "" }
        )),
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
    audio: AudioArgs,
) -> Result<(), Failure> {
    let c = CallsClient::new(conn)
        .dial(DialRequest {
            uri,
            account: account.unwrap_or_default(),
            input: audio.input.unwrap_or_default(),
            output: audio.output.unwrap_or_default(),
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

/// What a call verb does.
pub enum Act {
    Answer(AudioArgs),
    Reject { busy: bool },
    Hangup,
    Hold,
    Resume,
    Mute(bool),
    Dtmf(String),
}

impl Act {
    fn verb(&self) -> &'static str {
        match self {
            Act::Answer(_) => "answer",
            Act::Reject { .. } => "reject",
            Act::Hangup => "hangup",
            Act::Hold => "hold",
            Act::Resume => "resume",
            Act::Mute(_) => "mute",
            Act::Dtmf(_) => "dtmf",
        }
    }

    /// The calls this verb can mean when no id is given.
    fn fits(&self, c: &Call) -> bool {
        let ringing = c.incoming && c.state() == CallState::Ringing;
        match self {
            Act::Answer(_) | Act::Reject { .. } => ringing,
            Act::Hangup => true,
            Act::Hold => c.state() == CallState::Active,
            Act::Resume => c.state() == CallState::Held,
            Act::Mute(_) | Act::Dtmf(_) => matches!(c.state(), CallState::Active | CallState::Held),
        }
    }
}

pub async fn act(conn: Channel, out: Output, id: Option<u64>, act: Act) -> Result<(), Failure> {
    let id = the_call(conn.clone(), id, |c| act.fits(c), act.verb()).await?;
    let mut client = CallsClient::new(conn);
    let (c, doing) = match &act {
        Act::Answer(audio) => (
            client
                .answer(AnswerRequest {
                    id,
                    input: audio.input.clone().unwrap_or_default(),
                    output: audio.output.clone().unwrap_or_default(),
                })
                .await?,
            "answering".to_string(),
        ),
        Act::Reject { busy } => (
            client.reject(RejectRequest { id, busy: *busy }).await?,
            "rejecting".into(),
        ),
        Act::Hangup => (
            client.hangup(CallRequest { id }).await?,
            "hanging up".into(),
        ),
        Act::Hold => (
            client.hold(CallRequest { id }).await?,
            "putting on hold".into(),
        ),
        Act::Resume => (client.resume(CallRequest { id }).await?, "resuming".into()),
        Act::Mute(on) => (
            client.mute(MuteRequest { id, muted: *on }).await?,
            if *on { "muted" } else { "unmuted" }.into(),
        ),
        Act::Dtmf(d) => (
            client
                .send_dtmf(DtmfRequest {
                    id,
                    digits: d.clone(),
                })
                .await?,
            format!("sending DTMF {d}"),
        ),
    };
    let c = c.into_inner();
    if out.json {
        out.json_line(&c);
    } else {
        println!("call {}: {doing}", c.id);
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
    } else {
        print!("{}", table(&calls));
    }
    Ok(())
}

/// The calls as a table: who, which way, state, codec, and for how long.
pub fn table(calls: &[Call]) -> String {
    let now = now_ms();
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            let since = if c.answered_unix_ms > 0 {
                c.answered_unix_ms
            } else {
                c.started_unix_ms
            };
            let who = who(&c.contact, &c.remote_name, &c.remote_uri);
            let state = if c.muted {
                format!("{}, muted", state_name(c))
            } else {
                state_name(c).to_string()
            };
            vec![
                c.id.to_string(),
                if c.incoming { "in" } else { "out" }.into(),
                who,
                state,
                c.codec.clone(),
                format!(
                    "{} since {}",
                    duration(now.saturating_sub(since) / 1000),
                    clock(since)
                ),
            ]
        })
        .collect();
    crate::output::table(&["ID", "DIR", "REMOTE", "STATE", "CODEC", "TIME"], &rows)
}
