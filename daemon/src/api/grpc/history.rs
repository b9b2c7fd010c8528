use tonic::{Request, Response, Status};
use voipd_proto::v1 as pb;

use super::convert::unix_ms;
use super::status_of;
use crate::core::PhoneHandle;
use crate::store::{HistoryEntry, HistoryQuery};

pub(super) struct HistoryService {
    phone: PhoneHandle,
}

impl HistoryService {
    pub(super) fn new(phone: PhoneHandle) -> Self {
        HistoryService { phone }
    }
}

impl From<HistoryEntry> for pb::HistoryEntry {
    fn from(e: HistoryEntry) -> Self {
        pb::HistoryEntry {
            id: e.id,
            incoming: e.call.incoming,
            duration_ms: e.duration().as_millis() as u64,
            account: e.call.account.unwrap_or_default(),
            remote_uri: e.call.remote_uri,
            remote_name: e.call.remote_name.unwrap_or_default(),
            contact: e.contact.unwrap_or_default(),
            started_unix_ms: unix_ms(e.call.started),
            answered_unix_ms: e.call.answered.map_or(0, unix_ms),
            ended_unix_ms: unix_ms(e.call.ended),
            end_code: u32::from(e.call.end_code),
            end_reason: e.call.end_reason,
            missed: e.call.missed,
            media_encryption: e.call.media_encryption,
            transport: e.call.transport,
            recordings: e.call.recordings,
        }
    }
}

#[tonic::async_trait]
impl pb::history_server::History for HistoryService {
    async fn list(
        &self,
        r: Request<pb::ListHistoryRequest>,
    ) -> Result<Response<pb::ListHistoryResponse>, Status> {
        let r = r.into_inner();
        let (entries, missed_unseen) = self
            .phone
            .history(HistoryQuery {
                limit: r.limit,
                missed_only: r.missed_only,
                mark_seen: r.mark_seen,
            })
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ListHistoryResponse {
            entries: entries.into_iter().map(Into::into).collect(),
            missed_unseen,
        }))
    }
}
