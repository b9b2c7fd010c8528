use std::pin::Pin;

use tokio::io::AsyncReadExt;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use voipd_proto::v1 as pb;

use super::convert::unix_ms;
use super::status_of;
use crate::core::PhoneHandle;
use crate::store::Voicemail;

pub(super) struct VoicemailService {
    phone: PhoneHandle,
}

impl VoicemailService {
    pub(super) fn new(phone: PhoneHandle) -> Self {
        VoicemailService { phone }
    }
}

impl From<Voicemail> for pb::VoicemailMessage {
    fn from(v: Voicemail) -> Self {
        pb::VoicemailMessage {
            id: v.id,
            account: v.account,
            caller: v.caller,
            contact: v.caller_name.unwrap_or_default(),
            at_unix_ms: unix_ms(v.at),
            duration_ms: u32::try_from(v.duration.as_millis()).unwrap_or(u32::MAX),
            bytes: v.bytes,
            heard: v.heard,
            call_id: v.call_id,
            file: v.file.display().to_string(),
        }
    }
}

/// Export's chunks: small enough for any client's message limit.
const CHUNK: usize = 64 * 1024;

type AudioStream = Pin<Box<dyn Stream<Item = Result<pb::AudioChunk, Status>> + Send>>;

#[tonic::async_trait]
impl pb::voicemail_server::Voicemail for VoicemailService {
    type ExportStream = AudioStream;

    async fn list(
        &self,
        r: Request<pb::ListVoicemailRequest>,
    ) -> Result<Response<pb::ListVoicemailResponse>, Status> {
        let (list, unheard) = self
            .phone
            .voicemails(r.into_inner().limit)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ListVoicemailResponse {
            messages: list.into_iter().map(Into::into).collect(),
            unheard,
        }))
    }

    async fn get(
        &self,
        r: Request<pb::VoicemailRef>,
    ) -> Result<Response<pb::VoicemailMessage>, Status> {
        let v = self
            .phone
            .voicemail(r.into_inner().id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v.into()))
    }

    async fn mark_heard(
        &self,
        r: Request<pb::MarkHeardRequest>,
    ) -> Result<Response<pb::VoicemailMessage>, Status> {
        let r = r.into_inner();
        let v = self
            .phone
            .mark_heard(r.id, r.heard)
            .await
            .map_err(status_of)?;
        Ok(Response::new(v.into()))
    }

    async fn delete(
        &self,
        r: Request<pb::VoicemailRef>,
    ) -> Result<Response<pb::DeleteVoicemailResponse>, Status> {
        self.phone
            .delete_voicemail(r.into_inner().id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::DeleteVoicemailResponse {}))
    }

    async fn export(
        &self,
        r: Request<pb::VoicemailRef>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let path = self
            .phone
            .voicemail_file(r.into_inner().id)
            .await
            .map_err(status_of)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
        // A few chunks ahead at most: a slow client holds back the reading.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let chunk = match file.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => Ok(pb::AudioChunk {
                        data: buf[..n].to_vec(),
                    }),
                    Err(e) => Err(Status::internal(e.to_string())),
                };
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn play(
        &self,
        r: Request<pb::PlayVoicemailRequest>,
    ) -> Result<Response<pb::VoicemailMessage>, Status> {
        let r = r.into_inner();
        let v = self
            .phone
            .play_voicemail(r.id, Some(r.output.as_str()))
            .await
            .map_err(status_of)?;
        Ok(Response::new(v.into()))
    }
}
