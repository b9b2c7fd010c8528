//! Proving audio: what a side recorded is read back and checked for the tone the other
//! side sent (Goertzel power at the expected frequency against the other test tones),
//! block by block, so that a call that carried audio only briefly does not pass.

use std::path::Path;

/// 16-bit PCM samples and the rate of a WAV file, mixed to mono.
pub fn read_wav(path: &Path) -> (Vec<f64>, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE",
        "{}: not WAV",
        path.display()
    );
    let (mut pos, mut channels, mut rate, mut data) = (12, 1usize, 8000u32, &b[0..0]);
    while pos + 8 <= b.len() {
        let len = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
        let body = &b[pos + 8..(pos + 8 + len).min(b.len())];
        match &b[pos..pos + 4] {
            b"fmt " => {
                channels = usize::from(u16::from_le_bytes([body[2], body[3]])).max(1);
                rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                assert_eq!(
                    u16::from_le_bytes([body[14], body[15]]),
                    16,
                    "{}: not 16-bit",
                    path.display()
                );
            }
            b"data" => data = body,
            _ => {}
        }
        // A writer that never finished leaves a data size of 0: take the rest.
        if &b[pos..pos + 4] == b"data" && len == 0 {
            data = &b[pos + 8..];
        }
        pos += 8 + len + (len & 1);
    }
    let samples = data
        .chunks_exact(2 * channels)
        .map(|f| {
            f.chunks_exact(2)
                .map(|s| f64::from(i16::from_le_bytes([s[0], s[1]])))
                .sum::<f64>()
                / channels as f64
        })
        .collect();
    (samples, rate)
}

/// Each channel of a 16-bit PCM WAV file apart (as the header's sizes say), and the rate.
pub fn read_wav_channels(path: &Path) -> (Vec<Vec<f64>>, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        b.len() >= 44 && &b[0..4] == b"RIFF" && &b[36..40] == b"data",
        "{}: not a plain WAV",
        path.display()
    );
    let channels = usize::from(u16::from_le_bytes([b[22], b[23]])).max(1);
    let rate = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    let len = u32::from_le_bytes([b[40], b[41], b[42], b[43]]) as usize;
    let data = &b[44..(44 + len).min(b.len())];
    let mut out = vec![Vec::new(); channels];
    for frame in data.chunks_exact(2 * channels) {
        for (c, s) in frame.chunks_exact(2).enumerate() {
            out[c].push(f64::from(i16::from_le_bytes([s[0], s[1]])));
        }
    }
    (out, rate)
}

/// How many 100 ms blocks of `x` hold every one of `present` (loud), with each of
/// `absent` 20 dB below the weakest of them: a mix of some tones without others. (20, not
/// 30: G.711 and two rate changes leave a mix's noise floor near -30 dB; a tone that is
/// there, echoed, would be as loud as the others.)
pub fn mix_blocks(x: &[f64], rate: u32, present: &[f64], absent: &[f64]) -> usize {
    let block = (rate / 10) as usize;
    x.chunks_exact(block)
        .filter(|b| {
            let weakest = present
                .iter()
                .map(|f| power(b, *f, rate))
                .fold(f64::INFINITY, f64::min);
            weakest.sqrt() > 300.0 && absent.iter().all(|f| weakest > 100.0 * power(b, *f, rate))
        })
        .count()
}

/// Goertzel power of `freq` in `x`, normalised by length.
pub fn power(x: &[f64], freq: f64, rate: u32) -> f64 {
    let k = 2.0 * (std::f64::consts::TAU * freq / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for v in x {
        let s0 = v + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (x.len() as f64).powi(2)
}

/// How many 100 ms blocks of `x` hold `freq` clearly (30 dB above each of `others`, and
/// loud), of how many.
pub fn tone_blocks(x: &[f64], rate: u32, freq: f64, others: &[f64]) -> (usize, usize) {
    let block = (rate / 10) as usize;
    let mut good = 0;
    let mut total = 0;
    for b in x.chunks_exact(block) {
        total += 1;
        let p = power(b, freq, rate);
        let loud = p.sqrt() > 500.0;
        if loud && others.iter().all(|o| p > 1000.0 * power(b, *o, rate)) {
            good += 1;
        }
    }
    (good, total)
}

/// G.711 µ-law bytes as linear samples (ITU-T G.711), to read what a capture carried.
pub fn ulaw_decode(bytes: &[u8]) -> Vec<f64> {
    bytes
        .iter()
        .map(|b| {
            let u = !b;
            let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
            f64::from(if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 })
        })
        .collect()
}

/// Asserts that `path` holds `freq` clearly (30 dB above each of `others`, and loud) in
/// at least `min_blocks` 100 ms blocks. Returns the number of such blocks.
pub fn assert_tone(path: &Path, freq: f64, others: &[f64], min_blocks: usize) -> usize {
    let (x, rate) = read_wav(path);
    let (good, total) = tone_blocks(&x, rate, freq, others);
    assert!(
        good >= min_blocks,
        "{}: {freq} Hz clear in only {good} of {total} blocks of 100 ms (need {min_blocks})",
        path.display()
    );
    good
}

/// The share of 100 ms blocks, from the first to the last that holds `freq`, in which it
/// is clear of `others`.
pub fn tone_share(path: &std::path::Path, freq: f64, others: &[f64]) -> (usize, usize) {
    let (x, rate) = read_wav(path);
    let block = (rate / 10) as usize;
    let clear: Vec<bool> = x
        .chunks_exact(block)
        .map(|b| {
            let p = power(b, freq, rate);
            p.sqrt() > 500.0 && others.iter().all(|o| p > 1000.0 * power(b, *o, rate))
        })
        .collect();
    let first = clear.iter().position(|c| *c).unwrap_or(0);
    let last = clear.iter().rposition(|c| *c).unwrap_or(0);
    let span = &clear[first..=last.max(first)];
    (span.iter().filter(|c| **c).count(), span.len())
}

/// Writes 16-bit PCM: `frames` of `channels` samples each, at `rate`.
pub fn write_wav(path: &Path, samples: &[i16], rate: u32, channels: u16) {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + samples.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    b.extend_from_slice(&(2 * channels).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, b).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A sine of `hz` for `secs`, mono, about -12 dBFS.
pub fn sine(hz: f64, secs: f64, rate: u32) -> Vec<i16> {
    (0..(secs * f64::from(rate)) as usize)
        .map(|i| ((std::f64::consts::TAU * hz * i as f64 / f64::from(rate)).sin() * 8000.0) as i16)
        .collect()
}

/// DTMF digits as a phone's keypad sounds them (ITU-T Q.23): each `on_ms` of its two
/// tones, then `off_ms` of silence; mono.
pub fn dtmf_tones(digits: &str, rate: u32, on_ms: u32, off_ms: u32) -> Vec<i16> {
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    let mut out = Vec::new();
    for d in digits.chars() {
        let (r, c) = KEYS
            .iter()
            .enumerate()
            .find_map(|(r, k)| k.find(d).map(|c| (r, c)))
            .unwrap_or_else(|| panic!("{d} is not a DTMF digit"));
        let on = (rate * on_ms / 1000) as usize;
        for i in 0..on {
            let t = i as f64 / f64::from(rate);
            let v = (std::f64::consts::TAU * ROWS[r] * t).sin()
                + (std::f64::consts::TAU * COLS[c] * t).sin();
            out.push((v * 6000.0) as i16);
        }
        out.resize(out.len() + (rate * off_ms / 1000) as usize, 0);
    }
    out
}
