//! `org.voipd.Voicemail1` at the root: the answering machine's messages, for a panel's
//! "new voicemail" badge and list. The same core calls as gRPC `Voicemail`.

use std::collections::HashMap;

use zbus::object_server::SignalEmitter;
use zbus::{Variant, interface};

use super::objects::{VoipdError, unix_us};
use crate::core::PhoneHandle;
use crate::store::Voicemail as Message;

pub(super) struct Voicemail {
    pub phone: PhoneHandle,
    pub unheard: u32,
}

type Dict = HashMap<String, Variant<'static>>;

/// Id, Account, Caller, Contact, At (µs since the epoch), DurationMs, Heard, CallId, File.
fn dict(v: Message) -> Dict {
    HashMap::from([
        ("Id".to_string(), Variant::from(v.id)),
        ("Account".into(), Variant::from(v.account)),
        ("Caller".into(), Variant::from(v.caller)),
        (
            "Contact".into(),
            Variant::from(v.caller_name.unwrap_or_default()),
        ),
        ("At".into(), Variant::from(unix_us(v.at))),
        (
            "DurationMs".into(),
            Variant::from(u32::try_from(v.duration.as_millis()).unwrap_or(u32::MAX)),
        ),
        ("Heard".into(), Variant::from(v.heard)),
        ("CallId".into(), Variant::from(v.call_id)),
        ("File".into(), Variant::from(v.file.display().to_string())),
    ])
}

#[interface(name = "org.voipd.Voicemail1")]
impl Voicemail {
    /// Messages, newest first (at most `limit`; 0: 100). Each entry: Id, Account, Caller,
    /// Contact, At (µs since the epoch), DurationMs, Heard, CallId, File.
    #[zbus(out_args("messages"))]
    async fn list_voicemails(&self, limit: u32) -> Result<Vec<Dict>, VoipdError> {
        let (list, _) = self.phone.voicemails(limit).await?;
        Ok(list.into_iter().map(dict).collect())
    }

    /// Marks a message heard (or unheard again).
    async fn mark_heard(&self, id: i64, heard: bool) -> Result<(), VoipdError> {
        self.phone.mark_heard(id, heard).await?;
        Ok(())
    }

    /// Removes a message and its audio.
    async fn delete_voicemail(&self, id: i64) -> Result<(), VoipdError> {
        Ok(self.phone.delete_voicemail(id).await?)
    }

    /// Plays a message to `output` ("file:/x.wav", a device, "default"; empty: the
    /// configured output) and marks it heard.
    async fn play_voicemail(&self, id: i64, output: &str) -> Result<(), VoipdError> {
        self.phone.play_voicemail(id, Some(output)).await?;
        Ok(())
    }

    /// Messages not heard yet.
    #[zbus(property)]
    fn new_voicemails(&self) -> u32 {
        self.unheard
    }

    /// The answering machine kept a message: its id, the caller and their contact name,
    /// and its length.
    #[zbus(signal)]
    pub(super) async fn voicemail_received(
        emitter: &SignalEmitter<'_>,
        id: i64,
        caller: &str,
        contact: &str,
        duration_ms: u32,
    ) -> zbus::Result<()>;
}
