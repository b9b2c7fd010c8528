//! The offer/answer model (RFC 3264) for one audio stream, with SDES keys (RFC 4568)
//! when its media is encrypted.

use std::net::{IpAddr, SocketAddr};

use super::crypto::Crypto;
use super::{Direction, IceDescription, Media, RtpMap, Sdp};
use crate::config::MediaEncryptionPolicy;
use crate::media::codec::Codec;
use crate::media::dtls::{DtlsParams, DtlsRole, Fingerprint, our_fingerprint};
use crate::media::srtp::{SrtpKeys, SrtpSuite};

/// What an account asks of media encryption, as negotiation needs it.
#[derive(Debug, Clone, Copy)]
pub struct Security<'a> {
    pub policy: MediaEncryptionPolicy,
    /// Suites offered, in order, and the ones taken from an offer.
    pub suites: &'a [SrtpSuite],
}

impl Security<'_> {
    /// Clear RTP, as a call with no account has it.
    pub const CLEAR: Security<'static> = Security {
        policy: MediaEncryptionPolicy::None,
        suites: &SrtpSuite::ALL,
    };
}

/// The payload type we offer for RFC 4733 telephone events.
const DTMF_PT: u8 = 101;

/// What both sides agreed on for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    pub pt: u8,
    /// telephone-event payload type, if both sides do RFC 4733.
    pub dtmf_pt: Option<u8>,
    /// Where to send RTP. Port 0 or address 0.0.0.0 means: send nothing.
    pub remote: SocketAddr,
    /// The direction from our side: what we may do.
    pub direction: Direction,
    /// The far side's fmtp for the codec (Opus: useinbandfec, usedtx, …).
    pub fmtp: Option<String>,
    /// The stream's `mid`, what the call's media session keys it by.
    pub mid: String,
    /// SRTP keys, when the stream is encrypted with SDES.
    pub srtp: Option<SrtpKeys>,
    /// The DTLS handshake to key it, with DTLS-SRTP.
    pub dtls: Option<DtlsParams>,
    /// The far side's ICE for the stream, when it runs ICE.
    pub ice: Option<IceDescription>,
    /// RTCP goes on the RTP port, both ways (RFC 5761): the RTCP port is not used.
    pub rtcp_mux: bool,
}

impl Negotiated {
    /// Whether an fmtp parameter is set to 1 (`useinbandfec=1`).
    pub fn fmtp_flag(&self, name: &str) -> bool {
        self.fmtp.as_deref().is_some_and(|f| {
            f.split(';')
                .filter_map(|kv| kv.split_once('='))
                .any(|(k, v)| k.trim().eq_ignore_ascii_case(name) && v.trim() == "1")
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("no audio stream offered")]
    NoAudio,
    #[error("no video stream there")]
    NoVideo,
    #[error("no codec in common (offered: {0})")]
    NoCommonCodec(String),
    #[error("the stream has no address")]
    NoAddress,
    #[error("{0}")]
    BadCrypto(String),
    #[error("no SRTP suite in common (offered: {0})")]
    NoCommonSuite(String),
    #[error("media encryption is required and the offer has none")]
    EncryptionRequired,
    #[error("media encryption is required and the answer has none")]
    Unencrypted,
    #[error("{0}")]
    BadDtls(String),
    #[error("no key for SRTP: {0}")]
    Keys(String),
}

fn our_pt(c: Codec) -> u8 {
    c.info().pt
}

fn codec_of(map: &RtpMap) -> Option<Codec> {
    Codec::from_rtpmap(&map.encoding, map.clock_rate)
}

fn rtpmap_for(c: Codec, pt: u8) -> RtpMap {
    let info = c.info();
    RtpMap {
        pt,
        encoding: info.encoding.into(),
        clock_rate: info.clock,
        channels: info.channels,
    }
}

fn audio(
    formats: Vec<u8>,
    rtpmaps: Vec<RtpMap>,
    port: u16,
    dtmf: Option<u8>,
    dir: Direction,
    proto: &str,
    crypto: Vec<String>,
) -> Media {
    let mut fmtps = Vec::new();
    if let Some(r) = rtpmaps.iter().find(|r| r.encoding == "opus") {
        fmtps.push((r.pt, "useinbandfec=1".to_string()));
    }
    if let Some(pt) = dtmf {
        fmtps.push((pt, "0-16".to_string()));
    }
    Media {
        kind: "audio".into(),
        port,
        proto: proto.into(),
        formats,
        rtpmaps,
        fmtps,
        direction: dir,
        connection: None,
        ptime: Some(20),
        crypto,
        other_attrs: Vec::new(),
    }
}

fn session(addr: IpAddr, id: u64, version: u64, media: Vec<Media>) -> Sdp {
    Sdp {
        origin_user: "voipd".into(),
        session_id: id,
        session_version: version,
        origin_addr: addr,
        session_name: "voipd".into(),
        connection: Some(addr),
        attrs: Vec::new(),
        media,
    }
}

/// Our offer: every usable codec, then telephone-event; with fresh SDES keys, one per
/// suite, when the account encrypts (in RTP/SAVP when it must, RTP/AVP when it may).
pub fn offer(
    codecs: &[Codec],
    addr: IpAddr,
    port: u16,
    id: u64,
    direction: Direction,
    security: Security<'_>,
) -> Result<Sdp, NegotiationError> {
    let mut formats = Vec::new();
    let mut maps = Vec::new();
    for &c in codecs {
        let pt = our_pt(c);
        formats.push(pt);
        maps.push(rtpmap_for(c, pt));
    }
    formats.push(DTMF_PT);
    maps.push(RtpMap {
        pt: DTMF_PT,
        encoding: "telephone-event".into(),
        clock_rate: 8000,
        channels: None,
    });
    let mut attrs = Vec::new();
    let (proto, crypto) = match security.policy {
        MediaEncryptionPolicy::None => ("RTP/AVP", Vec::new()),
        MediaEncryptionPolicy::Dtls => {
            let fp = our_fingerprint().map_err(|e| NegotiationError::Keys(e.to_string()))?;
            attrs = vec![
                format!("fingerprint:{}", fp.value()),
                "setup:actpass".into(),
            ];
            (DTLS_PROTO, Vec::new())
        }
        MediaEncryptionPolicy::Sdes | MediaEncryptionPolicy::SdesOptional => {
            let lines = (1..)
                .zip(security.suites)
                .map(|(tag, suite)| Crypto::generate(tag, *suite).map(|c| c.value()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| NegotiationError::Keys(e.to_string()))?;
            let proto = if security.policy.mandatory() {
                "RTP/SAVP"
            } else {
                "RTP/AVP"
            };
            (proto, lines)
        }
    };
    let mut m = audio(formats, maps, port, Some(DTMF_PT), direction, proto, crypto);
    m.other_attrs = attrs;
    // Offered always: one port and one socket per call where the far side takes it. The
    // RTCP port stays ours until the answer says (RFC 5761 §5.1.1).
    m.other_attrs.push(RTCP_MUX.into());
    Ok(session(addr, id, id, vec![m]))
}

/// The attribute that puts RTCP on the RTP port (RFC 5761 §5.1.1).
pub const RTCP_MUX: &str = "rtcp-mux";

/// Whether a media section says `a=rtcp-mux`.
fn says_mux(m: &Media) -> bool {
    m.other_attrs.iter().any(|a| a == RTCP_MUX)
}

/// The transport protocol of DTLS-SRTP (RFC 5764 §8).
const DTLS_PROTO: &str = "UDP/TLS/RTP/SAVP";

/// Whether a transport protocol is DTLS-SRTP's (with or without feedback).
pub(super) fn is_dtls(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVP")
        || proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF")
}

/// An attribute of `m`, or of the session when `m` has none (fingerprint and setup may be
/// either, RFC 8122 §5).
fn attr<'a>(sdp: &'a Sdp, m: &'a Media, name: &str) -> Option<&'a str> {
    let find = |attrs: &'a [String]| {
        attrs.iter().find_map(|a| {
            a.strip_prefix(name)
                .and_then(|v| v.strip_prefix(':'))
                .map(str::trim)
        })
    };
    find(&m.other_attrs).or_else(|| find(&sdp.attrs))
}

/// The far side's fingerprint and the role its a=setup leaves us (RFC 5763 §5): an
/// offer's `actpass` or `passive` makes us the client, `active` the server.
pub(super) fn dtls_of(
    sdp: &Sdp,
    m: &Media,
    answering: bool,
) -> Result<DtlsParams, NegotiationError> {
    let fp = attr(sdp, m, "fingerprint")
        .ok_or_else(|| NegotiationError::BadDtls("DTLS-SRTP without a=fingerprint".into()))?;
    let remote = Fingerprint::parse(fp).map_err(NegotiationError::BadDtls)?;
    let setup = attr(sdp, m, "setup").unwrap_or(if answering { "actpass" } else { "active" });
    let role = match setup.to_ascii_lowercase().as_str() {
        "active" => DtlsRole::Server,
        "passive" => DtlsRole::Client,
        // An answer may not say actpass (RFC 5763 §5); taken as leaving the choice to us.
        "actpass" => DtlsRole::Client,
        other => {
            return Err(NegotiationError::BadDtls(format!(
                "a=setup:{other} leaves no one to start the DTLS handshake"
            )));
        }
    };
    Ok(DtlsParams { role, remote })
}

/// A re-offer that leaves the roles open (`actpass`) with the same certificate keeps the
/// DTLS association that runs (RFC 8842 §5.5): we keep the role we had, and say so in our
/// answer, rather than start a new handshake mid-call.
pub fn keep_dtls_role(offer: &Sdp, ans: &mut Sdp, n: &mut Negotiated, before: Option<&DtlsParams>) {
    let (Some(old), Some(new)) = (before, n.dtls.as_mut()) else {
        return;
    };
    let Some(offered) = offer
        .media
        .iter()
        .enumerate()
        .find(|(i, m)| m.mid(*i) == n.mid)
        .map(|(_, m)| m)
    else {
        return;
    };
    if let Some(m) = in_use(ans) {
        keep_stream_dtls_role(offer, offered, m, new, old);
    }
}

/// As [`keep_dtls_role`], for one stream: `offered` is its section in the re-offer, `ours`
/// our answer to it, `new` what the offer alone would make of it, `before` what it had.
pub fn keep_stream_dtls_role(
    offer: &Sdp,
    offered: &Media,
    ours: &mut Media,
    new: &mut DtlsParams,
    before: &DtlsParams,
) {
    let actpass = attr(offer, offered, "setup").is_some_and(|s| s.eq_ignore_ascii_case("actpass"));
    if !actpass || before.remote != new.remote || before.role == new.role {
        return;
    }
    new.role = before.role;
    let setup = match before.role {
        DtlsRole::Client => "setup:active",
        DtlsRole::Server => "setup:passive",
    };
    for a in ours
        .other_attrs
        .iter_mut()
        .filter(|a| a.starts_with("setup:"))
    {
        *a = setup.to_string();
    }
}

/// The audio stream a description of ours has in use (not one it refused with port 0).
pub fn in_use(ours: &mut Sdp) -> Option<&mut Media> {
    ours.media
        .iter_mut()
        .find(|m| m.kind == "audio" && m.port != 0)
}

/// The audio section in use of a description we only read.
pub fn in_use_of(sdp: &Sdp) -> Option<&Media> {
    sdp.media.iter().find(|m| m.kind == "audio" && m.port != 0)
}

/// New keys in each of our offer's `a=crypto` lines: every offer carries fresh ones.
pub fn rekey(ours: &mut Sdp) -> Result<(), NegotiationError> {
    for m in &mut ours.media {
        for line in &mut m.crypto {
            if let Ok(Some(c)) = Crypto::parse(line) {
                let fresh = Crypto::generate(c.tag, c.suite)
                    .map_err(|e| NegotiationError::Keys(e.to_string()))?;
                *line = fresh.value();
            }
        }
    }
    Ok(())
}

/// The SDES line of an offer to take: the first in its order whose suite we take. A
/// malformed line of such a suite spoils the offer; lines of other suites are passed over.
fn pick_crypto(m: &Media, suites: &[SrtpSuite]) -> Result<Option<Crypto>, NegotiationError> {
    for line in &m.crypto {
        match Crypto::parse(line).map_err(NegotiationError::BadCrypto)? {
            Some(c) if suites.contains(&c.suite) => return Ok(Some(c)),
            _ => {}
        }
    }
    Ok(None)
}

/// Whether a transport protocol is SRTP's.
fn secure(proto: &str) -> bool {
    proto.contains("SAVP")
}

fn telephone_event(m: &Media) -> Option<u8> {
    m.formats.iter().copied().find(|pt| {
        m.rtpmap(*pt).is_some_and(|r| {
            r.encoding.eq_ignore_ascii_case("telephone-event") && r.clock_rate == 8000
        })
    })
}

fn fmtp_of(m: &Media, pt: u8) -> Option<String> {
    m.fmtps
        .iter()
        .find(|(p, _)| *p == pt)
        .map(|(_, f)| f.clone())
}

fn remote_of(sdp: &Sdp, m: &Media) -> Result<SocketAddr, NegotiationError> {
    let ip = sdp.media_addr(m).ok_or(NegotiationError::NoAddress)?;
    Ok(SocketAddr::new(ip, m.port))
}

/// How our answer keys an offered stream.
pub(super) struct Keying {
    /// The DTLS handshake's parameters, when the offer is DTLS-SRTP.
    pub(super) dtls: Option<DtlsParams>,
    /// SDES: the keys both ways, and our `a=crypto` line.
    pub(super) srtp: Option<SrtpKeys>,
    pub(super) crypto: Vec<String>,
    /// Our `a=fingerprint` and `a=setup` for DTLS-SRTP.
    pub(super) attrs: Vec<String>,
}

/// Keys for our answer to the offered stream `m`: DTLS-SRTP when offered, whatever the
/// account asks (it is encrypted); else SRTP when the offer has keys we take, unless the
/// account wants clear RTP and the offer allows it (RTP/AVP with keys: "best effort"
/// SRTP). A DTLS offer's `a=crypto` lines are not read. Err when the offer and the
/// account cannot agree: no suite in common for RTP/SAVP, or clear RTP where the account
/// must encrypt.
pub(super) fn answer_keying(
    offer: &Sdp,
    m: &Media,
    security: Security<'_>,
) -> Result<Keying, NegotiationError> {
    if is_dtls(&m.proto) {
        let d = dtls_of(offer, m, true)?;
        let fp = our_fingerprint().map_err(|e| NegotiationError::Keys(e.to_string()))?;
        let setup = match d.role {
            DtlsRole::Client => "active",
            DtlsRole::Server => "passive",
        };
        return Ok(Keying {
            dtls: Some(d),
            srtp: None,
            crypto: Vec::new(),
            attrs: vec![
                format!("fingerprint:{}", fp.value()),
                format!("setup:{setup}"),
            ],
        });
    }
    let theirs = match pick_crypto(m, security.suites)? {
        Some(c) if secure(&m.proto) || security.policy != MediaEncryptionPolicy::None => Some(c),
        _ if secure(&m.proto) => {
            let offered: Vec<&str> = m
                .crypto
                .iter()
                .filter_map(|l| l.split_ascii_whitespace().nth(1))
                .collect();
            return Err(NegotiationError::NoCommonSuite(offered.join(", ")));
        }
        _ if security.policy.mandatory() => return Err(NegotiationError::EncryptionRequired),
        _ => None,
    };
    let Some(c) = theirs else {
        return Ok(Keying {
            dtls: None,
            srtp: None,
            crypto: Vec::new(),
            attrs: Vec::new(),
        });
    };
    let ours =
        Crypto::generate(c.tag, c.suite).map_err(|e| NegotiationError::Keys(e.to_string()))?;
    Ok(Keying {
        dtls: None,
        crypto: vec![ours.value()],
        srtp: Some(SrtpKeys {
            suite: c.suite,
            local: ours.key,
            remote: c.key,
        }),
        attrs: Vec::new(),
    })
}

/// Answers an offer: the first offered codec we can use (the offerer's preference), and
/// telephone-event if offered. Streams we do not take are refused with port 0.
pub fn answer(
    offer: &Sdp,
    codecs: &[Codec],
    addr: IpAddr,
    port: u16,
    id: u64,
    security: Security<'_>,
) -> Result<(Sdp, Negotiated), NegotiationError> {
    let mut chosen = None;
    // One answer per offered stream, exactly: the call keeps this answer to its end.
    let mut media = Vec::with_capacity(offer.media.len());
    for (index, m) in offer.media.iter().enumerate() {
        let usable = m.proto.starts_with("RTP/") || is_dtls(&m.proto);
        let pick = (chosen.is_none() && m.kind == "audio" && m.port != 0 && usable)
            .then(|| {
                m.formats.iter().find_map(|pt| {
                    m.rtpmap(*pt)
                        .and_then(|r| codec_of(&r))
                        .filter(|c| codecs.contains(c))
                        .map(|c| (*pt, c))
                })
            })
            .flatten();
        match pick {
            Some((pt, codec)) => {
                let Keying {
                    dtls,
                    srtp,
                    crypto,
                    attrs,
                } = answer_keying(offer, m, security)?;
                let dtmf = telephone_event(m);
                let mut formats = vec![pt];
                let mut maps = vec![rtpmap_for(codec, pt)];
                if let Some(d) = dtmf {
                    formats.push(d);
                    maps.push(RtpMap {
                        pt: d,
                        encoding: "telephone-event".into(),
                        clock_rate: 8000,
                        channels: None,
                    });
                }
                let direction = m.direction.reverse();
                let mid = m.mid(index);
                let ice = IceDescription::of(offer, m);
                // Not with ICE: our agent checks RTCP as a component of its own.
                let rtcp_mux = says_mux(m) && ice.is_none();
                chosen = Some(Negotiated {
                    codec,
                    pt,
                    dtmf_pt: dtmf,
                    remote: remote_of(offer, m)?,
                    direction,
                    fmtp: fmtp_of(m, pt),
                    mid: mid.clone(),
                    srtp,
                    dtls: dtls.clone(),
                    ice,
                    rtcp_mux,
                });
                let mut ours = audio(formats, maps, port, dtmf, direction, &m.proto, crypto);
                ours.other_attrs.extend(attrs);
                if rtcp_mux {
                    ours.other_attrs.push(RTCP_MUX.into());
                }
                if m.other_attrs.iter().any(|a| a.starts_with("mid:")) {
                    ours.other_attrs.push(format!("mid:{mid}"));
                }
                media.push(ours);
            }
            None => media.push(m.refused()),
        }
    }
    let negotiated = chosen.ok_or_else(|| {
        if offer.media.iter().any(|m| m.kind == "audio") {
            let offered: Vec<String> = offer
                .media
                .iter()
                .flat_map(|m| {
                    m.formats
                        .iter()
                        .map(move |pt| m.rtpmap(*pt).map_or(pt.to_string(), |r| r.encoding))
                })
                .collect();
            NegotiationError::NoCommonCodec(offered.join(", "))
        } else {
            NegotiationError::NoAudio
        }
    })?;
    Ok((session(addr, id, id, media), negotiated))
}

/// Reads the answer to our offer.
pub fn read_answer(ours: &Sdp, answer: &Sdp) -> Result<Negotiated, NegotiationError> {
    let offered = ours
        .media
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)
        .ok_or(NegotiationError::NoAudio)?;
    let (index, m) = answer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.kind == "audio" && m.port != 0)
        .ok_or(NegotiationError::NoAudio)?;
    let srtp = answer_keys(offered, m)?;
    let dtls = match (is_dtls(&offered.proto), is_dtls(&m.proto)) {
        (true, true) => Some(dtls_of(answer, m, false)?),
        // We offered DTLS-SRTP only when the account asks for encryption.
        (true, false) => return Err(NegotiationError::Unencrypted),
        _ => None,
    };
    let (pt, codec) = m
        .formats
        .iter()
        .find_map(|pt| {
            let r = m.rtpmap(*pt).or_else(|| offered.rtpmap(*pt))?;
            codec_of(&r)
                .filter(|c| our_pt(*c) == *pt || offered.formats.contains(pt))
                .map(|c| (*pt, c))
        })
        .ok_or_else(|| NegotiationError::NoCommonCodec(format!("{:?}", m.formats)))?;
    Ok(Negotiated {
        codec,
        pt,
        dtmf_pt: telephone_event(m),
        remote: remote_of(answer, m)?,
        direction: m.direction.reverse(),
        fmtp: fmtp_of(m, pt),
        mid: m.mid(index),
        srtp,
        dtls,
        ice: IceDescription::of(answer, m),
        rtcp_mux: says_mux(offered) && says_mux(m),
    })
}

/// The SRTP keys an answer gives for our offer `offered`: its one `a=crypto` line must
/// answer one of ours (its tag and suite, or the suite alone), else there are none, and that is only fine
/// when we offered clear RTP too (RTP/AVP).
pub(super) fn answer_keys(
    offered: &Media,
    m: &Media,
) -> Result<Option<SrtpKeys>, NegotiationError> {
    if offered.crypto.is_empty() {
        return Ok(None);
    }
    let Some(line) = m.crypto.first() else {
        return if secure(&offered.proto) {
            Err(NegotiationError::Unencrypted)
        } else {
            Ok(None)
        };
    };
    let theirs = Crypto::parse(line)
        .map_err(NegotiationError::BadCrypto)?
        .ok_or_else(|| {
            // Not the line itself: it holds the far side's key.
            NegotiationError::BadCrypto(format!(
                "a=crypto tag {} is not one we offered",
                line.split_ascii_whitespace().next().unwrap_or_default()
            ))
        })?;
    let mut offers: Vec<Crypto> = offered
        .crypto
        .iter()
        .filter_map(|l| Crypto::parse(l).ok().flatten())
        .collect();
    // RFC 4568 §7.1.3 wants our tag back with its suite; some answer under a tag of
    // their own (baresip 1.0 with ICE answers before reading our offer, always tag 1). The
    // suite, which we offered once, names our key as well.
    let at = offers
        .iter()
        .position(|c| c.tag == theirs.tag && c.suite == theirs.suite)
        .or_else(|| {
            let by_suite = offers.iter().position(|c| c.suite == theirs.suite);
            if let Some(i) = by_suite {
                tracing::debug!(
                    "a=crypto answer tag {} for our tag {} ({})",
                    theirs.tag,
                    offers[i].tag,
                    theirs.suite
                );
            }
            by_suite
        })
        .ok_or_else(|| {
            NegotiationError::BadCrypto(format!(
                "a=crypto tag {} ({}) answers none of ours",
                theirs.tag, theirs.suite
            ))
        })?;
    let ours = offers.swap_remove(at);
    Ok(Some(SrtpKeys {
        suite: theirs.suite,
        local: ours.key,
        remote: theirs.key,
    }))
}
