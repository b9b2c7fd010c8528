//! Calls: one task per call, joining a SIP dialog and a media session. The core's task
//! keeps the list and routes in-dialog requests by Call-ID; each call task reports its
//! state back, and the core turns reports into events.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::config::{Account, AnswerMode, AudioEndpoint, Codec};
use crate::media::session::{MediaParams, MediaSession, MediaStats, bind};
use crate::sdp::{self, Direction, Negotiated, Sdp};
use crate::sip::capabilities::{ALLOW, SUPPORTED};
use crate::sip::dialog::Dialog;
use crate::sip::message::{
    Headers, Method, Name, NameAddr, Request, Response, SipHeaders, reason_phrase,
};
use crate::sip::resolve::resolve;
use crate::sip::transaction::{ClientTx, Endpoint, TuRequest, TxError, random_token};
use crate::sip::transport::Target;
use crate::sip::uri::{SipUri, Uri};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    Incoming,
    Outgoing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    Dialing,
    Ringing,
    Active,
    Ended { code: u16, reason: String },
}

/// A call as the faces show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub id: u64,
    pub account: Option<String>,
    pub remote_uri: String,
    pub remote_name: Option<String>,
    pub direction: CallDirection,
    pub state: CallState,
    pub started: SystemTime,
    pub answered: Option<SystemTime>,
    pub codec: Option<String>,
    pub stats: MediaStats,
}

#[derive(Debug)]
pub(super) enum CallCommand {
    Answer,
    Hangup,
    Request(Box<TuRequest>),
}

/// What a call task needs from the core.
#[derive(Clone)]
pub(super) struct CallContext {
    pub ep: Endpoint,
    pub input: AudioEndpoint,
    pub output: AudioEndpoint,
    pub updates: mpsc::Sender<CallInfo>,
}

struct Call {
    ctx: CallContext,
    info: CallInfo,
    commands: mpsc::Receiver<CallCommand>,
    codecs: Vec<Codec>,
}

fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::Pcmu => "PCMU",
        Codec::Pcma => "PCMA",
        Codec::G722 => "G722",
        Codec::Opus => "opus",
    }
}

fn params(n: &Negotiated) -> MediaParams {
    MediaParams {
        codec: n.codec,
        pt: n.pt,
        remote: n.remote,
        send: matches!(n.direction, Direction::SendRecv | Direction::SendOnly),
        receive: matches!(n.direction, Direction::SendRecv | Direction::RecvOnly),
    }
}

fn contact(user: &str, local: SocketAddr, target: Target) -> String {
    let transport = if target.proto.reliable() {
        ";transport=tcp"
    } else {
        ""
    };
    format!("<sip:{user}@{local}{transport}>")
}

impl Call {
    async fn report(&self) {
        let _ = self.ctx.updates.send(self.info.clone()).await;
    }

    async fn set(&mut self, state: CallState) {
        if let CallState::Ended { code, reason } = &state {
            tracing::info!(call = self.info.id, "call ended: {code} {reason}");
        }
        self.info.state = state;
        self.report().await;
    }

    async fn end(&mut self, code: u16, reason: impl Into<String>) {
        self.set(CallState::Ended {
            code,
            reason: reason.into(),
        })
        .await;
    }

    /// The active call: media runs, in-dialog requests are answered, until one side ends it.
    async fn established(&mut self, mut dialog: Dialog, media: MediaSession, our_sdp: Sdp) {
        self.info.answered = Some(SystemTime::now());
        self.set(CallState::Active).await;
        let (code, reason) = loop {
            let Some(cmd) = self.commands.recv().await else {
                break (200, "daemon stopped".to_string());
            };
            match cmd {
                CallCommand::Hangup => {
                    let bye = dialog.request(Method::Bye, None);
                    match dialog.next_hop().await {
                        Ok(hop) => {
                            if let Ok(tx) = self.ctx.ep.request(bye, hop).await {
                                let _ = final_response(tx).await;
                            }
                        }
                        Err(e) => tracing::warn!(call = self.info.id, "cannot send BYE: {e}"),
                    }
                    break (200, "hung up".into());
                }
                CallCommand::Answer => {}
                CallCommand::Request(tu) => {
                    let req = &tu.request;
                    match req.method {
                        Method::Ack => {}
                        Method::Bye => {
                            tu.tx.respond(req.response(200, "OK")).await;
                            break (200, "the other side hung up".into());
                        }
                        Method::Invite => {
                            // A re-INVITE (hold, resume, new address): answer from the
                            // same port and follow the new description.
                            let resp = match Sdp::parse(&req.body).ok().and_then(|offer| {
                                sdp::answer(
                                    &offer,
                                    &self.codecs,
                                    our_sdp.origin_addr,
                                    our_sdp.media[0].port,
                                    our_sdp.session_id,
                                )
                                .ok()
                            }) {
                                Some((answer, n)) => {
                                    media.update(params(&n));
                                    let mut r = req.response(200, "OK");
                                    r.headers.push(Name::Contact, dialog.contact.clone());
                                    r.headers.push(Name::ContentType, "application/sdp");
                                    r.body = answer.to_string().into_bytes();
                                    r
                                }
                                None => req.response(488, reason_phrase(488)),
                            };
                            tu.tx.respond(resp).await;
                        }
                        _ => {
                            let mut r = req.response(501, reason_phrase(501));
                            r.headers.push(Name::Allow, ALLOW);
                            tu.tx.respond(r).await;
                        }
                    }
                }
            }
        };
        self.info.stats = media.stop().await;
        self.end(code, reason).await;
    }
}

async fn final_response(mut tx: ClientTx) -> Result<Response, TxError> {
    loop {
        let r = tx.response().await?;
        if r.code >= 200 {
            return Ok(r);
        }
    }
}

/// Starts an outgoing call to `uri` from `account` (or as a direct IP call without one).
pub(super) fn dial(
    ctx: CallContext,
    id: u64,
    account: Option<Account>,
    uri: SipUri,
    sip_call_id: String,
) -> mpsc::Sender<CallCommand> {
    let (tx, rx) = mpsc::channel(16);
    let info = CallInfo {
        id,
        account: account.as_ref().map(|a| a.id.to_string()),
        remote_uri: uri.to_string(),
        remote_name: None,
        direction: CallDirection::Outgoing,
        state: CallState::Dialing,
        started: SystemTime::now(),
        answered: None,
        codec: None,
        stats: MediaStats::default(),
    };
    let codecs = account
        .as_ref()
        .map_or_else(|| vec![Codec::Pcmu, Codec::Pcma], |a| a.codecs.clone());
    let call = Call {
        ctx,
        info,
        commands: rx,
        codecs,
    };
    tokio::spawn(outgoing(call, account, uri, sip_call_id));
    tx
}

async fn outgoing(mut call: Call, account: Option<Account>, uri: SipUri, sip_call_id: String) {
    call.report().await;
    let proxy = account
        .as_ref()
        .and_then(|a| a.outbound_proxy.first())
        .map(|p| p.0.clone());
    let target = match resolve(proxy.as_ref().unwrap_or(&uri)).await {
        Ok(t) => t,
        Err(e) => return call.end(404, e).await,
    };
    let Some(local) = call.ctx.ep.transport().local_for(target) else {
        return call
            .end(503, format!("no local socket to reach {target}"))
            .await;
    };
    let rtp = match bind(local.ip()).await {
        Ok(s) => s,
        Err(e) => return call.end(500, format!("no RTP port: {e}")).await,
    };
    let rtp_port = rtp.local_addr().map_or(0, |a| a.port());
    let offer = sdp::offer(
        &call.codecs,
        local.ip(),
        rtp_port,
        u64::from(fastrand::u32(..)),
        Direction::SendRecv,
    );
    let user = account
        .as_ref()
        .and_then(|a| a.aor.0.user.clone())
        .unwrap_or_else(|| "voipd".into());
    let our_contact = contact(&user, local, target);
    let mut from = match &account {
        Some(a) => NameAddr::new(Uri::Sip(a.aor.0.clone())),
        None => NameAddr::new(Uri::Sip(SipUri {
            user: Some(user.clone()),
            ..uri_for(local)
        })),
    };
    from.display = account.as_ref().and_then(|a| a.display_name.clone());
    from.set_param("tag", Some(random_token(10)));
    let mut h = Headers::default();
    h.push(Name::MaxForwards, "70");
    h.push(Name::From, from.to_string());
    h.push(Name::To, format!("<{uri}>"));
    h.push(Name::CallId, sip_call_id);
    h.push(Name::CSeq, "1 INVITE");
    h.push(Name::Contact, our_contact.clone());
    if let Some(p) = &proxy {
        let mut route = p.clone();
        if route.param("lr").is_none() {
            route.params.push(("lr".into(), None));
        }
        h.push(Name::Route, format!("<{route}>"));
    }
    h.push(Name::Allow, ALLOW);
    h.push(Name::Supported, SUPPORTED);
    h.push(Name::ContentType, "application/sdp");
    let invite = Request {
        method: Method::Invite,
        uri: Uri::Sip(uri.clone()),
        headers: h,
        body: offer.to_string().into_bytes(),
    };
    let mut tx = match call.ctx.ep.request(invite.clone(), target).await {
        Ok(tx) => tx,
        Err(e) => return call.end(503, e.to_string()).await,
    };
    let mut cancelled = false;
    let ok = loop {
        tokio::select! {
            r = tx.response() => match r {
                Ok(r) if r.code < 200 => {
                    if r.code > 100 && call.info.state == CallState::Dialing {
                        call.set(CallState::Ringing).await;
                    }
                }
                Ok(r) if r.code < 300 => break r,
                Ok(r) => {
                    let reason = if cancelled { "cancelled".to_string() } else { r.reason.clone() };
                    return call.end(r.code, reason).await;
                }
                Err(TxError::Timeout) => return call.end(408, "no answer").await,
                Err(e) => return call.end(503, e.to_string()).await,
            },
            cmd = call.commands.recv(), if !cancelled => match cmd {
                Some(CallCommand::Hangup) | None => {
                    cancelled = true;
                    match call.ctx.ep.cancel(&tx).await {
                        Ok(c) => { tokio::spawn(final_response(c)); }
                        Err(e) => return call.end(487, format!("cancelled ({e})")).await,
                    }
                }
                Some(CallCommand::Request(tu)) => {
                    tu.tx.respond(tu.request.response(481, reason_phrase(481))).await;
                }
                Some(CallCommand::Answer) => {}
            },
        }
    };
    // 2xx: confirm it with an ACK, then media.
    let Some(mut dialog) = Dialog::from_response(&invite, &ok, our_contact) else {
        return call
            .end(502, "the 200 OK lacks a To tag or a Contact")
            .await;
    };
    let ack = dialog.request(Method::Ack, Some(1));
    match dialog.next_hop().await {
        Ok(hop) => {
            if let Err(e) = call.ctx.ep.send_ack(ack, hop).await {
                tracing::warn!(call = call.info.id, "ACK not sent: {e}");
            }
        }
        Err(e) => tracing::warn!(call = call.info.id, "ACK not sent: {e}"),
    }
    call.info.remote_name = ok.to().and_then(|t| t.display);
    let negotiated = Sdp::parse(&ok.body)
        .map_err(|e| e.to_string())
        .and_then(|ans| sdp::read_answer(&offer, &ans).map_err(|e| e.to_string()));
    let n = match negotiated {
        Ok(n) => n,
        Err(e) => {
            // Unusable answer: the call cannot carry audio; end it properly.
            let bye = dialog.request(Method::Bye, None);
            if let Ok(hop) = dialog.next_hop().await
                && let Ok(tx) = call.ctx.ep.request(bye, hop).await
            {
                let _ = final_response(tx).await;
            }
            return call.end(488, format!("bad SDP answer: {e}")).await;
        }
    };
    call.info.codec = Some(codec_name(n.codec).into());
    let media = MediaSession::start(rtp, params(&n), &call.ctx.input, &call.ctx.output);
    if cancelled {
        // The callee answered as we cancelled: the call exists, so end it with a BYE.
        let bye = dialog.request(Method::Bye, None);
        if let Ok(hop) = dialog.next_hop().await
            && let Ok(tx) = call.ctx.ep.request(bye, hop).await
        {
            let _ = final_response(tx).await;
        }
        call.info.stats = media.stop().await;
        return call.end(487, "cancelled").await;
    }
    call.established(dialog, media, offer).await;
}

fn uri_for(local: SocketAddr) -> SipUri {
    SipUri {
        scheme: crate::sip::uri::Scheme::Sip,
        user: None,
        password: None,
        host: match local.ip() {
            std::net::IpAddr::V4(v) => crate::sip::uri::Host::V4(v),
            std::net::IpAddr::V6(v) => crate::sip::uri::Host::V6(v),
        },
        port: Some(local.port()),
        params: Vec::new(),
        headers: None,
    }
}

/// Takes an incoming INVITE (out of dialog) as a new call.
pub(super) fn incoming(
    ctx: CallContext,
    id: u64,
    account: Option<Account>,
    tu: TuRequest,
) -> mpsc::Sender<CallCommand> {
    let (tx, rx) = mpsc::channel(16);
    let from = tu.request.from();
    let info = CallInfo {
        id,
        account: account.as_ref().map(|a| a.id.to_string()),
        remote_uri: from
            .as_ref()
            .map_or_else(String::new, |f| f.uri.to_string()),
        remote_name: from.and_then(|f| f.display),
        direction: CallDirection::Incoming,
        state: CallState::Ringing,
        started: SystemTime::now(),
        answered: None,
        codec: None,
        stats: MediaStats::default(),
    };
    let codecs = account
        .as_ref()
        .map_or_else(|| vec![Codec::Pcmu, Codec::Pcma], |a| a.codecs.clone());
    let call = Call {
        ctx,
        info,
        commands: rx,
        codecs,
    };
    tokio::spawn(answer_flow(call, account, tu));
    tx
}

async fn answer_flow(mut call: Call, account: Option<Account>, tu: TuRequest) {
    let req = tu.request.clone();
    let local_tag = random_token(10);
    let respond = |code: u16, reason: &str| {
        let mut r = req.response(code, reason);
        if let Some(to) = req.headers.get(&Name::To) {
            r.headers
                .set_first(Name::To, format!("{to};tag={local_tag}"));
        }
        r
    };
    let offer = match Sdp::parse(&req.body) {
        Ok(o) => o,
        Err(e) => {
            let reason = if req.body.is_empty() {
                "offerless INVITE is not supported yet".to_string()
            } else {
                format!("bad SDP: {e}")
            };
            tu.tx.respond(respond(488, reason_phrase(488))).await;
            return call.end(488, reason).await;
        }
    };
    let mode = account
        .as_ref()
        .map_or(AnswerMode::Manual, |a| a.answer.mode);
    if mode == AnswerMode::Dnd {
        tu.tx.respond(respond(486, reason_phrase(486))).await;
        return call.end(486, "do not disturb").await;
    }
    let Some(local) = call.ctx.ep.transport().local_for(tu.from) else {
        tu.tx.respond(respond(500, reason_phrase(500))).await;
        return call.end(500, "no local address").await;
    };
    let user = account
        .as_ref()
        .and_then(|a| a.aor.0.user.clone())
        .unwrap_or_else(|| "voipd".into());
    let our_contact = contact(&user, local, tu.from);
    let mut ringing = respond(180, "Ringing");
    ringing.headers.push(Name::Contact, our_contact.clone());
    tu.tx.respond(ringing).await;
    // Even when answering at once, frontends and hooks hear of the call first.
    call.report().await;

    let delay = match mode {
        AnswerMode::Auto => Some(Duration::from_millis(u64::from(
            account.as_ref().map_or(0, |a| a.answer.delay_ms),
        ))),
        _ => None,
    };
    let auto = async {
        match delay {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(auto);
    loop {
        tokio::select! {
            () = &mut auto => break,
            () = tu.tx.cancelled() => {
                tu.tx.respond(respond(487, reason_phrase(487))).await;
                return call.end(487, "cancelled by the caller").await;
            }
            cmd = call.commands.recv() => match cmd {
                Some(CallCommand::Answer) => break,
                Some(CallCommand::Hangup) | None => {
                    tu.tx.respond(respond(603, reason_phrase(603))).await;
                    return call.end(603, "rejected").await;
                }
                Some(CallCommand::Request(other)) => {
                    other.tx.respond(other.request.response(481, reason_phrase(481))).await;
                }
            },
        }
    }

    let rtp = match bind(local.ip()).await {
        Ok(s) => s,
        Err(e) => {
            tu.tx.respond(respond(500, reason_phrase(500))).await;
            return call.end(500, format!("no RTP port: {e}")).await;
        }
    };
    let rtp_port = rtp.local_addr().map_or(0, |a| a.port());
    let (answer, n) = match sdp::answer(
        &offer,
        &call.codecs,
        local.ip(),
        rtp_port,
        u64::from(fastrand::u32(..)),
    ) {
        Ok(x) => x,
        Err(e) => {
            tu.tx.respond(respond(488, reason_phrase(488))).await;
            return call.end(488, e.to_string()).await;
        }
    };
    let mut ok = respond(200, "OK");
    ok.headers.push(Name::Contact, our_contact.clone());
    ok.headers.push(Name::Allow, ALLOW);
    ok.headers.push(Name::Supported, SUPPORTED);
    ok.headers.push(Name::ContentType, "application/sdp");
    ok.body = answer.to_string().into_bytes();
    let Some(dialog) = Dialog::from_request(&req, &local_tag, our_contact) else {
        tu.tx.respond(respond(400, reason_phrase(400))).await;
        return call.end(400, "INVITE without Contact").await;
    };
    call.info.codec = Some(codec_name(n.codec).into());
    let media = MediaSession::start(rtp, params(&n), &call.ctx.input, &call.ctx.output);

    // RFC 3261 §13.3.1.4: the UAS retransmits the 2xx until the ACK comes.
    let t = call.ctx.ep.timers();
    let mut interval = t.t1;
    let give_up = tokio::time::Instant::now() + 64 * t.t1;
    tu.tx.respond(ok.clone()).await;
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {
                if tokio::time::Instant::now() >= give_up {
                    tracing::warn!(call = call.info.id, "no ACK for our 200 OK; ending the call");
                    let mut d = dialog.clone();
                    let bye = d.request(Method::Bye, None);
                    if let Ok(hop) = d.next_hop().await && let Ok(tx) = call.ctx.ep.request(bye, hop).await {
                        let _ = final_response(tx).await;
                    }
                    call.info.stats = media.stop().await;
                    return call.end(408, "no ACK").await;
                }
                tu.tx.respond(ok.clone()).await;
                interval = (interval * 2).min(t.t2);
            }
            cmd = call.commands.recv() => match cmd {
                Some(CallCommand::Request(r)) if r.request.method == Method::Ack => break,
                Some(CallCommand::Request(r)) if r.request.method == Method::Bye => {
                    r.tx.respond(r.request.response(200, "OK")).await;
                    call.info.stats = media.stop().await;
                    return call.end(200, "the other side hung up").await;
                }
                Some(CallCommand::Request(r)) => {
                    r.tx.respond(r.request.response(491, "Request Pending")).await;
                }
                Some(CallCommand::Hangup) | None => {
                    // Hang up once confirmed; an ACK usually follows within a moment.
                    call.info.stats = media.stop().await;
                    return call.end(200, "hung up before the ACK").await;
                }
                Some(CallCommand::Answer) => {}
            },
        }
    }
    call.established(dialog, media, answer).await;
}
