use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "voipd/v1/accounts.proto",
        "voipd/v1/calls.proto",
        "voipd/v1/contacts.proto",
        "voipd/v1/daemon.proto",
        "voipd/v1/events.proto",
        "voipd/v1/history.proto",
        "voipd/v1/messages.proto",
        "voipd/v1/voicemail.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    tonic_prost_build::configure()
        // voipctl --json prints these types as they are, so its output follows the
        // contract without a hand-written mapping. Only with the `serde` feature.
        .type_attribute(
            ".voipd.v1",
            "#[cfg_attr(feature = \"serde\", derive(serde::Serialize), serde(rename_all = \"snake_case\"))]",
        )
        // Served by the daemon's reflection service, so clients need no .proto files.
        .file_descriptor_set_path(out.join("voipd_descriptor.bin"))
        // Enums print as their names in JSON, not as numbers.
        .field_attribute(
            ".voipd.v1.Account.state",
            "#[cfg_attr(feature = \"serde\", serde(serialize_with = \"crate::json::registration_state\"))]",
        )
        .field_attribute(
            ".voipd.v1.Call.state",
            "#[cfg_attr(feature = \"serde\", serde(serialize_with = \"crate::json::call_state\"))]",
        )
        .field_attribute(
            ".voipd.v1.Call.media_encryption",
            "#[cfg_attr(feature = \"serde\", serde(serialize_with = \"crate::json::media_encryption\"))]",
        )
        .compile_protos(&protos, &["."])?;
    Ok(())
}
