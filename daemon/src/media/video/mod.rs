//! Video: pictures (I420), their codecs (VP8 through libvpx, H.264 through OpenH264), the
//! RTP payload formats that carry them, and where pictures come from (a test pattern, a
//! Y4M file) and go (PNG snapshots, Y4M). It knows nothing of SIP, as the rest of media.

pub mod camera;
pub mod feedback;
pub mod frame;
pub mod h264;
pub mod h264_payload;
pub mod ivf;
pub mod pattern;
pub mod pipeline;
pub mod rate;
pub mod reorder;
pub mod sink;
pub mod snapshot;
pub mod vp8;
pub mod vp8_payload;
pub mod y4m;

pub use frame::Frame;

/// A frame put back together from RTP packets, still encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depacketized {
    /// The encoded frame (for H.264, an access unit in Annex B).
    pub data: Vec<u8>,
    /// Its RTP timestamp (90 kHz).
    pub timestamp: u32,
    /// A key frame: decodable without the frames before it.
    pub key: bool,
    /// Frames before it were lost: unless it is a key frame, the picture is broken until
    /// the next one.
    pub after_loss: bool,
}

/// Why packets did not make a frame. A depacketizer that reports one has dropped what it
/// had of the broken frame; its owner counts it and asks the sender for a key frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketLoss {
    /// A packet is missing (sequence gap, a frame's start or end not seen).
    #[error("a packet of the frame is missing")]
    Gap,
    /// The payload does not follow its format.
    #[error("malformed payload")]
    Malformed,
    /// A payload structure we do not take (H.264 interleaved mode).
    #[error("unsupported payload structure")]
    Unsupported,
    /// The frame outgrew the largest we accept.
    #[error("frame too large")]
    TooLarge,
}

/// The video codecs a call can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8 (RFC 6386, RFC 7741).
    Vp8,
    /// H.264 Constrained Baseline (RFC 6184).
    H264,
}

/// An encoder's output: one frame, ready to packetize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The frame (for H.264: an access unit in Annex B).
    pub data: Vec<u8>,
    /// A key frame.
    pub key: bool,
}

/// Errors of the video codecs.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// The codec library refused to start (a bad size, no memory).
    #[error("{codec} encoder: {why}")]
    Encoder { codec: &'static str, why: String },
    /// A frame the decoder could not read; it needs a key frame.
    #[error("{codec} decoder: {why}")]
    Decoder { codec: &'static str, why: String },
}
