//! Recording a call (`voipctl record`, `record = "always"`) with baresip as the far phone
//! through a Kamailio that challenges every request: both directions land in their own
//! channel (proven by tone detection), the history keeps the file, bad arguments change
//! nothing, and a daemon killed mid-call leaves a file that standard readers play: Python's
//! wave for WAV, opusdec for Ogg/Opus.

use std::time::Duration;

use voipd_tests::audio::{read_wav_channels, tone_blocks};
use voipd_tests::baresip::kamailio_phone;
use voipd_tests::peers::Kamailio;
use voipd_tests::*;

const OURS: f64 = 440.0;
const BOBS: u32 = 660;

fn start(sb: &Sandbox, kam: &Kamailio, account: &str) -> Daemon {
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
         [audio]\ninput = \"tone:{OURS}\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
         codecs = [\"pcmu\"]\n{account}",
        kam.port
    ));
    let d = sb.start_daemon();
    wait_account_state(sb, "alice", "registered", PATIENCE);
    d
}

/// Ours on the left, theirs on the right, each clear of the other for `min` blocks.
fn assert_channels(path: &std::path::Path, min: usize) {
    let (ch, rate) = read_wav_channels(path);
    assert_eq!(ch.len(), 2, "{}: stereo", path.display());
    let bobs = f64::from(BOBS);
    let (left, n) = tone_blocks(&ch[0], rate, OURS, &[bobs]);
    assert!(
        left >= min,
        "ours (left): {OURS} Hz in {left} of {n} blocks"
    );
    let (right, n) = tone_blocks(&ch[1], rate, bobs, &[OURS]);
    assert!(
        right >= min,
        "theirs (right): {bobs} Hz in {right} of {n} blocks"
    );
}

#[test]
fn a_recording_holds_ours_left_theirs_right_and_the_history_keeps_it() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let bob = kamailio_phone(sb.path(), kam.port, "bob", BOBS, true);
    let _d = start(&sb, &kam, "");
    let file = sb.path().join("talk.wav");
    let to = file.display().to_string();

    // No call yet: nothing to record.
    let o = sb.voipctl(&["record", "start", "--to", &to]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    ok(&sb, &["dial", "--wait", "bob"]);
    bob.wait_event("CALL_ESTABLISHED");

    // Bad places are refused, naming the field, and nothing starts.
    std::fs::write(sb.path().join("taken.wav"), b"keep me").expect("write");
    for (path, why) in [
        ("/nonexistent/dir/x.wav", "No such file"),
        (
            &*sb.path().join("taken.wav").display().to_string(),
            "exists",
        ),
        (&*sb.path().join("x.mp3").display().to_string(), ".wav"),
        (
            &*sb.path().join("two\nlines.wav").display().to_string(),
            "control character",
        ),
    ] {
        let o = sb.voipctl(&["record", "start", "--to", path]);
        assert_eq!(o.status.code(), Some(2), "{path}: {}", describe(&o));
        assert!(
            stderr(&o).contains("--to") && stderr(&o).contains(why),
            "{path}: {}",
            describe(&o)
        );
    }
    assert_eq!(
        std::fs::read(sb.path().join("taken.wav")).expect("read"),
        b"keep me"
    );
    assert_eq!(calls(&sb)[0]["recording"], "", "nothing records");
    let o = sb.voipctl(&["record", "stop"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));

    let o = ok(&sb, &["record", "start", "--to", &to]);
    assert!(stdout(&o).contains(&to), "{}", describe(&o));
    assert_eq!(calls(&sb)[0]["recording"], to.as_str());
    std::thread::sleep(Duration::from_secs(3));
    ok(&sb, &["record", "stop"]);
    wait_call_where(&sb, |c| c["recording"] == "", "the recording to stop");
    std::thread::sleep(Duration::from_millis(500));
    ok(&sb, &["hangup"]);
    bob.wait_event("CALL_CLOSED");

    // Three seconds: at least two of them clear, each side in its channel.
    assert_channels(&file, 20);
    let (ch, rate) = read_wav_channels(&file);
    let secs = ch[0].len() as f64 / f64::from(rate);
    assert!((2.5..4.0).contains(&secs), "{secs} s recorded");

    wait_until(
        || {
            let h = stdout(&sb.voipctl(&["--json", "history"]));
            h.contains(&to)
        },
        "the recording in the history",
    );

    // The sound test has no far side to record: refused, and no file is left.
    ok(&sb, &["dial", "echo"]);
    wait_call_where(&sb, |c| c["state"] == "active", "the sound test");
    let echo = sb.path().join("echo.wav");
    let o = sb.voipctl(&["record", "start", "--to", &echo.display().to_string()]);
    assert!(
        o.status.code() == Some(1) && stderr(&o).contains("sound test"),
        "{}",
        describe(&o)
    );
    assert!(!echo.exists());
    ok(&sb, &["hangup"]);
}

#[test]
fn record_always_records_each_call_and_a_kill_leaves_a_playable_file() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let bob = kamailio_phone(sb.path(), kam.port, "bob", BOBS, true);
    let d = start(&sb, &kam, "record = \"always\"\n");
    ok(&sb, &["dial", "--wait", "bob"]);
    bob.wait_event("CALL_ESTABLISHED");
    let c = wait_call_where(
        &sb,
        |c| c["recording"].as_str().is_some_and(|r| !r.is_empty()),
        "the call to be recorded from its answer",
    );
    let path = std::path::PathBuf::from(c["recording"].as_str().unwrap_or_default());
    assert!(
        path.starts_with(sb.path().join("state/voipd/recordings")),
        "{}",
        path.display()
    );
    assert!(
        path.ends_with(format!("call-{}.wav", c["id"])),
        "{}",
        path.display()
    );
    std::thread::sleep(Duration::from_secs(4));
    // Killed mid-call: nothing is closed properly.
    d.signal(libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(300));

    // A standard reader takes it as it is, and it holds the call up to the last second.
    let o = std::process::Command::new(python())
        .args([
            "-c",
            "import sys, wave; w = wave.open(sys.argv[1]); \
             print(w.getnchannels(), w.getframerate(), w.getnframes()); w.readframes(w.getnframes())",
        ])
        .arg(&path)
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", describe(&o));
    let said = stdout(&o);
    let v: Vec<u64> = said
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(v.len(), 3, "{said}");
    assert_eq!((v[0], v[1]), (2, 8000), "{said}");
    assert!(v[2] >= 8000 * 2, "at least 2 s kept: {said}");
    assert_channels(&path, 15);
}

#[test]
fn an_ogg_opus_recording_cut_by_a_kill_plays_in_opusdec() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let bob = kamailio_phone(sb.path(), kam.port, "bob", BOBS, true);
    let d = start(&sb, &kam, "");
    ok(&sb, &["dial", "--wait", "bob"]);
    bob.wait_event("CALL_ESTABLISHED");
    let file = sb.path().join("talk.opus");
    ok(
        &sb,
        &["record", "start", "--to", &file.display().to_string()],
    );
    std::thread::sleep(Duration::from_millis(3500));
    d.signal(libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(300));

    // opusdec (opus-tools) takes it as it is: the pages closed before the kill.
    let wav = sb.path().join("talk-decoded.wav");
    let o = std::process::Command::new(require_tool("opusdec", "opus-tools"))
        .args(["--quiet", "--force-wav"])
        .arg(&file)
        .arg(&wav)
        .output()
        .expect("opusdec");
    assert!(o.status.success(), "{}", describe(&o));
    assert_channels(&wav, 15);
    let size = std::fs::metadata(&file).expect("the file").len();
    let (ch, rate) = read_wav_channels(&wav);
    let secs = ch[0].len() as f64 / f64::from(rate);
    assert!((2.0..4.0).contains(&secs), "{secs} s decoded");
    // A WAV of the same would be 32 kB a second.
    assert!((size as f64) < secs * 12_000.0, "{size} bytes for {secs} s");
}
