//! Text messages: sending (queued in the store first), resending after a restart, and
//! keeping the ones that come in.

use super::*;

impl Phone {
    /// Queues a text message and starts sending it; answers once it is stored.
    pub(super) fn send_message(
        &mut self,
        account: Option<&str>,
        to: &str,
        text: String,
        reply: oneshot::Sender<Result<MessageEntry, CoreError>>,
    ) {
        let checked = (|| {
            if text.is_empty() || text.len() > crate::core::messages::MAX_BODY {
                return Err(CoreError::InvalidArgument {
                    field: "text",
                    message: format!("{} bytes; 1 to 32768 can be sent", text.len()),
                });
            }
            let ep = self
                .endpoint
                .clone()
                .ok_or_else(|| CoreError::FailedPrecondition("SIP is not running".into()))?;
            let account = self.accounts.for_dialing(account)?;
            let uri = dial_target("to", to, account.as_ref())?;
            Ok((ep, account, uri))
        })();
        let (ep, account, uri) = match checked {
            Ok(c) => c,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        tokio::spawn(async move {
            let sip_call_id = format!("{}@voipd", crate::sip::transaction::random_token(20));
            let queued = store
                .queue_message(
                    account.as_ref().map(|a| a.id.as_str().to_string()),
                    uri.to_string(),
                    text,
                    sip_call_id.clone(),
                )
                .await;
            let entry = match queued {
                Ok(e) => e,
                Err(e) => {
                    let _ = reply.send(Err(CoreError::Store(e)));
                    return;
                }
            };
            let _ = reply.send(Ok(entry.clone()));
            let _ = updates
                .send(CallUpdate::MessageChanged(Box::new(entry.clone())))
                .await;
            crate::core::outbox::deliver(crate::core::outbox::Outgoing {
                ep,
                store,
                updates,
                account,
                entry,
                sip_call_id,
            })
            .await;
        });
    }

    /// Sends what was still queued when the daemon last stopped.
    pub(super) fn resume_outbox(&self) {
        let Some(ep) = self.endpoint.clone() else {
            return;
        };
        let (store, updates) = (self.store.clone(), self.call_updates.clone());
        let accounts: Vec<crate::config::Account> = self.config.accounts.clone();
        tokio::spawn(async move {
            let queued = match store.queued_messages().await {
                Ok(q) => q,
                Err(e) => return tracing::error!("queued messages not read: {e}"),
            };
            for (entry, sip_call_id) in queued {
                let account = entry
                    .account
                    .as_ref()
                    .and_then(|id| accounts.iter().find(|a| a.id.as_str() == id))
                    .cloned();
                tracing::info!("message {} to {}: sending again", entry.id, entry.peer);
                tokio::spawn(crate::core::outbox::deliver(
                    crate::core::outbox::Outgoing {
                        ep: ep.clone(),
                        store: store.clone(),
                        updates: updates.clone(),
                        account,
                        entry,
                        sip_call_id,
                    },
                ));
            }
        });
    }
}

/// Stores an incoming MESSAGE, then answers it: 200 only once it is on disk, 500 (so the
/// sender tries again) if it could not be kept, and the refusal if it is not one we take.
pub(super) async fn receive_message(
    req: TuRequest,
    account: Option<String>,
    store: Store,
    updates: mpsc::Sender<CallUpdate>,
) {
    let incoming = match crate::core::messages::check(&req.request, account) {
        Ok(m) => m,
        Err(resp) => {
            tracing::info!("MESSAGE refused with {}: {:?}", resp.code, resp.reason);
            return req.tx.respond(resp).await;
        }
    };
    let code = match store.receive_message(incoming).await {
        Ok((entry, new, unread)) => {
            if new {
                let _ = updates
                    .send(CallUpdate::MessageReceived(Box::new(entry)))
                    .await;
                let _ = updates.send(CallUpdate::Unread(unread)).await;
            }
            200
        }
        Err(e) => {
            tracing::error!("incoming MESSAGE not kept, answered 500: {e}");
            500
        }
    };
    let mut resp = req
        .request
        .response(code, crate::sip::message::reason_phrase(code));
    crate::sip::capabilities::add_to_tag(&mut resp);
    req.tx.respond(resp).await;
}
