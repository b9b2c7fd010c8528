//! Fuzzes the SDP parser (`voipd::sdp::Sdp::parse`) and the offer/answer code behind it:
//! every parsed description is written out and must read back the same, is answered as
//! an offer (and the answer must read back the same), and is read as the answer to our
//! own offer, clear and with SDES keys.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use voipd::config::MediaEncryptionPolicy;
use voipd::media::codec::Codec;
use voipd::media::srtp::SrtpSuite;
use voipd::sdp::{self, Direction, Sdp, Security};

const CODECS: [Codec; 4] = [Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma];
const ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// Whether `Display` writes something `parse` takes back: a non-RTP m= line (image udptl
/// t38) keeps no formats, and an m= line without formats is refused.
fn writable(s: &Sdp) -> bool {
    s.media.iter().all(|m| m.proto.contains("RTP"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(desc) = Sdp::parse(data) else { return };
    for m in &desc.media {
        let _ = desc.media_addr(m);
        for pt in &m.formats {
            let _ = m.rtpmap(*pt);
        }
    }
    if writable(&desc) {
        let text = desc.to_string();
        let mut want = desc.clone();
        // An empty s= is written as "-".
        if want.session_name.is_empty() {
            want.session_name = "-".into();
        }
        assert_eq!(Sdp::parse(text.as_bytes()), Ok(want), "written:\n{text}");
    }
    for policy in [MediaEncryptionPolicy::None, MediaEncryptionPolicy::SdesOptional] {
        let security = Security {
            policy,
            suites: &SrtpSuite::ALL,
        };
        // As an offer to answer.
        if let Ok((ans, negotiated)) = sdp::answer(&desc, &CODECS, ADDR, 40000, 7, security) {
            let _ = negotiated.fmtp_flag("useinbandfec");
            if writable(&ans) {
                let text = ans.to_string();
                assert_eq!(Sdp::parse(text.as_bytes()), Ok(ans), "our answer:\n{text}");
            }
        }
        // As the answer to our offer.
        if let Ok(ours) = sdp::offer(&CODECS, ADDR, 40000, 7, Direction::SendRecv, security) {
            let _ = sdp::read_answer(&ours, &desc);
        }
    }
});
