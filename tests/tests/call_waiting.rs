//! Call waiting, with baresip phones calling through a Kamailio that challenges every
//! request: a second call during a call rings and is announced; answering it holds the
//! first (audio with the second proven; the waiting tone heard over the first while the
//! second rang), resuming the first holds the second; it can be
//! refused; beyond the account's max_calls callers get 486.

use std::time::Duration;

use voipd_tests::audio::{assert_tone, mix_blocks, read_wav};
use voipd_tests::baresip::kamailio_phone;
use voipd_tests::peers::Kamailio;
use voipd_tests::*;

const OURS: f64 = 440.0;
const BOBS: u32 = 660;
const CAROLS: u32 = 880;

fn state_of(sb: &Sandbox, id: u64) -> String {
    calls(sb)
        .into_iter()
        .find(|c| c["id"] == id)
        .and_then(|c| c["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn a_second_call_waits_is_answered_with_the_first_held_refused_or_turned_away() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    let mut bob = kamailio_phone(sb.path(), kam.port, "bob", BOBS, false);
    let mut carol = kamailio_phone(sb.path(), kam.port, "carol", CAROLS, false);
    let config = |max_calls: u32| {
        format!(
            "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
             [audio]\ninput = \"tone:{OURS}\"\noutput = \"file:{}\"\n\n\
             [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
             codecs = [\"pcmu\"]\nmax_calls = {max_calls}\n",
            sb.path().join("heard-{id}.wav").display(),
            kam.port
        )
    };
    sb.write_config(&config(4));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let (mut watch, events) = watch_events(&sb);
    let alice = format!("sip:alice@127.0.0.1:{}", kam.port);
    let incoming = |n: usize| {
        wait_until(
            || {
                watched(&events)
                    .iter()
                    .filter(|e| e["name"] == "call_incoming")
                    .count()
                    >= n
            },
            "call_incoming",
        )
    };

    bob.command("dial", &alice);
    incoming(1);
    ok(&sb, &["answer"]);
    bob.wait_event("CALL_ESTABLISHED");
    let first = calls(&sb)[0]["id"].as_u64().unwrap_or(0);

    // Carol calls during the call: it rings, announced, and the first call goes on.
    carol.command("dial", &alice);
    incoming(2);
    let second = wait_call_where(&sb, |c| c["state"] == "ringing", "the second call")["id"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(state_of(&sb, first), "active");
    // While it rings, Bob's call carries the waiting tone in our output.
    std::thread::sleep(Duration::from_millis(1500));
    // Which call `answer` means is plain: the only one ringing.
    ok(&sb, &["answer"]);
    carol.wait_event("CALL_ESTABLISHED");
    wait_until(|| state_of(&sb, first) == "held", "the first call held");
    assert_eq!(state_of(&sb, second), "active");
    std::thread::sleep(Duration::from_secs(3));

    // Back to Bob: Carol waits on hold.
    ok(&sb, &["resume", &first.to_string()]);
    wait_until(
        || state_of(&sb, second) == "held" && state_of(&sb, first) == "active",
        "the calls swapped",
    );
    ok(&sb, &["hangup", &second.to_string()]);
    carol.wait_event("CALL_CLOSED");
    let heard = sb.path().join(format!("heard-{second}.wav"));
    assert_tone(&heard, f64::from(CAROLS), &[OURS, f64::from(BOBS)], 15);
    assert_tone(
        &carol.received_recordings()[0],
        OURS,
        &[f64::from(BOBS), f64::from(CAROLS)],
        15,
    );

    // The waiting tone (425 Hz, two beeps) over Bob's voice while Carol rang.
    let (x, rate) = read_wav(&sb.path().join(format!("heard-{first}.wav")));
    let beeps = mix_blocks(&x, rate, &[425.0, f64::from(BOBS)], &[]);
    assert!(
        (2..=12).contains(&beeps),
        "the waiting tone in {beeps} blocks"
    );

    // Refused while Bob's call goes on.
    carol.command("dial", &alice);
    incoming(3);
    let third = wait_call_where(&sb, |c| c["state"] == "ringing", "the third call")["id"]
        .as_u64()
        .unwrap_or(0);
    ok(&sb, &["reject", "--busy", &third.to_string()]);
    let closed = carol.wait_event("CALL_CLOSED");
    assert!(
        closed["param"].as_str().is_some_and(|p| p.contains("486")),
        "{closed}"
    );
    assert_eq!(state_of(&sb, first), "active");

    // One call at most: Carol is turned away at once, and nothing rings here.
    sb.write_config(&config(1));
    ok(&sb, &["reload"]);
    carol.command("dial", &alice);
    let closed = carol.wait_event("CALL_CLOSED");
    assert!(
        closed["param"].as_str().is_some_and(|p| p.contains("486")),
        "{closed}"
    );
    assert_eq!(calls(&sb).len(), 1);
    assert_eq!(state_of(&sb, first), "active");
    ok(&sb, &["hangup"]);
    bob.wait_event("CALL_CLOSED");
    let _ = watch.kill();
}
