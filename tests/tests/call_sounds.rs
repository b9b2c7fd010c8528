//! What a door intercom needs from a call's audio, with baresip as the far phone through a
//! Kamailio that challenges every request: a file or a tone played into the call (proven
//! by tone detection on what baresip recorded), DTMF sent with the configured length and
//! pause, and digits heard in-band from a phone that sends them as tones.

use std::path::Path;
use std::time::{Duration, Instant};

use voipd_tests::audio::{dtmf_tones, read_wav, sine, tone_blocks, write_wav};
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::peers::Kamailio;
use voipd_tests::*;

const DAVE_TONE: u32 = 700;

fn dave(sb: &Sandbox, kam: &Kamailio, source_file: Option<&Path>) -> Baresip {
    Baresip::start(
        sb.path(),
        BaresipOptions {
            user: "dave",
            password: "davepw",
            tone: DAVE_TONE,
            source_file,
            ..BaresipOptions::carol(kam.port)
        },
    )
}

fn start(sb: &Sandbox, kam: &Kamailio, audio: &str) -> Daemon {
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
         [audio]\ninput = \"tone:440\"\noutput = \"file:{}\"\n{audio}\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
         codecs = [\"pcmu\"]\n",
        sb.path().join("voipd-heard.wav").display(),
        kam.port
    ));
    let d = sb.start_daemon();
    wait_account_state(sb, "alice", "registered", PATIENCE);
    d
}

#[test]
fn a_tone_and_a_file_played_into_a_call_are_heard_and_stop_when_told() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let dave = dave(&sb, &kam, None);
    let _d = start(&sb, &kam, "");
    let message = sb.path().join("door-open.wav");
    write_wav(&message, &sine(2000.0, 2.0, 16000), 16000, 1);

    // Nothing to play into yet.
    let o = sb.voipctl(&["play", "tone:1500"]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(stderr(&o).contains("no call to play"), "{}", describe(&o));

    ok(&sb, &["dial", "--wait", "dave"]);
    dave.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(1000));
    ok(&sb, &["play", "tone:1500", "--secs", "2"]);
    std::thread::sleep(Duration::from_millis(2500));
    // A relative path, as a user types it, from their working directory.
    let o = sb
        .command(bin("voipctl"))
        .args(["play", "door-open.wav"])
        .current_dir(sb.path())
        .output()
        .expect("voipctl");
    assert!(o.status.success(), "{}", describe(&o));
    std::thread::sleep(Duration::from_millis(2500));
    ok(&sb, &["play", "tone:1200", "--secs", "60"]);
    std::thread::sleep(Duration::from_millis(1500));
    ok(&sb, &["play", "--stop"]);
    std::thread::sleep(Duration::from_millis(1500));

    // Bad arguments are refused, naming what was typed, and change nothing.
    for (args, word) in [
        (&["play", "tone:5"][..], "WHAT"),
        (&["play", "/nonexistent/hello.wav"][..], "WHAT"),
        (&["play", "null"][..], "WHAT"),
        (&["play", "tone:440", "--secs=-1"][..], "--secs"),
    ] {
        let o = sb.voipctl(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", describe(&o));
        assert!(stderr(&o).contains(word), "{args:?}: {}", describe(&o));
    }
    std::thread::sleep(Duration::from_millis(1000));
    ok(&sb, &["hangup"]);
    dave.wait_event("CALL_CLOSED");

    let rec = dave.received_recordings();
    assert_eq!(rec.len(), 1, "{rec:?}");
    let (x, rate) = read_wav(&rec[0]);
    let blocks = |hz: f64| {
        let others: Vec<f64> = [440.0, 1200.0, 1500.0, 2000.0]
            .into_iter()
            .filter(|o| *o != hz)
            .collect();
        tone_blocks(&x, rate, hz, &others).0
    };
    // 100 ms blocks: 2 s of each played sound, 1.5 s of the stopped one, and the input
    // before, between and after.
    let (t1500, t2000, t1200, t440) = (
        blocks(1500.0),
        blocks(2000.0),
        blocks(1200.0),
        blocks(440.0),
    );
    assert!((15..=22).contains(&t1500), "1500 Hz in {t1500} blocks");
    assert!(
        (15..=22).contains(&t2000),
        "the file's 2000 Hz in {t2000} blocks"
    );
    assert!(
        (10..=30).contains(&t1200),
        "the stopped tone in {t1200} blocks"
    );
    assert!(
        t440 >= 25,
        "the input came back after each: 440 Hz in {t440} blocks"
    );
}

#[test]
fn dtmf_is_sent_with_the_configured_length_and_pause() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let dave = dave(&sb, &kam, None);
    let _d = start(&sb, &kam, "dtmf_duration_ms = 200\ndtmf_gap_ms = 500\n");
    ok(&sb, &["dial", "--wait", "dave"]);
    dave.wait_event("CALL_ESTABLISHED");
    // When each digit began, as baresip reports it. If this thread was held up so long
    // that both starts were seen at once, the gap is unknown: the digits go again.
    let mut apart = Duration::ZERO;
    for _ in 0..3 {
        let base = dave.events_of("CALL_DTMF_START").len();
        ok(&sb, &["dtmf", "#9"]);
        let mut starts = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        while starts.len() < 2 && Instant::now() < deadline {
            let seen = dave.events_of("CALL_DTMF_START");
            while base + starts.len() < seen.len() && starts.len() < 2 {
                starts.push((Instant::now(), seen[base + starts.len()]["param"].clone()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(starts.len(), 2, "{}", dave.log());
        assert_eq!(
            (starts[0].1.as_str(), starts[1].1.as_str()),
            (Some("#"), Some("9"))
        );
        apart = starts[1].0 - starts[0].0;
        if apart > Duration::from_millis(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    // 200 ms of tone and 500 ms of pause from one start to the next (the default would
    // be 200 ms in all).
    assert!(
        (Duration::from_millis(620)..Duration::from_millis(2000)).contains(&apart),
        "digits {apart:?} apart"
    );
    ok(&sb, &["hangup"]);
    dave.wait_event("CALL_CLOSED");
}

#[test]
fn digits_sent_as_tones_are_heard_in_band_once_each() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    // A door station that knows no telephone events: its keypad's tones, in the audio,
    // after a second and a half of quiet; its audio core runs at 48 kHz stereo.
    let mut mono = vec![0i16; 72000];
    mono.extend(dtmf_tones("#95", 48000, 150, 150));
    mono.extend(vec![0i16; 48000 * 4]);
    let stereo: Vec<i16> = mono.iter().flat_map(|s| [*s, *s]).collect();
    let keys = sb.path().join("keys.wav");
    write_wav(&keys, &stereo, 48000, 2);
    let dave = dave(&sb, &kam, Some(&keys));
    let _d = start(&sb, &kam, "inband_dtmf = true\n");
    let (mut watch, events) = watch_events(&sb);
    ok(&sb, &["dial", "--wait", "dave"]);
    dave.wait_event("CALL_ESTABLISHED");
    let digits = || -> String {
        watched(&events)
            .iter()
            .filter(|e| e["name"] == "dtmf")
            .filter_map(|e| {
                e["kind"]["dtmf_received"]["digit"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    };
    wait_until(|| digits().len() >= 3, "three digits heard in the audio");
    // Each once: a long tone is one key press, and the quiet after makes no digit.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(digits(), "#95");
    ok(&sb, &["hangup"]);
    let _ = watch.kill();
    let _ = watch.wait();
}
