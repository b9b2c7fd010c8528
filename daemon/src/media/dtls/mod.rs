//! DTLS-SRTP (RFC 5763, 5764): a DTLS handshake on the media path whose exported keys
//! key the SRTP contexts. OpenSSL does the DTLS (the same library baresip, Asterisk and
//! FreeSWITCH use), in a helper process (`helper.rs`, `src/bin/voipd-dtls`) so that the
//! daemon does not load it until a call needs it. The engine's tick passes the helper what
//! arrived and sends what it wrote back, so a handshake costs no task and no socket of its
//! own in the daemon. Peers' certificates are self-signed: the fingerprint the signalling
//! carried is what authenticates them (RFC 5763 §5).

mod helper;
mod identity;
pub mod wire;

use std::fmt;

use super::srtp::SrtpKeys;

/// Why a stream has no DTLS keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    #[error("cannot make the DTLS certificate: {0}")]
    Identity(String),
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
    #[error("the far side's DTLS certificate does not match the fingerprint it signalled")]
    Fingerprint,
    #[error("DTLS gave no SRTP keys: {0}")]
    Keys(String),
    /// The helper process could not be started, or stopped mid-handshake.
    #[error("{0}")]
    Helper(String),
}

/// A hash function a fingerprint is made with (RFC 8122 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintHash {
    Sha256,
    Sha1,
}

/// A certificate's fingerprint, as `a=fingerprint` carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: FingerprintHash,
    pub bytes: Vec<u8>,
}

impl Fingerprint {
    /// Reads `a=fingerprint`'s value: "sha-256 AB:CD:…".
    pub fn parse(value: &str) -> Result<Fingerprint, String> {
        let (hash, hex) = value
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("a=fingerprint:{value} has no hash function"))?;
        let (hash, len) = match hash.to_ascii_lowercase().as_str() {
            "sha-256" => (FingerprintHash::Sha256, 32),
            "sha-1" => (FingerprintHash::Sha1, 20),
            other => {
                return Err(format!(
                    "a=fingerprint: hash {other:?} is not sha-256 or sha-1"
                ));
            }
        };
        let bytes = hex
            .trim()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
            .collect::<Option<Vec<u8>>>()
            .filter(|b| b.len() == len)
            .ok_or_else(|| format!("a=fingerprint: {hex:?} is not {len} hex bytes"))?;
        Ok(Fingerprint { hash, bytes })
    }

    /// The attribute's value.
    pub fn value(&self) -> String {
        let hash = match self.hash {
            FingerprintHash::Sha256 => "sha-256",
            FingerprintHash::Sha1 => "sha-1",
        };
        let hex: Vec<String> = self.bytes.iter().map(|b| format!("{b:02X}")).collect();
        format!("{hash} {}", hex.join(":"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value())
    }
}

/// Which side of the handshake we are (from a=setup, RFC 4145).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// We send the ClientHello (a=setup:active).
    Client,
    /// We wait for it (a=setup:passive).
    Server,
}

/// What signalling agreed for a stream's DTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsParams {
    pub role: DtlsRole,
    /// The far side's certificate fingerprint.
    pub remote: Fingerprint,
}

/// Our certificate's fingerprint, for `a=fingerprint`.
pub fn our_fingerprint() -> Result<Fingerprint, DtlsError> {
    identity::identity().map(|i| i.fingerprint.clone())
}

/// One DTLS association (one per RTP and per RTCP port, or one with rtcp-mux), run by the
/// helper: what comes in is passed to it, what it wrote is taken at each drive.
pub struct DtlsSession {
    id: u32,
    params: DtlsParams,
    out: Vec<Vec<u8>>,
    done: bool,
    /// Drives left that look for the helper's answer to a datagram passed on after the
    /// handshake (a peer retransmitting its last flight gets ours again).
    answer_due: u8,
}

impl DtlsSession {
    /// Opens the association, starting the helper if none runs.
    pub fn new(params: DtlsParams) -> Result<DtlsSession, DtlsError> {
        let ours = identity::identity()?;
        let id = helper::helpers().open(&helper::helper_path(), ours, &params)?;
        Ok(DtlsSession {
            id,
            params,
            out: Vec::new(),
            done: false,
            answer_due: 0,
        })
    }

    /// The signalled parameters it runs with.
    pub fn params(&self) -> &DtlsParams {
        &self.params
    }

    /// A DTLS datagram from the far side.
    pub fn input(&mut self, datagram: &[u8]) {
        helper::helpers().input(self.id, datagram);
        self.answer_due = 5;
    }

    /// Takes what the helper did (its retransmissions run on its own timer). Call it each
    /// tick and after input; what it wants sent is in `outgoing`. Some once, when the
    /// handshake ends: the stream's SRTP keys (the far side being who signalling said),
    /// or why there are none.
    pub fn drive(&mut self) -> Option<Result<SrtpKeys, DtlsError>> {
        if self.done {
            // Once keyed, the helper is asked only after input, not at every tick.
            self.answer_due = self.answer_due.checked_sub(1)?;
        }
        let inbox = helper::helpers().take(self.id)?;
        self.out.extend(inbox.out);
        let ended = inbox.ended.filter(|_| !self.done)?;
        self.done = true;
        Some(
            ended.and_then(|(profile, material)| {
                wire::keys_from(profile, self.params.role, &material)
            }),
        )
    }

    /// Datagrams to send to the far side.
    pub fn outgoing(&mut self) -> std::vec::Drain<'_, Vec<u8>> {
        self.out.drain(..)
    }
}

impl Drop for DtlsSession {
    fn drop(&mut self) {
        helper::helpers().close(self.id);
    }
}

/// Whether the helper is where the daemon looks for it; Err names the path.
pub fn helper_present() -> Result<(), DtlsError> {
    let path = helper::helper_path();
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(DtlsError::Helper(format!(
            "the DTLS helper {} is not a file",
            path.display()
        ))),
        Err(e) => Err(DtlsError::Helper(format!(
            "the DTLS helper {}: {e}",
            path.display()
        ))),
    }
}

/// Stops the helper, if one runs, and waits for it (at the daemon's shutdown).
pub fn shutdown() {
    helper::helpers().shutdown();
}

/// Whether a datagram at a media port is DTLS (RFC 7983: first byte 20 to 63).
pub fn is_dtls(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (20..=63).contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_and_bad_ones_are_named() {
        let f = our_fingerprint().unwrap();
        assert_eq!(Fingerprint::parse(&f.value()), Ok(f));
        assert!(Fingerprint::parse("md5 AB:CD").unwrap_err().contains("md5"));
        assert!(
            Fingerprint::parse("sha-256 AB:CD")
                .unwrap_err()
                .contains("32 hex bytes")
        );
        assert!(is_dtls(&[22, 254, 253]) && !is_dtls(&[0x80, 0]) && !is_dtls(&[]));
    }
}
