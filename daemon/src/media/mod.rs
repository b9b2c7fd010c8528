//! Media: RTP and its transport (clear or SRTP), codecs, audio sources and sinks, video
//! (`video/`: its codecs, payload formats, sources and sinks), the streams that join them,
//! a call's session of streams, and the engine that runs all streams on shared ticks.
//! It knows nothing of SIP; the core hands it what SDP negotiated.

pub mod codec;
pub mod device;
pub mod dtls;
pub mod dtmf;
pub mod echo;
pub mod engine;
pub mod g711;
pub mod ice;
pub mod inband;
pub mod jitter;
mod latch;
pub mod mixer;
mod ogg_opus;
pub mod playback;
pub mod record;
pub mod recording;
mod replay;
pub mod rtcp;
pub mod rtp;
pub mod session;
mod sink;
pub mod source;
pub mod srtp;
mod stream;
pub mod stun;
pub mod tone;
mod transport;
pub mod udp;
pub mod video;
pub mod video_stream;
pub mod wav;
