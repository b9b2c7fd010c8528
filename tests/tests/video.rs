//! Video calls with baresip as the far phone (its vp8 or avcodec module, fakevideo as
//! camera and display, snapshot to save what it received), through a Kamailio that
//! challenges every request, re-INVITEs included. Both directions are proven on the
//! pictures themselves: baresip's snapshot shows voipd's colour bars, and voipd's shows
//! baresip's red, green and blue thirds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::peers::Kamailio;
use voipd_tests::picture::{Picture, fakevideo_mismatches, pattern_mismatches};
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

/// baresip saves the next picture it decodes from us; it must show our colour bars.
fn baresip_sees_our_pattern(phone: &mut Baresip, at: &Path) {
    phone.command("snapshot_recv", &at.display().to_string());
    wait_until(
        || std::fs::metadata(at).is_ok_and(|m| m.len() > 0),
        "baresip's snapshot of our video",
    );
    // Written as it is saved: a moment for the whole file.
    std::thread::sleep(Duration::from_millis(300));
    let p = Picture::read_png(at);
    assert_eq!((p.width, p.height), (320, 240), "baresip's snapshot size");
    let bad = pattern_mismatches(&p);
    assert!(bad.is_empty(), "baresip's snapshot of our video: {bad:?}");
}

/// voipd's snapshot (voipctl video snapshot) shows baresip's picture.
fn we_see_baresips_picture(sb: &Sandbox, at: &Path) {
    ok(sb, &["video", "snapshot", &at.display().to_string()]);
    let p = Picture::read_png(at);
    assert_eq!((p.width, p.height), (320, 240));
    let bad = fakevideo_mismatches(&p);
    assert!(bad.is_empty(), "our snapshot of baresip's video: {bad:?}");
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
    sb.write_config(&config(&sb, &kam, "vp8", "seen-{id}.ivf"));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);

    ok(&sb, &["dial", "--wait", "carol"]);
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
    assert!(num(&v, "send_kbps") >= 64, "{v}");

    // Off: a re-INVITE (challenged, answered) takes the stream away; the call goes on.
    ok(&sb, &["video", "off"]);
    wait_until(|| video(&sb).is_null(), "the video to go");
    assert_eq!(calls(&sb)[0]["state"], "active");
    let snap = sb.voipctl(&["video", "snapshot", "1", "/dev/null"]);
    assert!(!snap.status.success(), "{}", describe(&snap));
    // On again: a new stream, pictures both ways from a key frame.
    ok(&sb, &["video", "on"]);
    wait_pictures(&sb, 0, 20);
    let again = sb.path().join("carol-saw-again.png");
    baresip_sees_our_pattern(&mut carol, &again);

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

#[test]
fn h264_both_ways_with_baresips_avcodec_on_an_incoming_call() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let mut carol = video_phone(&sb, &kam, "H264");
    sb.write_config(&config(&sb, &kam, "h264", "seen-{id}.h264"));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);

    carol.command("dial", &format!("sip:alice@127.0.0.1:{}", kam.port));
    wait_call_where(&sb, |c| c["state"] == "ringing", "the call to ring");
    ok(&sb, &["answer"]);
    carol.wait_event("CALL_ESTABLISHED");
    let v = wait_pictures(&sb, 0, 30);
    assert_eq!(v["codec"], "H264", "{v}");
    baresip_sees_our_pattern(&mut carol, &sb.path().join("carol-saw.png"));
    we_see_baresips_picture(&sb, &sb.path().join("we-saw.png"));
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
