//! Sound devices through cpal (ALSA on Linux). The device's callbacks run on cpal's own
//! thread and meet the media task only through lock-free ring buffers; a device that
//! cannot be opened leaves the call silent with a warning, never without a call.

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use rtrb::{Consumer, Producer, RingBuffer};

/// Devices run at 48 kHz mono; codecs' rates are converted in the media task.
pub const DEVICE_RATE: u32 = 48_000;
/// Half a second each way: enough for scheduling hiccups, small enough to keep delay down.
const RING: usize = DEVICE_RATE as usize / 2;

/// The open devices of one call. Dropping it closes them.
pub struct DeviceAudio {
    pub capture: Option<Consumer<i16>>,
    pub playback: Option<Producer<i16>>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn find(host: &cpal::Host, name: Option<&str>, input: bool) -> Result<cpal::Device, String> {
    let Some(name) = name else {
        let d = if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        };
        return d.ok_or_else(|| {
            format!(
                "no default {} device",
                if input { "input" } else { "output" }
            )
        });
    };
    let devices = if input {
        host.input_devices()
    } else {
        host.output_devices()
    }
    .map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for d in devices {
        let n = d.to_string();
        if n == name {
            return Ok(d);
        }
        names.push(n);
    }
    Err(format!(
        "no device named {name:?} (there are: {})",
        names.join(", ")
    ))
}

fn config() -> cpal::StreamConfig {
    cpal::StreamConfig {
        channels: 1,
        sample_rate: DEVICE_RATE,
        buffer_size: cpal::BufferSize::Default,
    }
}

/// Why no call can have sound, when that is plain without opening anything: no sound
/// card, and nothing that makes a device of something else (an ALSA configuration of the
/// user's or the system's, a PulseAudio or PipeWire server). None: there may be sound.
pub fn sound_missing() -> Option<String> {
    // Asked for every new call, on the core's task: the files are looked at once in a few
    // seconds at most, which still sees a card plugged in before the next call or so.
    static LAST: std::sync::Mutex<Option<(std::time::Instant, Option<String>)>> =
        std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, known)) = &*last
        && at.elapsed() < std::time::Duration::from_secs(5)
    {
        return known.clone();
    }
    let now = look_for_sound();
    *last = Some((std::time::Instant::now(), now.clone()));
    now
}

fn look_for_sound() -> Option<String> {
    let cards = std::fs::read_to_string("/proc/asound/cards").unwrap_or_default();
    if !cards.trim().is_empty() && !cards.contains("no soundcards") {
        return None;
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    let elsewhere = [
        home.as_ref().map(|h| h.join(".asoundrc")),
        config_home.map(|c| c.join("alsa/asoundrc")),
        Some("/etc/asound.conf".into()),
        std::env::var_os("ALSA_CONFIG_PATH").map(Into::into),
        runtime.as_ref().map(|r| r.join("pulse/native")),
        runtime.as_ref().map(|r| r.join("pipewire-0")),
    ];
    // A sound server elsewhere (PULSE_SERVER), or a system ALSA configuration snippet
    // (pipewire-alsa, pulseaudio's plugin) that routes the default device to one.
    let snippets = std::fs::read_dir("/etc/alsa/conf.d").is_ok_and(|mut d| d.next().is_some());
    if snippets
        || std::env::var_os("PULSE_SERVER").is_some()
        || elsewhere.iter().flatten().any(|p| p.exists())
    {
        return None;
    }
    Some("this machine has no sound card".into())
}

/// The names of the devices that can capture and of those that can play, as `find` takes
/// them. Without a sound card (see [`sound_missing`]) ALSA is not asked.
pub fn names() -> Result<(Vec<String>, Vec<String>), String> {
    if sound_missing().is_some() {
        return Ok((Vec::new(), Vec::new()));
    }
    // alsa-lib's complaints while it looks go to a buffer of this thread, not to stderr.
    #[cfg(target_os = "linux")]
    let _quiet = alsa::Output::local_error_handler().ok();
    let host = cpal::default_host();
    let inputs = host.input_devices().map_err(|e| why(&e))?;
    let inputs = inputs.map(|d| d.to_string()).collect();
    let outputs = host.output_devices().map_err(|e| why(&e))?;
    Ok((inputs, outputs.map(|d| d.to_string()).collect()))
}

/// A cpal failure in words: cpal's own text for a device that is not there speaks of a
/// device that "may have been disconnected", which misleads where there never was one.
fn why(e: &cpal::Error) -> String {
    match e.kind() {
        cpal::ErrorKind::DeviceNotAvailable => "no such device here".into(),
        _ => e.to_string(),
    }
}

/// Opens capture from `input` and playback to `output` (Some(None): the default device;
/// None: not wanted). Each end is tried even when the other fails; the error names both.
pub fn open(
    input: Option<Option<String>>,
    output: Option<Option<String>>,
) -> Result<DeviceAudio, String> {
    let (cap_tx, cap_rx) = RingBuffer::<i16>::new(RING);
    let (play_tx, play_rx) = RingBuffer::<i16>::new(RING);
    let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (want_in, want_out) = (input.is_some(), output.is_some());
    // cpal streams are not Send: they live on this small thread, which only waits to drop
    // them. The audio itself runs on cpal's callback thread.
    let thread = std::thread::Builder::new()
        .name("voipd-audio".into())
        .spawn(move || {
            // alsa-lib writes its own complaints to stderr, which is our log: they are
            // gathered here and logged at debug level instead.
            #[cfg(target_os = "linux")]
            let alsa_said = alsa::Output::local_error_handler().ok();
            let host = cpal::default_host();
            let mut streams = Vec::new();
            let mut failed = Vec::new();
            if let Some(name) = input {
                let mut tx = cap_tx;
                let opened = find(&host, name.as_deref(), true).and_then(|dev| {
                    let s = dev
                        .build_input_stream::<i16, _, _>(
                            config(),
                            move |data: &[i16], _| {
                                for s in data {
                                    // Full: the media task is behind; drop rather than block.
                                    let _ = tx.push(*s);
                                }
                            },
                            |e| tracing::warn!("audio input: {e}"),
                            None,
                        )
                        .map_err(|e| format!("input {dev}: {}", why(&e)))?;
                    s.play().map_err(|e| format!("input {dev}: {}", why(&e)))?;
                    Ok(s)
                });
                match opened {
                    Ok(s) => streams.push(s),
                    Err(e) => failed.push(e),
                }
            }
            if let Some(name) = output {
                let mut rx = play_rx;
                let opened = find(&host, name.as_deref(), false).and_then(|dev| {
                    let s = dev
                        .build_output_stream::<i16, _, _>(
                            config(),
                            move |data: &mut [i16], _| {
                                for s in data {
                                    *s = rx.pop().unwrap_or(0);
                                }
                            },
                            |e| tracing::warn!("audio output: {e}"),
                            None,
                        )
                        .map_err(|e| format!("output {dev}: {}", why(&e)))?;
                    s.play().map_err(|e| format!("output {dev}: {}", why(&e)))?;
                    Ok(s)
                });
                match opened {
                    Ok(s) => streams.push(s),
                    Err(e) => failed.push(e),
                }
            }
            #[cfg(target_os = "linux")]
            if let Some(text) = alsa_said.map(|o| o.borrow().to_string())
                && !text.trim().is_empty()
            {
                tracing::debug!("ALSA: {}", text.trim_end().replace('\n', "; "));
            }
            let built = if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("; "))
            };
            let ok = built.is_ok();
            let _ = ready_tx.send(built);
            if ok {
                let _ = stop_rx.recv();
            }
            drop(streams);
        })
        .map_err(|e| format!("cannot start the audio thread: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(DeviceAudio {
            capture: want_in.then_some(cap_rx),
            playback: want_out.then_some(play_tx),
            stop: Some(stop),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err("the audio thread died".into()),
    }
}

impl Drop for DeviceAudio {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Linear conversion of `input` (at `from` Hz) into exactly `out.len()` samples.
pub fn convert_into(input: &[i16], out: &mut [i16]) {
    if input.is_empty() {
        out.fill(0);
        return;
    }
    let ratio = input.len() as f64 / out.len() as f64;
    for (i, o) in out.iter_mut().enumerate() {
        let pos = i as f64 * ratio;
        let a = (pos.floor() as usize).min(input.len() - 1);
        let b = (a + 1).min(input.len() - 1);
        let f = pos - a as f64;
        *o = (f64::from(input[a]) * (1.0 - f) + f64::from(input[b]) * f) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_keeps_length_and_shape() {
        let up: Vec<i16> = (0..160).map(|i| (i * 10) as i16).collect();
        let mut out = vec![0i16; 960];
        convert_into(&up, &mut out);
        assert_eq!(out[0], 0);
        assert!(out[480] > 700 && out[480] < 900, "{}", out[480]);
        let mut down = vec![0i16; 160];
        convert_into(&out, &mut down);
        assert!((i32::from(down[80]) - 800).abs() < 20, "{}", down[80]);
        let mut empty = vec![5i16; 4];
        convert_into(&[], &mut empty);
        assert_eq!(empty, vec![0; 4]);
    }
}
