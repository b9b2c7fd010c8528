//! JSON forms for voipctl --json: enum fields as their short lowercase names.

use crate::v1::{CallState, MediaEncryption, RegistrationState};

pub(crate) fn registration_state<S: serde::Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
    let name = RegistrationState::try_from(*v).map_or("unknown", |st| match st {
        RegistrationState::Unspecified => "unspecified",
        RegistrationState::Unregistered => "unregistered",
        RegistrationState::Registering => "registering",
        RegistrationState::Registered => "registered",
        RegistrationState::Failed => "failed",
        RegistrationState::BackingOff => "backing_off",
    });
    s.serialize_str(name)
}

pub(crate) fn call_state<S: serde::Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
    let name = CallState::try_from(*v).map_or("unknown", |st| match st {
        CallState::Unspecified => "unspecified",
        CallState::Dialing => "dialing",
        CallState::Ringing => "ringing",
        CallState::Active => "active",
        CallState::Ended => "ended",
        CallState::Held => "held",
        CallState::Early => "early",
        CallState::Ending => "ending",
    });
    s.serialize_str(name)
}

pub(crate) fn media_encryption<S: serde::Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
    let name = MediaEncryption::try_from(*v).map_or("unknown", |e| match e {
        MediaEncryption::Unspecified => "unspecified",
        MediaEncryption::None => "none",
        MediaEncryption::Sdes => "sdes",
        MediaEncryption::Dtls => "dtls",
    });
    s.serialize_str(name)
}
