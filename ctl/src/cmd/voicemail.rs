//! `voipctl voicemail`: the answering machine's messages.

use std::io::Write;
use std::path::PathBuf;

use tonic::transport::Channel;
use voipd_proto::v1::voicemail_client::VoicemailClient;
use voipd_proto::v1::{
    ListVoicemailRequest, MarkHeardRequest, PlayVoicemailRequest, VoicemailMessage, VoicemailRef,
};

use crate::exit::Failure;
use crate::output::{Output, date_time, duration, who};

pub async fn list(conn: Channel, out: Output, limit: u32) -> Result<(), Failure> {
    let r = VoicemailClient::new(conn)
        .list(ListVoicemailRequest { limit })
        .await?
        .into_inner();
    if out.json {
        out.json_line(&r);
        return Ok(());
    }
    if r.messages.is_empty() {
        println!("no voicemail");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = r
        .messages
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                date_time(m.at_unix_ms),
                if m.heard { "" } else { "new" }.into(),
                who(&m.contact, "", &m.caller),
                m.account.clone(),
                duration(u64::from(m.duration_ms) / 1000),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::output::table(
            &["ID", "WHEN (UTC)", "", "FROM", "ACCOUNT", "LENGTH"],
            &rows
        )
    );
    if r.unheard > 0 {
        println!("{} new", r.unheard);
    }
    Ok(())
}

fn show(out: Output, m: &VoicemailMessage, what: &str) {
    if out.json {
        out.json_line(m);
    } else {
        println!("voicemail {}: {what}", m.id);
    }
}

pub async fn play(
    conn: Channel,
    out: Output,
    id: i64,
    output: Option<String>,
) -> Result<(), Failure> {
    let m = VoicemailClient::new(conn)
        .play(PlayVoicemailRequest {
            id,
            output: output.unwrap_or_default(),
        })
        .await?
        .into_inner();
    show(out, &m, "played");
    Ok(())
}

pub async fn heard(conn: Channel, out: Output, id: i64, heard: bool) -> Result<(), Failure> {
    let m = VoicemailClient::new(conn)
        .mark_heard(MarkHeardRequest { id, heard })
        .await?
        .into_inner();
    show(out, &m, if heard { "heard" } else { "new again" });
    Ok(())
}

pub async fn delete(conn: Channel, out: Output, id: i64) -> Result<(), Failure> {
    VoicemailClient::new(conn)
        .delete(VoicemailRef { id })
        .await?;
    if out.json {
        out.json_line(&serde_json::json!({ "deleted": id }));
    } else {
        println!("voicemail {id}: deleted");
    }
    Ok(())
}

/// Writes the message's WAV to `file` (`-`: standard output).
pub async fn export(conn: Channel, out: Output, id: i64, file: PathBuf) -> Result<(), Failure> {
    let mut stream = VoicemailClient::new(conn)
        .export(VoicemailRef { id })
        .await?
        .into_inner();
    let to_stdout = file.as_os_str() == "-";
    let mut sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&file)
                .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", file.display())))?,
        )
    };
    let mut bytes = 0usize;
    while let Some(chunk) = stream.message().await? {
        bytes += chunk.data.len();
        sink.write_all(&chunk.data)
            .and_then(|()| sink.flush())
            .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", file.display())))?;
    }
    if !to_stdout {
        if out.json {
            out.json_line(&serde_json::json!({ "id": id, "file": file, "bytes": bytes }));
        } else {
            println!("voicemail {id}: {bytes} bytes to {}", file.display());
        }
    }
    Ok(())
}
