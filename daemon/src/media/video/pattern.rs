//! The test pattern (`video_source = "pattern"`): colour bars a far side can check in a
//! snapshot, a square that moves so that motion is encoded too, and the time since the
//! call began written in digits, so a frozen picture is plain to see.

use std::time::Duration;

use super::frame::{Frame, chroma_size, yuv_of};

/// The bars, left to right: white, yellow, cyan, green, magenta, red, blue (SMPTE order).
pub const BARS: [[u8; 3]; 7] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
];

/// 3×5 digits, a row of three bits each, top to bottom.
const DIGITS: [[u8; 5]; 11] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 1, 1, 1],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
    [0, 0, 0, 0, 2], // '.'
];

/// Makes the pattern's pictures at one size.
pub struct TestPattern {
    bars: Frame,
}

impl TestPattern {
    /// The pattern at `width`×`height` (even).
    pub fn new(width: usize, height: usize) -> TestPattern {
        let mut bars = Frame::black(width, height);
        let (cw, ch) = chroma_size(width, height);
        let top = height * 2 / 3;
        let (yp, up, vp) = bars.planes_mut();
        for x in 0..width {
            let [y, u, v] = yuv_of(BARS[x * BARS.len() / width.max(1)]);
            for row in 0..top {
                yp[row * width + x] = y;
            }
            if x % 2 == 0 {
                for row in 0..top.div_ceil(2).min(ch) {
                    up[row * cw + x / 2] = u;
                    vp[row * cw + x / 2] = v;
                }
            }
        }
        TestPattern { bars }
    }

    /// The picture `at` into the call.
    pub fn picture(&self, at: Duration) -> Frame {
        let mut f = self.bars.clone();
        let (w, h) = (f.width, f.height);
        let band = h * 2 / 3;
        let side = ((h - band) / 2).max(2) & !1;
        // Across the lower band in four seconds.
        let travel = w.saturating_sub(side).max(1);
        let x0 = ((at.as_millis() as usize * travel / 4000) % travel) & !1;
        let y0 = (band + (h - band).saturating_sub(side) / 2) & !1;
        fill(&mut f, x0, y0, side, side, [235, 235, 235]);
        let text = format!("{:.1}", at.as_secs_f64());
        let scale = (h / 60).max(1);
        let mut x = scale * 2;
        let y = h.saturating_sub(scale * 7);
        for c in text.chars() {
            let glyph = match c {
                '0'..='9' => DIGITS[c as usize - '0' as usize],
                _ => DIGITS[10],
            };
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        fill_luma(&mut f, x + col * scale, y + row * scale, scale, scale, 235);
                    }
                }
            }
            x += 4 * scale;
        }
        f
    }
}

/// A rectangle of one colour (x, y, width and height even).
fn fill(f: &mut Frame, x: usize, y: usize, w: usize, h: usize, rgb: [u8; 3]) {
    let [yy, u, v] = yuv_of(rgb);
    fill_luma(f, x, y, w, h, yy);
    let (fw, fh) = (f.width, f.height);
    let (cw, ch) = chroma_size(fw, fh);
    let (_, up, vp) = f.planes_mut();
    for row in y / 2..((y + h) / 2).min(ch) {
        for col in x / 2..((x + w) / 2).min(cw) {
            up[row * cw + col] = u;
            vp[row * cw + col] = v;
        }
    }
}

fn fill_luma(f: &mut Frame, x: usize, y: usize, w: usize, h: usize, luma: u8) {
    let (fw, fh) = (f.width, f.height);
    let (yp, ..) = f.planes_mut();
    for row in y..(y + h).min(fh) {
        for col in x..(x + w).min(fw) {
            yp[row * fw + col] = luma;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bars_are_where_a_snapshot_looks_and_the_square_moves() {
        let p = TestPattern::new(640, 480);
        let a = p.picture(Duration::ZERO);
        for (i, want) in BARS.iter().enumerate() {
            let x = i * 640 / 7 + 640 / 14;
            let got = a.rgb_at(x, 100);
            for (g, w) in got.iter().zip(want) {
                assert!(g.abs_diff(*w) <= 4, "bar {i}: {got:?} for {want:?}");
            }
        }
        let b = p.picture(Duration::from_millis(1000));
        assert_ne!(a, b);
        // The bars do not move; the lower band does.
        assert_eq!(a.planes().0[..640 * 300], b.planes().0[..640 * 300]);
        // Odd sizes and tiny ones do not panic.
        for (w, h) in [(2, 2), (16, 8), (176, 144)] {
            let p = TestPattern::new(w, h);
            let f = p.picture(Duration::from_secs(3725));
            assert_eq!(f.data.len(), Frame::len_for(w, h));
        }
    }
}
