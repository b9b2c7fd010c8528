//! SIP usages, named for their RFC role: what a user agent does with a dialog or a
//! request beyond the transaction (challenges, redirections, forks, ACKs).

pub mod initiator;
pub mod reliable;
pub mod session_timer;
pub mod subscription;
