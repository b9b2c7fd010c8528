//! Snapshots: a decoded picture as PNG (`voipctl video snapshot`, D-Bus `Call1.Snapshot`),
//! for a widget that shows who is at the door.

use super::frame::Frame;

/// The picture as an 8-bit RGB PNG.
pub fn to_png(frame: &Frame) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(frame.width * frame.height * 3);
    for y in 0..frame.height {
        for x in 0..frame.width {
            rgb.extend_from_slice(&frame.rgb_at(x, y));
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, frame.width as u32, frame.height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    // Writing into a Vec fails only on a size PNG cannot hold (0 or over 2^31).
    match enc
        .write_header()
        .and_then(|mut w| w.write_image_data(&rgb))
    {
        Ok(()) => out,
        Err(e) => {
            tracing::warn!("snapshot of {frame:?}: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::pattern::{BARS, TestPattern};

    #[test]
    fn a_snapshot_reads_back_with_the_pictures_colours() {
        let f = TestPattern::new(320, 240).picture(std::time::Duration::ZERO);
        let bytes = to_png(&f);
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; dec.output_buffer_size().unwrap()];
        let info = dec.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (320, 240));
        let x = 320 / 14; // the middle of the first bar
        let px = &buf[(50 * 320 + x) * 3..][..3];
        for (g, w) in px.iter().zip(BARS[0]) {
            assert!(g.abs_diff(w) <= 4, "{px:?}");
        }
        assert!(to_png(&Frame::black(0, 0)).is_empty());
    }
}
