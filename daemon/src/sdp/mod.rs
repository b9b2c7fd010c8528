//! SDP (RFC 4566) for audio sessions, and the offer/answer model (RFC 3264).
//!
//! Only what a phone needs is typed: origin, connection, and per media its port, payload
//! types with rtpmap/fmtp, direction and ptime. Other lines are kept so that an answer can
//! be written back faithfully; lines that do not parse make the whole description invalid.

mod crypto;
mod ice;
mod negotiate;
pub mod video;

use std::fmt;
use std::net::IpAddr;

pub use crypto::Crypto;
pub use ice::IceDescription;
pub use negotiate::{
    Negotiated, NegotiationError, RTCP_MUX, Security, answer, in_use, in_use_of, keep_dtls_role,
    keep_stream_dtls_role, offer, read_answer, rekey,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// What we answer to the far side's direction (RFC 3264 §6.1).
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    /// Payload types in order of preference.
    pub formats: Vec<u8>,
    pub rtpmaps: Vec<RtpMap>,
    pub fmtps: Vec<(u8, String)>,
    pub direction: Direction,
    pub connection: Option<IpAddr>,
    pub ptime: Option<u32>,
    /// `a=crypto` values (SDES keys, RFC 4568), as written.
    pub crypto: Vec<String>,
    /// Attributes not typed above, as written (without "a=").
    pub other_attrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub origin_user: String,
    pub session_id: u64,
    pub session_version: u64,
    pub origin_addr: IpAddr,
    pub session_name: String,
    pub connection: Option<IpAddr>,
    /// Session-level attributes, as written (without "a="): DTLS-SRTP's fingerprint and
    /// setup may be here.
    pub attrs: Vec<String>,
    pub media: Vec<Media>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("not UTF-8")]
    Encoding,
    #[error("line {0}: {1}")]
    Line(usize, &'static str),
    #[error("missing {0}")]
    Missing(&'static str),
}

/// The static payload types a phone may meet without an rtpmap (RFC 3551).
pub fn static_rtpmap(pt: u8) -> Option<RtpMap> {
    let info = crate::media::codec::Codec::from_static_pt(pt)?.info();
    Some(RtpMap {
        pt,
        encoding: info.encoding.into(),
        clock_rate: info.clock,
        channels: None,
    })
}

impl Media {
    /// Its `a=mid` (RFC 5888), or its place among the media when it has none: what the
    /// call's streams are keyed by.
    pub fn mid(&self, index: usize) -> String {
        self.other_attrs
            .iter()
            .find_map(|a| a.strip_prefix("mid:"))
            .map_or_else(|| index.to_string(), |m| m.trim().to_string())
    }

    /// The answer that refuses this offered stream (RFC 3264 §6: port 0, nothing taken).
    pub fn refused(&self) -> Media {
        Media {
            port: 0,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
            crypto: Vec::new(),
            other_attrs: Vec::new(),
            connection: None,
            ptime: None,
            direction: Direction::Inactive,
            ..self.clone()
        }
    }

    /// The rtpmap for a payload type: the explicit one, else the static one.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        self.rtpmaps
            .iter()
            .find(|m| m.pt == pt)
            .cloned()
            .or_else(|| static_rtpmap(pt))
    }
}

fn addr(s: &str, n: usize) -> Result<IpAddr, SdpError> {
    // "IN IP4 192.0.2.1" / "IN IP6 ::1"
    let mut it = s.split_ascii_whitespace();
    let (net, kind, a) = (it.next(), it.next(), it.next());
    if net != Some("IN") || !matches!(kind, Some("IP4") | Some("IP6")) {
        return Err(SdpError::Line(n, "connection is not IN IP4/IP6"));
    }
    // A multicast TTL suffix ("/127") is not for phones, but do not choke on it.
    a.and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .ok_or(SdpError::Line(n, "bad address"))
}

impl Sdp {
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::Encoding)?;
        let mut sdp = Sdp {
            origin_user: String::new(),
            session_id: 0,
            session_version: 0,
            origin_addr: IpAddr::from([0, 0, 0, 0]),
            session_name: String::new(),
            connection: None,
            attrs: Vec::new(),
            media: Vec::new(),
        };
        let (mut seen_v, mut seen_o) = (false, false);
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let (t, v) = line
                .split_once('=')
                .filter(|(t, _)| t.len() == 1)
                .ok_or(SdpError::Line(n, "not type=value"))?;
            match (t, sdp.media.last_mut()) {
                ("v", _) => {
                    if v != "0" {
                        return Err(SdpError::Line(n, "version is not 0"));
                    }
                    seen_v = true;
                }
                ("o", _) => {
                    let f: Vec<&str> = v.split_ascii_whitespace().collect();
                    if f.len() != 6 {
                        return Err(SdpError::Line(n, "origin needs six fields"));
                    }
                    sdp.origin_user = f[0].into();
                    sdp.session_id = f[1]
                        .parse()
                        .map_err(|_| SdpError::Line(n, "bad session id"))?;
                    sdp.session_version = f[2]
                        .parse()
                        .map_err(|_| SdpError::Line(n, "bad session version"))?;
                    sdp.origin_addr = addr(&f[3..].join(" "), n)?;
                    seen_o = true;
                }
                ("s", _) => sdp.session_name = v.into(),
                ("c", None) => sdp.connection = Some(addr(v, n)?),
                ("c", Some(m)) => m.connection = Some(addr(v, n)?),
                ("m", _) => {
                    let f: Vec<&str> = v.split_ascii_whitespace().collect();
                    if f.len() < 4 {
                        return Err(SdpError::Line(
                            n,
                            "media line needs kind, port, proto and formats",
                        ));
                    }
                    let port = f[1]
                        .split('/')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .ok_or(SdpError::Line(n, "bad media port"))?;
                    let formats = if f[2].contains("RTP") {
                        f[3..]
                            .iter()
                            .map(|p| p.parse::<u8>().ok().filter(|p| *p < 128))
                            .collect::<Option<Vec<_>>>()
                            .ok_or(SdpError::Line(n, "bad payload type"))?
                    } else {
                        Vec::new()
                    };
                    sdp.media.push(Media {
                        kind: f[0].into(),
                        port,
                        proto: f[2].into(),
                        formats,
                        rtpmaps: Vec::new(),
                        fmtps: Vec::new(),
                        direction: Direction::SendRecv,
                        connection: None,
                        ptime: None,
                        crypto: Vec::new(),
                        other_attrs: Vec::new(),
                    });
                }
                ("a", Some(m)) => {
                    let (name, value) = v.split_once(':').unwrap_or((v, ""));
                    match name {
                        // A map for a format the m= line does not list means nothing
                        // (some phones send their whole table): passed over, even broken.
                        "rtpmap" if !lists_format(m, value) => {}
                        "rtpmap" => {
                            let (pt, enc) = value
                                .split_once(' ')
                                .ok_or(SdpError::Line(n, "bad rtpmap"))?;
                            let pt = pt
                                .parse()
                                .map_err(|_| SdpError::Line(n, "bad rtpmap payload type"))?;
                            let mut parts = enc.trim().split('/');
                            let encoding = parts
                                .next()
                                .filter(|e| !e.is_empty())
                                .ok_or(SdpError::Line(n, "bad rtpmap"))?;
                            let clock_rate = parts
                                .next()
                                .and_then(|r| r.parse().ok())
                                .ok_or(SdpError::Line(n, "bad rtpmap clock rate"))?;
                            let channels = parts.next().and_then(|c| c.parse().ok());
                            m.rtpmaps.push(RtpMap {
                                pt,
                                encoding: encoding.into(),
                                clock_rate,
                                channels,
                            });
                        }
                        "fmtp" if !lists_format(m, value) => {}
                        "fmtp" => {
                            let (pt, params) =
                                value.split_once(' ').ok_or(SdpError::Line(n, "bad fmtp"))?;
                            let pt = pt
                                .parse()
                                .map_err(|_| SdpError::Line(n, "bad fmtp payload type"))?;
                            m.fmtps.push((pt, params.trim().into()));
                        }
                        "ptime" => m.ptime = value.trim().parse().ok(),
                        "crypto" => m.crypto.push(value.trim().into()),
                        "sendrecv" => m.direction = Direction::SendRecv,
                        "sendonly" => m.direction = Direction::SendOnly,
                        "recvonly" => m.direction = Direction::RecvOnly,
                        "inactive" => m.direction = Direction::Inactive,
                        _ => m.other_attrs.push(v.into()),
                    }
                }
                ("a", None) => sdp.attrs.push(v.into()),
                // Bandwidth, timing and the rest: not needed.
                _ => {}
            }
        }
        if !seen_v {
            return Err(SdpError::Missing("v="));
        }
        if !seen_o {
            return Err(SdpError::Missing("o="));
        }
        Ok(sdp)
    }

    /// Where a media stream's RTP goes: its own c= or the session's.
    pub fn media_addr(&self, m: &Media) -> Option<IpAddr> {
        m.connection.or(self.connection)
    }
}

/// Whether an rtpmap or fmtp value ("PT …") is for a format `m` lists.
fn lists_format(m: &Media, value: &str) -> bool {
    let pt = value.split(' ').next().unwrap_or_default();
    pt.parse::<u8>().is_ok_and(|pt| m.formats.contains(&pt))
}

fn ip_kind(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "IP4" } else { "IP6" }
}

impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\n")?;
        write!(
            f,
            "o={} {} {} IN {} {}\r\n",
            self.origin_user,
            self.session_id,
            self.session_version,
            ip_kind(self.origin_addr),
            self.origin_addr
        )?;
        write!(
            f,
            "s={}\r\n",
            if self.session_name.is_empty() {
                "-"
            } else {
                &self.session_name
            }
        )?;
        if let Some(c) = self.connection {
            write!(f, "c=IN {} {c}\r\n", ip_kind(c))?;
        }
        write!(f, "t=0 0\r\n")?;
        for a in &self.attrs {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "m={} {} {}", m.kind, m.port, m.proto)?;
            for p in &m.formats {
                write!(f, " {p}")?;
            }
            write!(f, "\r\n")?;
            if let Some(c) = m.connection {
                write!(f, "c=IN {} {c}\r\n", ip_kind(c))?;
            }
            for r in &m.rtpmaps {
                write!(f, "a=rtpmap:{} {}/{}", r.pt, r.encoding, r.clock_rate)?;
                if let Some(ch) = r.channels {
                    write!(f, "/{ch}")?;
                }
                write!(f, "\r\n")?;
            }
            for (pt, p) in &m.fmtps {
                write!(f, "a=fmtp:{pt} {p}\r\n")?;
            }
            if let Some(p) = m.ptime {
                write!(f, "a=ptime:{p}\r\n")?;
            }
            for c in &m.crypto {
                write!(f, "a=crypto:{c}\r\n")?;
            }
            for a in &m.other_attrs {
                write!(f, "a={a}\r\n")?;
            }
            write!(f, "a={}\r\n", m.direction.attr())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
