use tonic::{Request, Response, Status};
use voipd_proto::v1 as pb;

use super::status_of;
use crate::core::{CallAction, CoreError, Endpoints, PhoneHandle, VideoAsk};
use crate::media::recording::Layout;

pub(super) struct CallsService {
    phone: PhoneHandle,
}

impl CallsService {
    pub(super) fn new(phone: PhoneHandle) -> Self {
        CallsService { phone }
    }

    async fn act(
        &self,
        r: Request<pb::CallRequest>,
        action: CallAction,
    ) -> Result<Response<pb::Call>, Status> {
        let c = self
            .phone
            .call(r.into_inner().id, action)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }
}

#[tonic::async_trait]
impl pb::calls_server::Calls for CallsService {
    async fn dial(&self, r: Request<pb::DialRequest>) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let account = (!r.account.is_empty()).then_some(r.account.as_str());
        let mut endpoints = Endpoints::parse(r.input, r.output).map_err(status_of)?;
        endpoints.video =
            VideoAsk::for_call(r.video, &r.video_size, r.video_fps).map_err(status_of)?;
        let c = self
            .phone
            .dial(account, &r.uri, endpoints)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn answer(&self, r: Request<pb::AnswerRequest>) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let mut endpoints = Endpoints::parse(r.input, r.output).map_err(status_of)?;
        endpoints.video =
            VideoAsk::for_call(r.video, &r.video_size, r.video_fps).map_err(status_of)?;
        let c = self
            .phone
            .call(r.id, CallAction::Answer(endpoints))
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn hangup(&self, r: Request<pb::CallRequest>) -> Result<Response<pb::Call>, Status> {
        self.act(r, CallAction::Hangup).await
    }

    async fn reject(&self, r: Request<pb::RejectRequest>) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let c = self
            .phone
            .call(r.id, CallAction::Reject { busy: r.busy })
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn hold(&self, r: Request<pb::CallRequest>) -> Result<Response<pb::Call>, Status> {
        self.act(r, CallAction::Hold).await
    }

    async fn resume(&self, r: Request<pb::CallRequest>) -> Result<Response<pb::Call>, Status> {
        self.act(r, CallAction::Resume).await
    }

    async fn set_video(
        &self,
        r: Request<pb::SetVideoRequest>,
    ) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let ask = match r.on {
            true => Some(VideoAsk::parse(&r.size, r.fps, ("size", "fps")).map_err(status_of)?),
            false => None,
        };
        let c = self
            .phone
            .call(r.id, CallAction::Video(ask))
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn snapshot(
        &self,
        r: Request<pb::CallRequest>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        let png = self
            .phone
            .snapshot(r.into_inner().id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::SnapshotResponse { png }))
    }

    async fn video_devices(
        &self,
        _: Request<pb::VideoDevicesRequest>,
    ) -> Result<Response<pb::VideoDevicesResponse>, Status> {
        let devices = self
            .phone
            .video_devices()
            .await
            .map_err(status_of)?
            .into_iter()
            .map(|d| pb::VideoDevice {
                path: d.path.display().to_string(),
                card: d.card,
                formats: d
                    .formats
                    .into_iter()
                    .map(|(name, sizes, usable)| pb::VideoFormat {
                        name,
                        sizes,
                        usable,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::VideoDevicesResponse { devices }))
    }

    async fn mute(&self, r: Request<pb::MuteRequest>) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let c = self
            .phone
            .call(r.id, CallAction::Mute(r.muted))
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn send_dtmf(&self, r: Request<pb::DtmfRequest>) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let c = self
            .phone
            .send_dtmf(r.id, &r.digits)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn play(&self, r: Request<pb::PlayRequest>) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let c = self
            .phone
            .play(r.id, &r.what, r.secs)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn record(&self, r: Request<pb::RecordRequest>) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let layout = if r.mono { Layout::Mono } else { Layout::Stereo };
        let c = if r.stop {
            self.phone.stop_recording(r.id).await
        } else {
            self.phone.record(r.id, &r.file, layout).await
        };
        Ok(Response::new(c.map_err(status_of)?.into()))
    }

    async fn transfer(
        &self,
        r: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let c = match (r.to_call, r.target.trim().is_empty()) {
            (0, _) => self.phone.transfer(r.id, &r.target).await,
            (other, true) => self.phone.transfer_to_call(r.id, other).await,
            (_, false) => Err(CoreError::InvalidArgument {
                field: "target",
                message: "give a target or to_call, not both".into(),
            }),
        };
        Ok(Response::new(c.map_err(status_of)?.into()))
    }

    async fn answer_transfer(
        &self,
        r: Request<pb::AnswerTransferRequest>,
    ) -> Result<Response<pb::Call>, Status> {
        let r = r.into_inner();
        let c = self
            .phone
            .answer_transfer(r.id, r.accept)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn conference(
        &self,
        r: Request<pb::ConferenceRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let calls = self
            .phone
            .conference(r.into_inner().ids)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ListCallsResponse {
            calls: calls.into_iter().map(Into::into).collect(),
        }))
    }

    async fn split(
        &self,
        r: Request<pb::CallRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let calls = self
            .phone
            .split(r.into_inner().id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ListCallsResponse {
            calls: calls.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get(&self, r: Request<pb::CallRequest>) -> Result<Response<pb::Call>, Status> {
        self.act(r, CallAction::Get).await
    }

    async fn list(
        &self,
        _: Request<pb::ListCallsRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let calls = self.phone.calls().await.map_err(status_of)?;
        Ok(Response::new(pb::ListCallsResponse {
            calls: calls.into_iter().map(Into::into).collect(),
        }))
    }
}
