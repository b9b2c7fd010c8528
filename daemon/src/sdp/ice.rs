//! ICE in SDP (RFC 8839): a media section's credentials and candidates, read from the far
//! side's description and written into ours.

use std::net::SocketAddr;

use super::{Media, Sdp};

/// One side's ICE for a media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceDescription {
    pub ufrag: String,
    pub pwd: String,
    /// `candidate:…` values, as written.
    pub candidates: Vec<String>,
    /// The far side runs ICE lite (RFC 8445 §2.5): it never checks, we must control.
    pub lite: bool,
}

/// RFC 8839 §5.4: ufrag 4-256 and password 22-256 characters of ice-char.
fn ice_chars(s: &str, min: usize) -> bool {
    (min..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The attributes [`IceDescription::write`] writes.
fn is_ours(a: &str) -> bool {
    ["ice-ufrag:", "ice-pwd:", "candidate:", "rtcp:"]
        .iter()
        .any(|p| a.starts_with(p))
}

fn value<'a>(attrs: &'a [String], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find_map(|a| a.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

impl IceDescription {
    /// The far side's ICE for its media section `m` of `sdp` (credentials there, or at
    /// session level). None without ICE, or with credentials that are not ICE's (then
    /// the call goes on as if the far side had none).
    pub fn of(sdp: &Sdp, m: &Media) -> Option<IceDescription> {
        let ufrag =
            value(&m.other_attrs, "ice-ufrag").or_else(|| value(&sdp.attrs, "ice-ufrag"))?;
        let pwd = value(&m.other_attrs, "ice-pwd").or_else(|| value(&sdp.attrs, "ice-pwd"))?;
        if !ice_chars(ufrag, 4) || !ice_chars(pwd, 22) {
            tracing::info!("the far side's ICE credentials are malformed; going on without ICE");
            return None;
        }
        let candidates: Vec<String> = m
            .other_attrs
            .iter()
            .filter(|a| a.starts_with("candidate:"))
            .cloned()
            .collect();
        // RFC 8839 §5.6: a middlebox rewrote the address; ICE cannot be trusted here.
        if candidates.is_empty() || m.other_attrs.iter().any(|a| a == "ice-mismatch") {
            return None;
        }
        Some(IceDescription {
            ufrag: ufrag.to_string(),
            pwd: pwd.to_string(),
            candidates,
            lite: sdp.attrs.iter().any(|a| a == "ice-lite"),
        })
    }

    /// Our ICE attributes of `from` (an earlier description of ours) into `to`, a new one
    /// of the same session: ICE goes on as it was (no restart).
    pub fn carry(from: &Media, to: &mut Media) {
        to.other_attrs.retain(|a| !is_ours(a));
        to.other_attrs
            .extend(from.other_attrs.iter().filter(|a| is_ours(a)).cloned());
    }

    /// Writes ours into our media section `m` (replacing what was there), with `rtcp`,
    /// RTCP's default address when it is not the next port (RFC 3605).
    pub fn write(&self, m: &mut Media, rtcp: Option<SocketAddr>) {
        m.other_attrs.retain(|a| !is_ours(a));
        if let Some(r) = rtcp {
            let family = if r.is_ipv4() { "IP4" } else { "IP6" };
            m.other_attrs
                .push(format!("rtcp:{} IN {family} {}", r.port(), r.ip()));
        }
        m.other_attrs.push(format!("ice-ufrag:{}", self.ufrag));
        m.other_attrs.push(format!("ice-pwd:{}", self.pwd));
        m.other_attrs.extend(self.candidates.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP: &str = "v=0\r\no=- 1 2 IN IP4 203.0.113.11\r\ns=-\r\nc=IN IP4 203.0.113.11\r\nt=0 0\r\n\
        a=ice-ufrag:PVWt\r\na=ice-pwd:4d0a1d2ff0c4d2e0d7b5e2a3\r\n\
        m=audio 20012 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
        a=candidate:1 1 UDP 2113932031 192.168.2.2 10000 typ host\r\n\
        a=candidate:2 1 UDP 1677724415 203.0.113.11 20012 typ srflx raddr 192.168.2.2 rport 10000\r\n\
        a=candidate:1 2 UDP 2113932030 192.168.2.2 10001 typ host\r\n";

    #[test]
    fn session_level_credentials_and_media_candidates_are_read() {
        let sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
        let ice = IceDescription::of(&sdp, &sdp.media[0]).unwrap();
        assert_eq!(ice.ufrag, "PVWt");
        assert_eq!(ice.pwd, "4d0a1d2ff0c4d2e0d7b5e2a3");
        assert_eq!(ice.candidates.len(), 3);
        assert!(!ice.lite);
    }

    #[test]
    fn without_ice_or_with_bad_credentials_there_is_none() {
        let plain = BARESIP.replace("a=ice-ufrag:PVWt\r\n", "");
        let sdp = Sdp::parse(plain.as_bytes()).unwrap();
        assert!(IceDescription::of(&sdp, &sdp.media[0]).is_none());
        let short = BARESIP.replace("a=ice-pwd:4d0a1d2ff0c4d2e0d7b5e2a3", "a=ice-pwd:short");
        let sdp = Sdp::parse(short.as_bytes()).unwrap();
        assert!(IceDescription::of(&sdp, &sdp.media[0]).is_none());
        let mismatch = format!("{BARESIP}a=ice-mismatch\r\n");
        let sdp = Sdp::parse(mismatch.as_bytes()).unwrap();
        assert!(IceDescription::of(&sdp, &sdp.media[0]).is_none());
    }

    #[test]
    fn ours_is_written_once_and_reads_back() {
        let mut sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
        sdp.attrs.clear();
        let ours = IceDescription {
            ufrag: "abcd".into(),
            pwd: "0123456789012345678901".into(),
            candidates: vec!["candidate:0 1 UDP 2130706431 192.168.1.2 10000 typ host".into()],
            lite: false,
        };
        let rtcp = "203.0.113.10:20557".parse().ok();
        ours.write(&mut sdp.media[0], rtcp);
        ours.write(&mut sdp.media[0], rtcp);
        let text = sdp.to_string();
        assert_eq!(text.matches("a=ice-ufrag:abcd").count(), 1, "{text}");
        assert!(text.contains("a=rtcp:20557 IN IP4 203.0.113.10"), "{text}");
        let back = Sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(IceDescription::of(&back, &back.media[0]), Some(ours));
    }
}
