//! Pictures the tests check: PNG snapshots (ours, baresip's) read into RGB, and the
//! colours they must show where.

use std::path::Path;

/// A picture, RGB, row by row.
pub struct Picture {
    pub width: usize,
    pub height: usize,
    rgb: Vec<u8>,
}

impl Picture {
    /// Reads an 8-bit RGB or RGBA PNG.
    pub fn read_png(path: &Path) -> Picture {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Picture::decode(std::io::BufReader::new(file), &path.display().to_string())
    }

    /// Reads PNG bytes.
    pub fn from_png(bytes: &[u8]) -> Picture {
        Picture::decode(std::io::Cursor::new(bytes.to_vec()), "PNG bytes")
    }

    fn decode<R: std::io::BufRead + std::io::Seek>(r: R, what: &str) -> Picture {
        let mut d = png::Decoder::new(r);
        d.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = d.read_info().unwrap_or_else(|e| panic!("{what}: {e}"));
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader
            .next_frame(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let channels = info.color_type.samples();
        assert!(
            channels >= 3,
            "{what}: not a colour picture ({:?})",
            info.color_type
        );
        let rgb = buf[..info.buffer_size()]
            .chunks(channels)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Picture {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
        }
    }

    /// The colour at (x, y).
    pub fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Whether the colour at (x, y), averaged over a 5×5 square, is within `tolerance` of
    /// `want` in each channel (video codecs blur edges and shift colours a little).
    pub fn near(&self, x: usize, y: usize, want: [u8; 3], tolerance: u8) -> bool {
        let mut sum = [0u32; 3];
        let mut n = 0;
        for dy in 0..5 {
            for dx in 0..5 {
                let (px, py) = ((x + dx).saturating_sub(2), (y + dy).saturating_sub(2));
                if px < self.width && py < self.height {
                    let c = self.at(px, py);
                    for k in 0..3 {
                        sum[k] += u32::from(c[k]);
                    }
                    n += 1;
                }
            }
        }
        (0..3).all(|k| (sum[k] / n.max(1)).abs_diff(u32::from(want[k])) <= u32::from(tolerance))
    }
}

/// voipd's test pattern: seven SMPTE bars (white, yellow, cyan, green, magenta, red, blue)
/// across the top two thirds. Returns what does not match, empty when all does.
pub fn pattern_mismatches(p: &Picture) -> Vec<String> {
    const BARS: [(&str, [u8; 3]); 7] = [
        ("white", [235, 235, 235]),
        ("yellow", [235, 235, 16]),
        ("cyan", [16, 235, 235]),
        ("green", [16, 235, 16]),
        ("magenta", [235, 16, 235]),
        ("red", [235, 16, 16]),
        ("blue", [16, 16, 235]),
    ];
    let y = p.height / 3;
    BARS.iter()
        .enumerate()
        .filter_map(|(i, (name, rgb))| {
            let x = p.width * (2 * i + 1) / 14;
            (!p.near(x, y, *rgb, 48))
                .then(|| format!("{name} bar at ({x}, {y}) is {:?}", p.at(x, y)))
        })
        .collect()
}

/// baresip's fakevideo picture: red, green and blue thirds, left to right. Returns what
/// does not match.
pub fn fakevideo_mismatches(p: &Picture) -> Vec<String> {
    let y = p.height / 2;
    [
        ("red", [255, 0, 0]),
        ("green", [0, 255, 0]),
        ("blue", [0, 0, 255]),
    ]
    .iter()
    .enumerate()
    .filter_map(|(i, (name, rgb))| {
        let x = p.width * (2 * i + 1) / 6;
        (!p.near(x, y, *rgb, 64)).then(|| format!("{name} third at ({x}, {y}) is {:?}", p.at(x, y)))
    })
    .collect()
}

/// A Y4M (I420) stream: its size and its pictures, each Y then U then V.
pub struct Y4m {
    pub width: usize,
    pub height: usize,
    pub frames: Vec<Vec<u8>>,
}

impl Y4m {
    /// Frames of a moving picture, each unlike the others: a diagonal gradient that
    /// slides, a bright square that travels, and the frame's number in black and white
    /// blocks across the top.
    pub fn moving(width: usize, height: usize, count: usize) -> Y4m {
        let (cw, ch) = (width / 2, height / 2);
        let frames = (0..count)
            .map(|t| {
                let mut f = vec![0u8; width * height + 2 * cw * ch];
                for y in 0..height {
                    for x in 0..width {
                        let mut l = 40 + ((x + y + 6 * t) % 320) * 150 / 320;
                        let (sx, sy) = ((t * 10) % (width - 48), height / 2);
                        if (sx..sx + 48).contains(&x) && (sy..sy + 48).contains(&y) {
                            l = 230;
                        }
                        if y < 32 && x / 32 < 8 {
                            l = if t >> (x / 32) & 1 == 1 { 225 } else { 20 };
                        }
                        f[y * width + x] = l as u8;
                    }
                }
                for y in 0..ch {
                    for x in 0..cw {
                        f[width * height + y * cw + x] = (64 + (x * 128 / cw)) as u8;
                        f[width * height + cw * ch + y * cw + x] = (64 + (y * 128 / ch)) as u8;
                    }
                }
                f
            })
            .collect();
        Y4m {
            width,
            height,
            frames,
        }
    }

    pub fn write(&self, path: &Path, fps: u32) {
        let mut out = format!(
            "YUV4MPEG2 W{} H{} F{fps}:1 Ip A1:1 C420jpeg\n",
            self.width, self.height
        )
        .into_bytes();
        for f in &self.frames {
            out.extend_from_slice(b"FRAME\n");
            out.extend_from_slice(f);
        }
        std::fs::write(path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Reads a Y4M file; a last frame cut short is left out.
    pub fn read(path: &Path) -> Y4m {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let nl = data.iter().position(|b| *b == b'\n').expect("a Y4M header");
        let header = String::from_utf8_lossy(&data[..nl]).to_string();
        let field = |tag: char| {
            header
                .split(' ')
                .find_map(|w| w.strip_prefix(tag))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("{}: no {tag} in {header:?}", path.display()))
        };
        let (width, height) = (field('W'), field('H'));
        let len = width * height * 3 / 2;
        let mut frames = Vec::new();
        let mut at = nl + 1;
        while let Some(rest) = data.get(at..) {
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                break;
            };
            let start = at + end + 1;
            let Some(f) = data.get(start..start + len) else {
                break;
            };
            frames.push(f.to_vec());
            at = start + len;
        }
        Y4m {
            width,
            height,
            frames,
        }
    }
}

/// The PSNR of two pictures' luma, dB (99 when identical).
pub fn psnr_luma(a: &[u8], b: &[u8], luma_len: usize) -> f64 {
    let se: f64 = a[..luma_len]
        .iter()
        .zip(&b[..luma_len])
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let mse = se / luma_len as f64;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// baresip saves the next picture it decodes from us; it must show our colour bars.
pub fn baresip_sees_our_pattern(phone: &mut crate::baresip::Baresip, at: &Path) {
    baresip_sees_our_pattern_at(phone, at, (320, 240));
}

/// As [`baresip_sees_our_pattern`], at `size`.
pub fn baresip_sees_our_pattern_at(
    phone: &mut crate::baresip::Baresip,
    at: &Path,
    size: (usize, usize),
) {
    phone.command("snapshot_recv", &at.display().to_string());
    crate::wait_until(
        || std::fs::metadata(at).is_ok_and(|m| m.len() > 0),
        "baresip's snapshot of our video",
    );
    // Written as it is saved: a moment for the whole file.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let p = Picture::read_png(at);
    assert_eq!((p.width, p.height), size, "baresip's snapshot size");
    let bad = pattern_mismatches(&p);
    assert!(bad.is_empty(), "baresip's snapshot of our video: {bad:?}");
}

/// voipd's snapshot (voipctl video snapshot) shows baresip's picture.
pub fn we_see_baresips_picture(sb: &crate::Sandbox, at: &Path) {
    crate::ok(sb, &["video", "snapshot", &at.display().to_string()]);
    let p = Picture::read_png(at);
    assert_eq!((p.width, p.height), (320, 240));
    let bad = fakevideo_mismatches(&p);
    assert!(bad.is_empty(), "our snapshot of baresip's video: {bad:?}");
}
