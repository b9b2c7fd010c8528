//! Our DTLS certificate: made once for the daemon's life, in the daemon, so that offers and
//! answers carry its fingerprint without starting the helper, and a helper started again
//! after a crash shows the far side the certificate signalling already named.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use sha2::{Digest, Sha256};

use super::{DtlsError, Fingerprint, FingerprintHash};

/// A self-signed certificate (ECDSA P-256, as browsers and baresip's own make) and its
/// key. Peers check its fingerprint, not a chain (RFC 5763 §5).
pub(super) struct Identity {
    /// The certificate, DER.
    pub(super) cert: Vec<u8>,
    /// Its private key, PKCS#8 DER.
    pub(super) key: Vec<u8>,
    pub(super) fingerprint: Fingerprint,
}

fn make() -> Result<Identity, rcgen::Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "voipd");
    let mut serial = [0u8; 8];
    getrandom::fill(&mut serial).map_err(|_| rcgen::Error::RingUnspecified)?;
    serial[0] &= 0x7f;
    params.serial_number = Some(serial.to_vec().into());
    // From now, for a year: the fingerprint, not the dates, is what peers check, but some
    // look at them too.
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_after = params.not_before + Duration::from_secs(365 * 86_400);
    let cert = params.self_signed(&key)?;
    let cert = cert.der().to_vec();
    Ok(Identity {
        fingerprint: Fingerprint {
            hash: FingerprintHash::Sha256,
            bytes: Sha256::digest(&cert).to_vec(),
        },
        key: key.serialize_der(),
        cert,
    })
}

/// Ours, made at first use.
pub(super) fn identity() -> Result<&'static Identity, DtlsError> {
    static ID: OnceLock<Result<Identity, String>> = OnceLock::new();
    ID.get_or_init(|| make().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| DtlsError::Identity(e.clone()))
}
