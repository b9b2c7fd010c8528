//! Three-way (and larger) conferences mixed in voipd, with baresip phones as the far sides
//! (G.711, G.722 and Opus: three rates to resample between) through a Kamailio that
//! challenges every request. Each sends its own tone: what each recorded holds the others'
//! and ours, never its own.

use std::time::Duration;

use voipd_tests::audio::{mix_blocks, read_wav};
use voipd_tests::baresip::{Baresip, BaresipOptions};
use voipd_tests::peers::Kamailio;
use voipd_tests::*;

const OURS: f64 = 1000.0;

fn conference_of(sb: &Sandbox, id: u64) -> u64 {
    calls(sb)
        .into_iter()
        .find(|c| c["id"] == id)
        .map_or(0, |c| c["conference"].as_u64().unwrap_or(0))
}

#[test]
fn each_party_hears_the_others_and_us_but_not_itself() {
    let sb = Sandbox::new();
    let kam = Kamailio::start(sb.path(), &[]);
    // Each at another rate: G.711 at 8 kHz, G.722 at 16, Opus at 48.
    let tones = [
        ("bob", 440u32, "bobpw", "PCMU", "PCMU"),
        ("carol", 660, "carolpw", "G722/16000/1", "G722"),
        ("dave", 880, "davepw", "opus/48000/2", "opus"),
    ];
    let phones: Vec<_> = tones
        .iter()
        .map(|(user, tone, password, codec, _)| {
            Baresip::start(
                sb.path(),
                BaresipOptions {
                    user,
                    password,
                    tone: *tone,
                    codec,
                    ..BaresipOptions::carol(kam.port)
                },
            )
        })
        .collect();
    sb.write_config(&format!(
        "[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\n\
         [audio]\ninput = \"tone:{OURS}\"\noutput = \"null\"\n\n\
         [[account]]\nid = \"alice\"\naor = \"sip:alice@127.0.0.1:{}\"\npassword = \"alicepw\"\n\
         codecs = [\"opus\", \"g722\", \"pcmu\"]\n",
        kam.port
    ));
    let _d = sb.start_daemon();
    wait_account_state(&sb, "alice", "registered", PATIENCE);
    let mut ids = Vec::new();
    for ((user, .., codec), phone) in tones.iter().zip(&phones) {
        ok(&sb, &["dial", "--wait", user]);
        phone.wait_event("CALL_ESTABLISHED");
        let c = wait_call_where(
            &sb,
            |c| c["remote_uri"].as_str().is_some_and(|u| u.contains(user)),
            user,
        );
        assert_eq!(c["codec"], *codec, "{c}");
        ids.push(c["id"].as_u64().unwrap_or(0));
    }
    let id = |i: usize| ids[i].to_string();

    // Refused, changing nothing: a call that is not there, or one call alone.
    let o = sb.voipctl(&["conference", &id(0), "999"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let o = sb.voipctl(&["conference", &id(0)]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    assert_eq!(conference_of(&sb, ids[0]), 0);

    // Two, split again: plain calls.
    ok(&sb, &["conference", &id(0), &id(1)]);
    assert_eq!(conference_of(&sb, ids[1]), ids[0]);
    ok(&sb, &["split", &id(1)]);
    assert_eq!(conference_of(&sb, ids[0]), 0);

    let o = ok(&sb, &["conference", &id(0), &id(1), &id(2)]);
    assert!(
        stdout(&o).contains(&format!("conference {}", ids[0])),
        "{}",
        describe(&o)
    );
    std::thread::sleep(Duration::from_secs(4));

    // One leaves: the other two go on together; then one is left, a plain call.
    ok(&sb, &["hangup", &id(2)]);
    phones[2].wait_event("CALL_CLOSED");
    assert_eq!(conference_of(&sb, ids[0]), ids[0]);
    ok(&sb, &["hangup", &id(1)]);
    phones[1].wait_event("CALL_CLOSED");
    wait_until(|| conference_of(&sb, ids[0]) == 0, "bob's call alone again");
    assert_eq!(calls(&sb)[0]["state"], "active");
    ok(&sb, &["hangup", &id(0)]);
    phones[0].wait_event("CALL_CLOSED");

    let all: Vec<f64> = tones.iter().map(|(_, hz, ..)| f64::from(*hz)).collect();
    for (i, phone) in phones.iter().enumerate() {
        let rec = phone.received_recordings();
        assert_eq!(rec.len(), 1, "{rec:?}");
        let (x, rate) = read_wav(&rec[0]);
        let own = all[i];
        let mut others: Vec<f64> = all.iter().copied().filter(|f| *f != own).collect();
        others.push(OURS);
        // Four seconds of the conference: at least two and a half clear.
        let n = mix_blocks(&x, rate, &others, &[own]);
        assert!(
            n >= 25,
            "{}: {others:?} without its own {own} Hz in only {n} blocks",
            tones[i].0
        );
    }
}
