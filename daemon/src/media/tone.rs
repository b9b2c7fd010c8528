//! A sine tone source: the phase carries over between frames, so the tone is clean.

/// The call-waiting tone as European networks play it (ITU-T E.180): 425 Hz, two 200 ms
/// beeps 200 ms apart, every 3 s, at a quarter of a test tone's level: heard over the call
/// without drowning it.
pub struct WaitingTone {
    tone: Tone,
    rate: u32,
    /// Samples since the pattern began.
    at: u64,
}

impl WaitingTone {
    /// The tone at `rate` Hz, from the start of its first beep.
    pub fn new(rate: u32) -> WaitingTone {
        WaitingTone {
            tone: Tone::new(425.0, rate),
            rate,
            at: 0,
        }
    }

    /// Adds the tone, where the pattern has it, to `out` (audio at `rate`).
    pub fn mix(&mut self, out: &mut [i16], rate: u32) {
        if rate != self.rate {
            self.at = self.at * u64::from(rate) / u64::from(self.rate.max(1));
            self.rate = rate;
            self.tone.set_rate(rate);
        }
        let mut beep = [0i16; 1];
        for s in out {
            self.tone.fill(&mut beep);
            let ms = self.at * 1000 / u64::from(rate.max(1)) % 3000;
            if ms < 200 || (400..600).contains(&ms) {
                *s = s.saturating_add(beep[0] / 4);
            }
            self.at += 1;
        }
    }
}

pub struct Tone {
    freq_hz: f32,
    phase: f64,
    step: f64,
    amplitude: f64,
}

impl Tone {
    pub fn new(freq_hz: f32, sample_rate: u32) -> Tone {
        Tone {
            freq_hz,
            phase: 0.0,
            step: std::f64::consts::TAU * f64::from(freq_hz) / f64::from(sample_rate),
            // About -6 dBFS: loud enough to detect, far from clipping after companding.
            amplitude: 16_000.0,
        }
    }

    /// The same tone at another sample rate, going on from where it was.
    pub fn set_rate(&mut self, sample_rate: u32) {
        self.step = std::f64::consts::TAU * f64::from(self.freq_hz) / f64::from(sample_rate);
    }

    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = (self.phase.sin() * self.amplitude) as i16;
            self.phase = (self.phase + self.step) % std::f64::consts::TAU;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_tone_beeps_twice_every_three_seconds() {
        let mut w = WaitingTone::new(8000);
        let mut out = vec![0i16; 8000 * 3];
        w.mix(&mut out, 8000);
        let loud = |from_ms: usize, to_ms: usize| {
            out[from_ms * 8..to_ms * 8]
                .iter()
                .map(|s| i32::from(*s).abs())
                .max()
                .unwrap_or(0)
        };
        assert!(
            loud(0, 200) > 3000 && loud(0, 200) <= 4000,
            "soft: {}",
            loud(0, 200)
        );
        assert_eq!(loud(200, 400), 0);
        assert!(loud(400, 600) > 3000);
        assert_eq!(loud(600, 3000), 0);
        // The pattern goes on at another rate from where it was.
        let mut more = vec![0i16; 16000 / 5];
        w.mix(&mut more, 16000);
        assert!(more.iter().any(|s| *s != 0), "the next cycle's first beep");
    }
}
