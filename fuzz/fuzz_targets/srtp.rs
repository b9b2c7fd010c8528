//! Fuzzes the SRTP receive path (`voipd::media::srtp::Srtp::unprotect_rtp` and
//! `unprotect_rtcp`) for each suite with the input as a datagram, as it is and with a real
//! packet's header in front (so that the forgery reaches the tag check); and SDES lines
//! (`voipd::sdp::Crypto::parse`) with the input as an `a=crypto` value: one that parses,
//! written again, parses to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voipd::media::rtp::RtpPacket;
use voipd::media::srtp::{MasterKey, Srtp, SrtpKeys, SrtpSuite};
use voipd::sdp::Crypto;

fn keys(suite: SrtpSuite) -> SrtpKeys {
    let (k, s) = suite.key_salt_len();
    let key = |b: u8| MasterKey::from_bytes(suite, vec![b; k + s]).expect("length");
    SrtpKeys {
        suite,
        local: key(1),
        remote: key(2),
    }
}

fuzz_target!(|data: &[u8]| {
    for suite in SrtpSuite::ALL {
        let Ok(mut srtp) = Srtp::new(&keys(suite)) else {
            return;
        };
        if let Ok(n) = RtpPacket::header_len(data) {
            let _ = srtp.unprotect_rtp(data, n);
        }
        let _ = srtp.unprotect_rtcp(data);
        let mut forged = Vec::new();
        RtpPacket {
            marker: false,
            pt: 0,
            seq: 1,
            timestamp: 160,
            ssrc: 7,
            payload: data,
        }
        .write(&mut forged);
        assert!(srtp.unprotect_rtp(&forged, 12).is_err(), "a forgery was taken");
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(Some(c)) = Crypto::parse(text)
    {
        assert_eq!(Crypto::parse(&c.value()), Ok(Some(c)));
    }
});
