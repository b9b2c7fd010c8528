//! The offer/answer model (RFC 3264) for one audio stream.

use std::net::{IpAddr, SocketAddr};

use super::{Direction, Media, RtpMap, Sdp};
use crate::config::Codec;

/// The payload types we offer for RFC 4733 telephone events and for Opus.
const DTMF_PT: u8 = 101;
const OPUS_PT: u8 = 111;

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
    #[error("no codec in common (offered: {0})")]
    NoCommonCodec(String),
    #[error("the stream has no address")]
    NoAddress,
}

fn our_pt(c: Codec) -> u8 {
    match c {
        Codec::Pcmu => 0,
        Codec::Pcma => 8,
        Codec::G722 => 9,
        Codec::Opus => OPUS_PT,
    }
}

fn codec_of(map: &RtpMap) -> Option<Codec> {
    match (map.encoding.to_ascii_uppercase().as_str(), map.clock_rate) {
        ("PCMU", 8000) => Some(Codec::Pcmu),
        ("PCMA", 8000) => Some(Codec::Pcma),
        ("G722", 8000) => Some(Codec::G722),
        ("OPUS", 48000) => Some(Codec::Opus),
        _ => None,
    }
}

fn rtpmap_for(c: Codec, pt: u8) -> RtpMap {
    let (encoding, clock_rate) = match c {
        Codec::Pcmu => ("PCMU", 8000),
        Codec::Pcma => ("PCMA", 8000),
        Codec::G722 => ("G722", 8000),
        Codec::Opus => ("opus", 48000),
    };
    RtpMap {
        pt,
        encoding: encoding.into(),
        clock_rate,
        channels: matches!(c, Codec::Opus).then_some(2),
    }
}

fn audio(
    formats: Vec<u8>,
    rtpmaps: Vec<RtpMap>,
    port: u16,
    dtmf: Option<u8>,
    dir: Direction,
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
        proto: "RTP/AVP".into(),
        formats,
        rtpmaps,
        fmtps,
        direction: dir,
        connection: None,
        ptime: Some(20),
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
        media,
    }
}

/// Our offer: every usable codec, then telephone-event.
pub fn offer(codecs: &[Codec], addr: IpAddr, port: u16, id: u64, direction: Direction) -> Sdp {
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
    session(
        addr,
        id,
        id,
        vec![audio(formats, maps, port, Some(DTMF_PT), direction)],
    )
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

/// Answers an offer: the first offered codec we can use (the offerer's preference), and
/// telephone-event if offered. Streams we do not take are refused with port 0.
pub fn answer(
    offer: &Sdp,
    codecs: &[Codec],
    addr: IpAddr,
    port: u16,
    id: u64,
) -> Result<(Sdp, Negotiated), NegotiationError> {
    let mut chosen = None;
    let mut media = Vec::new();
    for m in &offer.media {
        let pick =
            (chosen.is_none() && m.kind == "audio" && m.port != 0 && m.proto.starts_with("RTP/"))
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
                chosen = Some(Negotiated {
                    codec,
                    pt,
                    dtmf_pt: dtmf,
                    remote: remote_of(offer, m)?,
                    direction,
                    fmtp: fmtp_of(m, pt),
                });
                media.push(audio(formats, maps, port, dtmf, direction));
            }
            None => media.push(Media {
                port: 0,
                rtpmaps: Vec::new(),
                fmtps: Vec::new(),
                other_attrs: Vec::new(),
                connection: None,
                ptime: None,
                direction: Direction::Inactive,
                ..m.clone()
            }),
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
    let offered = ours.media.first().ok_or(NegotiationError::NoAudio)?;
    let m = answer
        .media
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)
        .ok_or(NegotiationError::NoAudio)?;
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
    })
}
