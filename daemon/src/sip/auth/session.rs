//! The digest credentials a chain of requests carries: a dialog's, or a request's resends.
//! Challenges answered once are answered again on every later request (RFC 3261 §22.3), so
//! a proxy that challenges every request is asked once per nonce, not once per request.

use std::sync::Arc;

use super::{Algorithm, AuthError, Challenge};
use crate::sip::message::{Name, Request, Response};
use crate::sip::transaction::random_token;

/// How many times one request is resent for challenges (stale nonces, several proxies)
/// before it is given up: enough for a proxy and a far UA, never a loop.
const MAX_ROUNDS: u8 = 4;

/// What a user agent answers challenges with.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Arc<str>,
    /// Only challenges for this realm are answered when set.
    pub realm: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// Why a challenged request cannot be resent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("authentication required ({code}) and no password to answer with")]
    NoCredentials { code: u16 },
    #[error("challenged ({code}) for realm {realm:?} again: wrong username or password")]
    Rejected { code: u16, realm: String },
    #[error("challenged ({code}) with nothing voipd can answer{}", .why.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
    Unanswerable { code: u16, why: Option<AuthError> },
    #[error("challenged ({code}) {MAX_ROUNDS} times for one request")]
    TooMany { code: u16 },
}

fn strength(a: Algorithm) -> u8 {
    match a {
        Algorithm::Md5 | Algorithm::Md5Sess => 1,
        Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
    }
}

#[derive(Debug, Clone)]
struct Entry {
    header: Name,
    challenge: Challenge,
    nc: u32,
    /// Answered in response to a challenge to the current request: a second challenge for
    /// the same realm (not stale) means the password is wrong.
    fresh: bool,
}

/// The challenges a chain of requests answers, per realm, with their nonce counts.
#[derive(Debug, Clone, Default)]
pub struct AuthSession {
    entries: Vec<Entry>,
    rounds: u8,
}

impl AuthSession {
    /// Takes in a 401/407 to the current request. Ok: resend it (with a new CSeq), after
    /// [`AuthSession::authorize`]. Several challenges (a proxy's and the far side's, or two
    /// forking proxies') are all answered.
    pub fn challenged(
        &mut self,
        resp: &Response,
        creds: Option<&Credentials>,
    ) -> Result<(), ChallengeError> {
        let code = resp.code;
        let (header, answer) = match code {
            401 => (Name::WwwAuthenticate, Name::Authorization),
            407 => (Name::ProxyAuthenticate, Name::ProxyAuthorization),
            _ => return Err(ChallengeError::Unanswerable { code, why: None }),
        };
        let creds = creds.ok_or(ChallengeError::NoCredentials { code })?;
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return Err(ChallengeError::TooMany { code });
        }
        let mut why = None;
        let challenges: Vec<Challenge> = resp
            .headers
            .all(&header)
            .filter_map(|v| Challenge::parse(v).map_err(|e| why = Some(e)).ok())
            .filter(|c| creds.realm.as_ref().is_none_or(|r| *r == c.realm))
            .collect();
        if challenges.is_empty() {
            return Err(ChallengeError::Unanswerable { code, why });
        }
        // One answer per realm: a server offering SHA-256 and MD5 (RFC 8760) gets the
        // stronger; a second challenge in the same response is no refusal.
        let mut best: Vec<Challenge> = Vec::new();
        for ch in challenges {
            match best.iter_mut().find(|b| b.realm == ch.realm) {
                Some(b) if strength(ch.algorithm) > strength(b.algorithm) => *b = ch,
                Some(_) => {}
                None => best.push(ch),
            }
        }
        for ch in best {
            let known = self
                .entries
                .iter_mut()
                .find(|e| e.header == answer && e.challenge.realm == ch.realm);
            match known {
                Some(e) if e.fresh && !ch.stale => {
                    return Err(ChallengeError::Rejected {
                        code,
                        realm: ch.realm,
                    });
                }
                Some(e) => {
                    *e = Entry {
                        header: answer.clone(),
                        challenge: ch,
                        nc: 0,
                        fresh: true,
                    }
                }
                None => self.entries.push(Entry {
                    header: answer.clone(),
                    challenge: ch,
                    nc: 0,
                    fresh: true,
                }),
            }
        }
        Ok(())
    }

    /// A new request in the chain: challenges to it start afresh.
    pub fn next_request(&mut self) {
        self.rounds = 0;
        for e in &mut self.entries {
            e.fresh = false;
        }
    }

    /// Puts the answers to every challenge taken so far on `req` (replacing any it had).
    pub fn authorize(&mut self, req: &mut Request, creds: Option<&Credentials>) {
        req.headers.remove(&Name::Authorization);
        req.headers.remove(&Name::ProxyAuthorization);
        let Some(creds) = creds else { return };
        let uri = req.uri.to_string();
        for e in &mut self.entries {
            e.nc += 1;
            let value = e.challenge.answer(
                &creds.username,
                &creds.password,
                req.method.as_str(),
                &uri,
                e.nc,
                &random_token(16),
            );
            req.headers.push(e.header.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Method, request};

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@a.example>;tag=a1\r\nTo: <sip:bob@b.example>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    fn invite() -> Request {
        request(INVITE)
    }

    fn creds() -> Credentials {
        Credentials {
            username: "alice".into(),
            password: "pw".into(),
            realm: None,
        }
    }

    fn challenge(code: u16, values: &[&str]) -> Response {
        let mut r = invite().response(code, "Unauthorized");
        let name = if code == 401 {
            Name::WwwAuthenticate
        } else {
            Name::ProxyAuthenticate
        };
        for v in values {
            r.headers.push(name.clone(), *v);
        }
        r
    }

    #[test]
    fn answers_every_realm_and_keeps_answering_with_counting_nc() {
        let mut s = AuthSession::default();
        let c = creds();
        s.challenged(
            &challenge(
                407,
                &[
                    "Digest realm=\"p1\", nonce=\"n1\", qop=\"auth\"",
                    "Digest realm=\"p2\", nonce=\"n2\"",
                ],
            ),
            Some(&c),
        )
        .unwrap();
        // The far side challenges too: both kinds go on the resend.
        s.challenged(
            &challenge(401, &["Digest realm=\"ua\", nonce=\"n3\""]),
            Some(&c),
        )
        .unwrap();
        let mut req = invite();
        s.authorize(&mut req, Some(&c));
        assert_eq!(req.headers.all(&Name::ProxyAuthorization).count(), 2);
        assert_eq!(req.headers.all(&Name::Authorization).count(), 1);
        // A later request in the dialog carries them again, the nonce count one up.
        s.next_request();
        let mut bye = invite();
        bye.method = Method::Bye;
        s.authorize(&mut bye, Some(&c));
        let p1 = bye.headers.all(&Name::ProxyAuthorization).next().unwrap();
        assert!(p1.contains("nc=00000002"), "{p1}");
        assert_eq!(bye.headers.all(&Name::ProxyAuthorization).count(), 2);
    }

    #[test]
    fn a_second_challenge_for_the_same_realm_is_a_wrong_password_unless_stale() {
        let mut s = AuthSession::default();
        let c = creds();
        let first = challenge(407, &["Digest realm=\"p\", nonce=\"n1\""]);
        s.challenged(&first, Some(&c)).unwrap();
        // A new nonce but not stale: the answer was refused.
        let again = challenge(407, &["Digest realm=\"p\", nonce=\"n2\""]);
        assert_eq!(
            s.challenged(&again, Some(&c)),
            Err(ChallengeError::Rejected {
                code: 407,
                realm: "p".into()
            })
        );
        let mut s = AuthSession::default();
        s.challenged(&first, Some(&c)).unwrap();
        let stale = challenge(407, &["Digest realm=\"p\", nonce=\"n2\", stale=true"]);
        s.challenged(&stale, Some(&c)).unwrap();
        // A carried answer challenged on a later request is answered anew.
        s.next_request();
        s.challenged(&again, Some(&c)).unwrap();
    }

    #[test]
    fn two_algorithms_for_one_realm_get_one_answer_the_stronger() {
        let mut s = AuthSession::default();
        s.challenged(
            &challenge(
                401,
                &[
                    "Digest realm=\"r\", nonce=\"n\", algorithm=MD5",
                    "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
                ],
            ),
            Some(&creds()),
        )
        .unwrap();
        let mut req = invite();
        s.authorize(&mut req, Some(&creds()));
        let a: Vec<&str> = req.headers.all(&Name::Authorization).collect();
        assert_eq!(a.len(), 1);
        assert!(a[0].contains("algorithm=SHA-256"), "{a:?}");
    }

    #[test]
    fn stale_loops_and_missing_credentials_end() {
        let mut s = AuthSession::default();
        let stale = challenge(401, &["Digest realm=\"p\", nonce=\"n\", stale=true"]);
        for _ in 0..MAX_ROUNDS {
            s.challenged(&stale, Some(&creds())).unwrap();
        }
        assert_eq!(
            s.challenged(&stale, Some(&creds())),
            Err(ChallengeError::TooMany { code: 401 })
        );
        assert_eq!(
            AuthSession::default().challenged(&stale, None),
            Err(ChallengeError::NoCredentials { code: 401 })
        );
        let other = Credentials {
            realm: Some("elsewhere".into()),
            ..creds()
        };
        assert!(matches!(
            AuthSession::default().challenged(&stale, Some(&other)),
            Err(ChallengeError::Unanswerable { code: 401, .. })
        ));
    }
}
