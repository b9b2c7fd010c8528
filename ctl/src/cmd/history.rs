use tonic::transport::Channel;
use voipd_proto::v1::ListHistoryRequest;
use voipd_proto::v1::history_client::HistoryClient;

use crate::exit::Failure;
use crate::output::{Output, date_time, duration, who};

pub async fn list(
    conn: Channel,
    out: Output,
    missed_only: bool,
    limit: u32,
    peek: bool,
) -> Result<(), Failure> {
    let r = HistoryClient::new(conn)
        .list(ListHistoryRequest {
            limit,
            missed_only,
            mark_seen: !peek,
        })
        .await?
        .into_inner();
    if out.json {
        out.json_line(&r);
        return Ok(());
    }
    if r.entries.is_empty() {
        println!("no calls yet");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = r
        .entries
        .iter()
        .map(|e| {
            let who = who(&e.contact, &e.remote_name, &e.remote_uri);
            vec![
                e.id.to_string(),
                date_time(e.started_unix_ms),
                if e.missed {
                    "missed"
                } else if e.incoming {
                    "in"
                } else {
                    "out"
                }
                .into(),
                who,
                if e.answered_unix_ms > 0 {
                    duration(e.duration_ms / 1000)
                } else {
                    "-".into()
                },
                // Unanswered, there may have been no media at all: "clear" would mislead.
                if e.answered_unix_ms > 0 {
                    super::calls::protection(&e.media_encryption)
                } else {
                    "-".into()
                },
                if e.transport.is_empty() {
                    "-".into()
                } else {
                    e.transport.clone()
                },
                format!("{} {}", e.end_code, e.end_reason),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::output::table(
            &[
                "ID",
                "WHEN (UTC)",
                "DIR",
                "REMOTE",
                "TALKED",
                "MEDIA",
                "SIP",
                "END"
            ],
            &rows
        )
    );
    if r.missed_unseen > 0 {
        println!(
            "{} missed call{} since you last looked",
            r.missed_unseen,
            if r.missed_unseen == 1 { "" } else { "s" }
        );
    }
    Ok(())
}
