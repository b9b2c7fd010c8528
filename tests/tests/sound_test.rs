//! The sound test call: dial "echo", hear yourself a second later. No account, no peer:
//! the whole media path (codec, RTP, jitter buffer, recording) against a local reflector.

use std::time::Duration;

use serde_json::Value;
use voipd_tests::audio::{assert_tone, power, read_wav};
use voipd_tests::*;

#[test]
fn echo_plays_back_what_it_hears_a_second_later() {
    let sb = Sandbox::new();
    let heard = sb.path().join("heard.wav");
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n[audio]\ninput = \"tone:440\"\noutput = \"file:{}\"\n",
        heard.display()
    ));
    let _d = sb.start_daemon();
    let out = sb.voipctl(&["dial", "echo"]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_until(
        || stdout(&sb.voipctl(&["calls"])).contains("active"),
        "the sound test to run",
    );
    std::thread::sleep(Duration::from_millis(3000));
    let out = sb.voipctl(&["--json", "calls"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["calls"][0]["remote_uri"], "echo");
    assert!(sb.voipctl(&["hangup"]).status.success());
    wait_until(
        || stdout(&sb.voipctl(&["calls"])).contains("no calls"),
        "the end",
    );

    // Our own tone came back, but only after the echo's delay.
    assert_tone(&heard, 440.0, &[1000.0], 15);
    let (x, rate) = read_wav(&heard);
    let first = x
        .chunks_exact((rate / 10) as usize)
        .take(8)
        .filter(|b| power(b, 440.0, rate).sqrt() > 500.0)
        .count();
    assert_eq!(
        first, 0,
        "the first 0.8 s are silent: the echo lags a second"
    );
}

#[test]
fn a_call_can_have_its_own_endpoints_and_file_per_call() {
    let sb = Sandbox::new();
    sb.write_config(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n[audio]\ninput = \"null\"\noutput = \"null\"\n",
    );
    let _d = sb.start_daemon();
    let pattern = sb.path().join("call-{id}.wav");
    let out = sb.voipctl(&[
        "dial",
        "echo",
        "--input",
        "tone:900",
        "--output",
        &format!("file:{}", pattern.display()),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_until(
        || stdout(&sb.voipctl(&["calls"])).contains("active"),
        "the sound test",
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert!(sb.voipctl(&["hangup"]).status.success());
    wait_until(
        || stdout(&sb.voipctl(&["calls"])).contains("no calls"),
        "the end",
    );
    // The file is named for call 1 and holds this call's own tone.
    assert_tone(&sb.path().join("call-1.wav"), 900.0, &[440.0], 10);

    // A bad endpoint is refused, naming the field; nothing starts.
    let out = sb.voipctl(&["dial", "echo", "--output", "tone:440"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("output: a tone can only be an input"),
        "{}",
        describe(&out)
    );
    let out = sb.voipctl(&["dial", "echo", "--input", "file:"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(stderr(&out).contains("input: "), "{}", describe(&out));
    assert!(stdout(&sb.voipctl(&["calls"])).contains("no calls"));
}
