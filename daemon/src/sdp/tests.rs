use super::*;
use crate::media::codec::Codec;
use crate::sdp::Security;

const BARESIP_OFFER: &str = "v=0\r\no=- 1234 5678 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 96 9 0 8 101\r\nb=AS:128\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\na=label:1\r\n\
m=video 30002 RTP/AVP 97\r\na=rtpmap:97 VP8/90000\r\n";

#[test]
fn parses_a_real_offer() {
    let s = Sdp::parse(BARESIP_OFFER.as_bytes()).unwrap();
    assert_eq!(s.session_id, 1234);
    assert_eq!(s.media.len(), 2);
    let a = &s.media[0];
    assert_eq!(a.formats, vec![96, 9, 0, 8, 101]);
    assert_eq!(
        a.rtpmap(0).unwrap().encoding,
        "PCMU",
        "static payload types need no rtpmap"
    );
    assert_eq!(a.rtpmap(96).unwrap().channels, Some(2));
    assert_eq!(a.ptime, Some(20));
    assert_eq!(a.other_attrs, vec!["label:1"]);
    assert_eq!(s.media_addr(a), Some("127.0.0.1".parse().unwrap()));
}

#[test]
fn answer_picks_the_offerers_first_usable_codec_and_refuses_video() {
    let offer = Sdp::parse(BARESIP_OFFER.as_bytes()).unwrap();
    let (ans, n) = answer(
        &offer,
        &[Codec::Pcma, Codec::Pcmu],
        "127.0.0.1".parse().unwrap(),
        40000,
        7,
        Security::CLEAR,
    )
    .unwrap();
    // Opus and G.722 come first in the offer but this account does not use them.
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcmu, 0, Some(101)));
    assert_eq!(n.remote, "127.0.0.1:30000".parse().unwrap());
    assert_eq!(ans.media[0].formats, vec![0, 101]);
    assert_eq!(ans.media[1].port, 0, "video refused");
    // What we write parses again, and reads back as the same choice.
    let again = Sdp::parse(ans.to_string().as_bytes()).unwrap();
    assert_eq!(again, ans);
}

#[test]
fn hold_directions_are_mirrored() {
    let offer = BARESIP_OFFER.replace("a=sendrecv", "a=sendonly");
    let offer = Sdp::parse(offer.as_bytes()).unwrap();
    let (ans, n) = answer(
        &offer,
        &[Codec::Pcmu],
        "127.0.0.1".parse().unwrap(),
        40000,
        7,
        Security::CLEAR,
    )
    .unwrap();
    assert_eq!(n.direction, Direction::RecvOnly);
    assert_eq!(ans.media[0].direction, Direction::RecvOnly);
}

#[test]
fn offer_and_answer_round_trip() {
    let ours = offer(
        &[Codec::Pcma, Codec::Pcmu],
        "192.0.2.1".parse().unwrap(),
        4000,
        99,
        Direction::SendRecv,
        Security::CLEAR,
    )
    .unwrap();
    assert_eq!(
        ours.media[0].formats,
        vec![8, 0, 101],
        "the account's codecs, in its order"
    );
    let (ans, theirs) = answer(
        &ours,
        &[Codec::Pcmu, Codec::Pcma],
        "192.0.2.2".parse().unwrap(),
        5000,
        1,
        Security::CLEAR,
    )
    .unwrap();
    assert_eq!(theirs.codec, Codec::Pcma, "the offerer's order wins");
    let n = read_answer(&ours, &ans).unwrap();
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, Some(101)));
    assert_eq!(n.remote, "192.0.2.2:5000".parse().unwrap());
    // Both sides are voipd: RTCP goes on the RTP port.
    assert!(ours.to_string().contains("a=rtcp-mux\r\n"), "{ours}");
    assert!(theirs.rtcp_mux && n.rtcp_mux);
}

/// RFC 5761: muxed when both say so, not when either does not; and not with ICE, whose
/// agent checks RTCP as a component of its own.
#[test]
fn rtcp_mux_is_taken_when_offered_and_agreed() {
    let at = "127.0.0.1".parse().unwrap();
    let answer_to = |text: &str| {
        answer(
            &Sdp::parse(text.as_bytes()).unwrap(),
            &[Codec::Pcmu],
            at,
            40000,
            7,
            Security::CLEAR,
        )
        .unwrap()
    };
    let with_mux = BARESIP_OFFER.replace("a=label:1\r\n", "a=label:1\r\na=rtcp-mux\r\n");
    let (ans, n) = answer_to(&with_mux);
    assert!(n.rtcp_mux);
    assert!(ans.media[0].other_attrs.contains(&"rtcp-mux".to_string()));

    let (ans, n) = answer_to(BARESIP_OFFER);
    assert!(!n.rtcp_mux);
    assert!(!ans.to_string().contains("rtcp-mux"), "{ans}");

    let with_ice = with_mux.replace(
        "a=label:1\r\n",
        "a=label:1\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n\
         a=candidate:1 1 UDP 2130706431 127.0.0.1 30000 typ host\r\n",
    );
    let (ans, n) = answer_to(&with_ice);
    assert!(n.ice.is_some(), "the offer runs ICE");
    assert!(!n.rtcp_mux);
    assert!(!ans.to_string().contains("rtcp-mux"), "{ans}");

    // Our offer says rtcp-mux; an answer without it keeps the RTCP port.
    let ours = offer(
        &[Codec::Pcmu],
        at,
        4000,
        1,
        Direction::SendRecv,
        Security::CLEAR,
    )
    .unwrap();
    let plain = Sdp::parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0\r\na=sendrecv\r\n"
            .as_bytes(),
    )
    .unwrap();
    assert!(!read_answer(&ours, &plain).unwrap().rtcp_mux);
}

#[test]
fn bad_offers_are_refused_with_a_reason() {
    for (text, want) in [
        ("v=1\r\n", SdpError::Line(1, "version is not 0")),
        (
            "v=0\r\nm=audio 1\r\n",
            SdpError::Line(2, "media line needs kind, port, proto and formats"),
        ),
        (
            "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
            SdpError::Line(3, "bad media port"),
        ),
        (
            "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 300\r\n",
            SdpError::Line(3, "bad payload type"),
        ),
        (
            "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 nowhere\r\n",
            SdpError::Line(3, "bad address"),
        ),
        (
            "v=0\r\nno equals sign\r\n",
            SdpError::Line(2, "not type=value"),
        ),
        ("v=0\r\ns=x\r\n", SdpError::Missing("o=")),
    ] {
        assert_eq!(Sdp::parse(text.as_bytes()), Err(want), "{text}");
    }
    assert_eq!(Sdp::parse(&[0xff, 0xfe]), Err(SdpError::Encoding));
    let only_gsm =
        Sdp::parse(b"v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 3\r\n")
            .unwrap();
    assert!(matches!(
        answer(
            &only_gsm,
            &[Codec::Pcmu],
            "127.0.0.1".parse().unwrap(),
            1,
            1,
            Security::CLEAR
        ),
        Err(NegotiationError::NoCommonCodec(_))
    ));
}

#[test]
fn opus_with_fec_and_g722() {
    let offer_text = BARESIP_OFFER.replace(
        "a=fmtp:96 stereo=1;sprop-stereo=1",
        "a=fmtp:96 stereo=1;useinbandfec=1",
    );
    let offer = Sdp::parse(offer_text.as_bytes()).unwrap();
    let (_, n) = answer(
        &offer,
        &[Codec::Opus, Codec::G722],
        "127.0.0.1".parse().unwrap(),
        1,
        1,
        Security::CLEAR,
    )
    .unwrap();
    assert_eq!((n.codec, n.pt), (Codec::Opus, 96));
    assert!(n.fmtp_flag("useinbandfec"));
    assert!(!n.fmtp_flag("usedtx"));
    let (_, n) = answer(
        &offer,
        &[Codec::G722],
        "127.0.0.1".parse().unwrap(),
        1,
        1,
        Security::CLEAR,
    )
    .unwrap();
    assert_eq!((n.codec, n.pt), (Codec::G722, 9));
    let ours = super::offer(
        &[Codec::Opus, Codec::G722],
        "127.0.0.1".parse().unwrap(),
        1,
        1,
        Direction::SendRecv,
        Security::CLEAR,
    )
    .unwrap();
    assert_eq!(ours.media[0].formats, vec![111, 9, 101]);
    assert!(
        ours.to_string()
            .contains("a=rtpmap:111 opus/48000/2\r\na=rtpmap:9 G722/8000")
    );
}

#[test]
fn maps_for_formats_not_on_the_m_line_are_passed_over() {
    let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:97 iLBC\r\na=rtpmap:300 x/8000\r\n\
a=fmtp:97 mode=30\r\na=rtpmap:101 telephone-event/8000\r\n";
    let offer = Sdp::parse(text.as_bytes()).expect("stray maps are not an error");
    assert_eq!(offer.media[0].rtpmaps.len(), 1);
    let (_, n) = answer(
        &offer,
        &[Codec::Pcmu],
        "10.0.0.2".parse().unwrap(),
        4000,
        1,
        Security::CLEAR,
    )
    .unwrap();
    assert_eq!((n.pt, n.dtmf_pt), (0, None), "101 is not offered");
    // On a listed format a broken map is still refused.
    let broken = text.replace("m=audio 30000 RTP/AVP 0", "m=audio 30000 RTP/AVP 0 97");
    assert!(Sdp::parse(broken.as_bytes()).is_err());
}

mod sdes {
    use super::*;
    use crate::config::MediaEncryptionPolicy;
    use crate::media::srtp::SrtpSuite;

    fn security(policy: MediaEncryptionPolicy) -> Security<'static> {
        Security {
            policy,
            suites: &SrtpSuite::ALL,
        }
    }

    fn ours(policy: MediaEncryptionPolicy) -> Sdp {
        offer(
            &[Codec::Pcmu],
            "127.0.0.1".parse().unwrap(),
            4000,
            1,
            Direction::SendRecv,
            security(policy),
        )
        .unwrap()
    }

    fn answered(
        offer: &Sdp,
        policy: MediaEncryptionPolicy,
    ) -> Result<(Sdp, Negotiated), NegotiationError> {
        let offer = Sdp::parse(offer.to_string().as_bytes()).unwrap();
        answer(
            &offer,
            &[Codec::Pcmu],
            "127.0.0.2".parse().unwrap(),
            5000,
            2,
            security(policy),
        )
    }

    #[test]
    fn mandatory_offers_savp_optional_offers_avp_both_with_a_key_per_suite() {
        let m = &ours(MediaEncryptionPolicy::Sdes).media[0];
        assert_eq!(m.proto, "RTP/SAVP");
        let suites: Vec<_> = m
            .crypto
            .iter()
            .map(|l| Crypto::parse(l).unwrap().unwrap().suite)
            .collect();
        assert_eq!(suites, SrtpSuite::ALL);
        let o = &ours(MediaEncryptionPolicy::SdesOptional).media[0];
        assert_eq!((o.proto.as_str(), o.crypto.len()), ("RTP/AVP", 3));
        let n = &ours(MediaEncryptionPolicy::None).media[0];
        assert_eq!((n.proto.as_str(), n.crypto.len()), ("RTP/AVP", 0));
    }

    #[test]
    fn the_answer_takes_the_first_suite_and_both_sides_read_the_same_keys() {
        let offer = ours(MediaEncryptionPolicy::Sdes);
        let (ans, theirs) = answered(&offer, MediaEncryptionPolicy::SdesOptional).unwrap();
        assert_eq!(ans.media[0].proto, "RTP/SAVP");
        assert_eq!(ans.media[0].crypto.len(), 1);
        let ans = Sdp::parse(ans.to_string().as_bytes()).unwrap();
        let mine = read_answer(&offer, &ans).unwrap();
        let (a, b) = (mine.srtp.unwrap(), theirs.srtp.unwrap());
        assert_eq!(a.suite, SrtpSuite::ALL[0]);
        assert_eq!((a.local, a.remote), (b.remote, b.local));
    }

    #[test]
    fn every_offer_and_answer_carries_fresh_keys() {
        let mut offer = ours(MediaEncryptionPolicy::Sdes);
        let before = offer.media[0].crypto.clone();
        rekey(&mut offer).unwrap();
        assert_eq!(offer.media[0].crypto.len(), before.len());
        for (a, b) in before.iter().zip(&offer.media[0].crypto) {
            assert_ne!(a, b);
            assert_eq!(a.split(' ').nth(1), b.split(' ').nth(1), "same suite");
        }
        let (one, _) = answered(&offer, MediaEncryptionPolicy::Sdes).unwrap();
        let (two, _) = answered(&offer, MediaEncryptionPolicy::Sdes).unwrap();
        assert_ne!(one.media[0].crypto, two.media[0].crypto);
    }

    #[test]
    fn policies_decide_between_clear_and_srtp() {
        let clear = ours(MediaEncryptionPolicy::None);
        assert_eq!(
            answered(&clear, MediaEncryptionPolicy::Sdes).unwrap_err(),
            NegotiationError::EncryptionRequired
        );
        assert!(
            answered(&clear, MediaEncryptionPolicy::SdesOptional)
                .unwrap()
                .1
                .srtp
                .is_none()
        );
        let optional = ours(MediaEncryptionPolicy::SdesOptional);
        let (ans, n) = answered(&optional, MediaEncryptionPolicy::None).unwrap();
        assert!(
            n.srtp.is_none() && ans.media[0].crypto.is_empty(),
            "best effort declined"
        );
        assert!(
            answered(&optional, MediaEncryptionPolicy::SdesOptional)
                .unwrap()
                .1
                .srtp
                .is_some()
        );
        // SAVP is taken even by an account that does not ask for it: better than no call.
        assert!(
            answered(
                &ours(MediaEncryptionPolicy::Sdes),
                MediaEncryptionPolicy::None
            )
            .unwrap()
            .1
            .srtp
            .is_some()
        );
        // A clear answer to a mandatory offer is refused; to an optional one, taken.
        let (clear_ans, _) = answered(&clear, MediaEncryptionPolicy::None).unwrap();
        assert_eq!(
            read_answer(&ours(MediaEncryptionPolicy::Sdes), &clear_ans).unwrap_err(),
            NegotiationError::Unencrypted
        );
        assert!(read_answer(&optional, &clear_ans).unwrap().srtp.is_none());
    }

    #[test]
    fn bad_or_foreign_crypto_is_refused_with_a_reason() {
        let mut offer = ours(MediaEncryptionPolicy::Sdes);
        offer.media[0].crypto = vec!["1 AES_CM_128_HMAC_SHA1_80 inline:AAAA".into()];
        assert!(matches!(
            answered(&offer, MediaEncryptionPolicy::None),
            Err(NegotiationError::BadCrypto(e)) if e.contains("30-byte")
        ));
        offer.media[0].crypto = vec!["1 F8_128_HMAC_SHA1_80 inline:AAAA".into()];
        assert_eq!(
            answered(&offer, MediaEncryptionPolicy::None)
                .unwrap_err()
                .to_string(),
            "no SRTP suite in common (offered: F8_128_HMAC_SHA1_80)"
        );
        offer.media[0].proto = "UDP/TLS/RTP/SAVP".into();
        assert!(matches!(
            answered(&offer, MediaEncryptionPolicy::None),
            Err(NegotiationError::BadDtls(e)) if e.contains("without a=fingerprint")
        ));
        // An answer under another tag, for a suite we offered (baresip 1.0 with ICE):
        // our key for that suite.
        let mine = ours(MediaEncryptionPolicy::Sdes);
        let (mut ans, _) = answered(&mine, MediaEncryptionPolicy::Sdes).unwrap();
        let line = ans.media[0].crypto[0].replacen('1', "7", 1);
        ans.media[0].crypto = vec![line];
        let keys = read_answer(&mine, &ans).unwrap().srtp.unwrap();
        let offered = Crypto::parse(&mine.media[0].crypto[0]).unwrap().unwrap();
        assert_eq!((keys.suite, keys.local), (offered.suite, offered.key));
        // One for a suite we did not offer answers none of ours.
        let mine = Sdp {
            media: vec![Media {
                crypto: mine.media[0].crypto[1..].to_vec(),
                ..mine.media[0].clone()
            }],
            ..mine
        };
        assert!(matches!(
            read_answer(&mine, &ans),
            Err(NegotiationError::BadCrypto(e)) if e.contains("answers none of ours")
        ));
    }
}

mod dtls {
    use super::*;
    use crate::config::MediaEncryptionPolicy;
    use crate::media::dtls::{DtlsRole, our_fingerprint};
    use crate::media::srtp::SrtpSuite;

    fn offer_of(policy: MediaEncryptionPolicy) -> Sdp {
        offer(
            &[Codec::Pcmu],
            "127.0.0.1".parse().unwrap(),
            4000,
            1,
            Direction::SendRecv,
            Security {
                policy,
                suites: &SrtpSuite::ALL,
            },
        )
        .unwrap()
    }

    #[test]
    fn we_offer_actpass_and_the_answerer_becomes_the_client() {
        let ours = offer_of(MediaEncryptionPolicy::Dtls);
        let m = &ours.media[0];
        assert_eq!(m.proto, "UDP/TLS/RTP/SAVP");
        let fp = our_fingerprint().unwrap().value();
        assert!(
            m.other_attrs.contains(&format!("fingerprint:{fp}")),
            "{m:?}"
        );
        assert!(m.other_attrs.contains(&"setup:actpass".to_string()));
        // Answered by one like us: it is the client, so we are the server.
        let text = Sdp::parse(ours.to_string().as_bytes()).unwrap();
        let (ans, theirs) = answer(
            &text,
            &[Codec::Pcmu],
            "127.0.0.2".parse().unwrap(),
            5000,
            2,
            Security::CLEAR,
        )
        .unwrap();
        assert_eq!(theirs.dtls.as_ref().unwrap().role, DtlsRole::Client);
        assert!(
            ans.media[0]
                .other_attrs
                .contains(&"setup:active".to_string())
        );
        let mine = read_answer(&ours, &Sdp::parse(ans.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(mine.dtls.unwrap().role, DtlsRole::Server);
    }

    #[test]
    fn session_level_fingerprint_and_setup_are_read_as_baresip_writes_them() {
        let fp = our_fingerprint().unwrap().value();
        let text = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             a=fingerprint:{fp}\r\na=setup:actpass\r\n\
             m=audio 30000 UDP/TLS/RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        let o = Sdp::parse(text.as_bytes()).unwrap();
        let (_, n) = answer(
            &o,
            &[Codec::Pcmu],
            "127.0.0.2".parse().unwrap(),
            5000,
            2,
            Security::CLEAR,
        )
        .unwrap();
        assert_eq!(n.dtls.unwrap().role, DtlsRole::Client);
        // A clear answer to a DTLS offer is no call.
        let clear = offer_of(MediaEncryptionPolicy::None);
        assert_eq!(
            read_answer(&offer_of(MediaEncryptionPolicy::Dtls), &clear).unwrap_err(),
            NegotiationError::Unencrypted
        );
    }

    #[test]
    fn a_re_offer_with_roles_open_keeps_the_association() {
        // We were the server (our offer was answered with active); now they re-offer
        // actpass with the same certificate.
        let fp = our_fingerprint().unwrap();
        let before = crate::media::dtls::DtlsParams {
            role: DtlsRole::Server,
            remote: fp.clone(),
        };
        let reoffer =
            Sdp::parse(offer_of(MediaEncryptionPolicy::Dtls).to_string().as_bytes()).unwrap();
        let (mut ans, mut n) = answer(
            &reoffer,
            &[Codec::Pcmu],
            "127.0.0.2".parse().unwrap(),
            5000,
            2,
            Security::CLEAR,
        )
        .unwrap();
        assert_eq!(n.dtls.as_ref().unwrap().role, DtlsRole::Client);
        keep_dtls_role(&reoffer, &mut ans, &mut n, Some(&before));
        assert_eq!(n.dtls.unwrap().role, DtlsRole::Server);
        assert!(
            ans.media[0]
                .other_attrs
                .contains(&"setup:passive".to_string())
        );
    }
}
