use std::time::Duration;

use tonic::Streaming;
use tonic::transport::Channel;
use voipd_proto::v1::calls_client::CallsClient;
use voipd_proto::v1::event::Kind;
use voipd_proto::v1::events_client::EventsClient;
use voipd_proto::v1::{
    AnswerRequest, AnswerTransferRequest, Call, CallRequest, CallState, ConferenceRequest,
    DialRequest, DtmfRequest, Event, ListCallsRequest, MediaEncryption, MuteRequest, PlayRequest,
    RecordRequest, RejectRequest, SetVideoRequest, TransferRequest, VideoDevicesRequest,
    WatchRequest,
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
        CallState::Ending => "ending",
    }
}

/// How media is protected, as people say it: "clear", or "srtp (sdes)" and "srtp (dtls)"
/// after how the keys were agreed; "-" when not known.
pub fn protection(encryption: &str) -> String {
    match encryption {
        "none" => "clear".into(),
        "" => "-".into(),
        keyed => format!("srtp ({keyed})"),
    }
}

/// The call's media protection; "-" until media runs, as nothing is negotiated before.
fn media(c: &Call) -> String {
    if c.rtp_local.is_empty() {
        return "-".into();
    }
    protection(match c.media_encryption() {
        MediaEncryption::Unspecified => "",
        MediaEncryption::None => "none",
        MediaEncryption::Sdes => "sdes",
        MediaEncryption::Dtls => "dtls",
    })
}

/// Whether the signalling is encrypted while the media runs in the clear: a lock on the
/// SIP side is easily taken for a private call, so this is said out loud.
fn clear_under_tls(c: &Call) -> bool {
    c.transport == "tls" && !c.rtp_local.is_empty() && c.media_encryption() == MediaEncryption::None
}

fn clear_under_tls_note(c: &Call) -> String {
    format!(
        "call {}: signalling is encrypted (tls) but media is not",
        c.id
    )
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
            " ({}{}{})",
            c.codec,
            if c.ice.is_empty() {
                String::new()
            } else {
                format!(", ICE {}", c.ice)
            },
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
    let mut calls: Vec<Call> = list_calls(conn)
        .await?
        .into_iter()
        .filter(|c| fits(c))
        .collect();
    // A call we already hung up is only meant when it is the only one left (and then the
    // daemon says it is ending).
    if calls.iter().any(|c| c.state() != CallState::Ending) {
        calls.retain(|c| c.state() != CallState::Ending);
    }
    match calls.as_slice() {
        [one] => Ok(one.id),
        // As `hangup 7` for a call that is not there: nothing to act on.
        [] => Err(Failure::Failed(format!(
            "no call to {}",
            if verb == "hangup" { "hang up" } else { verb }
        ))),
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

/// How long `--wait` waits, if not for ever.
#[derive(Clone, Copy, Default)]
pub struct Wait {
    /// Wait for the call to be established or to end.
    pub wait: bool,
    /// Give up (and hang up) after this many seconds.
    pub timeout: Option<u64>,
}

pub async fn dial(
    conn: Channel,
    out: Output,
    whom: String,
    account: Option<String>,
    audio: AudioArgs,
    wait: Wait,
) -> Result<(), Failure> {
    // Watch before dialling: nothing the call does can come before we listen.
    let events = if wait.wait {
        Some(watch(conn.clone()).await?)
    } else {
        None
    };
    let c = CallsClient::new(conn.clone())
        .dial(DialRequest {
            uri: whom,
            account: account.unwrap_or_default(),
            input: audio.input.unwrap_or_default(),
            output: audio.output.unwrap_or_default(),
            video: audio.video,
            video_size: audio.video_size.unwrap_or_default(),
            video_fps: audio.video_fps.unwrap_or(0),
        })
        .await?
        .into_inner();
    if !out.json {
        let to = who(&c.contact, &c.remote_name, &c.remote_uri);
        match events {
            Some(_) => println!("call {} to {to}: dialing", c.id),
            None => println!(
                "call {} to {to}: dialing (follow with `voipctl watch`, end with `voipctl hangup {}`)",
                c.id, c.id
            ),
        }
        note_audio(&c);
    }
    match events {
        Some(events) => settle(conn, out, events, c, wait.timeout).await,
        None => {
            if out.json {
                out.json_line(&c);
            }
            Ok(())
        }
    }
}

/// A stream of the daemon's events, from now on.
async fn watch(conn: Channel) -> Result<Streaming<Event>, Failure> {
    Ok(EventsClient::new(conn)
        .watch(WatchRequest {})
        .await?
        .into_inner())
}

/// Says once, where a person reads it, when the call's audio goes nowhere.
fn note_audio(c: &Call) {
    if !c.audio_note.is_empty() {
        eprintln!("voipctl: call {}: {}", c.id, c.audio_note);
    }
}

/// Follows call `c` until it is established (Ok) or has ended (a failure saying how). On
/// timeout it is hung up, so that a script that gave up leaves no call behind.
async fn settle(
    conn: Channel,
    out: Output,
    mut events: Streaming<Event>,
    mut c: Call,
    timeout: Option<u64>,
) -> Result<(), Failure> {
    let id = c.id;
    let deadline = timeout.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    loop {
        match c.state() {
            CallState::Active | CallState::Held => {
                if out.json {
                    out.json_line(&c);
                } else {
                    println!("{}", describe(&c));
                    if clear_under_tls(&c) {
                        eprintln!("voipctl: {}", clear_under_tls_note(&c));
                    }
                }
                return Ok(());
            }
            CallState::Ended => {
                if out.json {
                    out.json_line(&c);
                }
                return Err(Failure::Failed(format!(
                    "call {id} ended: {} {}",
                    c.end_code, c.end_reason
                )));
            }
            _ => {}
        }
        let next = async {
            loop {
                match events.message().await? {
                    Some(Event {
                        kind: Some(Kind::CallChanged(n)),
                        ..
                    }) if n.id == id => return Ok(Some(n)),
                    Some(_) => {}
                    None => return Ok::<_, tonic::Status>(None),
                }
            }
        };
        let got = match deadline {
            Some(d) => match tokio::time::timeout_at(d, next).await {
                Ok(r) => r,
                Err(_) => {
                    let _ = CallsClient::new(conn).hangup(CallRequest { id }).await;
                    return Err(Failure::Failed(format!(
                        "call {id}: still {} after {} s; hung up",
                        state_name(&c),
                        timeout.unwrap_or_default()
                    )));
                }
            },
            None => next.await,
        };
        match got? {
            Some(n) => c = n,
            None => {
                return Err(Failure::Failed(format!(
                    "voipd stopped before call {id} was established"
                )));
            }
        }
    }
}

/// What a call verb does.
pub enum Act {
    Answer(AudioArgs),
    Reject {
        busy: bool,
    },
    Hangup,
    Hold,
    Resume,
    Mute(bool),
    Dtmf(String),
    Play {
        what: String,
        secs: f64,
    },
    Record {
        to: String,
        mono: bool,
    },
    StopRecording,
    Transfer {
        target: String,
    },
    TransferTo(u64),
    AnswerTransfer(bool),
    Split,
    /// On at a size and rate ("" and 0: configured), or off.
    Video(Option<(String, u32)>),
}

/// What `voipctl play` sends: a file made absolute (the daemon has another working
/// directory), `tone:HZ` as typed, or `stop`.
pub fn play_target(what: Option<String>) -> Result<String, Failure> {
    let Some(what) = what else {
        return Ok("stop".into());
    };
    if what.starts_with("tone:") || what.starts_with("file:") && what[5..].starts_with('/') {
        return Ok(what);
    }
    let path = std::path::Path::new(what.strip_prefix("file:").unwrap_or(&what));
    let path = std::path::absolute(path)
        .map_err(|e| Failure::Usage(format!("WHAT: {}: {e}", path.display())))?;
    Ok(format!("file:{}", path.display()))
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
            Act::Play { .. } => "play",
            Act::Record { .. } => "record start",
            Act::StopRecording => "record stop",
            Act::Transfer { .. } | Act::TransferTo(_) => "transfer",
            Act::AnswerTransfer(true) => "accept-transfer",
            Act::AnswerTransfer(false) => "decline-transfer",
            Act::Split => "split",
            Act::Video(Some(_)) => "video on",
            Act::Video(None) => "video off",
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
            Act::Mute(_)
            | Act::Dtmf(_)
            | Act::Play { .. }
            | Act::Record { .. }
            | Act::Transfer { .. }
            | Act::TransferTo(_)
            | Act::Video(_) => matches!(c.state(), CallState::Active | CallState::Held),
            Act::StopRecording => !c.recording.is_empty(),
            Act::AnswerTransfer(_) => !c.transfer_asked.is_empty(),
            Act::Split => c.conference != 0,
        }
    }
}

pub async fn act(
    conn: Channel,
    out: Output,
    id: Option<u64>,
    act: Act,
    wait: Wait,
) -> Result<(), Failure> {
    let id = the_call(conn.clone(), id, |c| act.fits(c), act.verb()).await?;
    let events = if wait.wait {
        Some(watch(conn.clone()).await?)
    } else {
        None
    };
    let mut client = CallsClient::new(conn.clone());
    let (c, doing) = match &act {
        Act::Answer(audio) => (
            client
                .answer(AnswerRequest {
                    id,
                    input: audio.input.clone().unwrap_or_default(),
                    output: audio.output.clone().unwrap_or_default(),
                    video: audio.video,
                    video_size: audio.video_size.clone().unwrap_or_default(),
                    video_fps: audio.video_fps.unwrap_or(0),
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
        Act::Play { what, secs } => (
            client
                .play(PlayRequest {
                    id,
                    what: what.clone(),
                    secs: *secs,
                })
                .await?,
            if what == "stop" {
                "playing stopped".into()
            } else {
                format!("playing {}", what.strip_prefix("file:").unwrap_or(what))
            },
        ),
        Act::Record { to, mono } => {
            let c = client
                .record(RecordRequest {
                    id,
                    stop: false,
                    file: to.clone(),
                    mono: *mono,
                })
                .await?;
            let doing = format!("recording into {}", c.get_ref().recording);
            (c, doing)
        }
        Act::StopRecording => (
            client
                .record(RecordRequest {
                    id,
                    stop: true,
                    ..Default::default()
                })
                .await?,
            "recording stopped".into(),
        ),
        Act::Transfer { target } => (
            client
                .transfer(TransferRequest {
                    id,
                    target: target.clone(),
                    to_call: 0,
                })
                .await?,
            format!("transferring to {target}"),
        ),
        Act::TransferTo(other) => (
            client
                .transfer(TransferRequest {
                    id,
                    target: String::new(),
                    to_call: *other,
                })
                .await?,
            format!("transferring to the other side of call {other}"),
        ),
        Act::AnswerTransfer(accept) => (
            client
                .answer_transfer(AnswerTransferRequest {
                    id,
                    accept: *accept,
                })
                .await?,
            if *accept {
                "transfer accepted".into()
            } else {
                "transfer declined".into()
            },
        ),
        Act::Video(ask) => (
            client
                .set_video(SetVideoRequest {
                    id,
                    on: ask.is_some(),
                    size: ask.as_ref().map(|a| a.0.clone()).unwrap_or_default(),
                    fps: ask.as_ref().map_or(0, |a| a.1),
                })
                .await?,
            if ask.is_some() {
                "video asked for".into()
            } else {
                "video removed".into()
            },
        ),
        Act::Split => {
            let calls = client.split(CallRequest { id }).await?.into_inner().calls;
            if out.json {
                out.json_line(&serde_json::json!({ "calls": calls }));
            } else {
                println!("conference split: calls {}", ids(&calls));
            }
            return Ok(());
        }
    };
    let c = c.into_inner();
    if let Some(events) = events {
        if !out.json {
            println!("call {}: {doing}", c.id);
            note_audio(&c);
        }
        return settle(conn, out, events, c, wait.timeout).await;
    }
    if out.json {
        out.json_line(&c);
    } else {
        println!("call {}: {doing}", c.id);
        if matches!(act, Act::Answer(_)) {
            note_audio(&c);
        }
    }
    Ok(())
}

/// `voipctl video snapshot [ID] FILE`: the latest received picture, written as PNG.
pub async fn snapshot(
    conn: Channel,
    out: Output,
    id: Option<u64>,
    file: std::path::PathBuf,
) -> Result<(), Failure> {
    let id = the_call(conn.clone(), id, |c| c.video.is_some(), "video snapshot").await?;
    let png = CallsClient::new(conn)
        .snapshot(CallRequest { id })
        .await?
        .into_inner()
        .png;
    std::fs::write(&file, &png).map_err(|e| Failure::Failed(format!("{}: {e}", file.display())))?;
    if out.json {
        out.json_line(&serde_json::json!({ "call": id, "file": file, "bytes": png.len() }));
    } else {
        println!("call {id}: picture saved to {}", file.display());
    }
    Ok(())
}

/// `voipctl video devices`: the daemon's cameras.
pub async fn video_devices(conn: Channel, out: Output) -> Result<(), Failure> {
    let devices = CallsClient::new(conn)
        .video_devices(VideoDevicesRequest {})
        .await?
        .into_inner()
        .devices;
    if out.json {
        out.json_line(&serde_json::json!({ "devices": devices }));
        return Ok(());
    }
    if devices.is_empty() {
        println!("no cameras (no V4L2 capture device the daemon can open)");
    }
    for d in &devices {
        println!("{} ({})", d.path, d.card);
        for f in &d.formats {
            let note = if f.usable {
                ""
            } else {
                " [not usable: compressed]"
            };
            println!("  {}{note}: {}", f.name, f.sizes.join(", "));
        }
    }
    Ok(())
}

/// The video part of a call's line: codec, size and rate received, rate sent.
fn video_text(c: &Call) -> Option<String> {
    let v = c.video.as_ref()?;
    let mut s = format!("video {} {}", v.codec, v.direction);
    if v.width > 0 {
        s.push_str(&format!(" {}x{} {} fps", v.width, v.height, v.fps));
    }
    if v.frames_sent > 0 {
        s.push_str(&format!(
            ", sending {} kbit/s (up to {})",
            v.send_kbps, v.target_kbps
        ));
    }
    if v.packets_lost > 0 {
        s.push_str(&format!(", {} lost", v.packets_lost));
    }
    Some(s)
}

fn ids(calls: &[Call]) -> String {
    calls
        .iter()
        .map(|c| c.id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `voipctl conference ID ID…`: mixes the calls together.
pub async fn conference(conn: Channel, out: Output, ids_: Vec<u64>) -> Result<(), Failure> {
    let calls = CallsClient::new(conn)
        .conference(ConferenceRequest { ids: ids_ })
        .await?
        .into_inner()
        .calls;
    if out.json {
        out.json_line(&serde_json::json!({ "calls": calls }));
    } else {
        println!(
            "conference {}: calls {}",
            calls.first().map_or(0, |c| c.conference),
            ids(&calls)
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
    } else {
        print!("{}", table(&calls));
    }
    Ok(())
}

/// The calls as a table: who, which way, state, codec, how media and signalling are
/// carried, and for how long.
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
            let mut state = state_name(c).to_string();
            if c.muted {
                state.push_str(", muted");
            }
            if !c.audio_note.is_empty() {
                state.push_str(", no sound");
            }
            if c.conference != 0 {
                state.push_str(&format!(", conference {}", c.conference));
            }
            if !c.recording.is_empty() {
                state.push_str(", recording");
            }
            if let Some(v) = &c.video {
                state.push_str(&format!(", video {}", v.codec));
            }
            vec![
                c.id.to_string(),
                if c.incoming { "in" } else { "out" }.into(),
                who,
                state,
                c.codec.clone(),
                if c.ice.is_empty() {
                    media(c)
                } else {
                    format!("{}, ICE {}", media(c), c.ice)
                },
                if c.transport.is_empty() {
                    "-".into()
                } else {
                    c.transport.clone()
                },
                format!(
                    "{} since {}",
                    duration(now.saturating_sub(since) / 1000),
                    clock(since)
                ),
            ]
        })
        .collect();
    let mut out = crate::output::table(
        &[
            "ID", "DIR", "REMOTE", "STATE", "CODEC", "MEDIA", "SIP", "TIME",
        ],
        &rows,
    );
    for c in calls {
        if !c.audio_note.is_empty() {
            out.push_str(&format!("call {}: {}\n", c.id, c.audio_note));
        }
        if !c.recording.is_empty() {
            out.push_str(&format!("call {}: recording into {}\n", c.id, c.recording));
        }
        if !c.transfer.is_empty() {
            out.push_str(&format!("call {}: transfer {}\n", c.id, c.transfer));
        }
        if let Some(v) = video_text(c) {
            out.push_str(&format!("call {}: {v}\n", c.id));
        }
        if !c.transfer_asked.is_empty() {
            out.push_str(&format!(
                "call {}: the far side asks to transfer us to {} (voipctl accept-transfer / decline-transfer)\n",
                c.id, c.transfer_asked
            ));
        }
        if clear_under_tls(c) {
            out.push_str(&clear_under_tls_note(c));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: u64, encryption: MediaEncryption, transport: &str) -> Call {
        Call {
            id,
            remote_uri: format!("sip:peer{id}@example.com"),
            state: CallState::Active.into(),
            codec: "PCMU".into(),
            rtp_local: "127.0.0.1:4000".into(),
            media_encryption: encryption.into(),
            transport: transport.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_table_says_how_a_call_is_carried_and_warns_of_clear_media_under_tls() {
        let ringing = Call {
            rtp_local: String::new(),
            state: CallState::Ringing.into(),
            ..call(4, MediaEncryption::None, "tls")
        };
        let relayed = Call {
            ice: "relay".into(),
            ..call(5, MediaEncryption::Dtls, "udp")
        };
        let t = table(&[
            call(1, MediaEncryption::Sdes, "tls"),
            call(2, MediaEncryption::None, "tls"),
            call(3, MediaEncryption::Dtls, "udp"),
            ringing,
            relayed,
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("CODEC  MEDIA                   SIP  TIME"),
            "{t}"
        );
        assert!(
            lines[1].contains("PCMU   srtp (sdes)             tls"),
            "{t}"
        );
        assert!(
            lines[2].contains("PCMU   clear                   tls"),
            "{t}"
        );
        assert!(
            lines[3].contains("PCMU   srtp (dtls)             udp"),
            "{t}"
        );
        // Nothing is negotiated before media runs: neither said nor warned of.
        assert!(
            lines[4].contains("PCMU   -                       tls"),
            "{t}"
        );
        assert!(
            lines[5].contains("PCMU   srtp (dtls), ICE relay  udp"),
            "{t}"
        );
        assert_eq!(
            lines[6..],
            ["call 2: signalling is encrypted (tls) but media is not"],
            "{t}"
        );
    }
}
