//! The video stream of a session (`m=video`, RFC 3264 beside the audio one): VP8 (RFC 7741)
//! and H.264 (RFC 6184 §8: packetization-mode, profile-level-id), RTCP feedback
//! (`a=rtcp-fb`, RFC 4585/5104: nack, nack pli, ccm fir, goog-remb), and a direction that
//! follows the account's `video` setting.
//!
//! We offer `RTP/AVP` with `a=rtcp-fb` lines, as baresip, Linphone (without AVPF turned on)
//! and Jami's SIP accounts do: baresip 1.0 refuses an `RTP/AVPF` video stream outright. An
//! offer in `RTP/AVPF` is answered in kind.

use std::net::SocketAddr;

use super::IceDescription;
use super::negotiate::{NegotiationError, Security, answer_keying, answer_keys, dtls_of, is_dtls};
use super::{Direction, Media, RtpMap, Sdp};
use crate::media::dtls::DtlsParams;
use crate::media::srtp::SrtpKeys;
use crate::media::video::VideoCodec;
use crate::media::video::h264_payload::PacketizationMode;

/// Payload types we offer: VP8, then H.264 in mode 1 and in mode 0 (as baresip numbers them).
const VP8_PT: u8 = 96;
const H264_MODE1_PT: u8 = 97;
const H264_MODE0_PT: u8 = 98;
/// Constrained Baseline (profile_idc 66, constraint_set1), level 3.1: what OpenH264
/// encodes, up to 1280×720 at 30 fps.
pub const PROFILE_LEVEL_ID: &str = "42e01f";
/// The feedback we offer and take.
const FEEDBACK: [&str; 4] = ["nack", "nack pli", "ccm fir", "goog-remb"];

/// What an account does with video (`video = …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoMode {
    /// No video: offered streams are refused (port 0), none is offered.
    Off,
    /// We show what the far side sends and send nothing.
    Receive,
    /// We send (a door station) and show nothing.
    Send,
    /// Both ways.
    Both,
}

impl VideoMode {
    fn sends(self) -> bool {
        matches!(self, VideoMode::Send | VideoMode::Both)
    }

    fn receives(self) -> bool {
        matches!(self, VideoMode::Receive | VideoMode::Both)
    }

    /// The direction we offer.
    pub fn direction(self) -> Direction {
        match self {
            VideoMode::Off => Direction::Inactive,
            VideoMode::Receive => Direction::RecvOnly,
            VideoMode::Send => Direction::SendOnly,
            VideoMode::Both => Direction::SendRecv,
        }
    }
}

/// What both sides agreed on for the video stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedVideo {
    /// The codec.
    pub codec: VideoCodec,
    /// Its payload type.
    pub pt: u8,
    /// For H.264: the packetization mode.
    pub mode: Option<PacketizationMode>,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// What we may do.
    pub direction: Direction,
    /// The stream's mid.
    pub mid: String,
    /// Feedback the far side takes: generic NACK, PLI, FIR, REMB.
    pub nack: bool,
    /// Picture Loss Indication.
    pub pli: bool,
    /// Full Intra Request (RFC 5104).
    pub fir: bool,
    /// REMB.
    pub remb: bool,
    /// SRTP keys (SDES), when the stream is encrypted.
    pub srtp: Option<SrtpKeys>,
    /// The DTLS handshake's parameters, when the stream is keyed by DTLS-SRTP.
    pub dtls: Option<DtlsParams>,
    /// The far side's ICE for this stream, when it runs ICE.
    pub ice: Option<IceDescription>,
}

fn rtpmap(pt: u8, encoding: &str) -> RtpMap {
    RtpMap {
        pt,
        encoding: encoding.into(),
        clock_rate: 90_000,
        channels: None,
    }
}

/// Our `m=video` offer: `codecs` in order, the feedback we take, `direction`; `proto` and
/// `crypto` (SDES lines, fresh keys) as the audio beside it has them.
pub fn video_media(
    codecs: &[VideoCodec],
    port: u16,
    direction: Direction,
    proto: &str,
    crypto: Vec<String>,
) -> Media {
    let (mut formats, mut rtpmaps, mut fmtps) = (Vec::new(), Vec::new(), Vec::new());
    for c in codecs {
        match c {
            VideoCodec::Vp8 => {
                formats.push(VP8_PT);
                rtpmaps.push(rtpmap(VP8_PT, "VP8"));
                fmtps.push((VP8_PT, "max-fr=30;max-fs=3600".to_string()));
            }
            VideoCodec::H264 => {
                for (pt, mode) in [(H264_MODE1_PT, 1), (H264_MODE0_PT, 0)] {
                    formats.push(pt);
                    rtpmaps.push(rtpmap(pt, "H264"));
                    fmtps.push((
                        pt,
                        format!("profile-level-id={PROFILE_LEVEL_ID};packetization-mode={mode}"),
                    ));
                }
            }
        }
    }
    Media {
        kind: "video".into(),
        port,
        proto: proto.into(),
        formats,
        rtpmaps,
        fmtps,
        direction,
        connection: None,
        ptime: None,
        crypto,
        other_attrs: FEEDBACK.iter().map(|f| format!("rtcp-fb:* {f}")).collect(),
    }
}

/// An fmtp parameter's value.
fn param<'a>(fmtp: &'a str, name: &str) -> Option<&'a str> {
    fmtp.split(';')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Whether an H.264 profile-level-id (absent: 420010, RFC 6184 §8.1) is one we decode
/// and our Constrained Baseline stream may be sent to: Baseline, or Main/Extended with
/// the constraint that makes them Constrained Baseline.
fn baseline(profile_level_id: Option<&str>) -> bool {
    let Some(p) = profile_level_id else {
        return true;
    };
    let Ok(v) = u32::from_str_radix(p, 16) else {
        return false;
    };
    if p.len() != 6 {
        return false;
    }
    let (idc, constraints) = ((v >> 16) as u8, (v >> 8) as u8);
    idc == 66 || (matches!(idc, 77 | 88) && constraints & 0x40 != 0)
}

/// The codec of an offered payload type we can use, and its H.264 mode.
fn usable(
    m: &Media,
    pt: u8,
    codecs: &[VideoCodec],
) -> Option<(VideoCodec, Option<PacketizationMode>)> {
    let r = m.rtpmap(pt)?;
    if r.clock_rate != 90_000 {
        return None;
    }
    let fmtp = m
        .fmtps
        .iter()
        .find(|(p, _)| *p == pt)
        .map(|(_, f)| f.as_str());
    let codec = match r.encoding.to_ascii_uppercase().as_str() {
        "VP8" => VideoCodec::Vp8,
        "H264" => VideoCodec::H264,
        _ => return None,
    };
    if !codecs.contains(&codec) {
        return None;
    }
    if codec == VideoCodec::Vp8 {
        return Some((codec, None));
    }
    let mode = match fmtp.and_then(|f| param(f, "packetization-mode")) {
        None | Some("0") => PacketizationMode::Single,
        Some("1") => PacketizationMode::NonInterleaved,
        _ => return None,
    };
    baseline(fmtp.and_then(|f| param(f, "profile-level-id"))).then_some((codec, Some(mode)))
}

/// The feedback lines of `m` we take.
fn feedback_of(m: &Media, pt: u8) -> Vec<&'static str> {
    FEEDBACK
        .iter()
        .copied()
        .filter(|f| {
            m.other_attrs.iter().any(|a| {
                let Some(rest) = a.strip_prefix("rtcp-fb:") else {
                    return false;
                };
                let (which, what) = rest.split_once(' ').unwrap_or((rest, ""));
                (which == "*" || which.parse() == Ok(pt))
                    && what.split_whitespace().collect::<Vec<_>>().join(" ") == *f
            })
        })
        .collect()
}

fn negotiated(
    sdp: &Sdp,
    m: &Media,
    index: usize,
    pt: u8,
    codec: VideoCodec,
    mode: Option<PacketizationMode>,
    direction: Direction,
) -> Result<NegotiatedVideo, NegotiationError> {
    let ip = sdp.media_addr(m).ok_or(NegotiationError::NoAddress)?;
    let fb = feedback_of(m, pt);
    Ok(NegotiatedVideo {
        codec,
        pt,
        mode,
        remote: SocketAddr::new(ip, m.port),
        direction,
        mid: m.mid(index),
        nack: fb.contains(&"nack"),
        pli: fb.contains(&"nack pli"),
        fir: fb.contains(&"ccm fir"),
        remb: fb.contains(&"goog-remb"),
        srtp: None,
        dtls: None,
        ice: IceDescription::of(sdp, m),
    })
}

/// Answers the offer's `m=video` at `index` per `mode`: our `m=` line (port 0 when
/// refused: video off, nothing in common, or a transport we do not speak) and, when
/// taken, what was agreed.
pub fn answer_video(
    offer: &Sdp,
    index: usize,
    codecs: &[VideoCodec],
    mode: VideoMode,
    port: u16,
    security: Security<'_>,
) -> Result<(Media, Option<NegotiatedVideo>), NegotiationError> {
    let Some(m) = offer.media.get(index).filter(|m| m.kind == "video") else {
        return Err(NegotiationError::NoVideo);
    };
    let rtp = ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
        .iter()
        .any(|p| m.proto.eq_ignore_ascii_case(p))
        || is_dtls(&m.proto);
    if mode == VideoMode::Off || m.port == 0 || !rtp {
        return Ok((m.refused(), None));
    }
    // Keyed as audio is; where the offer and the account cannot agree, the video is
    // refused rather than the call.
    let keying = match answer_keying(offer, m, security) {
        Ok(k) => k,
        Err(NegotiationError::NoCommonSuite(_) | NegotiationError::EncryptionRequired) => {
            return Ok((m.refused(), None));
        }
        Err(e) => return Err(e),
    };
    let Some((pt, codec, h264)) = m
        .formats
        .iter()
        .find_map(|pt| usable(m, *pt, codecs).map(|(c, h)| (*pt, c, h)))
    else {
        return Ok((m.refused(), None));
    };
    let they_send = matches!(m.direction, Direction::SendRecv | Direction::SendOnly);
    let they_take = matches!(m.direction, Direction::SendRecv | Direction::RecvOnly);
    let direction = match (mode.sends() && they_take, mode.receives() && they_send) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    };
    let mut n = negotiated(offer, m, index, pt, codec, h264, direction)?;
    n.dtls = keying.dtls;
    n.srtp = keying.srtp;
    let mut fmtps = Vec::new();
    if let Some(f) = m.fmtps.iter().find(|(p, _)| *p == pt) {
        fmtps.push(f.clone());
    }
    let mut other_attrs: Vec<String> = feedback_of(m, pt)
        .iter()
        .map(|f| format!("rtcp-fb:{pt} {f}"))
        .collect();
    if m.other_attrs.iter().any(|a| a.starts_with("mid:")) {
        other_attrs.push(format!("mid:{}", n.mid));
    }
    other_attrs.extend(keying.attrs);
    let ours = Media {
        kind: "video".into(),
        port,
        proto: m.proto.clone(),
        formats: vec![pt],
        rtpmaps: m.rtpmap(pt).into_iter().collect(),
        fmtps,
        direction,
        connection: None,
        ptime: None,
        crypto: keying.crypto,
        other_attrs,
    };
    Ok((ours, Some(n)))
}

/// What the answer agreed for the video stream we offered (`ours`); None when it refused
/// it (port 0, no `m=video`, or nothing we offered).
pub fn read_video_answer(ours: &Media, answer: &Sdp) -> Option<NegotiatedVideo> {
    let (index, m) = answer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.kind == "video" && m.port != 0)?;
    let (pt, codec, mode) = m.formats.iter().find_map(|pt| {
        // The answer's payload types are ours (RFC 3264 §6.1); its rtpmap may be left out.
        let (c, h) = usable(m, *pt, &[VideoCodec::Vp8, VideoCodec::H264])
            .or_else(|| usable(ours, *pt, &[VideoCodec::Vp8, VideoCodec::H264]))?;
        ours.formats.contains(pt).then_some((*pt, c, h))
    })?;
    let mut n = negotiated(answer, m, index, pt, codec, mode, m.direction.reverse()).ok()?;
    // Keys that do not answer ours leave the video out rather than in clear.
    if is_dtls(&ours.proto) {
        n.dtls = Some(
            dtls_of(answer, m, false)
                .ok()
                .filter(|_| is_dtls(&m.proto))?,
        );
    } else {
        n.srtp = answer_keys(ours, m).ok()?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::super::crypto::Crypto;
    use super::*;
    use crate::config::MediaEncryptionPolicy;

    /// baresip 1.0's video offer (vp8 and avcodec loaded), as its source writes it.
    const BARESIP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 10000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 10002 RTP/AVP 96 97 98\r\na=rtpmap:96 VP8/90000\r\na=fmtp:96 max-fs=3600\r\n\
a=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:98 H264/90000\r\na=fmtp:98 packetization-mode=1;profile-level-id=42e01f\r\n\
a=sendrecv\r\na=rtcp-fb:* nack pli\r\n";

    fn sdp(s: &str) -> Sdp {
        Sdp::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn baresips_offer_is_answered_with_its_first_codec_we_share() {
        let offer = sdp(BARESIP);
        let (m, n) = answer_video(
            &offer,
            1,
            &[VideoCodec::Vp8, VideoCodec::H264],
            VideoMode::Both,
            20002,
            Security::CLEAR,
        )
        .unwrap();
        let n = n.unwrap();
        assert_eq!(
            (n.codec, n.pt, n.direction),
            (VideoCodec::Vp8, 96, Direction::SendRecv)
        );
        assert_eq!(n.remote, "127.0.0.1:10002".parse().unwrap());
        assert!(n.pli && !n.nack && !n.fir);
        assert_eq!((m.port, m.formats.as_slice()), (20002, &[96][..]));
        assert!(m.other_attrs.contains(&"rtcp-fb:96 nack pli".to_string()));
        // H.264 only: the first H.264 entry, mode 0.
        let (_, n) = answer_video(
            &offer,
            1,
            &[VideoCodec::H264],
            VideoMode::Both,
            1,
            Security::CLEAR,
        )
        .unwrap();
        let n = n.unwrap();
        assert_eq!((n.pt, n.mode), (97, Some(PacketizationMode::Single)));
        // Receive only: recvonly; send only: sendonly; off: refused.
        let dir = |mode| {
            answer_video(&offer, 1, &[VideoCodec::Vp8], mode, 1, Security::CLEAR)
                .unwrap()
                .0
                .direction
        };
        assert_eq!(dir(VideoMode::Receive), Direction::RecvOnly);
        assert_eq!(dir(VideoMode::Send), Direction::SendOnly);
        let (m, n) = answer_video(
            &offer,
            1,
            &[VideoCodec::Vp8],
            VideoMode::Off,
            1,
            Security::CLEAR,
        )
        .unwrap();
        assert_eq!((m.port, n), (0, None));
    }

    #[test]
    fn what_cannot_be_shared_is_refused_with_port_zero() {
        for (from, to, codec) in [
            ("RTP/AVP 96 97 98", "RTP/SAVP 96 97 98", VideoCodec::Vp8),
            (
                "packetization-mode=",
                "packetization-mode=2",
                VideoCodec::H264,
            ),
            ("VP8/90000", "VP9/90000", VideoCodec::Vp8),
        ] {
            let offer = sdp(&BARESIP.replace(from, to));
            let (m, n) =
                answer_video(&offer, 1, &[codec], VideoMode::Both, 1, Security::CLEAR).unwrap();
            assert_eq!((m.port, n.is_none()), (0, true), "{to}");
        }
        // High profile: not ours to send.
        let offer = sdp(&BARESIP.replace("42e01f", "640028"));
        let (_, n) = answer_video(
            &offer,
            1,
            &[VideoCodec::H264],
            VideoMode::Both,
            1,
            Security::CLEAR,
        )
        .unwrap();
        assert!(n.is_none());
        // A sendonly offer to a send-only account: nothing either way.
        let offer = sdp(&BARESIP.replace("a=sendrecv", "a=sendonly"));
        let (m, _) = answer_video(
            &offer,
            1,
            &[VideoCodec::Vp8],
            VideoMode::Send,
            1,
            Security::CLEAR,
        )
        .unwrap();
        assert_eq!(m.direction, Direction::Inactive);
        assert!(
            answer_video(
                &offer,
                0,
                &[VideoCodec::Vp8],
                VideoMode::Both,
                1,
                Security::CLEAR
            )
            .is_err()
        );
    }

    #[test]
    fn video_in_srtp_is_keyed_as_audio_is() {
        use crate::media::srtp::SrtpSuite;
        let key = Crypto::generate(1, SrtpSuite::AesCm128HmacSha1_80).unwrap();
        let offer = sdp(&BARESIP
            .replace("m=video 10002 RTP/AVP", "m=video 10002 RTP/SAVP")
            .replace(
                "a=sendrecv\r\n",
                &format!("a=sendrecv\r\na=crypto:{}\r\n", key.value()),
            ));
        let sdes = Security {
            policy: MediaEncryptionPolicy::Sdes,
            suites: &SrtpSuite::ALL,
        };
        let (m, n) = answer_video(&offer, 1, &[VideoCodec::Vp8], VideoMode::Both, 2, sdes).unwrap();
        let keys = n.unwrap().srtp.unwrap();
        assert!(keys.remote == key.key && m.crypto.len() == 1);
        assert_eq!(m.proto, "RTP/SAVP");
        // Our offer read back: the answer's keys answer ours.
        let ours = video_media(
            &[VideoCodec::Vp8],
            2,
            Direction::SendRecv,
            "RTP/SAVP",
            vec![key.value()],
        );
        let mut answer = offer.clone();
        answer.media[1] = m;
        let got = read_video_answer(&ours, &sdp(&answer.to_string())).unwrap();
        assert!(got.srtp.is_some());
        // RTP/SAVP with no suite we take, or clear video to an account that must
        // encrypt: refused.
        let none = Security {
            policy: MediaEncryptionPolicy::Sdes,
            suites: &[],
        };
        let (m, n) = answer_video(&offer, 1, &[VideoCodec::Vp8], VideoMode::Both, 2, none).unwrap();
        assert_eq!((m.port, n), (0, None));
        let (m, _) = answer_video(
            &sdp(BARESIP),
            1,
            &[VideoCodec::Vp8],
            VideoMode::Both,
            2,
            sdes,
        )
        .unwrap();
        assert_eq!(m.port, 0);
    }

    #[test]
    fn our_offer_reads_back_and_its_answer_is_understood() {
        let ours = video_media(
            &[VideoCodec::H264, VideoCodec::Vp8],
            30000,
            Direction::SendRecv,
            "RTP/AVP",
            Vec::new(),
        );
        let mut offer = sdp(BARESIP);
        offer.media[1] = ours.clone();
        let text = offer.to_string();
        assert!(
            text.contains("m=video 30000 RTP/AVP 97 98 96\r\n"),
            "{text}"
        );
        assert!(text.contains("a=fmtp:97 profile-level-id=42e01f;packetization-mode=1\r\n"));
        assert!(text.contains("a=rtcp-fb:* ccm fir\r\n"));
        // Answered by ourselves, as another voipd would.
        let back = sdp(&text);
        let (m, n) = answer_video(
            &back,
            1,
            &[VideoCodec::Vp8, VideoCodec::H264],
            VideoMode::Both,
            40000,
            Security::CLEAR,
        )
        .unwrap();
        let n = n.unwrap();
        assert_eq!(
            (n.codec, n.mode),
            (VideoCodec::H264, Some(PacketizationMode::NonInterleaved))
        );
        assert!(n.nack && n.pli && n.fir && n.remb);
        let mut answer = back.clone();
        answer.media[1] = m;
        let got = read_video_answer(&ours, &sdp(&answer.to_string())).unwrap();
        assert_eq!(
            (got.pt, got.codec, got.direction),
            (97, VideoCodec::H264, Direction::SendRecv)
        );
        assert_eq!(got.remote.port(), 40000);
        // Refused: none.
        answer.media[1].port = 0;
        assert_eq!(read_video_answer(&ours, &answer), None);
    }
}
