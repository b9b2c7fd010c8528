//! What the daemon and its DTLS helper (`voipd-dtls`) say to each other, one message per
//! packet of a SOCK_SEQPACKET socket pair: a kind byte, the association's number (little
//! endian), then the kind's own fields. Both sides are built from this one file, so the
//! format has no version; a message that does not read is a bug, logged and dropped.

use super::{DtlsError, DtlsParams, DtlsRole, Fingerprint, FingerprintHash};
use crate::media::srtp::{MasterKey, SrtpKeys, SrtpSuite};

/// The most a message carries: a DTLS datagram well over any path's MTU, and its header.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Bytes before a message's own fields: its kind and the association's number.
pub const HEADER: usize = 5;

/// The daemon to the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToHelper<'a> {
    /// First, once: our certificate and its PKCS#8 key, both DER.
    Identity { cert: &'a [u8], key: &'a [u8] },
    /// A new association, and what signalling agreed for it.
    Open { id: u32, params: DtlsParams },
    /// A datagram the far side sent to it.
    Input { id: u32, datagram: &'a [u8] },
    /// The association is no longer wanted.
    Close { id: u32 },
}

/// The helper to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromHelper<'a> {
    /// A datagram for the association's far side.
    Output { id: u32, datagram: &'a [u8] },
    /// The handshake is done and the far side is who signalling said: the SRTP profile
    /// agreed (its RFC 5764 number) and the keying material exported for it.
    Keyed {
        id: u32,
        profile: u16,
        material: &'a [u8],
    },
    /// The handshake ended without keys.
    Failed { id: u32, error: DtlsError },
}

/// A message that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a DTLS helper message does not read: {0}")]
pub struct WireError(&'static str);

impl ToHelper<'_> {
    /// The message as sent.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ToHelper::Identity { cert, key } => {
                let mut m = header(b'I', 0);
                m.extend_from_slice(&len32(cert));
                m.extend_from_slice(cert);
                m.extend_from_slice(key);
                m
            }
            ToHelper::Open { id, params } => {
                let mut m = header(b'O', *id);
                m.push(match params.role {
                    DtlsRole::Client => 0,
                    DtlsRole::Server => 1,
                });
                m.push(match params.remote.hash {
                    FingerprintHash::Sha256 => 0,
                    FingerprintHash::Sha1 => 1,
                });
                m.extend_from_slice(&params.remote.bytes);
                m
            }
            ToHelper::Input { id, datagram } => [&header(b'D', *id)[..], datagram].concat(),
            ToHelper::Close { id } => header(b'C', *id),
        }
    }
}

impl<'a> ToHelper<'a> {
    /// Reads a message the daemon sent.
    pub fn decode(m: &'a [u8]) -> Result<ToHelper<'a>, WireError> {
        let (kind, id, rest) = split(m)?;
        Ok(match kind {
            b'I' => {
                let (n, rest) = rest.split_at_checked(4).ok_or(WireError("identity"))?;
                let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
                let (cert, key) = rest.split_at_checked(n).ok_or(WireError("identity"))?;
                ToHelper::Identity { cert, key }
            }
            b'O' => {
                let [role, hash, bytes @ ..] = rest else {
                    return Err(WireError("open"));
                };
                let role = match role {
                    0 => DtlsRole::Client,
                    1 => DtlsRole::Server,
                    _ => return Err(WireError("role")),
                };
                let hash = match hash {
                    0 => FingerprintHash::Sha256,
                    1 => FingerprintHash::Sha1,
                    _ => return Err(WireError("hash")),
                };
                let remote = Fingerprint {
                    hash,
                    bytes: bytes.to_vec(),
                };
                ToHelper::Open {
                    id,
                    params: DtlsParams { role, remote },
                }
            }
            b'D' => ToHelper::Input { id, datagram: rest },
            b'C' => ToHelper::Close { id },
            _ => return Err(WireError("kind")),
        })
    }
}

impl FromHelper<'_> {
    /// The message as sent.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            FromHelper::Output { id, datagram } => [&header(b'D', *id)[..], datagram].concat(),
            FromHelper::Keyed {
                id,
                profile,
                material,
            } => [&header(b'K', *id)[..], &profile.to_le_bytes(), material].concat(),
            FromHelper::Failed { id, error } => {
                let (kind, why) = match error {
                    DtlsError::Identity(w) => (b'i', w.as_str()),
                    DtlsError::Handshake(w) => (b'h', w.as_str()),
                    DtlsError::Fingerprint => (b'f', ""),
                    DtlsError::Keys(w) => (b'k', w.as_str()),
                    DtlsError::Helper(w) => (b'x', w.as_str()),
                };
                [&header(b'F', *id)[..], &[kind], why.as_bytes()].concat()
            }
        }
    }
}

impl<'a> FromHelper<'a> {
    /// Reads a message the helper sent.
    pub fn decode(m: &'a [u8]) -> Result<FromHelper<'a>, WireError> {
        let (kind, id, rest) = split(m)?;
        Ok(match kind {
            b'D' => FromHelper::Output { id, datagram: rest },
            b'K' => {
                let [a, b, material @ ..] = rest else {
                    return Err(WireError("keys"));
                };
                FromHelper::Keyed {
                    id,
                    profile: u16::from_le_bytes([*a, *b]),
                    material,
                }
            }
            b'F' => {
                let [kind, why @ ..] = rest else {
                    return Err(WireError("failure"));
                };
                let why = String::from_utf8_lossy(why).into_owned();
                let error = match kind {
                    b'i' => DtlsError::Identity(why),
                    b'h' => DtlsError::Handshake(why),
                    b'f' => DtlsError::Fingerprint,
                    b'k' => DtlsError::Keys(why),
                    b'x' => DtlsError::Helper(why),
                    _ => return Err(WireError("failure kind")),
                };
                FromHelper::Failed { id, error }
            }
            _ => return Err(WireError("kind")),
        })
    }
}

fn header(kind: u8, id: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.push(kind);
    m.extend_from_slice(&id.to_le_bytes());
    m
}

fn len32(b: &[u8]) -> [u8; 4] {
    u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes()
}

fn split(m: &[u8]) -> Result<(u8, u32, &[u8]), WireError> {
    match m {
        [kind, a, b, c, d, rest @ ..] => Ok((*kind, u32::from_le_bytes([*a, *b, *c, *d]), rest)),
        _ => Err(WireError("too short")),
    }
}

/// The SRTP suite of an RFC 5764 §4.1.2 profile number, if voipd speaks it.
pub fn suite_of(profile: u16) -> Option<SrtpSuite> {
    match profile {
        0x0001 => Some(SrtpSuite::AesCm128HmacSha1_80),
        0x0002 => Some(SrtpSuite::AesCm128HmacSha1_32),
        // RFC 7714 §14.2.
        0x0007 => Some(SrtpSuite::AeadAes128Gcm),
        _ => None,
    }
}

/// How many bytes of keying material a profile's keys take (RFC 5764 §4.2: two keys and
/// two salts).
pub fn material_len(suite: SrtpSuite) -> usize {
    let (k, s) = suite.key_salt_len();
    2 * (k + s)
}

/// Our SRTP keys from the material the handshake exported: client key, server key,
/// client salt, server salt (RFC 5764 §4.2), ours being the `role` side's.
pub fn keys_from(profile: u16, role: DtlsRole, material: &[u8]) -> Result<SrtpKeys, DtlsError> {
    let suite =
        suite_of(profile).ok_or_else(|| DtlsError::Keys(format!("profile {profile:#06x}")))?;
    if material.len() != material_len(suite) {
        return Err(DtlsError::Keys(format!(
            "{} bytes of keying material for {suite}",
            material.len()
        )));
    }
    let (k, s) = suite.key_salt_len();
    let (keys, salts) = material.split_at(2 * k);
    let client = [&keys[..k], &salts[..s]].concat();
    let server = [&keys[k..], &salts[s..]].concat();
    let (local, remote) = match role {
        DtlsRole::Client => (client, server),
        DtlsRole::Server => (server, client),
    };
    let key = |b| MasterKey::from_bytes(suite, b).map_err(|e| DtlsError::Keys(e.to_string()));
    Ok(SrtpKeys {
        suite,
        local: key(local)?,
        remote: key(remote)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_reads_back_and_junk_is_refused() {
        let params = DtlsParams {
            role: DtlsRole::Server,
            remote: Fingerprint {
                hash: FingerprintHash::Sha1,
                bytes: vec![7; 20],
            },
        };
        for m in [
            ToHelper::Identity {
                cert: b"cert",
                key: b"key",
            },
            ToHelper::Open { id: 9, params },
            ToHelper::Input {
                id: 1 << 31,
                datagram: &[22, 254, 253],
            },
            ToHelper::Close { id: 3 },
        ] {
            assert_eq!(ToHelper::decode(&m.encode()), Ok(m));
        }
        for m in [
            FromHelper::Output {
                id: 4,
                datagram: &[22],
            },
            FromHelper::Keyed {
                id: 5,
                profile: 7,
                material: &[1; 56],
            },
            FromHelper::Failed {
                id: 6,
                error: DtlsError::Fingerprint,
            },
            FromHelper::Failed {
                id: 6,
                error: DtlsError::Handshake("alert".into()),
            },
        ] {
            assert_eq!(FromHelper::decode(&m.encode()), Ok(m));
        }
        for junk in [
            &b""[..],
            b"D12",
            b"Z1234",
            b"O1234\x05\x00",
            b"I1234\xff\0\0\0ab",
        ] {
            assert!(ToHelper::decode(junk).is_err(), "{junk:?}");
        }
        assert!(FromHelper::decode(b"F1234").is_err());
        assert!(FromHelper::decode(b"K12345").is_err());
    }

    #[test]
    fn exported_material_is_split_as_rfc_5764_says_and_sides_mirror() {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let material: Vec<u8> = (0..material_len(suite) as u8).collect();
        let c = keys_from(1, DtlsRole::Client, &material).unwrap();
        let s = keys_from(1, DtlsRole::Server, &material).unwrap();
        assert_eq!((c.local.clone(), c.remote.clone()), (s.remote, s.local));
        // Client key (16 bytes), then client salt (14), which starts after both keys.
        let mut want: Vec<u8> = (0..16).collect();
        want.extend(32..46);
        assert_eq!(c.local.as_bytes(), &want[..]);
        assert!(matches!(
            keys_from(1, DtlsRole::Client, &material[1..]),
            Err(DtlsError::Keys(_))
        ));
        assert!(matches!(
            keys_from(0x99, DtlsRole::Client, &material),
            Err(DtlsError::Keys(_))
        ));
    }
}
