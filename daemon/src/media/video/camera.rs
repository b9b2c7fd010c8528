//! A V4L2 camera as a video source (`source = "/dev/video0"`), through the pure-Rust
//! `linuxvideo` crate: no libv4l, no bindgen. A camera's read blocks until its next
//! picture, so each camera runs on a capture thread of its own that keeps only the latest
//! picture, converted to I420; the media engine's tick takes it when a picture is due and
//! never waits for the device.
//!
//! Raw formats only: YUYV (what nearly every USB camera offers), I420 (`YU12`) and NV12.
//! Cameras that give only MJPEG would need a JPEG decoder on every picture.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::Frame;
use super::frame::chroma_size;

/// Something that gives pictures, one per call, blocking until the next: a V4L2 device, or
/// a fake in tests.
pub trait Camera: Send {
    /// The next picture; None when none came within a moment (so that the thread can
    /// see it is to stop, whatever the device does).
    fn capture(&mut self) -> io::Result<Option<Frame>>;
}

/// The raw layouts we convert from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// Packed 4:2:2, Y0 U Y1 V.
    Yuyv,
    /// Planar 4:2:0 (our own layout).
    I420,
    /// Y plane, then interleaved U V at half size.
    Nv12,
}

impl RawFormat {
    fn of(fourcc: [u8; 4]) -> Option<RawFormat> {
        match &fourcc {
            b"YUYV" => Some(RawFormat::Yuyv),
            b"YU12" => Some(RawFormat::I420),
            b"NV12" => Some(RawFormat::Nv12),
            _ => None,
        }
    }
}

/// A raw picture (`stride` bytes per line of its first plane) as I420; None when the
/// buffer is shorter than its format says.
pub fn to_i420(
    raw: &[u8],
    format: RawFormat,
    width: usize,
    height: usize,
    stride: usize,
) -> Option<Frame> {
    // I420's chroma is half each way: odd sizes lose their last column or row.
    let (w, h) = (width & !1, height & !1);
    if w == 0 || h == 0 {
        return None;
    }
    let mut f = Frame::black(w, h);
    let (cw, ch) = chroma_size(w, h);
    match format {
        RawFormat::Yuyv => {
            let stride = stride.max(width * 2);
            raw.get(..stride * (h - 1) + w * 2)?;
            let (yp, up, vp) = f.planes_mut();
            for row in 0..h {
                let line = &raw[row * stride..row * stride + w * 2];
                for (x, px) in line.chunks_exact(4).enumerate() {
                    yp[row * w + 2 * x] = px[0];
                    yp[row * w + 2 * x + 1] = px[2];
                    if row % 2 == 0 {
                        up[(row / 2) * cw + x] = px[1];
                        vp[(row / 2) * cw + x] = px[3];
                    }
                }
            }
        }
        RawFormat::I420 | RawFormat::Nv12 => {
            let stride = stride.max(width);
            let luma = stride * height;
            let chroma_len = match format {
                RawFormat::I420 => luma / 4 * 2,
                _ => luma / 2,
            };
            raw.get(..luma + chroma_len)?;
            let (yp, up, vp) = f.planes_mut();
            for row in 0..h {
                yp[row * w..(row + 1) * w].copy_from_slice(&raw[row * stride..row * stride + w]);
            }
            for row in 0..ch {
                for col in 0..cw {
                    let (u, v) = match format {
                        RawFormat::I420 => {
                            let cs = stride / 2;
                            (
                                raw[luma + row * cs + col],
                                raw[luma + luma / 4 + row * cs + col],
                            )
                        }
                        _ => (
                            raw[luma + row * stride + 2 * col],
                            raw[luma + row * stride + 2 * col + 1],
                        ),
                    };
                    up[row * cw + col] = u;
                    vp[row * cw + col] = v;
                }
            }
        }
    }
    Some(f)
}

/// A V4L2 capture device, streaming.
pub struct V4l2Camera {
    stream: linuxvideo::stream::ReadStream,
    format: RawFormat,
    width: usize,
    height: usize,
    stride: usize,
}

impl V4l2Camera {
    /// Opens `path` for capture, asking for YUYV at about `width`×`height` and `fps`; the
    /// device may choose another size (the stream's size follows it).
    pub fn open(path: &Path, width: usize, height: usize, fps: u32) -> io::Result<V4l2Camera> {
        use linuxvideo::format::{PixFormat, PixelFormat};
        let dev = linuxvideo::Device::open(path)?;
        let cap = dev.video_capture(PixFormat::new(
            width as u32,
            height as u32,
            PixelFormat::YUYV,
        ))?;
        let f = cap.format();
        let format = RawFormat::of(f.pixel_format().as_fourcc()).ok_or_else(|| {
            io::Error::other(format!(
                "{}: the camera gives {}, not YUYV, YU12 or NV12",
                path.display(),
                f.pixel_format()
            ))
        })?;
        let (width, height, stride) = (
            f.width() as usize,
            f.height() as usize,
            f.bytes_per_line() as usize,
        );
        // Not every driver takes a rate; what it gives is then what we get.
        let _ = cap.set_frame_interval(linuxvideo::Fract::new(1, fps.max(1)));
        Ok(V4l2Camera {
            stream: cap.into_stream()?,
            format,
            width,
            height,
            stride,
        })
    }
}

/// How long one wait for a camera's picture may take before the stop flag is looked at.
const WAIT: u16 = 200;

impl Camera for V4l2Camera {
    fn capture(&mut self) -> io::Result<Option<Frame>> {
        use std::os::fd::AsFd;
        // A dequeue blocks with no timeout, and a camera that stops delivering would hold
        // the thread (and the call's end) for ever: wait for a picture first.
        let mut fds = [nix::poll::PollFd::new(
            self.stream.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, WAIT).map_err(io::Error::from)? == 0 {
            return Ok(None);
        }
        let (format, w, h, stride) = (self.format, self.width, self.height, self.stride);
        self.stream
            .dequeue(|buf| {
                to_i420(&buf, format, w, h, stride)
                    .ok_or_else(|| io::Error::other("a camera buffer shorter than its format"))
            })
            .map(Some)
    }
}

/// A camera's capture thread and the latest picture it took. Stopped and joined by
/// [`CameraFeed::stop`] (it blocks for up to a picture's time).
pub struct CameraFeed {
    latest: Arc<Mutex<Option<Frame>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CameraFeed {
    /// Starts taking pictures from the camera `open` opens (on the capture thread: a
    /// device's open and set-up block too).
    pub fn start(
        open: impl FnOnce() -> io::Result<Box<dyn Camera>> + Send + 'static,
        name: String,
    ) -> io::Result<CameraFeed> {
        let latest = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (latest.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || {
                let mut camera = match open() {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("camera {name}: {e}; the call sends no video");
                        return;
                    }
                };
                while !s.load(Ordering::Relaxed) {
                    match camera.capture() {
                        Ok(Some(f)) => *l.lock().unwrap_or_else(|e| e.into_inner()) = Some(f),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!("camera {name}: {e}; no more pictures from it");
                            break;
                        }
                    }
                }
            })?;
        Ok(CameraFeed {
            latest,
            stop,
            thread: Some(thread),
        })
    }

    /// The latest picture taken since the last call, if a new one came.
    pub fn take(&self) -> Option<Frame> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CameraFeed {
    fn drop(&mut self) {
        // Not joined here (a drop on the media tick must not block): the thread ends
        // after its next picture.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A capture device and what it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub path: PathBuf,
    pub card: String,
    /// Each pixel format (fourcc and description) with its sizes ("640x480", or a range),
    /// and whether voipd can take it.
    pub formats: Vec<(String, Vec<String>, bool)>,
}

/// The video capture devices under /dev and their formats (blocking: ioctls).
pub fn devices() -> Vec<DeviceInfo> {
    let Ok(list) = linuxvideo::list() else {
        return Vec::new();
    };
    let mut out: Vec<DeviceInfo> = list
        .filter_map(Result::ok)
        .filter_map(|d| describe(&d))
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn describe(d: &linuxvideo::Device) -> Option<DeviceInfo> {
    use linuxvideo::format::FrameSizes;
    let caps = d.capabilities().ok()?;
    if !d
        .supported_buf_types()
        .contains(linuxvideo::BufTypes::VIDEO_CAPTURE)
    {
        return None;
    }
    let formats = d
        .formats(linuxvideo::BufType::VIDEO_CAPTURE)
        .filter_map(Result::ok)
        .map(|f| {
            let pf = f.pixel_format();
            let sizes = match d.frame_sizes(pf) {
                Ok(FrameSizes::Discrete(s)) => s
                    .iter()
                    .map(|s| format!("{}x{}", s.width(), s.height()))
                    .collect(),
                Ok(FrameSizes::Stepwise(s) | FrameSizes::Continuous(s)) => vec![format!(
                    "{}x{} to {}x{}",
                    s.min_width(),
                    s.min_height(),
                    s.max_width(),
                    s.max_height()
                )],
                Err(_) => Vec::new(),
            };
            (
                format!("{pf} ({})", f.description()),
                sizes,
                RawFormat::of(pf.as_fourcc()).is_some(),
            )
        })
        .collect();
    Some(DeviceInfo {
        path: d.path().ok()?,
        card: caps.card().to_string(),
        formats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::pattern::TestPattern;

    /// A camera that gives the test pattern as YUYV with padded lines, as a driver with a
    /// stride wider than the picture does.
    struct FakeCamera {
        picture: Frame,
        stride: usize,
        taken: usize,
        fail_after: usize,
    }

    impl FakeCamera {
        fn yuyv(&self) -> Vec<u8> {
            let (w, h) = (self.picture.width, self.picture.height);
            let (cw, _) = chroma_size(w, h);
            let (y, u, v) = self.picture.planes();
            let mut raw = vec![0u8; self.stride * h];
            for row in 0..h {
                for x in 0..w / 2 {
                    let c = (row / 2) * cw + x;
                    let at = row * self.stride + 4 * x;
                    raw[at..at + 4].copy_from_slice(&[
                        y[row * w + 2 * x],
                        u[c],
                        y[row * w + 2 * x + 1],
                        v[c],
                    ]);
                }
            }
            raw
        }
    }

    impl Camera for FakeCamera {
        fn capture(&mut self) -> io::Result<Option<Frame>> {
            self.taken += 1;
            if self.taken > self.fail_after {
                return Err(io::Error::other("unplugged"));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            let (w, h) = (self.picture.width, self.picture.height);
            to_i420(&self.yuyv(), RawFormat::Yuyv, w, h, self.stride)
                .map(Some)
                .ok_or_else(|| io::Error::other("short"))
        }
    }

    #[test]
    fn yuyv_nv12_and_i420_become_the_same_picture() {
        let pic = TestPattern::new(64, 48).picture(std::time::Duration::ZERO);
        let cam = FakeCamera {
            picture: pic.clone(),
            stride: 64 * 2 + 32,
            taken: 0,
            fail_after: 1,
        };
        // 4:2:2 → 4:2:0 keeps the even rows' chroma: the pattern's chroma is the same on
        // both rows of a pair, so nothing is lost.
        assert!(to_i420(&cam.yuyv(), RawFormat::Yuyv, 64, 48, cam.stride) == Some(pic.clone()));
        assert!(to_i420(&pic.data, RawFormat::I420, 64, 48, 64) == Some(pic.clone()));
        let (y, u, v) = pic.planes();
        let mut nv12 = y.to_vec();
        for (a, b) in u.iter().zip(v) {
            nv12.extend([*a, *b]);
        }
        assert!(to_i420(&nv12, RawFormat::Nv12, 64, 48, 64) == Some(pic.clone()));
        // A short buffer (a driver's bad frame) is not read past.
        assert!(to_i420(&nv12[..100], RawFormat::Nv12, 64, 48, 64).is_none());
        assert!(to_i420(&cam.yuyv()[..500], RawFormat::Yuyv, 64, 48, cam.stride).is_none());
        assert!(RawFormat::of(*b"MJPG").is_none());
    }

    #[test]
    fn the_feed_keeps_the_latest_picture_and_ends_when_the_camera_does() {
        let pic = TestPattern::new(32, 24).picture(std::time::Duration::ZERO);
        let fake = FakeCamera {
            picture: pic.clone(),
            stride: 64,
            taken: 0,
            fail_after: 5,
        };
        let feed = CameraFeed::start(move || Ok(Box::new(fake) as Box<dyn Camera>), "fake".into())
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let got = loop {
            if let Some(f) = feed.take() {
                break f;
            }
            assert!(std::time::Instant::now() < deadline, "no picture");
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        assert!(got == pic);
        // Unplugged after five: the thread ends by itself, and stop() returns.
        std::thread::sleep(std::time::Duration::from_millis(100));
        feed.stop();
    }

    #[test]
    fn a_missing_device_is_an_error_that_names_it() {
        let e = V4l2Camera::open(Path::new("/dev/video-none"), 640, 480, 15)
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // Listing on a machine without cameras is empty, not an error.
        let _ = devices();
    }
}
