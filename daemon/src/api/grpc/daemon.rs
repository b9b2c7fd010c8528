use tonic::{Request, Response, Status};
use voipd_proto::v1 as pb;

use super::status_of;
use crate::core::PhoneHandle;

pub(super) struct DaemonService {
    phone: PhoneHandle,
}

impl DaemonService {
    pub(super) fn new(phone: PhoneHandle) -> Self {
        DaemonService { phone }
    }
}

#[tonic::async_trait]
impl pb::daemon_server::Daemon for DaemonService {
    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::Status>, Status> {
        let s = self.phone.status().await.map_err(status_of)?;
        Ok(Response::new(s.into()))
    }

    async fn reload(
        &self,
        _: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        let r = self.phone.reload().await.map_err(status_of)?;
        Ok(Response::new(r.into()))
    }

    async fn shutdown(
        &self,
        _: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.phone
            .shutdown("requested over gRPC")
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ShutdownResponse {}))
    }
}
