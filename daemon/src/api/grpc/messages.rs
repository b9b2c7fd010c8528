use tonic::{Request, Response, Status};
use voipd_proto::v1 as pb;

use super::convert::unix_ms;
use super::status_of;
use crate::core::PhoneHandle;
use crate::store::MessageEntry;

pub(super) struct MessagesService {
    phone: PhoneHandle,
}

impl MessagesService {
    pub(super) fn new(phone: PhoneHandle) -> Self {
        MessagesService { phone }
    }
}

impl From<MessageEntry> for pb::Message {
    fn from(m: MessageEntry) -> Self {
        pb::Message {
            id: m.id,
            account: m.account.unwrap_or_default(),
            incoming: m.incoming,
            peer: m.peer,
            peer_name: m.peer_name.unwrap_or_default(),
            contact: m.contact.unwrap_or_default(),
            body: m.body,
            unix_ms: unix_ms(m.at),
            status: m.status,
            code: m.code.map_or(0, u32::from),
            read: m.read,
        }
    }
}

#[tonic::async_trait]
impl pb::messages_server::Messages for MessagesService {
    async fn send(
        &self,
        r: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let r = r.into_inner();
        let account = (!r.account.is_empty()).then_some(r.account.as_str());
        let m = self
            .phone
            .send_message(account, &r.to, &r.text)
            .await
            .map_err(status_of)?;
        Ok(Response::new(m.into()))
    }

    async fn list(
        &self,
        r: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let r = r.into_inner();
        let with = (!r.with.is_empty()).then_some(r.with);
        let (messages, unread) = self
            .phone
            .messages(with, r.limit, r.mark_read)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ListMessagesResponse {
            messages: messages.into_iter().map(Into::into).collect(),
            unread,
        }))
    }
}
