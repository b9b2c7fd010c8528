//! SRTP and SRTCP (RFC 3711, AES-GCM by RFC 7714) for one stream: the suites voipd
//! speaks, master keys from the OS's CSPRNG, and the two contexts, ours to send with and
//! the far side's to receive with. webrtc-srtp does the cryptography and the rollover
//! counter, and runs the replay window it is given (`replay.rs`); this module keeps it from
//! ever seeing a packet too short for what it reads, and sorts its errors into what the
//! call counts.

use std::fmt;

use bytes::Bytes;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::ContextOption;
use webrtc_srtp::protection_profile::ProtectionProfile;

use super::replay::ReplayWindow;

/// Streams (SSRCs) the far side may send under one key. webrtc-srtp keeps state for each
/// SSRC it is handed, before it authenticates the packet: past this, an unknown SSRC is
/// refused unread, so that forged packets cannot grow that state without end.
const MAX_SSRCS: usize = 8;

/// An SRTP crypto suite, by its SDES name (RFC 4568 §6.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
}

impl SrtpSuite {
    /// Every suite, in the order voipd offers them: the strongest tag first, then the
    /// widely deployed one, then the short tag some phones still want.
    pub const ALL: [SrtpSuite; 3] = [
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    /// The name `a=crypto` and the configuration use.
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// The suite `name` means, if voipd speaks it.
    pub fn from_name(name: &str) -> Option<SrtpSuite> {
        SrtpSuite::ALL.into_iter().find(|s| s.name() == name)
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            SrtpSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        }
    }

    /// Bytes of master key and of master salt.
    pub fn key_salt_len(self) -> (usize, usize) {
        let p = self.profile();
        (p.key_len(), p.salt_len())
    }

    /// Bytes an SRTP packet carries beyond the RTP one (its tag).
    fn rtp_overhead(self) -> usize {
        let p = self.profile();
        p.rtp_auth_tag_len() + p.aead_auth_tag_len()
    }

    /// Bytes an SRTCP packet carries beyond the RTCP one (E flag and index, and its tag).
    fn rtcp_overhead(self) -> usize {
        let p = self.profile();
        4 + p.rtcp_auth_tag_len() + p.aead_auth_tag_len()
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A master key and salt, one after the other as SDES carries them. Never shown: its
/// Debug form says only how long it is.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(Vec<u8>);

impl MasterKey {
    /// A fresh key for `suite` from the OS's CSPRNG.
    pub fn generate(suite: SrtpSuite) -> Result<MasterKey, SrtpError> {
        let (k, s) = suite.key_salt_len();
        let mut bytes = vec![0; k + s];
        getrandom::fill(&mut bytes).map_err(|e| SrtpError::Random(e.to_string()))?;
        Ok(MasterKey(bytes))
    }

    /// A key as received; its length must fit `suite`.
    pub fn from_bytes(suite: SrtpSuite, bytes: Vec<u8>) -> Result<MasterKey, SrtpError> {
        let (k, s) = suite.key_salt_len();
        if bytes.len() != k + s {
            return Err(SrtpError::KeyLength {
                suite,
                want: k + s,
                got: bytes.len(),
            });
        }
        Ok(MasterKey(bytes))
    }

    /// Key and salt together.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({} bytes)", self.0.len())
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        // Best effort: what the allocator hands out next should not hold a key.
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// One stream's keys: ours to send with, the far side's to receive with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: SrtpSuite,
    pub local: MasterKey,
    pub remote: MasterKey,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("authentication failed")]
    AuthFailed,
    #[error("replayed")]
    Replayed,
    #[error("too short for SRTP")]
    TooShort,
    /// The stream's keys are not agreed yet (a DTLS handshake still runs).
    #[error("not keyed yet")]
    NotKeyed,
    /// An SSRC beyond the few a far side may use.
    #[error("from too many streams")]
    TooManyStreams,
    #[error("{0}")]
    Malformed(String),
    #[error("{suite} takes a {want}-byte key and salt, not {got}")]
    KeyLength {
        suite: SrtpSuite,
        want: usize,
        got: usize,
    },
    #[error("no random bytes for a key: {0}")]
    Random(String),
}

impl From<webrtc_srtp::Error> for SrtpError {
    fn from(e: webrtc_srtp::Error) -> SrtpError {
        use webrtc_srtp::Error as E;
        match e {
            E::ErrFailedToVerifyAuthTag
            | E::RtpFailedToVerifyAuthTag
            | E::RtcpFailedToVerifyAuthTag
            | E::AesGcm(_) => SrtpError::AuthFailed,
            E::SrtpSsrcDuplicated(..) | E::SrtcpSsrcDuplicated(..) | E::ErrDuplicated => {
                SrtpError::Replayed
            }
            E::ErrTooShortRtp | E::ErrTooShortRtcp => SrtpError::TooShort,
            other => SrtpError::Malformed(other.to_string()),
        }
    }
}

/// A context to send with (`replay`: false) or to receive with. Only a receiver has a
/// replay window (ours: see `replay.rs`): webrtc-srtp builds one each time it looks a
/// stream up, twice a packet, and a sender's would never be asked.
fn context(suite: SrtpSuite, key: &MasterKey, replay: bool) -> Result<Context, SrtpError> {
    let (k, _) = suite.key_salt_len();
    let (key, salt) = key.as_bytes().split_at(k);
    let window = |max: u64| -> Option<ContextOption> {
        replay.then(|| -> ContextOption { Box::new(move || Box::new(ReplayWindow::new(max))) })
    };
    // SRTP's sequence numbers are 16 bits; SRTCP's index 31.
    let (srtp, srtcp) = (window(u64::from(u16::MAX)), window(0x7FFF_FFFF));
    Context::new(key, salt, suite.profile(), srtp, srtcp).map_err(SrtpError::from)
}

/// A stream's SRTP state, both ways.
pub struct Srtp {
    suite: SrtpSuite,
    tx: Context,
    rx: Context,
    /// The SSRCs handed to `rx` so far, RTP's and RTCP's (see MAX_SSRCS).
    admitted: Vec<u32>,
}

impl Srtp {
    pub fn new(keys: &SrtpKeys) -> Result<Srtp, SrtpError> {
        Ok(Srtp {
            suite: keys.suite,
            tx: context(keys.suite, &keys.local, false)?,
            rx: context(keys.suite, &keys.remote, true)?,
            admitted: Vec::new(),
        })
    }

    /// Whether a packet from `ssrc` may be handed to the receiving context.
    fn admit(&mut self, ssrc: u32) -> Result<(), SrtpError> {
        if self.admitted.contains(&ssrc) {
            return Ok(());
        }
        if self.admitted.len() >= MAX_SSRCS {
            return Err(SrtpError::TooManyStreams);
        }
        self.admitted.push(ssrc);
        Ok(())
    }

    /// New keys of the same suite (a re-INVITE): only a direction whose key changed starts
    /// afresh; the other keeps its rollover counter and replay window, which a new context
    /// would lose after the first 65,536 packets.
    pub fn rekey(&mut self, old: &SrtpKeys, new: &SrtpKeys) -> Result<(), SrtpError> {
        if new.suite != self.suite {
            *self = Srtp::new(new)?;
            return Ok(());
        }
        if new.local != old.local {
            self.tx = context(new.suite, &new.local, false)?;
        }
        if new.remote != old.remote {
            self.rx = context(new.suite, &new.remote, true)?;
            self.admitted.clear();
        }
        Ok(())
    }

    /// An RTP packet, encrypted and authenticated.
    pub fn protect_rtp(&mut self, rtp: &[u8]) -> Result<Bytes, SrtpError> {
        Ok(self.tx.encrypt_rtp(rtp)?)
    }

    /// The RTP packet inside an SRTP one, or why there is none. `srtp` must already parse
    /// as RTP (a header of its full length).
    pub fn unprotect_rtp(&mut self, srtp: &[u8], header_len: usize) -> Result<Bytes, SrtpError> {
        if srtp.len() < header_len + self.suite.rtp_overhead() || srtp.len() < 12 {
            return Err(SrtpError::TooShort);
        }
        self.admit(u32::from_be_bytes([srtp[8], srtp[9], srtp[10], srtp[11]]))?;
        Ok(self.rx.decrypt_rtp(srtp)?)
    }

    /// An RTCP compound packet as SRTCP.
    pub fn protect_rtcp(&mut self, rtcp: &[u8]) -> Result<Bytes, SrtpError> {
        Ok(self.tx.encrypt_rtcp(rtcp)?)
    }

    /// The RTCP compound packet inside an SRTCP one.
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Result<Bytes, SrtpError> {
        // The fixed header with the sender's SSRC, then the index and the tag at the end:
        // webrtc-srtp indexes into both without looking.
        if srtcp.len() < 8 + self.suite.rtcp_overhead() {
            return Err(SrtpError::TooShort);
        }
        // The E flag: voipd never agrees to unencrypted SRTCP, and webrtc-srtp would hand
        // such a packet back without checking its tag.
        let tag = self.suite.profile().rtcp_auth_tag_len();
        if srtcp[srtcp.len() - tag - 4] & 0x80 == 0 {
            return Err(SrtpError::AuthFailed);
        }
        self.admit(u32::from_be_bytes([srtcp[4], srtcp[5], srtcp[6], srtcp[7]]))?;
        Ok(self.rx.decrypt_rtcp(srtcp)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::RtpPacket;

    fn pair(suite: SrtpSuite) -> (Srtp, Srtp) {
        let (a, b) = (
            MasterKey::generate(suite).unwrap(),
            MasterKey::generate(suite).unwrap(),
        );
        let ours = SrtpKeys {
            suite,
            local: a.clone(),
            remote: b.clone(),
        };
        let theirs = SrtpKeys {
            suite,
            local: b,
            remote: a,
        };
        (Srtp::new(&ours).unwrap(), Srtp::new(&theirs).unwrap())
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        RtpPacket {
            marker: false,
            pt: 0,
            seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 0x1234_5678,
            payload,
        }
        .write(&mut out);
        out
    }

    #[test]
    fn each_suite_carries_rtp_and_rtcp_and_hides_the_payload() {
        for suite in SrtpSuite::ALL {
            let (mut a, mut b) = pair(suite);
            for seq in [1u16, 2, 3] {
                let clear = rtp(seq, &[0x55; 160]);
                let sealed = a.protect_rtp(&clear).unwrap();
                assert_eq!(sealed.len(), clear.len() + suite.rtp_overhead(), "{suite}");
                assert!(
                    !sealed.windows(16).any(|w| w == [0x55; 16]),
                    "{suite}: the payload shows through"
                );
                assert_eq!(&b.unprotect_rtp(&sealed, 12).unwrap()[..], &clear[..]);
            }
            let report = crate::media::rtcp::compound(0x1234_5678, None, None, "voipd");
            let sealed = a.protect_rtcp(&report).unwrap();
            assert_eq!(
                &b.unprotect_rtcp(&sealed).unwrap()[..],
                &report[..],
                "{suite}"
            );
        }
    }

    #[test]
    fn tampered_replayed_and_short_packets_are_told_apart() {
        for suite in SrtpSuite::ALL {
            let (mut a, mut b) = pair(suite);
            let sealed = a.protect_rtp(&rtp(7, &[1; 160])).unwrap();
            let mut bad = sealed.to_vec();
            bad[20] ^= 1;
            assert_eq!(
                b.unprotect_rtp(&bad, 12),
                Err(SrtpError::AuthFailed),
                "{suite}"
            );
            // The forgery must not have used up the real packet's place in the window.
            assert!(b.unprotect_rtp(&sealed, 12).is_ok(), "{suite}");
            assert_eq!(
                b.unprotect_rtp(&sealed, 12),
                Err(SrtpError::Replayed),
                "{suite}"
            );
            assert_eq!(b.unprotect_rtp(&sealed[..13], 12), Err(SrtpError::TooShort));
            for n in 0..20 {
                assert!(b.unprotect_rtcp(&vec![0x80; n]).is_err(), "{n} bytes");
            }
            let report = crate::media::rtcp::compound(1, None, None, "voipd");
            let sealed = a.protect_rtcp(&report).unwrap();
            assert!(b.unprotect_rtcp(&sealed).is_ok());
            assert_eq!(b.unprotect_rtcp(&sealed), Err(SrtpError::Replayed));
            // The E flag cleared: "unencrypted SRTCP", never agreed to, never taken.
            let sealed = a.protect_rtcp(&report).unwrap();
            let mut clear = sealed.to_vec();
            let at = clear.len() - suite.profile().rtcp_auth_tag_len() - 4;
            clear[at] &= 0x7f;
            assert_eq!(
                b.unprotect_rtcp(&clear),
                Err(SrtpError::AuthFailed),
                "{suite}"
            );
        }
    }

    #[test]
    fn forged_packets_from_ever_new_ssrcs_are_refused_unread() {
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let real = a.protect_rtp(&rtp(1, &[1; 160])).unwrap();
        assert!(b.unprotect_rtp(&real, 12).is_ok());
        let mut results = Vec::new();
        for ssrc in 0..100u32 {
            let mut forged = real.to_vec();
            forged[8..12].copy_from_slice(&ssrc.to_be_bytes());
            results.push(b.unprotect_rtp(&forged, 12).unwrap_err());
        }
        assert!(
            results[..MAX_SSRCS - 1]
                .iter()
                .all(|e| *e == SrtpError::AuthFailed)
        );
        assert!(
            results[MAX_SSRCS..]
                .iter()
                .all(|e| *e == SrtpError::TooManyStreams)
        );
        // The real stream goes on.
        let next = a.protect_rtp(&rtp(2, &[1; 160])).unwrap();
        assert!(b.unprotect_rtp(&next, 12).is_ok());
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused_and_never_shown() {
        assert!(matches!(
            MasterKey::from_bytes(SrtpSuite::AesCm128HmacSha1_80, vec![0; 16]),
            Err(SrtpError::KeyLength { want: 30, .. })
        ));
        let k = MasterKey::generate(SrtpSuite::AeadAes128Gcm).unwrap();
        assert_eq!(k.as_bytes().len(), 28);
        assert_eq!(format!("{k:?}"), "MasterKey(28 bytes)");
        assert_ne!(k, MasterKey::generate(SrtpSuite::AeadAes128Gcm).unwrap());
    }
}
