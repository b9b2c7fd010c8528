//! Message waiting (RFC 3842) as the core keeps it: a message-summary subscription for each
//! registered account with `mwi`, unsolicited NOTIFYs from the provider, and the counts
//! on the accounts.

use super::*;
use crate::core::mwi::{MessageSummary, MwiWatch, parse};
use crate::core::subscriber::Follow;
use crate::sip::usage::subscription::MESSAGE_SUMMARY;

/// The message-summary subscriptions, by account and by their Call-ID.
#[derive(Default)]
pub(super) struct Mwi {
    follows: HashMap<String, Follow>,
    by_call_id: HashMap<String, String>,
}

impl Phone {
    /// Follows the voicemail of each registered account with `mwi`, and stops following
    /// those that no longer have it (or are gone). With `again`, every subscription starts
    /// anew (a reload may have changed the accounts' settings).
    pub(super) fn follow_mwi(&mut self, again: bool) {
        let Some(ep) = self.endpoint.clone() else {
            return;
        };
        let gone: Vec<String> = self
            .mwi
            .follows
            .keys()
            .filter(|id| again || !self.accounts.wants_mwi(id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(f) = self.mwi.follows.remove(&id) {
                self.mwi.by_call_id.remove(&f.call_id);
                tokio::spawn(f.stop());
            }
        }
        for a in self.accounts.mwi_registered() {
            if self.mwi.follows.contains_key(a.id.as_str()) {
                continue;
            }
            let aor = a.aor.0.clone();
            let watch = MwiWatch::new(a.id.as_str());
            let f = Follow::start(
                ep.clone(),
                Some(a.clone()),
                aor,
                watch,
                self.call_updates.clone(),
                Duration::ZERO,
            );
            self.mwi
                .by_call_id
                .insert(f.call_id.clone(), a.id.to_string());
            self.mwi.follows.insert(a.id.to_string(), f);
        }
    }

    /// Ends every subscription (un-SUBSCRIBE) together, waiting a bounded time.
    pub(super) async fn stop_mwi(&mut self) {
        self.mwi.by_call_id.clear();
        let mut stops = tokio::task::JoinSet::new();
        for (_, f) in self.mwi.follows.drain() {
            stops.spawn(f.stop());
        }
        while stops.join_next().await.is_some() {}
    }

    /// A message-summary NOTIFY: to its subscription, or unsolicited (no dialog) from the
    /// provider (the inbound gate let only providers' requests through), for the account
    /// its Request-URI names, else the first (as for calls: providers rewrite the user).
    pub(super) fn mwi_notify(&mut self, req: TuRequest) {
        let follow = req
            .request
            .call_id()
            .and_then(|c| self.mwi.by_call_id.get(c))
            .and_then(|id| self.mwi.follows.get(id));
        if let Some(f) = follow {
            if let Err(e) = f.requests.try_send(req) {
                let req = e.into_inner();
                tokio::spawn(async move { crate::core::presence::answer(&req, 500).await });
            }
            return;
        }
        let in_dialog = req.request.to().is_some_and(|t| t.tag().is_some());
        let account = self.accounts.for_request_uri(&req.request.uri);
        let code = match (in_dialog, account) {
            (true, _) | (false, None) => 481,
            (false, Some(_)) if !MESSAGE_SUMMARY.takes(&req.request) => 415,
            (false, Some(a)) => match parse(&req.request.body) {
                Ok(summary) => {
                    self.message_summary(a.id.as_str(), summary);
                    200
                }
                Err(e) => {
                    tracing::info!(account = %a.id, "unsolicited message summary refused: {e}");
                    400
                }
            },
        };
        tokio::spawn(async move { crate::core::presence::answer(&req, code).await });
    }

    /// The provider's count for `account`: on the account, announced when it changed.
    pub(super) fn message_summary(&mut self, account: &str, summary: MessageSummary) {
        if let Some(info) = self.accounts.set_voicemail(account, summary) {
            tracing::info!(
                account,
                "voicemail: {} new, {} old{}",
                summary.new,
                summary.old,
                if summary.urgent_new > 0 {
                    format!(" ({} urgent)", summary.urgent_new)
                } else {
                    String::new()
                }
            );
            self.events.emit(EventKind::AccountChanged(info));
        }
    }
}
