//! Media: RTP, codecs, audio sources and sinks, and the per-call session that joins them.
//! It knows nothing of SIP; the core hands it what SDP negotiated.

pub mod codec;
pub mod device;
pub mod dtmf;
pub mod echo;
pub mod g711;
pub mod jitter;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod tone;
pub mod wav;
