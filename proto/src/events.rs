//! The names of events: `Event.name`, as `voipctl watch --json` prints it and as hooks,
//! webhooks and MQTT topics (`PREFIX/event/NAME`) use it.

/// The daemon started and is ready.
pub const DAEMON_STARTED: &str = "daemon_started";
/// The configuration was read again.
pub const CONFIG_RELOADED: &str = "config_reloaded";
/// A reload was refused; what is in force stays.
pub const CONFIG_RELOAD_FAILED: &str = "config_reload_failed";
/// The daemon is stopping.
pub const SHUTTING_DOWN: &str = "shutting_down";
/// An account's registration state or settings changed.
pub const ACCOUNT_CHANGED: &str = "account_changed";
/// An account went away in a reload.
pub const ACCOUNT_REMOVED: &str = "account_removed";
/// A call came in and rings.
pub const CALL_INCOMING: &str = "call_incoming";
/// We started a call.
pub const CALL_OUTGOING: &str = "call_outgoing";
/// A call was answered (by either side).
pub const CALL_ANSWERED: &str = "call_answered";
/// We put a call on hold.
pub const CALL_HELD: &str = "call_held";
/// A held call goes on.
pub const CALL_RESUMED: &str = "call_resumed";
/// The far side asks to transfer a call and the account says ask: accept or decline it.
pub const TRANSFER_REQUESTED: &str = "transfer_requested";
/// Anything else about a call changed (progress, early media, ICE, mute, ending).
pub const CALL_CHANGED: &str = "call_changed";
/// A call ended, with its media figures.
pub const CALL_ENDED: &str = "call_ended";
/// A DTMF digit came from the far side.
pub const DTMF: &str = "dtmf";
/// An ended call is in the history.
pub const HISTORY_CHANGED: &str = "history_changed";
/// A text message came in.
pub const MESSAGE_RECEIVED: &str = "message_received";
/// A message we send was queued, delivered or failed.
pub const MESSAGE_CHANGED: &str = "message_changed";
/// How many incoming messages are unread changed.
pub const UNREAD_MESSAGES: &str = "unread_messages";
/// A contact was added or changed, or its presence changed.
pub const CONTACT_CHANGED: &str = "contact_changed";
/// A contact was removed.
pub const CONTACT_REMOVED: &str = "contact_removed";
/// Many contacts changed at once.
pub const CONTACTS_IMPORTED: &str = "contacts_imported";
/// The answering machine kept a message.
pub const VOICEMAIL_RECEIVED: &str = "voicemail_received";
/// Voicemail messages were kept, heard or removed.
pub const VOICEMAILS_CHANGED: &str = "voicemails_changed";

/// Every name, in the order of the list above.
pub const ALL: &[&str] = &[
    DAEMON_STARTED,
    CONFIG_RELOADED,
    CONFIG_RELOAD_FAILED,
    SHUTTING_DOWN,
    ACCOUNT_CHANGED,
    ACCOUNT_REMOVED,
    CALL_INCOMING,
    CALL_OUTGOING,
    CALL_ANSWERED,
    CALL_HELD,
    CALL_RESUMED,
    TRANSFER_REQUESTED,
    CALL_CHANGED,
    CALL_ENDED,
    DTMF,
    HISTORY_CHANGED,
    MESSAGE_RECEIVED,
    MESSAGE_CHANGED,
    UNREAD_MESSAGES,
    CONTACT_CHANGED,
    CONTACT_REMOVED,
    CONTACTS_IMPORTED,
    VOICEMAIL_RECEIVED,
    VOICEMAILS_CHANGED,
];

/// The name as the list spells it, if it is one.
pub fn known(name: &str) -> Option<&'static str> {
    ALL.iter().copied().find(|n| *n == name)
}
