//! What one video call costs in codec work at 640×480, 15 fps: the test pattern encoded,
//! packetized, put back together and decoded, per codec, and how many such calls two cores
//! would hold on that alone. `cargo bench -p voipd --bench video` (BENCH_SECS: how long
//! each codec runs, 5 by default).

use std::time::{Duration, Instant};

use voipd::media::video::Frame;
use voipd::media::video::h264::{H264Decoder, H264Encoder};
use voipd::media::video::h264_payload::{self, H264Depacketizer, PacketizationMode};
use voipd::media::video::pattern::TestPattern;
use voipd::media::video::vp8::{Vp8Decoder, Vp8Encoder};
use voipd::media::video::vp8_payload::{self, Vp8Depacketizer};

const W: usize = 640;
const H: usize = 480;
const FPS: u32 = 15;
const KBPS: u32 = 800;

/// The test pattern panning 8 pixels a frame, with a camera sensor's grain (±4 in luma,
/// new each frame): every block moves and none repeats exactly, as in a camera's picture
/// (the pattern alone is nearly still, which flatters any codec).
fn panning(pattern: &TestPattern, i: u32) -> Frame {
    let f = pattern.picture(Duration::from_millis(u64::from(i) * 1000 / u64::from(FPS)));
    let mut out = f.clone();
    let shift = (i as usize * 8) % W;
    let (src, dst) = (f.planes(), out.planes_mut());
    for (plane, to, w) in [
        (src.0, dst.0, W),
        (src.1, dst.1, W / 2),
        (src.2, dst.2, W / 2),
    ] {
        let s = shift * w / W;
        for (row_in, row_out) in plane.chunks(w).zip(to.chunks_mut(w)) {
            row_out[..w - s].copy_from_slice(&row_in[s..]);
            row_out[w - s..].copy_from_slice(&row_in[..s]);
        }
    }
    let mut seed = i.wrapping_mul(2_654_435_761) | 1;
    for y in out.planes_mut().0 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        *y = y.saturating_add_signed((seed % 9) as i8 - 4);
    }
    out
}

/// Runs `step` on successive pictures for `secs`; the busy time per frame.
fn run(secs: u64, mut step: impl FnMut(&Frame, u32) -> usize) -> (Duration, usize, u32) {
    let pattern = TestPattern::new(W, H);
    // Made ahead: the source's own cost is not the codec's.
    let pictures: Vec<Frame> = (0..FPS * 4).map(|i| panning(&pattern, i)).collect();
    let (mut busy, mut bytes, mut n) = (Duration::ZERO, 0, 0u32);
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let pic = &pictures[n as usize % pictures.len()];
        let t = Instant::now();
        bytes += step(pic, n);
        busy += t.elapsed();
        n += 1;
    }
    (busy / n.max(1), bytes, n)
}

fn report(name: &str, (per_frame, bytes, n): (Duration, usize, u32)) {
    let core_share = per_frame.as_secs_f64() * f64::from(FPS);
    let kbps = bytes as f64 * 8.0 / (f64::from(n) / f64::from(FPS)) / 1000.0;
    println!(
        "{name:5} {W}x{H} {FPS} fps: {:6.2} ms/frame encode+decode, {:5.1} % of a core per call, \
         {kbps:5.0} kbit/s, ~{:.0} calls on 2 cores",
        per_frame.as_secs_f64() * 1000.0,
        core_share * 100.0,
        2.0 / core_share
    );
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let step_90k = 90_000 / FPS;

    let mut enc = Vp8Encoder::new(W, H, KBPS, FPS * 10).expect("VP8 encoder");
    let mut dec = Vp8Decoder::new().expect("VP8 decoder");
    let mut depack = Vp8Depacketizer::new(1 << 22);
    let mut seq = 0u16;
    let vp8 = run(secs, |pic, i| {
        let pts = i * step_90k;
        let Some(e) = enc.encode(pic, i64::from(pts), step_90k).expect("encode") else {
            return 0;
        };
        let packets = vp8_payload::packetize(&e.data, i as u16, 1200);
        let last = packets.len() - 1;
        for (k, p) in packets.iter().enumerate() {
            if let Ok(Some(f)) = depack.push(seq, pts, k == last, p) {
                dec.decode(&f.data).expect("decode");
            }
            seq = seq.wrapping_add(1);
        }
        e.data.len()
    });
    report("VP8", vp8);

    let mut enc = H264Encoder::new(W, H, FPS as f32, KBPS, FPS * 10).expect("H.264 encoder");
    let mut dec = H264Decoder::new().expect("H.264 decoder");
    let mut depack = H264Depacketizer::new(1 << 22);
    let h264 = run(secs, |pic, i| {
        let Some(e) = enc.encode(pic).expect("encode") else {
            return 0;
        };
        let packets = h264_payload::packetize(&e.data, PacketizationMode::NonInterleaved, 1200);
        let last = packets.len() - 1;
        for (k, p) in packets.iter().enumerate() {
            if let Ok(Some(f)) = depack.push(seq, i * step_90k, k == last, p) {
                dec.decode(&f.data).expect("decode");
            }
            seq = seq.wrapping_add(1);
        }
        e.data.len()
    });
    report("H.264", h264);
}
