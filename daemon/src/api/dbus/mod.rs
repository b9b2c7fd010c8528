//! D-Bus: the name `org.voipd.Voipd` on the session or system bus, for desktop widgets.
//! An adapter over the same core calls as gRPC; the introspection of each interface is
//! committed under `proto/dbus/`.

mod contacts;
mod mirror;
mod objects;
mod voicemail;

use zbus::connection;
use zbus::fdo::ObjectManager;

use crate::core::PhoneHandle;

pub const BUS_NAME: &str = "org.voipd.Voipd";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    Session,
    System,
}

impl std::fmt::Display for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bus::Session => "session",
            Bus::System => "system",
        })
    }
}

/// Offers the service until the core stops. Without a bus (a headless box) it warns once
/// and returns: the daemon runs on with gRPC.
pub async fn serve(bus: Bus, phone: PhoneHandle) {
    let missed = phone.missed_unseen().await.unwrap_or_default();
    let unread = phone.unread_messages().await.unwrap_or_default();
    let unheard = phone.voicemails(1).await.map_or(0, |(_, n)| n);
    // Before the objects are first filled in, so that no change falls in between; after
    // the store's reads, so that a daemon without a bus does not look watched for their
    // while (status counts watchers).
    let events = phone.subscribe();
    let builder = match bus {
        Bus::Session => connection::Builder::session(),
        Bus::System => connection::Builder::system(),
    };
    let conn = builder
        .name(BUS_NAME)
        .serve_at(objects::ROOT, ObjectManager)
        .serve_at(
            objects::ROOT,
            objects::Manager {
                phone: phone.clone(),
                missed,
                unread,
            },
        )
        .serve_at(
            objects::ROOT,
            contacts::Contacts {
                phone: phone.clone(),
            },
        )
        .serve_at(
            objects::ROOT,
            voicemail::Voicemail {
                phone: phone.clone(),
                unheard,
            },
        )
        .build()
        .await;
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("D-Bus unavailable ({bus} bus: {e}); control is by gRPC only");
            return;
        }
    };
    tracing::info!("D-Bus: {BUS_NAME} on the {bus} bus");
    mirror::Mirror::new(conn, phone).run(events).await;
}
