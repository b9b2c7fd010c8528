//! A picture in I420 (YUV 4:2:0, planar), the form both codecs and Y4M use.

/// A picture in I420: a full-size luma plane, then two chroma planes of half width and
/// height (rounded up). Width and height are even in everything we make.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Y, then U, then V, packed without padding.
    pub data: Vec<u8>,
}

impl Frame {
    /// A black picture.
    pub fn black(width: usize, height: usize) -> Frame {
        let (cw, ch) = chroma_size(width, height);
        let mut data = vec![16u8; width * height + 2 * cw * ch];
        data[width * height..].fill(128);
        Frame {
            width,
            height,
            data,
        }
    }

    /// A picture copied out of a decoder's planes (Y, U, V, each with its row stride, as
    /// decoders pad their rows); None when a plane is shorter than its size says.
    pub fn from_strided(width: usize, height: usize, planes: [(&[u8], usize); 3]) -> Option<Frame> {
        let (cw, ch) = chroma_size(width, height);
        let mut data = Vec::with_capacity(Frame::len_for(width, height));
        for ((plane, stride), (pw, ph)) in
            planes
                .into_iter()
                .zip([(width, height), (cw, ch), (cw, ch)])
        {
            for row in 0..ph {
                data.extend_from_slice(plane.get(row * stride..row * stride + pw)?);
            }
        }
        Some(Frame {
            width,
            height,
            data,
        })
    }

    /// The bytes an I420 picture of this size takes.
    pub fn len_for(width: usize, height: usize) -> usize {
        let (cw, ch) = chroma_size(width, height);
        width * height + 2 * cw * ch
    }

    /// The planes: Y, U, V.
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let y = self.width * self.height;
        let (cw, ch) = chroma_size(self.width, self.height);
        let c = cw * ch;
        (
            &self.data[..y],
            &self.data[y..y + c],
            &self.data[y + c..y + 2 * c],
        )
    }

    /// The planes, to write.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let y = self.width * self.height;
        let (cw, ch) = chroma_size(self.width, self.height);
        let (luma, chroma) = self.data.split_at_mut(y);
        let (u, v) = chroma.split_at_mut(cw * ch);
        (luma, u, &mut v[..cw * ch])
    }

    /// The colour at (x, y) as RGB (BT.601, studio range, as the codecs' output).
    pub fn rgb_at(&self, x: usize, y: usize) -> [u8; 3] {
        let (yp, up, vp) = self.planes();
        let (cw, _) = chroma_size(self.width, self.height);
        let luma = f32::from(yp[y * self.width + x]);
        let u = f32::from(up[(y / 2) * cw + x / 2]) - 128.0;
        let v = f32::from(vp[(y / 2) * cw + x / 2]) - 128.0;
        let c = 1.164 * (luma - 16.0);
        let clamp = |f: f32| f.round().clamp(0.0, 255.0) as u8;
        [
            clamp(c + 1.596 * v),
            clamp(c - 0.392 * u - 0.813 * v),
            clamp(c + 2.017 * u),
        ]
    }

    /// The peak signal-to-noise ratio of `other`'s luma against ours, in dB (99 when the
    /// same); None when the sizes differ.
    pub fn psnr(&self, other: &Frame) -> Option<f64> {
        if (self.width, self.height) != (other.width, other.height) {
            return None;
        }
        let n = self.width * self.height;
        let sum: f64 = self.data[..n]
            .iter()
            .zip(&other.data[..n])
            .map(|(a, b)| {
                let d = f64::from(*a) - f64::from(*b);
                d * d
            })
            .sum();
        if sum == 0.0 {
            return Some(99.0);
        }
        Some(10.0 * (255.0 * 255.0 / (sum / n as f64)).log10())
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

/// The chroma planes' size for a picture.
pub fn chroma_size(width: usize, height: usize) -> (usize, usize) {
    (width.div_ceil(2), height.div_ceil(2))
}

/// RGB to the Y, U, V of BT.601 studio range.
pub fn yuv_of(rgb: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = rgb.map(f32::from);
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    [y, u, v].map(|f| f.round().clamp(0.0, 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_go_to_yuv_and_back() {
        let mut f = Frame::black(4, 2);
        assert_eq!(f.data.len(), Frame::len_for(4, 2));
        assert_eq!(f.rgb_at(0, 0), [0, 0, 0]);
        for rgb in [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]] {
            let [y, u, v] = yuv_of(rgb);
            let (yp, up, vp) = f.planes_mut();
            yp.fill(y);
            up.fill(u);
            vp.fill(v);
            let back = f.rgb_at(1, 1);
            for (a, b) in back.iter().zip(rgb) {
                assert!(a.abs_diff(b) <= 3, "{rgb:?} came back {back:?}");
            }
        }
        let g = Frame::black(4, 2);
        assert_eq!(g.psnr(&g), Some(99.0));
        // Rows padded to 8: copied without the padding.
        let (y, c) = ([16u8; 16], [128u8; 8]);
        let back = Frame::from_strided(4, 2, [(&y, 8), (&c, 8), (&c, 8)]).unwrap();
        assert_eq!(back, g);
        assert_eq!(
            Frame::from_strided(4, 2, [(&y[..9], 8), (&c, 8), (&c, 8)]),
            None
        );
        assert!(g.psnr(&f).unwrap() < 10.0);
        assert_eq!(g.psnr(&Frame::black(2, 2)), None);
    }
}
