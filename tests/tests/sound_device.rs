//! The sound-device path (cpal over ALSA) without a sound card: an ~/.asoundrc makes the
//! default device a pair of files (TESTING.md). What the "microphone" file holds must come
//! out of the "speaker" file after a trip through a call (the sound test, dial echo).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use voipd_tests::audio::power;
use voipd_tests::*;

#[test]
fn the_default_device_carries_audio_both_ways() {
    let sb = Sandbox::new();
    let (mic, speaker) = (sb.path().join("mic.fifo"), sb.path().join("speaker.fifo"));
    // FIFOs, fed and drained at real time by this test: ALSA's file plugin over the null
    // slave is not paced, and a plain file would be read through in an instant.
    for f in [&mic, &speaker] {
        let ok = std::process::Command::new("mkfifo")
            .arg(f)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mkfifo {}", f.display());
    }
    std::fs::write(
        sb.path().join("home/.asoundrc"),
        format!(
            "pcm.!default {{\n  type asym\n  playback.pcm {{ type file; slave.pcm \"null\"; file \"{}\"; format \"raw\" }}\n  capture.pcm {{ type file; slave.pcm \"null\"; file \"/dev/null\"; infile \"{}\"; format \"raw\" }}\n}}\n",
            speaker.display(),
            mic.display()
        ),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The microphone: 700 Hz, s16le mono at 48 kHz (what voipd opens the device with),
    // 20 ms at a time.
    let feeder = {
        let (mic, stop) = (mic.clone(), stop.clone());
        std::thread::spawn(move || {
            // Non-blocking, so that a device never opened cannot hang the test: opening
            // for writing fails until ALSA opens the other end.
            let mut f = loop {
                match std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&mic)
                {
                    Ok(f) => break f,
                    Err(_) if !stop.load(Ordering::Relaxed) => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => return,
                }
            };
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let frame: Vec<u8> = (0..960)
                    .flat_map(|i| {
                        let t = (n + i) as f64 / 48_000.0;
                        (((t * std::f64::consts::TAU * 700.0).sin() * 12_000.0) as i16)
                            .to_le_bytes()
                    })
                    .collect();
                n += 960;
                match f.write_all(&frame) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // The speaker: read at real time, keep what came.
    let drain = {
        let (speaker, stop) = (speaker.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let Ok(mut f) = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&speaker)
            else {
                return got;
            };
            let mut buf = vec![0u8; 1920];
            while !stop.load(Ordering::Relaxed) {
                match f.read(&mut buf) {
                    Ok(n) => got.extend(
                        buf[..n - n % 2]
                            .chunks_exact(2)
                            .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]]))),
                    ),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            got
        })
    };
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n[audio]\ninput = \"default\"\noutput = \"default\"\n");
    let d = sb.start_daemon();
    assert!(sb.voipctl(&["dial", "echo"]).status.success());
    wait_until(
        || stdout(&sb.voipctl(&["calls"])).contains("active"),
        "the sound test",
    );
    std::thread::sleep(Duration::from_millis(3500));
    assert!(sb.voipctl(&["hangup"]).status.success());
    wait_until(
        || stdout(&sb.voipctl(&["calls"])).contains("no calls"),
        "the end",
    );
    stop.store(true, Ordering::Relaxed);
    let x = drain.join().unwrap();
    let _ = feeder.join();
    assert!(!d.log().contains("no sound input"), "{}", d.log());

    // The microphone's 700 Hz came back out of the speaker, through G.711, RTP, the echo
    // and the jitter buffer: in most 20 ms frames of the last two seconds.
    let toned = x
        .chunks_exact(960)
        .filter(|b| {
            let p = power(b, 700.0, 48_000);
            p.sqrt() > 500.0 && p > 100.0 * power(b, 1200.0, 48_000)
        })
        .count();
    assert!(
        toned >= 50,
        "700 Hz in {toned} of {} frames from the speaker",
        x.len() / 960
    );
}

#[test]
fn a_missing_device_leaves_the_call_silent_not_broken() {
    let sb = Sandbox::new();
    sb.write_config("[sip]\nlisten = [\"udp:127.0.0.1:0\"]\n[audio]\ninput = \"no such card\"\noutput = \"no such card\"\n");
    let d = sb.start_daemon();
    assert!(sb.voipctl(&["dial", "echo"]).status.success());
    wait_until(
        || stdout(&sb.voipctl(&["calls"])).contains("active"),
        "the sound test",
    );
    assert!(sb.voipctl(&["hangup"]).status.success());
    wait_until(
        || stdout(&sb.voipctl(&["calls"])).contains("no calls"),
        "the end",
    );
    assert!(
        d.log().contains("no sound input or output ("),
        "{}",
        d.log()
    );
}
