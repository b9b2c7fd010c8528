//! HTTP Digest authentication for SIP (RFC 7616, RFC 2617, RFC 3261 §22): MD5 and SHA-256,
//! their -sess variants, `qop=auth`, and the nonce count in hex as RFC 7616 §3.4 says.

mod session;

pub use session::{AuthSession, ChallengeError, Credentials};

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::sip::message::{DigestParams, Name, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        Some(match s.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => Sha256::digest(data.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed challenge: {0}")]
    Malformed(String),
    #[error("unsupported digest algorithm {0:?}")]
    Algorithm(String),
    #[error("the server only offers qop {0:?}; voipd does qop=auth")]
    Qop(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// None: RFC 2069 style without qop.
    pub qop_auth: bool,
    pub stale: bool,
}

impl Challenge {
    /// The digest challenge of a 401 or 407 we can answer (in `realm`, when one is pinned),
    /// and the header the answer goes in: Authorization or Proxy-Authorization.
    pub fn of_response(resp: &Response, realm: Option<&str>) -> Option<(Challenge, Name)> {
        let (challenge, answer) = match resp.code {
            401 => (Name::WwwAuthenticate, Name::Authorization),
            407 => (Name::ProxyAuthenticate, Name::ProxyAuthorization),
            _ => return None,
        };
        let ch = resp.headers.all(&challenge).find_map(|v| {
            Challenge::parse(v)
                .ok()
                .filter(|c| realm.is_none_or(|r| r == c.realm))
        })?;
        Some((ch, answer))
    }

    /// Parses a WWW-Authenticate or Proxy-Authenticate value.
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        let p = DigestParams::parse(value).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let realm = p
            .get("realm")
            .ok_or_else(|| AuthError::Malformed("no realm".into()))?;
        let nonce = p
            .get("nonce")
            .ok_or_else(|| AuthError::Malformed("no nonce".into()))?;
        let algorithm = match p.get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or_else(|| AuthError::Algorithm(a.into()))?,
        };
        let qop_auth = match p.get("qop") {
            None => false,
            Some(q) if q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")) => true,
            Some(q) => return Err(AuthError::Qop(q.into())),
        };
        Ok(Challenge {
            realm: realm.into(),
            nonce: nonce.into(),
            opaque: p.get("opaque").map(str::to_string),
            algorithm,
            qop_auth,
            stale: p
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The Authorization / Proxy-Authorization value answering this challenge.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let alg = self.algorithm;
        let mut ha1 = alg.hash(&format!("{username}:{}:{password}", self.realm));
        if alg.sess() {
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash(&format!("{method}:{uri}"));
        let nc = format!("{nc:08x}");
        let response = if self.qop_auth {
            alg.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            alg.name()
        );
        if self.qop_auth {
            out.push_str(&format!(
                ", qop=auth, nc={nc}, cnonce=\"{}\"",
                quote(cnonce)
            ));
        }
        if let Some(o) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", quote(o)));
        }
        out
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc7616(alg: &str) -> String {
        let ch = Challenge::parse(&format!(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={alg}, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        ))
        .unwrap();
        ch.answer(
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            1,
            CNONCE,
        )
    }

    #[test]
    fn rfc7616_sha256_vector() {
        let a = rfc7616("SHA-256");
        assert!(
            a.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{a}"
        );
        assert!(a.contains("nc=00000001"), "{a}");
        assert!(a.contains("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""));
    }

    #[test]
    fn rfc7616_md5_vector() {
        let a = rfc7616("MD5");
        assert!(
            a.contains("response=\"8ca523f5e9506fed4657c9700eebdbec\""),
            "{a}"
        );
    }

    #[test]
    fn rfc2617_without_qop_and_nc_in_hex() {
        // RFC 2617 §3.5 with the RFC 2069 calculation (no qop).
        let ch = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"",
        )
        .unwrap();
        assert!(!ch.qop_auth);
        let a = ch.answer("Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "x");
        assert!(
            a.contains("response=\"670fd8c2df070c60b045671b8b24ff02\""),
            "{a}"
        );
        let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth\"").unwrap();
        assert!(
            ch.answer("u", "p", "REGISTER", "sip:r", 26, "c")
                .contains("nc=0000001a")
        );
    }

    #[test]
    fn challenge_parsing() {
        let ch =
            Challenge::parse("Digest realm=\"a\", nonce=\"b\", stale=TRUE, algorithm=sha-256-sess")
                .unwrap();
        assert!(ch.stale);
        assert_eq!(ch.algorithm, Algorithm::Sha256Sess);
        assert!(matches!(
            Challenge::parse("Digest realm=\"a\", nonce=\"b\", algorithm=SHA-512"),
            Err(AuthError::Algorithm(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"a\", nonce=\"b\", qop=\"auth-int\""),
            Err(AuthError::Qop(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest nonce=\"b\""),
            Err(AuthError::Malformed(_))
        ));
    }
}
