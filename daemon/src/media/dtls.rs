//! DTLS-SRTP (RFC 5763, 5764): a DTLS handshake on the media path whose exported keys
//! key the SRTP contexts. OpenSSL does the DTLS (the same library baresip, Asterisk and
//! FreeSWITCH use), through memory buffers: the engine's tick feeds it what arrived and
//! sends what it wrote, so a handshake costs no task and no socket of its own, and its
//! retransmission timer runs on the same tick. Peers' certificates are self-signed: the
//! fingerprint the signalling carried is what authenticates them (RFC 5763 §5).

use std::collections::VecDeque;
use std::fmt;
use std::io::{Read, Write};
use std::sync::OnceLock;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::srtp::SrtpProfileId;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::{X509, X509NameBuilder};

use super::srtp::{MasterKey, SrtpKeys, SrtpSuite};

/// DTLS records larger than this are fragmented: well under any path's MTU.
const MTU: u32 = 1200;
/// The profiles offered in the use_srtp extension, in our order.
const PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";

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

    fn of(cert: &X509, hash: FingerprintHash) -> Result<Fingerprint, openssl::error::ErrorStack> {
        let md = match hash {
            FingerprintHash::Sha256 => MessageDigest::sha256(),
            FingerprintHash::Sha1 => MessageDigest::sha1(),
        };
        Ok(Fingerprint {
            hash,
            bytes: cert.digest(md)?.to_vec(),
        })
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

/// Our DTLS certificate, made once for the daemon's life, and its context.
struct Identity {
    context: SslContext,
    fingerprint: Fingerprint,
}

fn make_identity() -> Result<Identity, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "voipd")?;
    let name = name.build();
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    cert.set_serial_number(&serial)?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(&key)?;
    // From now, for a year: the fingerprint, not the dates, is what peers check, but some
    // look at them too.
    let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(365)?);
    cert.set_not_before(&from)?;
    cert.set_not_after(&until)?;
    cert.sign(&key, MessageDigest::sha256())?;
    let cert = cert.build();
    let mut b = SslContextBuilder::new(SslMethod::dtls())?;
    b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_tlsext_use_srtp(PROFILES)?;
    b.set_certificate(&cert)?;
    b.set_private_key(&key)?;
    // Self-signed on both sides: the chain is not checked here; the fingerprint is, once
    // the handshake is done. A certificate must be sent, though.
    b.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        |_, _| true,
    );
    // No renegotiation: a finished handshake must not be made to run again on the media
    // tick the other calls share.
    b.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_RENEGOTIATION);
    Ok(Identity {
        fingerprint: Fingerprint::of(&cert, FingerprintHash::Sha256)?,
        context: b.build(),
    })
}

fn identity() -> Result<&'static Identity, DtlsError> {
    static ID: OnceLock<Result<Identity, String>> = OnceLock::new();
    ID.get_or_init(|| make_identity().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| DtlsError::Identity(e.clone()))
}

/// Our certificate's fingerprint, for `a=fingerprint`.
pub fn our_fingerprint() -> Result<Fingerprint, DtlsError> {
    identity().map(|i| i.fingerprint.clone())
}

/// What OpenSSL reads from and writes to: datagrams in, datagrams out.
#[derive(Default)]
struct Datagrams {
    incoming: VecDeque<Vec<u8>>,
    outgoing: Vec<Vec<u8>>,
}

impl Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.incoming.pop_front() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A handshake's flight is a few datagrams; more waiting means no one takes them.
        if self.outgoing.len() < 64 {
            self.outgoing.push(buf.to_vec());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One DTLS association (one per RTP and per RTCP port, or one with rtcp-mux).
pub struct DtlsSession {
    stream: SslStream<Datagrams>,
    params: DtlsParams,
    done: bool,
}

impl DtlsSession {
    pub fn new(params: DtlsParams) -> Result<DtlsSession, DtlsError> {
        let id = identity()?;
        let make = || -> Result<SslStream<Datagrams>, openssl::error::ErrorStack> {
            let mut ssl = Ssl::new(&id.context)?;
            ssl.set_mtu(MTU)?;
            match params.role {
                DtlsRole::Client => ssl.set_connect_state(),
                DtlsRole::Server => ssl.set_accept_state(),
            }
            SslStream::new(ssl, Datagrams::default())
        };
        Ok(DtlsSession {
            stream: make().map_err(|e| DtlsError::Handshake(e.to_string()))?,
            params,
            done: false,
        })
    }

    /// The signalled parameters it runs with.
    pub fn params(&self) -> &DtlsParams {
        &self.params
    }

    /// A DTLS datagram from the far side.
    pub fn input(&mut self, datagram: &[u8]) {
        let q = &mut self.stream.get_mut().incoming;
        // Bounded: a flood of DTLS-looking junk must not grow it.
        if q.len() < 16 {
            q.push_back(datagram.to_vec());
        }
    }

    /// Moves the handshake on (and retransmits, when its timer says so). Call it each
    /// tick and after input; what it wants sent is in `outgoing`. Some once, when the
    /// handshake ends: the stream's SRTP keys (the far side being who signalling said),
    /// or why there are none.
    pub fn drive(&mut self) -> Option<Result<SrtpKeys, DtlsError>> {
        if self.done {
            // Read what still comes (a peer retransmitting its last flight gets ours).
            let mut buf = [0u8; 1500];
            while !self.stream.get_ref().incoming.is_empty() {
                if self.stream.ssl_read(&mut buf).is_err() {
                    break;
                }
            }
            return None;
        }
        match self.stream.do_handshake() {
            Ok(()) => {
                self.done = true;
                Some(self.keys())
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => None,
            Err(e) => {
                self.done = true;
                let why = e
                    .ssl_error()
                    .map_or_else(|| e.to_string(), |s| s.to_string());
                Some(Err(DtlsError::Handshake(why)))
            }
        }
    }

    /// Datagrams to send to the far side.
    pub fn outgoing(&mut self) -> std::vec::Drain<'_, Vec<u8>> {
        self.stream.get_mut().outgoing.drain(..)
    }

    fn keys(&self) -> Result<SrtpKeys, DtlsError> {
        let ssl = self.stream.ssl();
        let cert = ssl.peer_certificate().ok_or(DtlsError::Fingerprint)?;
        let theirs = Fingerprint::of(&cert, self.params.remote.hash)
            .map_err(|e| DtlsError::Keys(e.to_string()))?;
        if theirs != self.params.remote {
            return Err(DtlsError::Fingerprint);
        }
        let profile = ssl
            .selected_srtp_profile()
            .ok_or_else(|| DtlsError::Keys("no SRTP profile was agreed".into()))?;
        let suite = match profile.id() {
            SrtpProfileId::SRTP_AES128_CM_SHA1_80 => SrtpSuite::AesCm128HmacSha1_80,
            SrtpProfileId::SRTP_AES128_CM_SHA1_32 => SrtpSuite::AesCm128HmacSha1_32,
            SrtpProfileId::SRTP_AEAD_AES_128_GCM => SrtpSuite::AeadAes128Gcm,
            _ => return Err(DtlsError::Keys(format!("profile {}", profile.name()))),
        };
        // RFC 5764 §4.2: client key, server key, client salt, server salt.
        let (k, s) = suite.key_salt_len();
        let mut material = vec![0u8; 2 * (k + s)];
        ssl.export_keying_material(&mut material, "EXTRACTOR-dtls_srtp", None)
            .map_err(|e| DtlsError::Keys(e.to_string()))?;
        let (keys, salts) = material.split_at(2 * k);
        let client = [&keys[..k], &salts[..s]].concat();
        let server = [&keys[k..], &salts[s..]].concat();
        let (local, remote) = match self.params.role {
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
}

/// Whether a datagram at a media port is DTLS (RFC 7983: first byte 20 to 63).
pub fn is_dtls(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (20..=63).contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ended = Option<Result<SrtpKeys, DtlsError>>;

    /// Two sessions talking through their buffers until both are done.
    fn handshake(client: &mut DtlsSession, server: &mut DtlsSession) -> (Ended, Ended) {
        let (mut c, mut s) = (None, None);
        for _ in 0..20 {
            if c.is_none() {
                c = client.drive();
            }
            for d in client.outgoing().collect::<Vec<_>>() {
                server.input(&d);
            }
            if s.is_none() {
                s = server.drive();
            }
            for d in server.outgoing().collect::<Vec<_>>() {
                client.input(&d);
            }
        }
        (c, s)
    }

    #[test]
    fn two_sides_agree_on_keys_and_a_wrong_fingerprint_is_refused() {
        let ours = our_fingerprint().unwrap();
        let session = |role, remote: &Fingerprint| {
            DtlsSession::new(DtlsParams {
                role,
                remote: remote.clone(),
            })
            .unwrap()
        };
        let (c, s) = handshake(
            &mut session(DtlsRole::Client, &ours),
            &mut session(DtlsRole::Server, &ours),
        );
        let (Some(Ok(c)), Some(Ok(s))) = (c.clone(), s.clone()) else {
            panic!("not keyed: {c:?} {s:?}");
        };
        assert_eq!((c.local, c.remote), (s.remote, s.local));
        assert_eq!(c.suite, SrtpSuite::AeadAes128Gcm);

        let mut wrong = ours.clone();
        wrong.bytes[0] ^= 1;
        let (c, _) = handshake(
            &mut session(DtlsRole::Client, &wrong),
            &mut session(DtlsRole::Server, &ours),
        );
        assert_eq!(c, Some(Err(DtlsError::Fingerprint)));
    }

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
