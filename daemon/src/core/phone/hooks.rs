//! What the core knows of hooks: which ones an incoming call waits for, and the lists the
//! hook runner and the webhook sender (adapters) follow across reloads.

use super::*;
use crate::config::{Hook, HookSubject, HooksConfig, MqttConfig, Webhook};

/// The hooks and webhooks in force, as their adapters read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookSet {
    pub settings: HooksConfig,
    pub hooks: Vec<Hook>,
    pub webhooks: Vec<Webhook>,
    pub mqtt: Option<MqttConfig>,
}

impl HookSet {
    pub(super) fn of(config: &Config) -> Arc<HookSet> {
        Arc::new(HookSet {
            settings: config.hooks.clone(),
            hooks: config.hook.clone(),
            webhooks: config.webhook.clone(),
            mqtt: config.mqtt.clone(),
        })
    }
}

/// How much longer than its hooks' timeout a call waits: their runner kills them at the
/// timeout and then says so, and that word should be what releases the call.
const GRACE: Duration = Duration::from_millis(500);

impl Phone {
    /// How long an incoming call waits for its `call_incoming` hooks to decide before the
    /// answer mode acts: the longest timeout among those that will run; None when none do.
    pub(super) fn hooks_decide(
        &self,
        account: Option<&crate::config::Account>,
        req: &TuRequest,
    ) -> Option<Duration> {
        let remote = req.request.from().map(|f| f.uri.to_string());
        let contact = remote.as_deref().and_then(|r| self.presence.name_of(r));
        let subject = HookSubject {
            account: account.map(|a| a.id.as_str()),
            remote: [remote.as_deref(), contact.as_deref()],
            digit: None,
        };
        self.config
            .hook
            .iter()
            .filter(|h| h.wants(voipd_proto::events::CALL_INCOMING, &subject))
            .map(|h| h.timeout + GRACE)
            .max()
    }
}

impl PhoneHandle {
    /// The hooks and webhooks in force; changes with each reload.
    pub fn hooks(&self) -> watch::Receiver<Arc<HookSet>> {
        self.hooks.clone()
    }
}
