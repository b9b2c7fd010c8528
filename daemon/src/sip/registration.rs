//! Keeping one account registered (RFC 3261 §10, RFC 5626): REGISTER with digest
//! authentication, refresh before expiry, 423 Min-Expires, failover across outbound
//! proxies, exponential backoff with jitter, keepalives that notice a lost registrar or a
//! changed NAT binding, and un-REGISTER when told to stop.
//!
//! Each account is one task that sleeps between actions: no polling, no thread.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use crate::sip::auth::{AuthSession, ChallengeError, Credentials};
use crate::sip::capabilities::{ALLOW, SUPPORTED};
use crate::sip::message::{Headers, Method, Name, NameAddr, Request, Response, SipHeaders};
use crate::sip::transaction::{Endpoint, TxError, random_token};
use crate::sip::transport::{Proto, Target};
use crate::sip::uri::{SipUri, Uri};

/// The account as registration needs it; the core makes it from the configuration.
#[derive(Debug, Clone)]
pub struct RegAccount {
    pub id: String,
    /// The address of record: registered, and its host is the registrar.
    pub aor: SipUri,
    pub display_name: Option<String>,
    pub credentials: Option<Credentials>,
    /// Tried in order: the second is the failover.
    pub outbound_proxy: Vec<SipUri>,
    pub expires: u32,
    /// Seconds between keepalives; None: 25 on UDP, 90 on TCP and TLS; 0: none.
    pub keepalive_secs: Option<u32>,
    pub enabled: bool,
}

/// What the owner of an account sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegState {
    /// Not registered, and not trying (disabled, or unregistered on request).
    Unregistered,
    Registering,
    Registered {
        until: SystemTime,
        registrar: Target,
    },
    /// The registrar refused (wrong password, unknown user, …); retried rarely.
    Failed {
        code: u16,
        reason: String,
        retry_at: SystemTime,
    },
    /// The registrar could not be reached or was busy; retried with backoff.
    BackingOff {
        code: Option<u16>,
        reason: String,
        retry_at: SystemTime,
    },
}

impl RegState {
    /// Its name as the faces show it (D-Bus, MQTT).
    pub fn name(&self) -> &'static str {
        match self {
            RegState::Unregistered => "unregistered",
            RegState::Registering => "registering",
            RegState::Registered { .. } => "registered",
            RegState::Failed { .. } => "failed",
            RegState::BackingOff { .. } => "backing_off",
        }
    }
}

#[derive(Debug)]
pub enum RegCommand {
    /// Register now, whatever the state.
    Register,
    /// Un-REGISTER and stay unregistered until told otherwise.
    Unregister,
    /// Un-REGISTER (if registered) and end the task; answers when done.
    Stop(oneshot::Sender<()>),
}

/// The owner's side of a registration task.
pub struct RegHandle {
    pub commands: mpsc::Sender<RegCommand>,
}

/// Backoff after transient failures: 2 s doubling to 60 s; after refusals 300 s doubling
/// to an hour. Each with ±20 % jitter so that many clients do not retry in step.
const TRANSIENT_BASE: Duration = Duration::from_secs(2);
const TRANSIENT_MAX: Duration = Duration::from_secs(60);
const REFUSED_BASE: Duration = Duration::from_secs(300);
const REFUSED_MAX: Duration = Duration::from_secs(3600);
/// A 423 can be answered this many times in a row before we give up.
const MAX_423: u32 = 3;

fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.min(16)).min(max);
    let jitter = 0.8 + fastrand::f64() * 0.4;
    exp.mul_f64(jitter)
}

/// Refresh well before expiry: at 80 %, and at least 5 s early when there is room.
fn refresh_after(granted: Duration) -> Duration {
    let early = granted.mul_f64(0.8);
    if granted > Duration::from_secs(25) {
        early.min(granted - Duration::from_secs(5))
    } else {
        early.max(Duration::from_millis(500))
    }
}

enum Outcome {
    Registered {
        granted: Duration,
        registrar: Target,
        public: Option<SocketAddr>,
        /// The registrar saw us at another address than our Contact says (a NAT): the
        /// binding cannot reach us and is to be registered again at once.
        contact_stale: bool,
    },
    Transient {
        code: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    },
    Refused {
        code: u16,
        reason: String,
    },
}

/// Where REGISTERs go and what they say. Everything derived from the account config.
struct Binding {
    account: RegAccount,
    instance: String,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The challenges answered, answered again on refreshes without a round trip.
    auth: AuthSession,
    /// Which outbound proxy is in use (failover moves to the next).
    proxy_index: usize,
    /// The hop's DNS targets (RFC 3263) as first found, and the one in use: kept until
    /// all have failed, so that refreshes go to the same registrar.
    targets: Vec<Target>,
    target_index: usize,
    /// The registrar's 200 listed our binding recognisably, so that a binding query can
    /// tell whether it still has it; else keepalives are OPTIONS.
    queryable: bool,
    /// The Contact the registrar holds for us; when our public address moves, the new
    /// REGISTER removes it.
    registered_contact: Option<String>,
}

impl Binding {
    fn registrar_uri(&self) -> SipUri {
        self.account.aor.domain()
    }

    /// The URI we send to: the current outbound proxy, else the registrar.
    fn next_hop(&self) -> SipUri {
        match self.account.outbound_proxy.get(self.proxy_index) {
            Some(p) => p.clone(),
            None => self.registrar_uri(),
        }
    }

    /// The next of the hop's DNS targets; after the last, the next outbound proxy (and a
    /// new lookup).
    fn fail_over(&mut self) {
        self.target_index += 1;
        if self.target_index < self.targets.len() {
            return;
        }
        self.target_index = 0;
        self.targets.clear();
        if self.account.outbound_proxy.len() > 1 {
            self.proxy_index = (self.proxy_index + 1) % self.account.outbound_proxy.len();
        }
    }

    fn keepalive(&self, proto: Proto) -> Option<Duration> {
        let secs = self.account.keepalive_secs.unwrap_or(match proto {
            Proto::Udp => 25,
            Proto::Tcp | Proto::Tls => 90,
        });
        (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
    }
}

pub fn spawn(
    ep: Endpoint,
    account: RegAccount,
    instance: String,
    updates: mpsc::Sender<(String, RegState)>,
) -> RegHandle {
    let (commands, rx) = mpsc::channel(8);
    let binding = Binding {
        instance,
        call_id: format!("{}@voipd", random_token(20)),
        from_tag: random_token(10),
        cseq: 0,
        auth: AuthSession::default(),
        proxy_index: 0,
        targets: Vec::new(),
        target_index: 0,
        queryable: false,
        registered_contact: None,
        account,
    };
    tokio::spawn(
        Task {
            ep,
            b: binding,
            updates,
            rx,
        }
        .run(),
    );
    RegHandle { commands }
}

struct Task {
    ep: Endpoint,
    b: Binding,
    updates: mpsc::Sender<(String, RegState)>,
    rx: mpsc::Receiver<RegCommand>,
}

/// What the task waits for next.
enum Next {
    Register,
    Idle,
}

impl Task {
    async fn report(&self, s: RegState) {
        let _ = self.updates.send((self.b.account.id.clone(), s)).await;
    }

    async fn run(mut self) {
        let mut failures = 0u32;
        let mut next = if self.b.account.enabled {
            Next::Register
        } else {
            Next::Idle
        };
        let mut at = Instant::now();
        // While registered: the flow we registered over and the public address seen.
        let mut flow: Option<Target> = None;
        let mut public: Option<SocketAddr> = None;
        let mut closed = self.ep.transport().closed_flows();
        loop {
            let keepalive_at = flow
                .and_then(|f| self.b.keepalive(f.proto))
                .map(|k| Instant::now() + k);
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(RegCommand::Register) => { next = Next::Register; at = Instant::now(); failures = 0; continue; }
                    Some(RegCommand::Unregister) => {
                        if flow.take().is_some() { self.unregister().await; }
                        next = Next::Idle;
                        self.report(RegState::Unregistered).await;
                        continue;
                    }
                    Some(RegCommand::Stop(done)) => {
                        if flow.is_some() { self.unregister().await; }
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        if flow.is_some() { self.unregister().await; }
                        return;
                    }
                },
                Ok(gone) = closed.recv(), if flow.is_some() => {
                    if Some(gone) == flow {
                        tracing::info!(account = %self.b.account.id, "connection to the registrar {gone} closed; registering again");
                        flow = None;
                        next = Next::Register;
                        at = Instant::now() + Duration::from_secs(1);
                    }
                    continue;
                }
                () = sleep_until(keepalive_at.unwrap_or(at)), if keepalive_at.is_some_and(|k| k < at) => {
                    let Some(f) = flow else { continue };
                    match self.keepalive(f).await {
                        Ok(seen) => {
                            if seen.is_some() && seen != public {
                                tracing::info!(account = %self.b.account.id, "public address changed from {:?} to {:?}; registering again", public, seen);
                                if let Some(local) = self.ep.transport().local_for(f) {
                                    self.ep.transport().learn_public(local, f, seen);
                                }
                                next = Next::Register;
                                at = Instant::now();
                            }
                        }
                        Err(why) => {
                            tracing::warn!(account = %self.b.account.id, "keepalive to {f} failed ({why}); registering again");
                            flow = None;
                            next = Next::Register;
                            at = Instant::now();
                        }
                    }
                    continue;
                }
                () = sleep_until(at), if matches!(next, Next::Register) => {}
            }
            // Time to (re-)register.
            if flow.is_none() {
                self.report(RegState::Registering).await;
            }
            match self.register(self.b.account.expires).await {
                Outcome::Registered {
                    granted,
                    registrar,
                    public: seen,
                    contact_stale,
                } => {
                    failures = 0;
                    flow = Some(registrar);
                    public = seen;
                    at = Instant::now() + refresh_after(granted);
                    if contact_stale {
                        tracing::info!(account = %self.b.account.id, "behind a NAT: {registrar} sees us as {}; registering with that address", seen.map_or("?".into(), |a| a.to_string()));
                        at = Instant::now();
                    }
                    tracing::info!(account = %self.b.account.id, "registered at {registrar} for {}s", granted.as_secs());
                    self.report(RegState::Registered {
                        until: SystemTime::now() + granted,
                        registrar,
                    })
                    .await;
                }
                Outcome::Transient {
                    code,
                    reason,
                    retry_after,
                } => {
                    flow = None;
                    self.b.fail_over();
                    let wait = retry_after
                        .unwrap_or_else(|| backoff(TRANSIENT_BASE, TRANSIENT_MAX, failures));
                    failures += 1;
                    at = Instant::now() + wait;
                    tracing::warn!(account = %self.b.account.id, "registration failed ({reason}); retrying in {}s", wait.as_secs());
                    self.report(RegState::BackingOff {
                        code,
                        reason,
                        retry_at: SystemTime::now() + wait,
                    })
                    .await;
                }
                Outcome::Refused { code, reason } => {
                    flow = None;
                    let wait = backoff(REFUSED_BASE, REFUSED_MAX, failures);
                    failures += 1;
                    at = Instant::now() + wait;
                    tracing::error!(account = %self.b.account.id, "registration refused: {code} {reason}; retrying in {}s", wait.as_secs());
                    self.report(RegState::Failed {
                        code,
                        reason,
                        retry_at: SystemTime::now() + wait,
                    })
                    .await;
                }
            }
        }
    }

    async fn unregister(&mut self) {
        // Bounded: a registrar that does not answer must not hold up a shutdown.
        let _ = tokio::time::timeout(Duration::from_secs(3), self.register(0)).await;
        tracing::info!(account = %self.b.account.id, "unregistered");
    }

    /// A CRLF ping (TCP), or over UDP a binding query (or an OPTIONS, with a registrar
    /// whose answers do not show our binding recognisably). Returns the public address the
    /// far side saw, when it says; an error when the flow or our binding is gone.
    async fn keepalive(&mut self, flow: Target) -> Result<Option<SocketAddr>, String> {
        if flow.proto.reliable() {
            self.ep
                .send_stateless(flow, b"\r\n\r\n".to_vec())
                .await
                .map_err(|e| e.to_string())?;
            return Ok(None);
        }
        if self.b.queryable {
            return self.query(flow).await;
        }
        let mut req = self.base_request(Method::Options, Uri::Sip(self.b.next_hop()));
        req.headers
            .set(Name::To, format!("<{}>", self.b.registrar_uri()));
        let mut tx = self
            .ep
            .request(req, flow)
            .await
            .map_err(|e| e.to_string())?;
        // Any final answer proves the flow works; only silence means it does not.
        match tx.final_response().await {
            Ok(r) => Ok(public_address(&r)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A REGISTER without Contact asks the registrar which bindings it holds (RFC 3261
    /// §10.2.3). Unlike an OPTIONS answer, which a registrar that restarted and lost our
    /// binding gives just the same, it proves that calls can still reach us.
    async fn query(&mut self, flow: Target) -> Result<Option<SocketAddr>, String> {
        let ours = NameAddr::parse(&self.contact(flow).unwrap_or_default())
            .map_err(|e| e.to_string())?
            .uri;
        let ruri = Uri::Sip(self.b.registrar_uri());
        self.b.auth.next_request();
        loop {
            let mut req = self.base_request(Method::Register, ruri.clone());
            self.b
                .auth
                .authorize(&mut req, self.b.account.credentials.as_ref());
            let resp = self.transact(req, flow).await.map_err(|e| e.to_string())?;
            match resp.code {
                200..=299 if holds_binding(&resp, &self.b.instance, &ours) => {
                    return Ok(public_address(&resp));
                }
                200..=299 => return Err("the registrar no longer has our binding".into()),
                401 | 407 => {
                    let creds = self.b.account.credentials.as_ref();
                    self.b
                        .auth
                        .challenged(&resp, creds)
                        .map_err(|e| e.to_string())?;
                }
                _ => return Err(format!("{} {}", resp.code, resp.reason)),
            }
        }
    }

    fn base_request(&mut self, method: Method, uri: Uri) -> Request {
        let a = &self.b.account;
        self.b.cseq += 1;
        let mut h = Headers::default();
        h.push(Name::MaxForwards, "70");
        let mut from = NameAddr::new(Uri::Sip(a.aor.clone()));
        from.display = a.display_name.clone();
        let mut to = from.clone();
        from.set_param("tag", Some(self.b.from_tag.clone()));
        to.params.clear();
        h.push(Name::From, from.to_string());
        h.push(Name::To, to.to_string());
        h.push(Name::CallId, self.b.call_id.clone());
        h.push(Name::CSeq, format!("{} {method}", self.b.cseq));
        if let Some(p) = a.outbound_proxy.get(self.b.proxy_index) {
            let mut route = p.clone();
            if route.param("lr").is_none() {
                route.params.push(("lr".into(), None));
            }
            h.push(Name::Route, format!("<{route}>"));
        }
        Request {
            method,
            uri,
            headers: h,
            body: Vec::new(),
        }
    }

    /// Our Contact towards `target`, at the address it sees us at (a NAT's public side,
    /// once the registrar has told us); None without a socket to reach it.
    fn contact(&self, target: Target) -> Option<String> {
        let at = self.ep.transport().public_for(target)?;
        let user = self.b.account.aor.user.clone().unwrap_or_default();
        let transport = match target.proto {
            Proto::Udp => String::new(),
            p => format!(";transport={}", p.param()),
        };
        Some(format!(
            "<sip:{user}@{at}{transport}>;+sip.instance=\"<{}>\";reg-id=1",
            self.b.instance
        ))
    }

    /// One registration (or with `expires` 0, un-registration), through challenges and 423.
    async fn register(&mut self, expires: u32) -> Outcome {
        let hop = self.b.next_hop();
        if self.b.targets.is_empty() {
            match self.ep.locator().locate(&hop).await {
                Ok(t) => self.b.targets = t,
                Err(reason) => {
                    return Outcome::Transient {
                        code: None,
                        reason,
                        retry_after: None,
                    };
                }
            }
        }
        // locate() never gives an empty list; index 0 of a fresh one.
        let Some(&target) = self.b.targets.get(self.b.target_index) else {
            self.b.fail_over();
            return Outcome::Transient {
                code: None,
                reason: format!("no address for {hop}"),
                retry_after: None,
            };
        };
        let (Some(local), Some(contact)) =
            (self.ep.transport().local_for(target), self.contact(target))
        else {
            return Outcome::Transient {
                code: None,
                reason: format!(
                    "no local {} socket to reach {}",
                    target.proto.param(),
                    target.addr
                ),
                retry_after: None,
            };
        };
        // Un-registering removes the binding the registrar holds, whatever our address is
        // now.
        let contact = match (&self.b.registered_contact, expires) {
            (Some(held), 0) => held.clone(),
            _ => contact,
        };
        // A binding at an address we no longer have is dropped in the same request.
        let stale = self
            .b
            .registered_contact
            .clone()
            .filter(|old| *old != contact && expires > 0)
            .and_then(|old| NameAddr::parse(&old).ok())
            .map(|old| format!("<{}>;expires=0", old.uri));
        let ours = NameAddr::parse(&contact).map(|c| c.uri).ok();
        let ruri = Uri::Sip(self.b.registrar_uri());
        let mut expires = expires;
        let mut tries_423 = 0u32;
        self.b.auth.next_request();
        loop {
            let mut req = self.base_request(Method::Register, ruri.clone());
            req.headers.push(Name::Contact, contact.clone());
            if let Some(old) = &stale {
                req.headers.push(Name::Contact, old.clone());
            }
            req.headers.push(Name::Expires, expires.to_string());
            req.headers.push(Name::Supported, SUPPORTED);
            req.headers.push(Name::Allow, ALLOW);
            self.b
                .auth
                .authorize(&mut req, self.b.account.credentials.as_ref());
            let resp = match self.transact(req, target).await {
                Ok(r) => r,
                Err(TxError::Timeout) => {
                    return Outcome::Transient {
                        code: None,
                        reason: format!("no answer from {target}"),
                        retry_after: None,
                    };
                }
                Err(e) => {
                    return Outcome::Transient {
                        code: None,
                        reason: e.to_string(),
                        retry_after: None,
                    };
                }
            };
            match resp.code {
                200..=299 => {
                    self.b.queryable = ours
                        .as_ref()
                        .is_some_and(|o| holds_binding(&resp, &self.b.instance, o));
                    self.b.registered_contact = (expires > 0).then(|| contact.clone());
                    let public = public_address(&resp);
                    let contact_stale = target.proto == Proto::Udp
                        && self.ep.transport().learn_public(local, target, public)
                        && expires > 0;
                    return Outcome::Registered {
                        granted: Duration::from_secs(u64::from(granted_expires(
                            &resp,
                            &self.b.instance,
                            expires,
                        ))),
                        registrar: target,
                        public,
                        contact_stale,
                    };
                }
                401 | 407 => {
                    // A second challenge for a realm answered in this exchange means the
                    // credentials are wrong, unless the nonce only went stale; one for an
                    // answer kept from before (a restarted registrar) is answered anew.
                    let creds = self.b.account.credentials.as_ref();
                    if let Err(e) = self.b.auth.challenged(&resp, creds) {
                        self.b.auth = AuthSession::default();
                        let reason = match e {
                            ChallengeError::Rejected { .. } => {
                                format!("{} (wrong username or password?)", resp.reason)
                            }
                            other => other.to_string(),
                        };
                        return Outcome::Refused {
                            code: resp.code,
                            reason,
                        };
                    }
                }
                423 => {
                    let min = resp
                        .headers
                        .get(&Name::MinExpires)
                        .and_then(|v| v.trim().parse::<u32>().ok());
                    tries_423 += 1;
                    match min {
                        Some(m) if m > expires && tries_423 <= MAX_423 => expires = m,
                        _ => {
                            return Outcome::Refused {
                                code: 423,
                                reason: "Interval Too Brief, without a usable Min-Expires".into(),
                            };
                        }
                    }
                }
                408 | 480 | 500..=599 => {
                    return Outcome::Transient {
                        code: Some(resp.code),
                        reason: format!("{} {}", resp.code, resp.reason),
                        retry_after: retry_after(&resp),
                    };
                }
                _ => {
                    return Outcome::Refused {
                        code: resp.code,
                        reason: resp.reason.clone(),
                    };
                }
            }
        }
    }

    async fn transact(&self, req: Request, target: Target) -> Result<Response, TxError> {
        let mut tx = self.ep.request(req, target).await?;
        loop {
            let r = tx.response().await?;
            if r.code >= 200 {
                return Ok(r);
            }
        }
    }
}

/// The expiry the registrar granted our binding: our Contact's `expires`, else the
/// Expires header, else what we asked for.
fn granted_expires(resp: &Response, instance: &str, asked: u32) -> u32 {
    let ours = resp
        .headers
        .all(&Name::Contact)
        .filter_map(|c| NameAddr::parse(c).ok())
        .find(|c| {
            c.param("+sip.instance")
                .flatten()
                .is_some_and(|v| v.trim_matches('"').trim_matches(['<', '>']) == instance)
        });
    let from_contact = ours.and_then(|c| c.param("expires").flatten().and_then(|v| v.parse().ok()));
    from_contact
        .or_else(|| {
            resp.headers
                .get(&Name::Expires)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(asked)
}

/// Whether a registrar's answer lists our binding: by instance id (RFC 5626), else by
/// our Contact's user, host and port.
fn holds_binding(resp: &Response, instance: &str, ours: &Uri) -> bool {
    let key = |u: &crate::sip::uri::SipUri| {
        (
            u.user.clone(),
            u.host.to_string().to_ascii_lowercase(),
            u.port,
        )
    };
    let ours = match ours {
        Uri::Sip(u) => Some(key(u)),
        _ => None,
    };
    resp.headers
        .all(&Name::Contact)
        .filter_map(|c| NameAddr::parse(c).ok())
        .any(|c| {
            let by_instance = c
                .param("+sip.instance")
                .flatten()
                .is_some_and(|v| v.trim_matches('"').trim_matches(['<', '>']) == instance);
            let by_address = match &c.uri {
                Uri::Sip(u) => ours.as_ref().is_some_and(|o| *o == key(u)),
                _ => false,
            };
            by_instance || by_address
        })
}

fn public_address(resp: &Response) -> Option<SocketAddr> {
    let via = resp.top_via()?;
    let ip = via.received()?.parse().ok()?;
    let port = via.rport().flatten().or(via.port)?;
    Some(SocketAddr::new(ip, port))
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers.get(&Name::RetryAfter)?;
    let secs: u64 = v.split([';', '(', ' ']).next()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.clamp(1, REFUSED_MAX.as_secs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        for f in 0..20 {
            let d = backoff(TRANSIENT_BASE, TRANSIENT_MAX, f);
            let nominal = TRANSIENT_BASE
                .saturating_mul(1 << f.min(16))
                .min(TRANSIENT_MAX);
            assert!(
                d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2),
                "{f}: {d:?}"
            );
        }
        assert!(backoff(REFUSED_BASE, REFUSED_MAX, 0) >= Duration::from_secs(240));
    }

    #[test]
    fn refresh_comes_before_expiry() {
        assert_eq!(
            refresh_after(Duration::from_secs(600)),
            Duration::from_secs(480)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(30)),
            Duration::from_secs(24)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(10)),
            Duration::from_secs(8)
        );
        assert!(refresh_after(Duration::from_secs(0)) > Duration::ZERO);
    }

    #[test]
    fn granted_expiry_prefers_our_contact() {
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=192.0.2.9;rport=4000\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:a@10.0.0.2>;expires=900;+sip.instance=\"<urn:uuid:other>\"\r\n\
Contact: <sip:a@10.0.0.1>;expires=120;+sip.instance=\"<urn:uuid:me>\"\r\nExpires: 3600\r\nRetry-After: 30 (busy)\r\n\r\n";
        let Ok(crate::sip::message::Message::Response(r)) =
            crate::sip::message::parse(text.as_bytes())
        else {
            panic!()
        };
        assert_eq!(granted_expires(&r, "urn:uuid:me", 600), 120);
        assert_eq!(granted_expires(&r, "urn:uuid:nobody", 600), 3600);
        assert_eq!(public_address(&r), Some("192.0.2.9:4000".parse().unwrap()));
        assert_eq!(retry_after(&r), Some(Duration::from_secs(30)));
        let ours = |s: &str| Uri::Sip(s.parse().unwrap());
        assert!(holds_binding(&r, "urn:uuid:me", &ours("sip:a@192.0.2.1")));
        assert!(holds_binding(&r, "urn:uuid:x", &ours("sip:a@10.0.0.2")));
        assert!(!holds_binding(
            &r,
            "urn:uuid:x",
            &ours("sip:a@10.0.0.2:5070")
        ));
        assert!(!holds_binding(&r, "urn:uuid:x", &ours("sip:b@10.0.0.2")));
    }
}
