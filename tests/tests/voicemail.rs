//! The answering machine with a real caller: baresip (carol) calls voipd (alice) through
//! a Kamailio that challenges every INVITE, nobody answers, the machine greets and
//! records. Audio is proven both ways: the greeting's tone in what baresip heard, the
//! caller's tone in the stored message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use voipd_tests::audio::{assert_tone, read_wav, tone_blocks};
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::dbus::{Bus, ROOT};
use voipd_tests::peers::{Kamailio, Sipp};
use voipd_tests::*;

const CAROL_TONE: f64 = 1300.0;
const VOICEMAIL: &str = "org.voipd.Voicemail1";
const GREETING_TONE: f64 = 600.0;
const BEEP: f64 = 1000.0;
/// The greeting's length, the pause and the beep: the machine's prompt.
const PROMPT: Duration = Duration::from_millis(2000 + 300 + 500);

/// A greeting: 2 s of 600 Hz, 8 kHz 16-bit mono.
fn write_greeting(path: &Path) {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate * 2)
        .map(|i| {
            let t = f64::from(i) / f64::from(rate);
            (8000.0 * (std::f64::consts::TAU * GREETING_TONE * t).sin()) as i16
        })
        .collect();
    let mut b = Vec::new();
    let data = (samples.len() * 2) as u32;
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, b).expect("greeting");
}

fn config(sb: &Sandbox, kam: &Kamailio, machine: &str) -> String {
    format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
         [audio]\ninput = \"tone:440\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
         codecs = [\"pcmu\"]\nanswering_machine = {{ greeting = \"{}\", {machine} }}\n",
        kam.port,
        sb.path().join("greeting.wav").display(),
    )
}

fn start(sb: &Sandbox, machine: &str) -> (Kamailio, Daemon, Baresip) {
    start_on(sb, machine, None, ("pcmu", "PCMU"))
}

/// With a D-Bus, and a codec (ours, baresip's).
fn start_on(
    sb: &Sandbox,
    machine: &str,
    bus: Option<&Bus>,
    codec: (&str, &'static str),
) -> (Kamailio, Daemon, Baresip) {
    let kam = Kamailio::start(sb.path(), &[]);
    write_greeting(&sb.path().join("greeting.wav"));
    sb.write_config(&config(sb, &kam, machine).replace("\"pcmu\"", &format!("\"{}\"", codec.0)));
    let d = match bus {
        Some(bus) => {
            let mut d = sb.spawn_daemon(&[], &bus.env());
            sb.wait_notify(|m| m.contains("READY=1"), &mut d);
            d
        }
        None => sb.start_daemon(),
    };
    wait_account_state(sb, "alice", "registered", PATIENCE);
    let carol = Baresip::start(
        sb.path(),
        BaresipOptions {
            tone: CAROL_TONE as u32,
            auto_answer: false,
            codec: codec.1,
            ..BaresipOptions::carol(kam.port)
        },
    );
    (kam, d, carol)
}

fn voicemails(sb: &Sandbox) -> Value {
    let o = sb.voipctl(&["--json", "voicemail", "list"]);
    assert!(o.status.success(), "{}", describe(&o));
    serde_json::from_str(&stdout(&o)).expect("voicemail JSON")
}

fn messages(sb: &Sandbox) -> Vec<Value> {
    voicemails(sb)["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// carol calls, the machine answers; she speaks for `talk` after the beep and hangs up.
fn leave_message(carol: &mut Baresip, talk: Duration) {
    carol.clear_recordings();
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(PROMPT + talk);
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
}

fn export(sb: &Sandbox, id: i64) -> PathBuf {
    let to = sb.path().join(format!("exported-{id}.wav"));
    let o = sb.voipctl(&[
        "voicemail",
        "export",
        &id.to_string(),
        &to.to_string_lossy(),
    ]);
    assert!(o.status.success(), "{}", describe(&o));
    to
}

#[test]
fn the_machine_greets_records_and_the_message_is_listed_played_and_deleted() {
    let sb = Sandbox::new();
    let bus = Bus::start(sb.path());
    let (_kam, d, mut carol) = start_on(
        &sb,
        "after_secs = 1, min_secs = 2",
        Some(&bus),
        ("pcmu", "PCMU"),
    );
    bus.wait_for_voipd();
    let monitor = bus.monitor();
    assert_eq!(bus.property(ROOT, VOICEMAIL, "NewVoicemails"), "u 0");

    leave_message(&mut carol, Duration::from_secs(3));
    // carol heard the greeting and the beep.
    let heard = carol.received_recordings();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_tone(&heard[0], GREETING_TONE, &[CAROL_TONE, BEEP], 15);
    assert_tone(&heard[0], BEEP, &[CAROL_TONE, GREETING_TONE], 3);

    wait_until(|| messages(&sb).len() == 1, "the message to be kept");
    let v = voicemails(&sb);
    let m = &v["messages"][0];
    assert_eq!(v["unheard"], 1, "{v}");
    assert_eq!(
        (m["account"].as_str(), m["heard"].as_bool()),
        (Some("alice"), Some(false)),
        "{m}"
    );
    assert!(
        m["caller"]
            .as_str()
            .is_some_and(|c| c.starts_with("sip:carol@")),
        "{m}"
    );
    let ms = m["duration_ms"].as_u64().unwrap_or(0);
    assert!((2500..=4500).contains(&ms), "{m}");
    let id = m["id"].as_i64().expect("id");
    // A panel hears of it over D-Bus: the signal, and the count in a PropertiesChanged.
    wait_until(
        || {
            monitor.text().contains(&format!(
                "{VOICEMAIL}.VoicemailReceived (int64 {id}, 'sip:carol@"
            ))
        },
        "VoicemailReceived on D-Bus",
    );
    wait_until(
        || monitor.text().contains("'NewVoicemails': <uint32 1>"),
        "NewVoicemails to become 1 in a signal",
    );
    assert_eq!(bus.property(ROOT, VOICEMAIL, "NewVoicemails"), "u 1");
    let file = PathBuf::from(m["file"].as_str().unwrap_or_default());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o640, "{}", file.display());

    // The message is carol's tone, from the beep on: no greeting in it.
    let exported = export(&sb, id);
    assert_tone(&exported, CAROL_TONE, &[GREETING_TONE, 440.0], 20);
    let (x, rate) = read_wav(&exported);
    assert_eq!(tone_blocks(&x, rate, GREETING_TONE, &[CAROL_TONE]).0, 0);

    // Played to a file: the same audio, and heard from then on.
    let played = sb.path().join("played.wav");
    let o = sb.voipctl(&[
        "voicemail",
        "play",
        &id.to_string(),
        "--output",
        &format!("file:{}", played.display()),
    ]);
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(
        std::fs::read(&played).unwrap(),
        std::fs::read(&exported).unwrap()
    );
    assert_eq!(voicemails(&sb)["unheard"], 0);
    assert!(
        sb.voipctl(&["voicemail", "heard", &id.to_string(), "--not"])
            .status
            .success()
    );
    assert_eq!(voicemails(&sb)["unheard"], 1);
    assert!(
        sb.voipctl(&["voicemail", "heard", &id.to_string()])
            .status
            .success()
    );

    // In the history: answered by the machine, a missed call.
    let o = sb.voipctl(&["--json", "history", "--peek"]);
    let h: Value = serde_json::from_str(&stdout(&o)).expect("history");
    let last = &h["entries"][0];
    assert_eq!(
        last["end_reason"], "answering machine: message taken",
        "{last}"
    );
    assert_eq!(last["missed"], true, "{last}");

    // A caller who hangs up during the greeting leaves nothing.
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_millis(500));
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
    wait_until(
        || {
            let o = sb.voipctl(&["--json", "history", "--peek"]);
            let h: Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
            h["entries"].as_array().is_some_and(|e| e.len() == 2)
        },
        "the short call in the history",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(messages(&sb).len(), 1);
    let dir = file.parent().unwrap().to_path_buf();
    let files = |dir: &Path| std::fs::read_dir(dir).unwrap().count();
    assert_eq!(files(&dir), 1, "only the kept message's file");

    // Unknown ids and bad endpoints are refused and change nothing.
    let o = sb.voipctl(&["voicemail", "delete", "999"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let o = sb.voipctl(&["voicemail", "play", &id.to_string(), "--output", "tone:440"]);
    assert_ne!(o.status.code(), Some(0), "{}", describe(&o));
    // [audio] output is null here: played nowhere, it would be marked heard unheard.
    let o = sb.voipctl(&["voicemail", "play", &id.to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(stderr(&o).contains("null"), "{}", describe(&o));

    // Deleted: gone from the list and the disk.
    assert!(
        sb.voipctl(&["voicemail", "delete", &id.to_string()])
            .status
            .success()
    );
    assert!(messages(&sb).is_empty());
    assert!(!file.exists());
    drop(d);
}

#[test]
fn killed_mid_message_the_recording_is_kept_playable_or_not_at_all() {
    let sb = Sandbox::new();
    let (_kam, mut d, mut carol) = start(&sb, "after_secs = 0, min_secs = 1");
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    std::thread::sleep(PROMPT + Duration::from_secs(3));
    d.signal(libc::SIGKILL);
    d.wait_exit();
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");

    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let dir = sb.path().join("state/voipd/voicemail");
    wait_until(
        || {
            std::fs::read_dir(&dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .all(|e| e.path().extension().is_some_and(|x| x == "wav"))
                })
                .unwrap_or(true)
        },
        "the cut-short recording to be dealt with",
    );
    // Never a row without its file; here the recording was long enough to be kept.
    let list = messages(&sb);
    for m in &list {
        let f = PathBuf::from(m["file"].as_str().unwrap_or_default());
        assert!(f.exists(), "{m}");
    }
    assert_eq!(list.len(), 1, "{list:?}");
    let exported = export(&sb, list[0]["id"].as_i64().unwrap());
    assert_tone(&exported, CAROL_TONE, &[GREETING_TONE], 20);
}

/// A tmpfs of `kib` KiB at `dir`, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, kib: u32) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let o = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount");
        assert!(
            o.status.success(),
            "mount a small tmpfs (needs root): {}",
            describe(&o)
        );
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_disk_that_fills_ends_the_message_and_keeps_what_was_written() {
    let sb = Sandbox::new();
    // 8 kHz 16-bit: 16 KB a second; 96 KiB fills in about six.
    let _full = Mount::tmpfs(&sb.path().join("state/voipd/voicemail"), 96);
    let (_kam, d, mut carol) = start(&sb, "after_secs = 0, min_secs = 1, max_secs = 60");
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    // The machine hangs up once the disk is full, long before max_secs.
    let closed = carol.wait_event("CALL_CLOSED");
    assert!(
        d.log().contains("the disk refused the recording"),
        "{closed}\n{}",
        d.log()
    );
    wait_until(|| messages(&sb).len() == 1, "what was written to be kept");
    let m = &messages(&sb)[0];
    let ms = m["duration_ms"].as_u64().unwrap_or(0);
    assert!((3000..=7000).contains(&ms), "{m}");
    let exported = export(&sb, m["id"].as_i64().unwrap());
    assert_tone(&exported, CAROL_TONE, &[GREETING_TONE], 20);
}

#[test]
fn max_secs_ends_a_long_opus_message_and_keeps_it_at_16_khz() {
    let sb = Sandbox::new();
    let (_kam, d, mut carol) = start_on(
        &sb,
        "after_secs = 0, min_secs = 1, max_secs = 3",
        None,
        ("opus", "opus/48000/2"),
    );
    carol.command("dial", "sip:alice@127.0.0.1");
    carol.wait_event("CALL_ESTABLISHED");
    // Shown as the machine's while it records.
    let c = calls(&sb);
    assert!(
        c.iter()
            .any(|c| c["answered_by_machine"] == true && c["codec"] == "opus"),
        "{c:?}"
    );
    // carol never stops talking: the machine hangs up on her.
    carol.wait_event("CALL_CLOSED");
    assert!(d.log().contains("3 s recorded (max_secs)"), "{}", d.log());
    wait_until(|| messages(&sb).len() == 1, "the message to be kept");
    let m = &messages(&sb)[0];
    let ms = m["duration_ms"].as_u64().unwrap_or(0);
    assert!((3000..=3600).contains(&ms), "{ms}");
    let exported = export(&sb, m["id"].as_i64().unwrap());
    assert_eq!(
        read_wav(&exported).1,
        16_000,
        "Opus's 48 kHz kept at 16 kHz"
    );
    assert_tone(&exported, CAROL_TONE, &[GREETING_TONE], 20);
}

/// SIPp straight to voipd (its address is the provider's: let in), echoing the RTP it gets.
fn sipp_caller(sb: &Sandbox, scenario: &str) -> Sipp {
    let name = format!("{scenario}-{}", unique());
    Sipp::echoing_uac(sb.path(), &name, scenario, sb.sip_port())
}

#[test]
fn silence_ends_a_message_and_a_box_full_of_unheard_ones_takes_no_more() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    write_greeting(&sb.path().join("greeting.wav"));
    let text = config(&sb, &kam, "after_secs = 0, min_secs = 1, silence_secs = 2")
        .replace("[sip]\n", "[sip]\nring_timeout_secs = 3\n")
        + "\n[voicemail]\nmax_count = 1\n";
    sb.write_config(&text);
    let d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);

    // A caller who says nothing: the machine hangs up after 2 s of silence, and keeps it.
    let mut quiet = sipp_caller(&sb, "call_silent.xml");
    assert_eq!(quiet.wait(PATIENCE), 0, "{}", quiet.output());
    assert!(
        d.log().contains("2 s of silence (silence_secs)"),
        "{}",
        d.log()
    );
    wait_until(|| messages(&sb).len() == 1, "the silent message to be kept");
    let first = messages(&sb)[0].clone();
    let ms = first["duration_ms"].as_u64().unwrap_or(0);
    assert!((1500..=3500).contains(&ms), "{first}");

    // max_count = 1 and that one unheard: the machine does not answer, the call rings out.
    let mut rings = sipp_caller(&sb, "invite_unanswered.xml");
    assert_eq!(rings.wait(PATIENCE), 0, "{}", rings.output());
    assert!(d.log().contains("the voicemail box is full"), "{}", d.log());
    assert_eq!(messages(&sb).len(), 1);

    // Heard, it makes room: the next message takes its place.
    let id = first["id"].as_i64().unwrap().to_string();
    assert!(sb.voipctl(&["voicemail", "heard", &id]).status.success());
    let mut quiet = sipp_caller(&sb, "call_silent.xml");
    assert_eq!(quiet.wait(PATIENCE), 0, "{}", quiet.output());
    wait_until(
        || {
            messages(&sb)
                .first()
                .is_some_and(|m| m["id"] != first["id"])
        },
        "the new message to replace the heard one",
    );
    assert_eq!(messages(&sb).len(), 1);
    assert!(!Path::new(first["file"].as_str().unwrap()).exists());
}
