//! The local conference mixer (`voipctl conference`): each leg's stream, on its own tick,
//! hands what its far side said to the other legs and sends its far side our input plus
//! what the other legs said, never its own. No thread and no timer of its own: the legs'
//! ticks drive it. The legs' shards tick at the same period but not in step, so each leg
//! keeps a short queue per other leg rather than reading one shared frame.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::source::resample_into;

/// The rate on the bus: wideband is what a voice conference needs, at a third of the work
/// of Opus's 48 kHz.
const MIX_RATE: u32 = 16_000;
const FRAME: usize = (MIX_RATE / 50) as usize;
/// Frames a leg may fall behind another before the oldest are dropped (80 ms).
const MAX_QUEUED: usize = 4;
/// Frames a leg keeps for reuse. A leg that publishes but does not mix (held, or with no
/// far address yet) allocates what the others then free into their pools: bounded, the
/// pools cannot grow with it.
const MAX_SPARE: usize = 2 * MAX_QUEUED;

type Frame = Box<[i16; FRAME]>;

#[derive(Default)]
struct Bus {
    legs: Vec<Inbox>,
}

/// What the other legs said, for one leg, by the leg that said it.
struct Inbox {
    leg: u64,
    from: Vec<(u64, VecDeque<Frame>)>,
}

/// A conference: the legs mixed together. Cheap to clone.
#[derive(Clone, Default)]
pub struct Conference(Arc<Mutex<Bus>>);

impl Conference {
    /// A conference with no legs yet.
    pub fn new() -> Conference {
        Conference::default()
    }

    /// A new leg, `id` (a call's): the others hear it from its first frame.
    pub fn join(&self, id: u64) -> ConfLeg {
        let mut bus = self.lock();
        let others: Vec<u64> = bus.legs.iter().map(|i| i.leg).collect();
        for inbox in &mut bus.legs {
            inbox.from.push((id, VecDeque::new()));
        }
        bus.legs.push(Inbox {
            leg: id,
            from: others.into_iter().map(|o| (o, VecDeque::new())).collect(),
        });
        ConfLeg {
            bus: self.0.clone(),
            id,
            at_mix: Vec::new(),
            sum: vec![0; FRAME],
            clamped: Vec::new(),
            mixed: Vec::new(),
            spare: Vec::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One call's place in a conference, held by its stream. Dropped, it leaves.
pub struct ConfLeg {
    bus: Arc<Mutex<Bus>>,
    id: u64,
    at_mix: Vec<i16>,
    sum: Vec<i32>,
    clamped: Vec<i16>,
    mixed: Vec<i16>,
    /// Frames to reuse, so that a running conference allocates nothing.
    spare: Vec<Frame>,
}

impl ConfLeg {
    fn lock(&self) -> std::sync::MutexGuard<'_, Bus> {
        self.bus.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What this leg's far side said this frame (`pcm` at `rate`; empty: nothing), for
    /// the other legs.
    pub(super) fn publish(&mut self, pcm: &[i16], rate: u32) {
        resample_into(pcm, rate, MIX_RATE, &mut self.at_mix);
        self.at_mix.resize(FRAME, 0);
        let id = self.id;
        let mut spare = std::mem::take(&mut self.spare);
        {
            let mut bus = self.lock();
            for inbox in bus.legs.iter_mut().filter(|i| i.leg != id) {
                let Some((_, q)) = inbox.from.iter_mut().find(|(f, _)| *f == id) else {
                    continue;
                };
                let mut f = match q.len() >= MAX_QUEUED {
                    true => q.pop_front(),
                    false => spare.pop(),
                }
                .unwrap_or_else(|| Box::new([0; FRAME]));
                f.copy_from_slice(&self.at_mix);
                q.push_back(f);
            }
        }
        self.spare = spare;
    }

    /// Adds the other legs' words to `pcm` (our input, at `rate`): what this leg's far side
    /// hears.
    pub(super) fn mix_into(&mut self, pcm: &mut [i16], rate: u32) {
        self.sum.iter_mut().for_each(|s| *s = 0);
        let mut any = false;
        {
            let id = self.id;
            let mut bus = self.bus.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(inbox) = bus.legs.iter_mut().find(|i| i.leg == id) {
                for (_, q) in &mut inbox.from {
                    if let Some(f) = q.pop_front() {
                        for (s, x) in self.sum.iter_mut().zip(f.iter()) {
                            *s += i32::from(*x);
                        }
                        any = true;
                        if self.spare.len() < MAX_SPARE {
                            self.spare.push(f);
                        }
                    }
                }
            }
        }
        if !any {
            return;
        }
        self.clamped.clear();
        self.clamped
            .extend(self.sum.iter().map(|s| (*s).clamp(-32768, 32767) as i16));
        resample_into(&self.clamped, MIX_RATE, rate, &mut self.mixed);
        for (o, m) in pcm.iter_mut().zip(&self.mixed) {
            *o = (i32::from(*o) + i32::from(*m)).clamp(-32768, 32767) as i16;
        }
    }
}

impl std::fmt::Debug for ConfLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfLeg").field("id", &self.id).finish()
    }
}

impl Drop for ConfLeg {
    fn drop(&mut self) {
        let id = self.id;
        let mut bus = self.lock();
        bus.legs.retain(|i| i.leg != id);
        for inbox in &mut bus.legs {
            inbox.from.retain(|(f, _)| *f != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_leg_hears_the_others_and_ours_but_not_itself() {
        let conf = Conference::new();
        let (mut a, mut b, mut c) = (conf.join(1), conf.join(2), conf.join(3));
        // A at 8 kHz, B at 16 kHz, C at 48 kHz: each says its own level.
        a.publish(&[100; 160], 8000);
        b.publish(&[1000; 320], 16000);
        c.publish(&[10_000; 960], 48000);
        let mut to_a = [5i16; 160];
        a.mix_into(&mut to_a, 8000);
        assert_eq!(to_a[80], 5 + 1000 + 10_000, "ours, B and C");
        let mut to_c = [0i16; 960];
        c.mix_into(&mut to_c, 48000);
        assert_eq!(to_c[480], 1100, "A and B, not C");
        // Nothing new: nothing added, not the last frame again.
        let mut again = [0i16; 160];
        a.mix_into(&mut again, 8000);
        assert_eq!(again[80], 0);
        // B hangs up: A hears only C from now on.
        drop(b);
        c.publish(&[7; 960], 48000);
        let mut to_a = [0i16; 160];
        a.mix_into(&mut to_a, 8000);
        assert_eq!(to_a[80], 7);
    }

    #[test]
    fn a_leg_that_falls_behind_loses_the_oldest_frames_only() {
        let conf = Conference::new();
        let (mut a, mut b) = (conf.join(1), conf.join(2));
        for level in 1..=10 {
            a.publish(&[level; 160], 8000);
        }
        let mut heard = Vec::new();
        for _ in 0..MAX_QUEUED + 1 {
            let mut f = [0i16; 160];
            b.mix_into(&mut f, 8000);
            heard.push(f[80]);
        }
        assert_eq!(heard, [7, 8, 9, 10, 0]);
    }

    #[test]
    fn a_leg_that_never_mixes_does_not_grow_the_others_pools() {
        let conf = Conference::new();
        let (mut held, mut b, mut c) = (conf.join(1), conf.join(2), conf.join(3));
        for _ in 0..1000 {
            for leg in [&mut held, &mut b, &mut c] {
                leg.publish(&[1; 160], 8000);
            }
            let mut f = [0i16; 160];
            b.mix_into(&mut f, 8000);
            c.mix_into(&mut f, 8000);
        }
        assert!(b.spare.len() <= MAX_SPARE && c.spare.len() <= MAX_SPARE);
        assert!(held.spare.is_empty());
    }
}
