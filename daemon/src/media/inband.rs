//! DTMF heard in the audio itself (in-band), for far sides that send no telephone events:
//! door stations and old gateways. Goertzel filters at the eight DTMF frequencies over
//! blocks of about 26 ms; a digit is reported once, when two blocks in a row hold it.

/// The rows and columns of the keypad (ITU-T Q.23).
const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Below about -36 dBFS a block is taken as silence (or line noise).
const MIN_ENERGY_PER_SAMPLE: f64 = 250.0 * 250.0;
/// The two tones must carry most of the block's energy: speech and music spread theirs.
const MIN_SHARE: f64 = 0.6;
/// Twist: one tone may be at most this much stronger than the other (about 8 dB, Q.24).
const MAX_TWIST: f64 = 6.3;
/// The next strongest tone of a group must be this much weaker (about 8 dB).
const MIN_GROUP_MARGIN: f64 = 6.3;

/// One stream's detector, fed the decoded audio the far side sent.
pub struct InbandDetector {
    rate: u32,
    /// Samples per block (205 at 8 kHz: 39 Hz bins, within the tones' spacing).
    block: usize,
    coeffs: [f64; 8],
    buf: Vec<f64>,
    /// The digit of the last block, and whether it was reported.
    last: Option<char>,
    reported: bool,
}

impl InbandDetector {
    /// A detector for audio at `rate` Hz.
    pub fn new(rate: u32) -> InbandDetector {
        let block = (f64::from(rate) * 0.0256).round() as usize;
        let mut coeffs = [0.0; 8];
        for (c, f) in coeffs.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
            *c = 2.0 * (std::f64::consts::TAU * f / f64::from(rate)).cos();
        }
        InbandDetector {
            rate,
            block: block.max(1),
            coeffs,
            buf: Vec::with_capacity(block),
            last: None,
            reported: false,
        }
    }

    /// The audio's rate changed (a re-INVITE changed the codec).
    pub fn set_rate(&mut self, rate: u32) {
        if rate != self.rate {
            *self = InbandDetector::new(rate);
        }
    }

    /// Feeds audio; returns a digit the moment it is certain, once per key press.
    pub fn feed(&mut self, samples: &[i16]) -> Option<char> {
        let mut found = None;
        for &s in samples {
            self.buf.push(f64::from(s));
            if self.buf.len() == self.block {
                let digit = self.analyse();
                self.buf.clear();
                if digit.is_some() && digit == self.last {
                    if !self.reported {
                        self.reported = true;
                        found = digit;
                    }
                } else {
                    self.reported = false;
                }
                self.last = digit;
            }
        }
        found
    }

    /// The digit one block holds, if it holds one clearly.
    fn analyse(&self) -> Option<char> {
        let n = self.buf.len() as f64;
        let energy: f64 = self.buf.iter().map(|x| x * x).sum();
        if energy < MIN_ENERGY_PER_SAMPLE * n {
            return None;
        }
        let mut share = [0.0; 8];
        for (out, c) in share.iter_mut().zip(self.coeffs) {
            let (mut s1, mut s2) = (0.0, 0.0);
            for x in &self.buf {
                let s0 = x + c * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - c * s1 * s2;
            // A sine alone has 2·power / (N·energy) = 1: the tone's share of the block.
            *out = 2.0 * power / (n * energy);
        }
        let (row, r_second) = strongest(&share[..4]);
        let (col, c_second) = strongest(&share[4..]);
        let (r, c) = (share[row], share[4 + col]);
        let clear = r + c >= MIN_SHARE
            && r.max(c) <= MAX_TWIST * r.min(c)
            && r >= MIN_GROUP_MARGIN * r_second
            && c >= MIN_GROUP_MARGIN * c_second;
        clear.then_some(KEYS[row][col])
    }
}

/// The index of the largest value, and the second largest value.
fn strongest(v: &[f64]) -> (usize, f64) {
    let mut best = 0;
    for i in 1..v.len() {
        if v[i] > v[best] {
            best = i;
        }
    }
    let second = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != best)
        .map(|(_, x)| *x)
        .fold(0.0, f64::max);
    (best, second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::Tone;

    /// Digits as dual tones: each `on_ms` long, then `off_ms` of silence.
    fn synthesize(digits: &str, rate: u32, on_ms: u32, off_ms: u32) -> Vec<i16> {
        let mut out = Vec::new();
        for d in digits.chars() {
            let Some((r, c)) = KEYS
                .iter()
                .enumerate()
                .find_map(|(r, row)| row.iter().position(|k| *k == d).map(|c| (r, c)))
            else {
                continue;
            };
            let on = (rate * on_ms / 1000) as usize;
            for i in 0..on {
                let t = i as f64 / f64::from(rate);
                let v = (std::f64::consts::TAU * ROWS[r] * t).sin()
                    + (std::f64::consts::TAU * COLS[c] * t).sin();
                out.push((v * 8000.0) as i16);
            }
            out.resize(out.len() + (rate * off_ms / 1000) as usize, 0);
        }
        out
    }

    fn detect(samples: &[i16], rate: u32, frame: usize) -> String {
        let mut d = InbandDetector::new(rate);
        samples.chunks(frame).filter_map(|f| d.feed(f)).collect()
    }

    #[test]
    fn every_key_is_heard_once_at_every_rate() {
        for rate in [8000, 16000, 48000] {
            let audio = synthesize("123A456B789C*0#D", rate, 80, 60);
            assert_eq!(
                detect(&audio, rate, rate as usize / 50),
                "123A456B789C*0#D",
                "{rate} Hz"
            );
        }
    }

    #[test]
    fn a_long_press_is_one_digit_and_repeats_need_a_pause() {
        let audio = synthesize("9", 8000, 1000, 0);
        assert_eq!(detect(&audio, 8000, 160), "9");
        let audio = synthesize("99", 8000, 100, 60);
        assert_eq!(detect(&audio, 8000, 160), "99");
    }

    #[test]
    fn tones_noise_and_silence_are_not_digits() {
        for hz in [440.0, 697.0, 1000.0, 1336.0] {
            let mut audio = vec![0i16; 8000];
            Tone::new(hz, 8000).fill(&mut audio);
            assert_eq!(detect(&audio, 8000, 160), "", "{hz} Hz");
        }
        let mut rng = fastrand::Rng::with_seed(7);
        let noise: Vec<i16> = (0..16000).map(|_| rng.i16(-12000..12000)).collect();
        assert_eq!(detect(&noise, 8000, 160), "");
        assert_eq!(detect(&[0; 8000], 8000, 160), "");
        // Too short to be a key press (a click in speech): one block is not enough.
        let blip = synthesize("5", 8000, 20, 200);
        assert_eq!(detect(&blip, 8000, 160), "");
    }

    #[test]
    fn a_digit_over_speech_like_noise_is_still_heard() {
        let mut audio = synthesize("7", 8000, 120, 0);
        let mut rng = fastrand::Rng::with_seed(3);
        for s in &mut audio {
            *s = s.saturating_add(rng.i16(-1500..1500));
        }
        assert_eq!(detect(&audio, 8000, 160), "7");
    }
}
