//! SDES (RFC 4568): the `a=crypto` attribute that carries a stream's SRTP master key in
//! the SDP, read and written.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use crate::media::srtp::{MasterKey, SrtpError, SrtpSuite};

/// Keys are written padded; some phones leave the padding of a 28-byte GCM key out.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One `a=crypto` line voipd can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: SrtpSuite,
    pub key: MasterKey,
}

impl Crypto {
    /// A line with a fresh key from the OS's CSPRNG.
    pub fn generate(tag: u32, suite: SrtpSuite) -> Result<Crypto, SrtpError> {
        Ok(Crypto {
            tag,
            suite,
            key: MasterKey::generate(suite)?,
        })
    }

    /// Reads the value of an `a=crypto:` attribute. Ok(None): a suite, key method or
    /// session parameter voipd does not speak, which the offer/answer model passes over
    /// (RFC 4568 §7.1.1); Err: a line that is not what RFC 4568 says it must be.
    pub fn parse(value: &str) -> Result<Option<Crypto>, String> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(key_params)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!(
                "a=crypto:{} needs a tag, a suite and key parameters",
                shown(value)
            ));
        };
        let tag: u32 = tag
            .parse()
            .ok()
            .filter(|t| *t < 1_000_000_000)
            .ok_or_else(|| format!("a=crypto tag {tag:?} is not a number of up to 9 digits"))?;
        let Some(suite) = SrtpSuite::from_name(suite) else {
            return Ok(None);
        };
        // Session parameters (KDR, UNENCRYPTED_SRTP, …) change what the keys mean; a
        // line with any is not one voipd can honour.
        if fields.next().is_some() {
            return Ok(None);
        }
        // Several keys (';') are for MKIs, which voipd does not use.
        if key_params.contains(';') {
            return Ok(None);
        }
        let Some(inline) = key_params.strip_prefix("inline:") else {
            return Ok(None);
        };
        let mut parts = inline.split('|');
        let b64 = parts.next().unwrap_or_default();
        for p in parts {
            if p.contains(':') {
                // An MKI ("1:4"): every packet would carry it; voipd does not.
                return Ok(None);
            }
            let lifetime_ok = match p.strip_prefix("2^") {
                Some(exp) => exp.parse::<u8>().is_ok_and(|e| e <= 64),
                None => p.parse::<u64>().is_ok(),
            };
            if !lifetime_ok {
                return Err(format!("a=crypto tag {tag}: bad key lifetime {p:?}"));
            }
        }
        let bytes = LENIENT
            .decode(b64)
            .map_err(|_| format!("a=crypto tag {tag}: the key is not base64"))?;
        let key =
            MasterKey::from_bytes(suite, bytes).map_err(|e| format!("a=crypto tag {tag}: {e}"))?;
        Ok(Some(Crypto { tag, suite, key }))
    }

    /// The attribute's value, as written after "a=crypto:".
    pub fn value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key.as_bytes())
        )
    }
}

/// At most the start of a line from the network, for an error message.
fn shown(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_and_other_suites_and_mkis_are_passed_over() {
        let c = Crypto::generate(3, SrtpSuite::AesCm128HmacSha1_32).unwrap();
        let value = c.value();
        assert_eq!(Crypto::parse(&value).unwrap(), Some(c.clone()));
        let b64 = value.rsplit("inline:").next().unwrap();
        assert_eq!(
            Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{b64}|2^31"))
                .unwrap()
                .map(|c| c.tag),
            Some(1),
            "a lifetime is fine"
        );
        let unpadded = Crypto::generate(1, SrtpSuite::AeadAes128Gcm).unwrap();
        let value = unpadded.value();
        assert!(value.ends_with('='));
        assert_eq!(
            Crypto::parse(value.trim_end_matches('=')).unwrap(),
            Some(unpadded)
        );
        for skipped in [
            format!("1 F8_128_HMAC_SHA1_80 inline:{b64}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{b64}|2^20|1:4"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{b64} KDR=1"),
        ] {
            assert_eq!(Crypto::parse(&skipped), Ok(None), "{skipped}");
        }
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        for (line, says) in [
            ("1 AES_CM_128_HMAC_SHA1_80", "needs a tag"),
            ("x AES_CM_128_HMAC_SHA1_80 inline:AAAA", "not a number"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", "not base64"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", "30-byte key"),
            (
                "1 AEAD_AES_128_GCM inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA|2^99",
                "lifetime",
            ),
        ] {
            let e = Crypto::parse(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }
}
