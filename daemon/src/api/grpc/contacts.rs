use tonic::{Request, Response, Status};
use voipd_proto::v1 as pb;

use super::convert::unix_ms;
use super::status_of;
use crate::core::{ContactInfo, PhoneHandle, Presence};
use crate::store::{ContactEdit, NewContact};

pub(super) struct ContactsService {
    phone: PhoneHandle,
}

impl ContactsService {
    pub(super) fn new(phone: PhoneHandle) -> Self {
        ContactsService { phone }
    }
}

impl From<Presence> for pb::Presence {
    fn from(p: Presence) -> Self {
        pb::Presence {
            status: p.status.as_str().into(),
            note: p.note,
            unix_ms: p.since.map_or(0, unix_ms),
            reason: p.reason,
        }
    }
}

impl From<ContactInfo> for pb::Contact {
    fn from(c: ContactInfo) -> Self {
        let ContactInfo { contact, presence } = c;
        pb::Contact {
            id: contact.id,
            uid: contact.uid,
            name: contact.name,
            addresses: contact.addresses,
            favourite: contact.favourite,
            notes: contact.notes,
            presence: Some(presence.into()),
        }
    }
}

fn reference(r: Option<pb::ContactRef>) -> String {
    r.map(|r| r.contact).unwrap_or_default()
}

#[tonic::async_trait]
impl pb::contacts_server::Contacts for ContactsService {
    async fn list(
        &self,
        r: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        let r = r.into_inner();
        let contacts = self
            .phone
            .contacts(Some(r.query), r.favourites_only, r.limit)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ListContactsResponse {
            contacts: contacts.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get(&self, r: Request<pb::ContactRef>) -> Result<Response<pb::Contact>, Status> {
        let c = self
            .phone
            .contact(&r.into_inner().contact)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn add(
        &self,
        r: Request<pb::AddContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let r = r.into_inner();
        let c = self
            .phone
            .add_contact(NewContact {
                uid: String::new(),
                name: r.name,
                addresses: r.addresses,
                favourite: r.favourite,
                notes: r.notes,
            })
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn edit(
        &self,
        r: Request<pb::EditContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let r = r.into_inner();
        let edit = ContactEdit {
            name: r.name,
            addresses: r.replace_addresses.then_some(r.addresses),
            add_addresses: r.add_addresses,
            remove_addresses: r.remove_addresses,
            favourite: r.favourite,
            notes: r.notes,
        };
        let c = self
            .phone
            .edit_contact(&reference(r.contact), edit)
            .await
            .map_err(status_of)?;
        Ok(Response::new(c.into()))
    }

    async fn remove(
        &self,
        r: Request<pb::ContactRef>,
    ) -> Result<Response<pb::RemoveContactResponse>, Status> {
        let id = self
            .phone
            .remove_contact(&r.into_inner().contact)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::RemoveContactResponse { id }))
    }

    async fn import(
        &self,
        r: Request<pb::ImportContactsRequest>,
    ) -> Result<Response<pb::ImportContactsResponse>, Status> {
        let (done, skipped) = self
            .phone
            .import_vcard(&r.into_inner().vcard)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::ImportContactsResponse {
            added: done.added,
            updated: done.updated,
            skipped,
        }))
    }

    async fn export(
        &self,
        _: Request<pb::ExportContactsRequest>,
    ) -> Result<Response<pb::ExportContactsResponse>, Status> {
        let vcard = self.phone.export_vcard().await.map_err(status_of)?;
        Ok(Response::new(pb::ExportContactsResponse { vcard }))
    }

    async fn get_presence(
        &self,
        _: Request<pb::GetPresenceRequest>,
    ) -> Result<Response<pb::Presence>, Status> {
        let p = self.phone.own_presence().await.map_err(status_of)?;
        Ok(Response::new(p.into()))
    }

    async fn set_presence(
        &self,
        r: Request<pb::SetPresenceRequest>,
    ) -> Result<Response<pb::Presence>, Status> {
        let r = r.into_inner();
        let p = self
            .phone
            .set_presence(&r.status, &r.note)
            .await
            .map_err(status_of)?;
        Ok(Response::new(p.into()))
    }
}
