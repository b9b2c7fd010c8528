//! The bearer token the TCP listener asks for (the Unix socket relies on file permissions).

use tonic::{Request, Status};

use crate::config::Secret;

/// `authorization: Bearer TOKEN`, compared in constant time so that the reply's timing
/// says nothing about how much of a guess was right.
pub(super) fn check(req: &Request<()>, token: &Secret) -> Result<(), Status> {
    let Some(value) = req.metadata().get("authorization") else {
        return Err(Status::unauthenticated(
            "missing authorization: send \"authorization: Bearer <token>\"",
        ));
    };
    let given = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        Ok(())
    } else {
        Err(Status::unauthenticated("wrong token"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(!x) ^ x);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(a) = auth {
            r.metadata_mut().insert("authorization", a.parse().unwrap());
        }
        r
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let t = Secret::new("0123456789abcdef".into());
        assert!(check(&req(Some("Bearer 0123456789abcdef")), &t).is_ok());
        for bad in [
            None,
            Some("Bearer 0123456789abcdeF"),
            Some("Bearer 0123456789abcde"),
            Some("Bearer 0123456789abcdef0"),
            Some("0123456789abcdef"),
            Some("Bearer "),
        ] {
            let e = check(&req(bad), &t).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
    }
}
