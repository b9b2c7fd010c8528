use tonic::{Request, Response, Status};
use voipd_proto::v1 as pb;

use super::status_of;
use crate::core::PhoneHandle;

pub(super) struct AccountsService {
    phone: PhoneHandle,
}

impl AccountsService {
    pub(super) fn new(phone: PhoneHandle) -> Self {
        AccountsService { phone }
    }
}

#[tonic::async_trait]
impl pb::accounts_server::Accounts for AccountsService {
    async fn list(
        &self,
        _: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let accounts = self.phone.accounts().await.map_err(status_of)?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: accounts.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get(&self, r: Request<pb::AccountRequest>) -> Result<Response<pb::Account>, Status> {
        let a = self
            .phone
            .account(&r.into_inner().id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(a.into()))
    }

    async fn register(
        &self,
        r: Request<pb::AccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let a = self
            .phone
            .register(&r.into_inner().id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(a.into()))
    }

    async fn set_forward(
        &self,
        r: Request<pb::SetForwardRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let r = r.into_inner();
        let a = self
            .phone
            .set_forward(
                Some(r.account.as_str()).filter(|a| !a.is_empty()),
                &r.rule,
                Some(r.to.as_str()).filter(|t| !t.is_empty()),
                Some(r.after_secs).filter(|s| *s > 0),
            )
            .await
            .map_err(status_of)?;
        Ok(Response::new(a.into()))
    }

    async fn clear_forward(
        &self,
        r: Request<pb::ClearForwardRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let r = r.into_inner();
        let a = self
            .phone
            .clear_forward(
                Some(r.account.as_str()).filter(|a| !a.is_empty()),
                Some(r.rule.as_str()).filter(|a| !a.is_empty()),
            )
            .await
            .map_err(status_of)?;
        Ok(Response::new(a.into()))
    }

    async fn unregister(
        &self,
        r: Request<pb::AccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let a = self
            .phone
            .unregister(&r.into_inner().id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(a.into()))
    }
}
