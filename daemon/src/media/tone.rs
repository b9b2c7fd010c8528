//! A sine tone source: the phase carries over between frames, so the tone is clean.

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
