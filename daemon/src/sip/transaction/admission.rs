//! The gate in front of the transaction layer: a request the layer above will not take
//! from its sender is refused or dropped here, before a transaction, a 100 Trying or an
//! OPTIONS answer tells the sender anything.

use crate::sip::message::Request;
use crate::sip::transport::Target;

/// What happens to a request that reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Handed on as usual.
    Take,
    /// Answered 403 statelessly, the same answer whoever it names.
    Refuse,
    /// Nothing is sent back and nothing is kept.
    Drop,
}

/// Decides who may reach the layer above. Called for every request before any state is
/// made for it, on the dispatcher task: it must be quick and must not wait.
pub trait Admission: Send + Sync {
    /// The verdict for `req`, which came from `from`.
    fn admit(&self, req: &Request, from: Target) -> Admit;
}
