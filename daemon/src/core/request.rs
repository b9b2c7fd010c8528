//! Requests we start outside a dialog (INVITE, MESSAGE): where they go (the account's
//! outbound proxy, else the target itself) and the headers every one of them carries.

use std::net::SocketAddr;

use crate::config::Account;
use crate::sip::auth::Credentials;
use crate::sip::message::{Headers, Method, Name, NameAddr, Request};
use crate::sip::transaction::{Endpoint, random_token};
use crate::sip::transport::Target;
use crate::sip::uri::{Host, Scheme, SipUri, Uri};

pub(super) struct Outbound {
    pub target: Target,
    /// The targets to fail over to, in order (RFC 3263 §4.3).
    pub alternatives: Vec<Target>,
    /// Our address towards `target`.
    pub local: SocketAddr,
    /// Our address as `target` sees it, for Contact: behind a NAT, its public side.
    pub public: SocketAddr,
    /// The user part we speak as: the account's, else "voipd".
    pub user: String,
    /// From (with a fresh tag), To, Call-ID, CSeq, Max-Forwards and Route; no body.
    pub request: Request,
}

/// Resolves where a `method` from `account` to `uri` goes and starts the request; on
/// failure the SIP status to report (404 unresolvable, 503 unreachable) and why.
pub(super) async fn outbound(
    ep: &Endpoint,
    method: Method,
    account: Option<&Account>,
    uri: &SipUri,
    call_id: &str,
    cseq: u32,
) -> Result<Outbound, (u16, String)> {
    let proxy = account
        .and_then(|a| a.outbound_proxy.first())
        .map(|p| p.0.clone());
    let mut alternatives = ep
        .locator()
        .locate(proxy.as_ref().unwrap_or(uri))
        .await
        .map_err(|e| (404, e))?;
    let target = alternatives.remove(0);
    // The request's Contact (and a call's SDP) are made for the first target's transport
    // and address family: only targets like it are worth failing over to.
    alternatives.retain(|a| a.proto == target.proto && a.addr.is_ipv4() == target.addr.is_ipv4());
    let local = ep
        .transport()
        .local_for(target)
        .ok_or_else(|| (503, format!("no local socket to reach {target}")))?;
    let public = ep.transport().public_for(target).unwrap_or(local);
    let user = account
        .and_then(|a| a.aor.0.user.clone())
        .unwrap_or_else(|| "voipd".into());
    let mut from = match account {
        Some(a) => NameAddr::new(Uri::Sip(a.aor.0.clone())),
        None => NameAddr::new(Uri::Sip(uri_for(local, user.clone()))),
    };
    from.display = account.and_then(|a| a.display_name.clone());
    from.set_param("tag", Some(random_token(10)));
    let mut h = Headers::default();
    h.push(Name::MaxForwards, "70");
    h.push(Name::From, from.to_string());
    h.push(Name::To, format!("<{uri}>"));
    h.push(Name::CallId, call_id);
    h.push(Name::CSeq, format!("{cseq} {}", method.as_str()));
    if let Some(p) = proxy {
        let mut route = p;
        if route.param("lr").is_none() {
            route.params.push(("lr".into(), None));
        }
        h.push(Name::Route, format!("<{route}>"));
    }
    Ok(Outbound {
        target,
        alternatives,
        local,
        public,
        user,
        request: Request {
            method,
            uri: Uri::Sip(uri.clone()),
            headers: h,
            body: Vec::new(),
        },
    })
}

/// What the account answers digest challenges with; None without a password.
pub(super) fn credentials(account: &Account) -> Option<Credentials> {
    Some(Credentials {
        username: account.username.clone(),
        password: account.password.as_ref()?.expose().into(),
        realm: account.realm.clone(),
    })
}

/// sip:user@ our address, for a request made without an account.
pub(super) fn uri_for(local: SocketAddr, user: String) -> SipUri {
    SipUri {
        scheme: Scheme::Sip,
        user: Some(user),
        password: None,
        host: match local.ip() {
            std::net::IpAddr::V4(v) => Host::V4(v),
            std::net::IpAddr::V6(v) => Host::V6(v),
        },
        port: Some(local.port()),
        params: Vec::new(),
        headers: None,
    }
}
