//! Video calls with baresip as the far phone (its vp8 or avcodec module, fakevideo as
//! camera and display, snapshot to save what it received), through a Kamailio that
//! challenges every request, re-INVITEs included. Both directions are proven on the
//! pictures themselves: baresip's snapshot shows voipd's colour bars, and voipd's shows
//! baresip's red, green and blue thirds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::peers::Kamailio;
use voipd_tests::picture::{
    Picture, baresip_sees_our_pattern, baresip_sees_our_pattern_at, fakevideo_mismatches,
    we_see_baresips_picture,
};
use voipd_tests::*;

fn config(sb: &Sandbox, kam: &Kamailio, codec: &str, sink: &str) -> String {
    format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
         [audio]\ninput = \"tone:440\"\noutput = \"null\"\n\n\
         [video]\nsize = \"320x240\"\nfps = 15\nmax_kbps = 600\nsink = \"{}\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
         codecs = [\"pcmu\"]\nvideo = \"both\"\nvideo_codecs = [\"{codec}\"]\n",
        sb.path().join(sink).display(),
        kam.port
    )
}

/// The only call's video as `voipctl --json calls` shows it.
fn video(sb: &Sandbox) -> serde_json::Value {
    calls(sb)
        .first()
        .map(|c| c["video"].clone())
        .unwrap_or_default()
}

fn num(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// Waits until voipd has decoded `more` pictures beyond `from`, of baresip's size.
fn wait_pictures(sb: &Sandbox, from: u64, more: u64) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(
        || {
            last = video(sb);
            num(&last, "frames_received") >= from + more
                && num(&last, "width") == 320
                && num(&last, "height") == 240
        },
        "pictures from baresip",
    );
    last
}

fn video_phone(sb: &Sandbox, kam: &Kamailio, codec: &'static str) -> Baresip {
    Baresip::start(
        sb.path(),
        BaresipOptions {
            video: Some(codec),
            ..BaresipOptions::carol(kam.port)
        },
    )
}

fn sink_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == ext));
    v.sort();
    v
}

#[test]
fn vp8_both_ways_with_baresip_removed_and_added_again_mid_call() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let mut carol = video_phone(&sb, &kam, "VP8");
    // Video off for the account, and 640×480 configured: the call asks for video, at
    // 320×240.
    sb.write_config(
        &config(&sb, &kam, "vp8", "seen-{id}.ivf")
            .replace("video = \"both\"", "video = \"off\"")
            .replace("size = \"320x240\"", "size = \"640x480\""),
    );
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);

    // The cameras the daemon sees: none on a test machine (the V4L2 source itself is
    // unit-tested against a fake camera).
    let devices = stdout(&ok(&sb, &["video", "devices"]));
    let cameras: Vec<_> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("video"))
                .collect()
        })
        .unwrap_or_default();
    if cameras.is_empty() {
        assert!(devices.contains("no cameras"), "{devices}");
    }

    ok(
        &sb,
        &[
            "dial",
            "--wait",
            "--video",
            "--video-size",
            "320x240",
            "carol",
        ],
    );
    carol.wait_event("CALL_ESTABLISHED");
    let v = wait_pictures(&sb, 0, 30);
    assert_eq!(v["codec"], "VP8", "{v}");
    assert_eq!(v["direction"], "sendrecv", "{v}");
    // The table says so too.
    let table = stdout(&ok(&sb, &["calls"]));
    assert!(table.contains("video VP8 sendrecv 320x240"), "{table}");
    baresip_sees_our_pattern(&mut carol, &sb.path().join("carol-saw.png"));
    we_see_baresips_picture(&sb, &sb.path().join("we-saw.png"));
    let v = video(&sb);
    assert!(num(&v, "frames_sent") >= 30, "{v}");
    // What goes out is measured (a still pattern takes little); the encoder aims at
    // half the ceiling at first.
    assert!(num(&v, "send_kbps") >= 1, "{v}");
    assert!((64..=600).contains(&num(&v, "target_kbps")), "{v}");

    // Junk at our video port from the far side's host: too short for RTP, the wrong
    // version, a header cut short, CSRCs promised and missing. Each is dropped and
    // counted; the pictures go on.
    let port: std::net::SocketAddr = v["rtp_local"].as_str().unwrap_or_default().parse().unwrap();
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let bad: [&[u8]; 4] = [
        &[0x80],
        &[0x40, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],
        &[0x80, 96, 0, 1, 0, 0, 0, 1],
        &[0x8f, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0],
    ];
    for _ in 0..25 {
        for b in bad {
            junk.send_to(b, port).unwrap();
        }
    }
    let v = wait_pictures(&sb, num(&v, "frames_received"), 15);
    assert!(num(&v, "malformed") >= 100, "{v}");
    assert_eq!(calls(&sb)[0]["state"], "active");

    // Off: a re-INVITE (challenged, answered) takes the stream away; the call goes on.
    ok(&sb, &["video", "off"]);
    wait_until(|| video(&sb).is_null(), "the video to go");
    assert_eq!(calls(&sb)[0]["state"], "active");
    // No picture now: refused, saying so, and nothing written.
    let gone = sb.path().join("none.png");
    let snap = sb.voipctl(&["video", "snapshot", "1", &gone.display().to_string()]);
    assert_eq!(snap.status.code(), Some(1), "{}", describe(&snap));
    assert!(
        stderr(&snap).contains("no video picture"),
        "{}",
        describe(&snap)
    );
    assert!(!gone.exists());
    // On again, smaller: a new stream, pictures both ways from a key frame. A size that
    // cannot be is refused, naming it, and changes nothing.
    let bad = sb.voipctl(&["video", "on", "--size", "15x15"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(stderr(&bad).contains("size"), "{}", describe(&bad));
    assert!(video(&sb).is_null());
    ok(&sb, &["video", "on", "--size", "160x120", "--fps", "10"]);
    wait_pictures(&sb, 0, 20);
    let again = sb.path().join("carol-saw-again.png");
    baresip_sees_our_pattern_at(&mut carol, &again, (160, 120));
    // Its size is the call's, not to be changed under it.
    let busy = sb.voipctl(&["video", "on", "--size", "320x240"]);
    assert_eq!(busy.status.code(), Some(1), "{}", describe(&busy));
    assert!(
        stderr(&busy).contains("turn it off first"),
        "{}",
        describe(&busy)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(num(&video(&sb), "width"), 320, "carol's size, unchanged");
    let ours = sb.path().join("carol-saw-still.png");
    baresip_sees_our_pattern_at(&mut carol, &ours, (160, 120));

    ok(&sb, &["hangup"]);
    carol.wait_event("CALL_CLOSED");
    // What came is kept as IVF: one file per stream, each with its frames counted.
    let files = sink_files(sb.path(), "ivf");
    assert_eq!(files.len(), 2, "{files:?}");
    wait_until(
        || {
            files.iter().all(|f| {
                std::fs::read(f).is_ok_and(|b| {
                    b.len() > 32
                        && &b[..4] == b"DKIF"
                        && u32::from_le_bytes([b[24], b[25], b[26], b[27]]) >= 20
                })
            })
        },
        "both IVF files closed with their frames",
    );
}

fn base64(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn h264_both_ways_with_baresips_avcodec_on_an_incoming_call() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let bus = voipd_tests::dbus::Bus::start(sb.path());
    let mut carol = video_phone(&sb, &kam, "H264");
    sb.write_config(&config(&sb, &kam, "h264", "seen-{id}.h264"));
    let mut d = sb.spawn_daemon(&[], &bus.env());
    sb.wait_notify(|m| m.contains("READY=1"), &mut d);
    bus.wait_for_voipd();
    wait_account_state(&sb, "alice", "registered", PATIENCE);

    carol.command("dial", &format!("sip:alice@127.0.0.1:{}", kam.port));
    wait_call_where(&sb, |c| c["state"] == "ringing", "the call to ring");
    ok(&sb, &["answer"]);
    carol.wait_event("CALL_ESTABLISHED");
    let v = wait_pictures(&sb, 0, 30);
    assert_eq!(v["codec"], "H264", "{v}");
    baresip_sees_our_pattern(&mut carol, &sb.path().join("carol-saw.png"));
    we_see_baresips_picture(&sb, &sb.path().join("we-saw.png"));

    // A panel shows who is at the door: the call's Video property and Snapshot() over
    // D-Bus; a script the same over gRPC.
    let id = calls(&sb)[0]["id"].as_u64().unwrap_or(0);
    let path = format!("/org/voipd/Voipd/call/{id}");
    assert_eq!(
        bus.property(&path, "org.voipd.Call1", "Video"),
        "s \"H264\""
    );
    let out = bus.busctl_ok(&[
        "--json=short",
        "call",
        voipd_tests::dbus::NAME,
        &path,
        "org.voipd.Call1",
        "Snapshot",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("busctl JSON");
    let png: Vec<u8> = v["data"][0]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| b.as_u64())
                .map(|b| b as u8)
                .collect()
        })
        .unwrap_or_default();
    let bad = fakevideo_mismatches(&Picture::from_png(&png));
    assert!(bad.is_empty(), "D-Bus Snapshot(): {bad:?}");
    let r = grpc_calls(&sb, "Snapshot", &format!(r#"{{"id": {id}}}"#));
    let png = base64(r["response"]["png"].as_str().unwrap_or_default());
    let bad = fakevideo_mismatches(&Picture::from_png(&png));
    assert!(bad.is_empty(), "gRPC Snapshot: {bad:?}");
    let r = grpc_calls(&sb, "Get", &format!(r#"{{"id": {id}}}"#));
    let v = &r["response"]["video"];
    assert_eq!(
        (v["codec"].as_str(), v["width"].as_u64()),
        (Some("H264"), Some(320)),
        "{r}"
    );
    // No such call: named.
    let r = grpc_calls(&sb, "Snapshot", r#"{"id": 999}"#);
    assert_eq!(r["error"]["code"], "NOT_FOUND", "{r}");

    ok(&sb, &["hangup"]);
    carol.wait_event("CALL_CLOSED");
    let files = sink_files(sb.path(), "h264");
    assert_eq!(files.len(), 1, "{files:?}");
    wait_until(
        || {
            std::fs::read(&files[0]).is_ok_and(|b| {
                // Annex B from a key frame: a start code, then the sequence parameters.
                b.len() > 1000
                    && b.windows(5)
                        .take(64)
                        .any(|w| w[..4] == [0, 0, 0, 1] && w[4] & 0x1f == 7)
            })
        },
        "the H.264 stream kept from its key frame",
    );
}

/// Drops `percent` of the UDP packets in the provider's network that are not SIP (RTP and
/// RTCP, both ways), with nftables: this kernel has no netem, and a random drop in the
/// output hook loses packets as a bad link does.
fn lose(world: &voipd_tests::netns::World, percent: u32) {
    let nft = |args: &str| {
        let out = world
            .provider
            .command("nft")
            .args(args.split(' '))
            .output()
            .expect("nft");
        assert!(out.status.success(), "nft {args}: {}", describe(&out));
    };
    let _ = world
        .provider
        .command("nft")
        .args(["delete", "table", "ip", "loss"])
        .output();
    if percent == 0 {
        return;
    }
    nft("add table ip loss");
    nft("add chain ip loss out { type filter hook output priority 0 ; }");
    let rule = "add rule ip loss out udp sport != 5060 udp dport != 5060";
    match percent {
        100.. => nft(&format!("{rule} drop")),
        p => nft(&format!("{rule} numgen random mod 100 < {p} drop")),
    }
}

#[test]
fn voipd_to_voipd_a_y4m_file_arrives_intact_through_loss_blackout_and_renegotiation() {
    let world = voipd_tests::netns::World::new(&[]);
    let (a, b) = (Sandbox::new(), Sandbox::new());
    let _kam = Kamailio::start_on(a.path(), &world.provider, &[]);
    let source = a.path().join("moving.y4m");
    let sent = voipd_tests::picture::Y4m::moving(320, 240, 45);
    sent.write(&source, 15);
    let registrar = world.provider.ip;
    let config = |user: &str, video: &str| {
        format!(
            "[sip]\nlisten = [\"udp:{registrar}:0\"]\n\n\
             [audio]\ninput = \"tone:440\"\noutput = \"null\"\n\n[video]\n{video}\n\n\
             [[account]]\nid = \"{user}\"\naor = \"sip:{user}@{registrar}\"\npassword = \"{user}pw\"\n\
             codecs = [\"pcmu\"]\nvideo = \"both\"\nvideo_codecs = [\"vp8\"]\nanswer = {{ mode = \"auto\" }}\n"
        )
    };
    a.write_config(&config(
        "alice",
        &format!("source = \"{}\"\nmax_kbps = 800", source.display()),
    ));
    b.write_config(&config(
        "bob",
        &format!("sink = \"{}\"", b.path().join("got-{id}.y4m").display()),
    ));
    let _da = a.start_daemon_on(&world.provider);
    let _db = b.start_daemon_on(&world.provider);
    wait_account_state(&a, "alice", "registered", PATIENCE);
    wait_account_state(&b, "bob", "registered", PATIENCE);

    ok(&a, &["dial", "--wait", "bob"]);
    let v = wait_pictures(&b, 0, 45);
    assert_eq!(v["codec"], "VP8", "{v}");

    // A second without any media: the picture breaks, bob asks for a key frame (PLI), and
    // alice sends one.
    lose(&world, 100);
    std::thread::sleep(Duration::from_millis(1500));
    lose(&world, 0);
    let v = wait_pictures(&b, num(&video(&b), "frames_received"), 30);
    assert!(num(&v, "key_frames_asked") >= 1, "{v}");
    let ours = video(&a);
    assert!(num(&ours, "key_frames_sent_on_request") >= 1, "{ours}");

    // 5 % of packets lost for a while: the gaps are asked for again (NACK), sent again,
    // and the pictures keep coming.
    lose(&world, 5);
    let before = num(&video(&b), "frames_received");
    std::thread::sleep(Duration::from_secs(5));
    let v = video(&b);
    lose(&world, 0);
    assert!(num(&v, "frames_received") >= before + 40, "{v}");
    assert!(num(&v, "nacks_sent") >= 1, "{v}");
    let ours = video(&a);
    assert!(num(&ours, "retransmitted") >= 1, "{ours}");

    // A link that loses a fifth: bob's reports say so, and alice's encoder aims lower.
    let before = num(&video(&a), "target_kbps");
    assert!(before > 64, "{}", video(&a));
    lose(&world, 20);
    wait_until(
        || num(&video(&a), "target_kbps") < before,
        "alice's rate to fall under loss",
    );
    lose(&world, 0);

    // On hold the pictures stop both ways; resumed, they come again, into the same file.
    ok(&a, &["hold"]);
    wait_until(
        || video(&a)["direction"] == "inactive" && video(&b)["direction"] == "inactive",
        "the video inactive on hold",
    );
    ok(&a, &["resume"]);
    wait_until(
        || video(&b)["direction"] == "sendrecv",
        "the video back on resume",
    );
    wait_pictures(&b, num(&video(&b), "frames_received"), 20);

    // Bob takes the video away and brings it back (alice answers both re-INVITEs).
    ok(&b, &["video", "off"]);
    wait_until(
        || video(&a).is_null() && video(&b).is_null(),
        "the video gone on both sides",
    );
    ok(&b, &["video", "on"]);
    wait_pictures(&b, 0, 20);
    ok(&a, &["hangup"]);
    wait_until(|| calls(&b).is_empty(), "bob's call to end");

    // Every picture bob decoded is one alice sent, frame by frame: at least 30 dB (VP8 at
    // 800 kbit/s on 320×240 gives about 40), and in order.
    let got = sink_files(b.path(), "y4m");
    assert_eq!(got.len(), 2, "{got:?}");
    let first = b.path().join("got-1.y4m");
    wait_until(
        || got.iter().all(|g| Y4mFrames::count(g) >= 20),
        "both of bob's streams written",
    );
    let received = voipd_tests::picture::Y4m::read(&first);
    assert_eq!((received.width, received.height), (320, 240));
    let luma = 320 * 240;
    let mut in_order = 0;
    let mut last = None;
    for (k, f) in received.frames.iter().enumerate() {
        let (best, db) = sent
            .frames
            .iter()
            .enumerate()
            .map(|(i, s)| (i, voipd_tests::picture::psnr_luma(f, s, luma)))
            .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
        assert!(
            db >= 30.0,
            "picture {k}: best match frame {best} at {db:.1} dB"
        );
        if last.is_some_and(|l| (l + 1) % sent.frames.len() == best) {
            in_order += 1;
        }
        last = Some(best);
    }
    let n = received.frames.len();
    assert!(
        in_order * 10 >= (n - 1) * 9,
        "only {in_order} of {n} pictures followed the one before"
    );
}

/// Pictures in a Y4M file written so far.
struct Y4mFrames;

impl Y4mFrames {
    fn count(path: &Path) -> usize {
        std::fs::read(path).map_or(0, |d| d.windows(6).filter(|w| w == b"FRAME\n").count())
    }
}

#[test]
fn vp8_in_srtp_with_baresip_pictures_both_ways_and_nothing_in_clear() {
    encrypted_video("srtp-mand", "sdes");
}

#[test]
fn vp8_in_dtls_srtp_with_baresip_pictures_both_ways_and_nothing_in_clear() {
    encrypted_video("dtls_srtp", "dtls");
}

/// baresip with `mediaenc` is called by voipd with `media_encryption = policy`:
/// the video is keyed as the audio is (its own SDES keys, or its own DTLS handshake), the
/// pictures go both ways, and a capture shows no clear VP8.
fn encrypted_video(mediaenc: &'static str, policy: &str) {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let mut carol = Baresip::start(
        sb.path(),
        BaresipOptions {
            video: Some("VP8"),
            mediaenc: Some(mediaenc),
            ..BaresipOptions::carol(kam.port)
        },
    );
    let lo = voipd_tests::peers::free_even_ports(10);
    // What we receive goes into a FIFO as Y4M: read by a player for the SDES call, by no
    // one for the DTLS call (whose end must not wait for one).
    let fifo = sb.path().join("door.y4m");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let player = (policy == "sdes").then(|| {
        let path = fifo.clone();
        std::thread::spawn(move || std::fs::read(path).unwrap_or_default())
    });
    let text = config(&sb, &kam, "vp8", "door.y4m").replace(
        "output = \"null\"\n",
        &format!("output = \"null\"\nrtp_ports = \"{lo}-{}\"\n", lo + 9),
    ) + &format!("media_encryption = \"{policy}\"\n");
    sb.write_config(&text);
    let d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let capture = voipd_tests::capture::Capture::start(
        sb.path(),
        "video-srtp",
        &format!("udp portrange {lo}-{}", lo + 9),
    );
    ok(&sb, &["dial", "--wait", "carol"]);
    carol.wait_event("CALL_ESTABLISHED");
    assert_eq!(calls(&sb)[0]["media_encryption"], policy);
    if policy == "dtls" {
        // Its own handshake on the video's port, not the audio's keys.
        wait_until(
            || d.log().contains("video DTLS-SRTP keyed"),
            "the video's DTLS handshake",
        );
    }
    wait_pictures(&sb, 0, 30);
    baresip_sees_our_pattern(&mut carol, &sb.path().join("carol-saw.png"));
    we_see_baresips_picture(&sb, &sb.path().join("we-saw.png"));
    // Long enough for a good sample of packets on the wire.
    wait_pictures(&sb, num(&video(&sb), "frames_received"), 30);
    ok(&sb, &["hangup"]);
    carol.wait_event("CALL_CLOSED");
    wait_until(|| calls(&sb).is_empty(), "the call to end");
    if let Some(p) = player {
        let seen = p.join().unwrap();
        assert!(
            seen.starts_with(b"YUV4MPEG2 W320 H240"),
            "the player got {} bytes",
            seen.len()
        );
        let pictures = seen.windows(6).filter(|w| w == b"FRAME\n").count();
        assert!(pictures >= 30, "the player got {pictures} pictures");
    }
    // SRTP leaves the RTP header in clear: our VP8 packets (payload type 96) are found by
    // it. In clear their payload begins X=1 then I=1 (a picture id); encrypted, about a
    // quarter would by chance.
    let sent: Vec<_> = capture
        .stop()
        .into_iter()
        .filter(|d| {
            (lo..lo + 10).contains(&d.src_port) && d.payload.len() > 24 && d.payload[1] & 0x7f == 96
        })
        .collect();
    assert!(sent.len() >= 50, "only {} VP8 packets captured", sent.len());
    let clear_looking = sent
        .iter()
        .filter(|d| d.payload[12] & 0x80 != 0 && d.payload[13] & 0x80 != 0)
        .count();
    assert!(
        clear_looking * 10 < sent.len() * 6,
        "{clear_looking} of {} video packets look like clear VP8",
        sent.len()
    );
}

#[test]
fn vp8_with_ice_on_our_side_only_goes_where_the_far_sides_sdp_says() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let mut carol = video_phone(&sb, &kam, "VP8");
    sb.write_config(
        &(config(&sb, &kam, "vp8", "null").replace("sink = \"", "# sink = \"") + "ice = true\n"),
    );
    let d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    ok(&sb, &["dial", "--wait", "carol"]);
    carol.wait_event("CALL_ESTABLISHED");
    // baresip runs no ICE: our video must not wait for a nomination that never comes.
    wait_pictures(&sb, 0, 30);
    baresip_sees_our_pattern(&mut carol, &sb.path().join("carol-saw.png"));
    assert!(d.log().contains("the far side has no ICE"), "{}", d.log());
    ok(&sb, &["hangup"]);
    carol.wait_event("CALL_CLOSED");
}
