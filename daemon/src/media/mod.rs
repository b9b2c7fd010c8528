//! Media: RTP, codecs, audio sources and sinks, the per-call session that joins them, and the
//! engine that runs all sessions on shared ticks.
//! It knows nothing of SIP; the core hands it what SDP negotiated.

pub mod codec;
pub mod device;
pub mod dtmf;
pub mod echo;
pub mod engine;
pub mod g711;
pub mod jitter;
mod latch;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod tone;
pub mod udp;
pub mod wav;
