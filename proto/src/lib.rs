//! The gRPC contract of voipd, package `voipd.v1`, generated from `proto/voipd/v1/*.proto`.

pub mod events;
#[cfg(feature = "serde")]
mod json;
pub mod socket;

#[allow(unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("voipd.v1");

    /// Encoded `FileDescriptorSet` of every voipd.v1 file, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("voipd_descriptor");
}
