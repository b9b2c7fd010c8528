//! Requests from the network, routed: new calls, requests inside calls, messages,
//! subscriptions to our presence, and the rest answered.

use super::*;
use crate::sip::capabilities::add_to_tag;
use crate::sip::message::reason_phrase;

impl Phone {
    /// Requests from the network: new calls, requests inside calls, and the rest.
    pub(super) fn on_request(&mut self, mut req: TuRequest) {
        let in_dialog = req.request.to().is_some_and(|t| t.tag().is_some())
            || req.request.method == Method::Ack;
        if req.request.method == Method::Subscribe
            && let Some(ep) = self.endpoint.clone()
        {
            return self.presence_subscribe(req, &ep);
        }
        if req.request.method == Method::Notify {
            let event = req.request.headers.get(&crate::sip::message::Name::Event);
            let package = event.map(|e| e.split(';').next().unwrap_or("").trim());
            if package.is_some_and(|p| p.eq_ignore_ascii_case("message-summary")) {
                return self.mwi_notify(req);
            }
            // How a transfer goes (RFC 3515): the call's, in its dialog.
            if package.is_some_and(|p| p.eq_ignore_ascii_case("refer")) {
                if let Some(r) = self.route_to_call(req) {
                    tokio::spawn(async move {
                        let resp = r.request.response(481, reason_phrase(481));
                        r.tx.respond(resp).await;
                    });
                }
                return;
            }
            return self.presence.route(req);
        }
        if in_dialog {
            match self.route_to_call(req) {
                None => return,
                Some(r) => req = r,
            }
        } else if req.request.method == Method::Invite
            && matches!(req.request.uri, Uri::Sip(_))
            && let Some(ctx) = self.call_context()
        {
            let account = self.accounts.for_request_uri(&req.request.uri);
            let replaced = match self.replaced_call(&req.request) {
                Ok(r) => r,
                Err(code) => {
                    tracing::info!("INVITE with Replaces refused with {code}");
                    let mut resp = req.request.response(code, reason_phrase(code));
                    add_to_tag(&mut resp);
                    tokio::spawn(async move { req.tx.respond(resp).await });
                    return;
                }
            };
            if let Some(old) = replaced {
                return self.take_over(ctx, req, old);
            }
            if let Some(limit) = self
                .ringing_full(account.as_ref())
                .or_else(|| self.calls_full(account.as_ref(), None))
            {
                tracing::warn!("incoming call refused with 486: {limit}");
                let mut resp = req.request.response(486, reason_phrase(486));
                add_to_tag(&mut resp);
                tokio::spawn(async move { req.tx.respond(resp).await });
                return;
            }
            let id = self.new_call_id();
            let sip_call_id = req.request.call_id().map(str::to_string);
            tracing::info!(
                call_id = id,
                "incoming call from {}",
                req.request
                    .from()
                    .map_or_else(String::new, |f| f.uri.to_string())
            );
            let plan = account
                .as_ref()
                .map(|a| self.forward_plan(a))
                .unwrap_or_default();
            let machine = account
                .as_ref()
                .and_then(|a| self.machine_plan(a, &req, id));
            let decide = self.hooks_decide(account.as_ref(), &req);
            let handle = calls::incoming(ctx, id, account, req, plan, machine, decide);
            self.track(id, sip_call_id, handle);
            return;
        }
        if req.request.method == Method::Message
            && !in_dialog
            && matches!(req.request.uri, Uri::Sip(_))
        {
            let account = self
                .accounts
                .for_request_uri(&req.request.uri)
                .map(|a| a.id.as_str().to_string());
            let (store, updates) = (self.store.clone(), self.call_updates.clone());
            tokio::spawn(receive_message(req, account, store, updates));
            return;
        }
        if let Some(resp) = uas::answer(&req) {
            tokio::spawn(async move { req.tx.respond(resp).await });
        }
    }

    /// An INVITE with Replaces for call `old`: answered at once (the call it replaces was
    /// answered already), from the same account; `old` ends once it is up.
    fn take_over(&mut self, ctx: calls::CallContext, req: TuRequest, old: u64) {
        let mut account = self
            .calls
            .get(&old)
            .and_then(|c| c.info.account.clone())
            .and_then(|a| self.accounts.for_dialing(Some(&a)).ok().flatten());
        if let Some(a) = &mut account {
            a.answer.mode = crate::config::AnswerMode::Auto;
            a.answer.delay_ms = 0;
        }
        let id = self.new_call_id();
        let sip_call_id = req.request.call_id().map(str::to_string);
        let handle = calls::incoming(ctx, id, account, req, Default::default(), None, None);
        self.track(id, sip_call_id, handle);
        self.replaces(id, old);
    }

    /// Whether `account` has all the calls it may have (`max_calls`): why, if so. A call
    /// that is `leaving` (being transferred away) does not count.
    pub(super) fn calls_full(
        &self,
        account: Option<&crate::config::Account>,
        leaving: Option<u64>,
    ) -> Option<String> {
        let a = account?;
        // Fewer calls than the limit in all: no need to count the account's (each new
        // call would look at every call).
        if self.calls.len() < a.max_calls as usize {
            return None;
        }
        let n = self
            .calls
            .values()
            .filter(|c| {
                Some(c.info.id) != leaving
                    && c.info.account.as_deref() == Some(a.id.as_str())
                    && !matches!(c.info.state, CallState::Ending | CallState::Ended { .. })
            })
            .count();
        (n >= a.max_calls as usize).then(|| format!("{n} calls for account {} (max_calls)", a.id))
    }

    /// Whether a call to `account` waits for someone: not when the account answers at once.
    pub(super) fn rings_for_someone(&self, account: Option<&str>) -> bool {
        !self.config.accounts.iter().any(|a| {
            Some(a.id.as_str()) == account
                && a.answer.mode == crate::config::AnswerMode::Auto
                && a.answer.delay_ms == 0
        })
    }

    /// Which bound a new incoming call to `account` would pass, if any. Only calls that
    /// wait for someone count: an account that answers at once rings for no one.
    fn ringing_full(&self, account: Option<&crate::config::Account>) -> Option<String> {
        if account.is_some_and(|a| !self.rings_for_someone(Some(a.id.as_str()))) {
            return None;
        }
        let ringing = || {
            let calls = self.ringing.iter().filter_map(|id| self.calls.get(id));
            // (A call hung up here is Ending before its task says so.)
            calls.map(|c| &c.info).filter(|i| {
                matches!(i.state, CallState::Ringing | CallState::Early)
                    && self.rings_for_someone(i.account.as_deref())
            })
        };
        let all = ringing().count();
        if all >= self.config.sip.max_ringing as usize {
            return Some(format!("{all} calls ringing (sip.max_ringing)"));
        }
        let a = account?;
        let mine = ringing()
            .filter(|i| i.account.as_deref() == Some(a.id.as_str()))
            .count();
        (mine >= a.max_ringing as usize)
            .then(|| format!("{mine} calls ringing for account {} (max_ringing)", a.id))
    }

    /// Someone asks to follow our presence: granted per `presence.share`.
    pub(super) fn presence_subscribe(
        &mut self,
        req: TuRequest,
        ep: &crate::sip::transaction::Endpoint,
    ) {
        let from = req.request.from().and_then(|f| match f.uri {
            Uri::Sip(u) => Some(u),
            _ => None,
        });
        let allowed = self
            .presence
            .sharing(self.config.presence.share)
            .allows(from.as_ref());
        // The entity is us: the account the request names, else what it asked for.
        let entity = self
            .accounts
            .for_request_uri(&req.request.uri)
            .map(|a| a.aor.0.to_string())
            .unwrap_or_else(|| req.request.uri.to_string());
        let msg = crate::core::presence::notifier::Msg::Subscribe {
            req: Box::new(req),
            allowed,
            entity,
        };
        if let Err(e) = self.presence.notifier(ep).try_send(msg) {
            // Far behind: told to try again later rather than left without an answer.
            tracing::warn!("presence SUBSCRIBE refused: the notifier is behind");
            if let crate::core::presence::notifier::Msg::Subscribe { req, .. } = e.into_inner() {
                tokio::spawn(async move { crate::core::presence::answer(&req, 503).await });
            }
        }
    }
}
