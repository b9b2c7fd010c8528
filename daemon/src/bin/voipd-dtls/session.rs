//! One DTLS association in OpenSSL, through memory buffers: what the daemon passes on is
//! read from them, what OpenSSL writes goes back to it.

use std::collections::VecDeque;
use std::io::{Read, Write};

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::X509;
use voipd::media::dtls::wire::{material_len, suite_of};
use voipd::media::dtls::{DtlsError, DtlsParams, DtlsRole, FingerprintHash};

/// DTLS records larger than this are fragmented: well under any path's MTU.
const MTU: u32 = 1200;
/// The profiles offered in the use_srtp extension, in our order.
const PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";

/// The context every association is made from: our certificate (DER) and key (PKCS#8).
pub(crate) fn context(cert: &[u8], key: &[u8]) -> Result<SslContext, openssl::error::ErrorStack> {
    let cert = X509::from_der(cert)?;
    let key = PKey::private_key_from_pkcs8(key)?;
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
    // No renegotiation: a finished handshake must not be made to run again.
    b.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_RENEGOTIATION);
    Ok(b.build())
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

/// How a handshake ended: the SRTP profile agreed and the keying material exported for it.
pub(crate) type Ended = Result<(u16, Vec<u8>), DtlsError>;

/// One association.
pub(crate) struct Session {
    stream: SslStream<Datagrams>,
    params: DtlsParams,
    done: bool,
}

impl Session {
    pub(crate) fn new(context: &SslContext, params: DtlsParams) -> Result<Session, DtlsError> {
        let make = || -> Result<SslStream<Datagrams>, openssl::error::ErrorStack> {
            let mut ssl = Ssl::new(context)?;
            ssl.set_mtu(MTU)?;
            match params.role {
                DtlsRole::Client => ssl.set_connect_state(),
                DtlsRole::Server => ssl.set_accept_state(),
            }
            SslStream::new(ssl, Datagrams::default())
        };
        Ok(Session {
            stream: make().map_err(|e| DtlsError::Handshake(e.to_string()))?,
            params,
            done: false,
        })
    }

    /// Whether the handshake still runs (and its retransmission timer with it).
    pub(crate) fn running(&self) -> bool {
        !self.done
    }

    /// A DTLS datagram from the far side.
    pub(crate) fn input(&mut self, datagram: &[u8]) {
        let q = &mut self.stream.get_mut().incoming;
        // Bounded: a flood of DTLS-looking junk must not grow it.
        if q.len() < 16 {
            q.push_back(datagram.to_vec());
        }
    }

    /// Moves the handshake on (and retransmits, when its timer says so); what it wants
    /// sent is in `outgoing`. Some once, when the handshake ends.
    pub(crate) fn drive(&mut self) -> Option<Ended> {
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
    pub(crate) fn outgoing(&mut self) -> std::vec::Drain<'_, Vec<u8>> {
        self.stream.get_mut().outgoing.drain(..)
    }

    fn keys(&self) -> Ended {
        let ssl = self.stream.ssl();
        let cert = ssl.peer_certificate().ok_or(DtlsError::Fingerprint)?;
        let md = match self.params.remote.hash {
            FingerprintHash::Sha256 => MessageDigest::sha256(),
            FingerprintHash::Sha1 => MessageDigest::sha1(),
        };
        let theirs = cert
            .digest(md)
            .map_err(|e| DtlsError::Keys(e.to_string()))?;
        if *theirs != self.params.remote.bytes[..] {
            return Err(DtlsError::Fingerprint);
        }
        let profile = ssl
            .selected_srtp_profile()
            .ok_or_else(|| DtlsError::Keys("no SRTP profile was agreed".into()))?;
        let id = profile.id().as_raw() as u16;
        let suite =
            suite_of(id).ok_or_else(|| DtlsError::Keys(format!("profile {}", profile.name())))?;
        let mut material = vec![0u8; material_len(suite)];
        ssl.export_keying_material(&mut material, "EXTRACTOR-dtls_srtp", None)
            .map_err(|e| DtlsError::Keys(e.to_string()))?;
        Ok((id, material))
    }
}
