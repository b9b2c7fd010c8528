//! Playing a recording to a sound device outside a call (a voicemail listened to on the
//! machine's speaker).

use super::device;

/// Plays `samples` at `rate` to `output` (None: the default device) in real time and
/// returns when it has played. Blocking: run it off the async threads.
pub fn play(samples: &[i16], rate: u32, output: Option<String>) -> Result<(), String> {
    if let Some(why) = device::sound_missing() {
        return Err(format!("no sound device ({why})"));
    }
    let mut audio = device::open(None, Some(output))?;
    let mut out = audio
        .playback
        .take()
        .ok_or_else(|| "the device cannot play".to_string())?;
    let up = super::source::resample(samples, rate, device::DEVICE_RATE);
    let frame = device::DEVICE_RATE as usize / 50;
    for chunk in up.chunks(frame) {
        while out.slots() < chunk.len() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for s in chunk {
            let _ = out.push(*s);
        }
    }
    // What is queued plays out before the device is closed.
    while out.slots() < out.buffer().capacity() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(audio);
    Ok(())
}
