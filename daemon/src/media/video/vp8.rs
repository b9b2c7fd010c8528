//! VP8 through libvpx (Debian's libvpx, through `env-libvpx-sys`: bindings made ahead for
//! each libvpx release, so the build needs no libclang). The encoder is set for calls:
//! real time, one thread (the media engine's tick is the thread), no look-ahead, error
//! resilient, a key frame on request and at an interval.
//!
//! The one module that calls libvpx, hence unsafe code here only: each block says what
//! keeps it sound, and the decoder is fuzzed through the depacketizer's output.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_uint, c_ulong};
use std::ptr;

use vpx_sys::*;

use super::frame::{Frame, chroma_size};
use super::{Encoded, VideoError};

/// RTP's video clock: timestamps are given to the encoder in it.
const CLOCK: c_int = 90_000;

fn err(ctx: *mut vpx_codec_ctx_t) -> String {
    // SAFETY: libvpx returns a static string, or a string in the context it owns.
    unsafe {
        let s = vpx_codec_error(ctx);
        if s.is_null() {
            return "unknown error".into();
        }
        CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}

/// A VP8 encoder at one size.
pub struct Vp8Encoder {
    ctx: Box<vpx_codec_ctx_t>,
    cfg: vpx_codec_enc_cfg_t,
    width: usize,
    height: usize,
    key_next: bool,
}

// SAFETY: the context is only used through &mut self; libvpx keeps no thread-local state.
unsafe impl Send for Vp8Encoder {}

impl Vp8Encoder {
    /// An encoder for `width`×`height` pictures at about `kbps`, with a key frame at
    /// least every `key_interval` frames.
    pub fn new(
        width: usize,
        height: usize,
        kbps: u32,
        key_interval: u32,
    ) -> Result<Vp8Encoder, VideoError> {
        let bad = |why: String| VideoError::Encoder { codec: "VP8", why };
        if width == 0 || height == 0 || width > 16383 || height > 16383 {
            return Err(bad(format!("size {width}x{height}")));
        }
        // SAFETY: the configuration and context are plain C structs libvpx fills in; both
        // live in this encoder (the context boxed: libvpx keeps pointers to it).
        unsafe {
            let iface = vpx_codec_vp8_cx();
            let mut cfg = MaybeUninit::<vpx_codec_enc_cfg_t>::zeroed().assume_init();
            if vpx_codec_enc_config_default(iface, &mut cfg, 0) != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(bad("no default configuration".into()));
            }
            cfg.g_w = width as c_uint;
            cfg.g_h = height as c_uint;
            cfg.g_timebase = vpx_rational { num: 1, den: CLOCK };
            cfg.g_threads = 1;
            cfg.g_lag_in_frames = 0;
            cfg.g_error_resilient = 1; // VPX_ERROR_RESILIENT_DEFAULT
            cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
            cfg.rc_target_bitrate = kbps.max(30);
            cfg.rc_min_quantizer = 4;
            cfg.rc_max_quantizer = 56;
            cfg.rc_undershoot_pct = 100;
            cfg.rc_overshoot_pct = 15;
            cfg.rc_buf_initial_sz = 500;
            cfg.rc_buf_optimal_sz = 600;
            cfg.rc_buf_sz = 1000;
            cfg.rc_dropframe_thresh = 0;
            cfg.kf_mode = vpx_kf_mode::VPX_KF_AUTO;
            cfg.kf_min_dist = 0;
            cfg.kf_max_dist = key_interval.max(1);
            let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed().assume_init());
            let ver = VPX_ENCODER_ABI_VERSION as c_int;
            if vpx_codec_enc_init_ver(&mut *ctx, iface, &cfg, 0, ver)
                != vpx_codec_err_t::VPX_CODEC_OK
            {
                return Err(bad(err(&mut *ctx)));
            }
            // Real-time speed: WebRTC's setting for a desktop CPU.
            vpx_codec_control_(
                &mut *ctx,
                vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int,
                -6 as c_int,
            );
            Ok(Vp8Encoder {
                ctx,
                cfg,
                width,
                height,
                key_next: true,
            })
        }
    }

    /// The next frame is a key frame (the far side lost pictures: PLI, FIR).
    pub fn request_key_frame(&mut self) {
        self.key_next = true;
    }

    /// A new target rate, from the next frame on.
    pub fn set_kbps(&mut self, kbps: u32) -> Result<(), VideoError> {
        self.cfg.rc_target_bitrate = kbps.max(30);
        // SAFETY: the context is initialised; the configuration is copied by libvpx.
        match unsafe { vpx_codec_enc_config_set(&mut *self.ctx, &self.cfg) } {
            vpx_codec_err_t::VPX_CODEC_OK => Ok(()),
            _ => Err(VideoError::Encoder {
                codec: "VP8",
                why: err(&mut *self.ctx),
            }),
        }
    }

    /// Encodes a picture of the encoder's size, taken at `pts` (90 kHz) and shown for
    /// `duration`. None: the encoder dropped the frame (rate control).
    pub fn encode(
        &mut self,
        f: &Frame,
        pts: i64,
        duration: u32,
    ) -> Result<Option<Encoded>, VideoError> {
        let bad = |why: String| VideoError::Encoder { codec: "VP8", why };
        if (f.width, f.height) != (self.width, self.height)
            || f.data.len() != Frame::len_for(f.width, f.height)
        {
            return Err(bad(format!(
                "a {}x{} picture for a {}x{} encoder",
                f.width, f.height, self.width, self.height
            )));
        }
        let flags = if std::mem::take(&mut self.key_next) {
            VPX_EFLAG_FORCE_KF as vpx_enc_frame_flags_t
        } else {
            0
        };
        let mut out = Vec::new();
        let mut key = false;
        // SAFETY: the image wraps the frame's planes (read only, the frame outlives the
        // call); the packets libvpx returns are valid until the next encode.
        unsafe {
            let mut img = MaybeUninit::<vpx_image_t>::zeroed().assume_init();
            let (y, u, v) = f.planes();
            let (cw, _) = chroma_size(f.width, f.height);
            if vpx_img_wrap(
                &mut img,
                vpx_img_fmt::VPX_IMG_FMT_I420,
                f.width as c_uint,
                f.height as c_uint,
                1,
                y.as_ptr().cast_mut(),
            )
            .is_null()
            {
                return Err(bad("cannot wrap the picture".into()));
            }
            img.planes[1] = u.as_ptr().cast_mut();
            img.planes[2] = v.as_ptr().cast_mut();
            img.stride = [f.width as c_int, cw as c_int, cw as c_int, 0];
            if vpx_codec_encode(
                &mut *self.ctx,
                &img,
                pts,
                c_ulong::from(duration),
                flags,
                c_ulong::from(VPX_DL_REALTIME),
            ) != vpx_codec_err_t::VPX_CODEC_OK
            {
                return Err(bad(err(&mut *self.ctx)));
            }
            let mut iter: vpx_codec_iter_t = ptr::null();
            loop {
                let pkt = vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if pkt.is_null() {
                    break;
                }
                if (*pkt).kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    continue;
                }
                let frame = (*pkt).data.frame;
                out.extend_from_slice(std::slice::from_raw_parts(
                    frame.buf.cast::<u8>(),
                    frame.sz as usize,
                ));
                key |= frame.flags & VPX_FRAME_IS_KEY != 0;
            }
        }
        Ok((!out.is_empty()).then_some(Encoded { data: out, key }))
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new, destroyed once.
        unsafe {
            vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// A VP8 decoder.
pub struct Vp8Decoder {
    ctx: Box<vpx_codec_ctx_t>,
}

// SAFETY: as the encoder.
unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    /// A decoder; pictures of any size (and changes of size) are taken.
    pub fn new() -> Result<Vp8Decoder, VideoError> {
        // SAFETY: as the encoder's.
        unsafe {
            let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed().assume_init());
            let cfg = vpx_codec_dec_cfg {
                threads: 1,
                w: 0,
                h: 0,
            };
            let ver = VPX_DECODER_ABI_VERSION as c_int;
            if vpx_codec_dec_init_ver(&mut *ctx, vpx_codec_vp8_dx(), &cfg, 0, ver)
                != vpx_codec_err_t::VPX_CODEC_OK
            {
                return Err(VideoError::Decoder {
                    codec: "VP8",
                    why: err(&mut *ctx),
                });
            }
            Ok(Vp8Decoder { ctx })
        }
    }

    /// Decodes one frame (as the depacketizer gives it). Err: the frame is broken (the
    /// stream needs a key frame); None: nothing to show yet.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<Frame>, VideoError> {
        let bad = |why: String| VideoError::Decoder { codec: "VP8", why };
        // An empty buffer would tell libvpx to flush; a frame is never empty.
        if data.is_empty() || data.len() > c_uint::MAX as usize {
            return Err(bad("empty frame".into()));
        }
        // SAFETY: libvpx reads `data` during the call only; the image it returns is valid
        // until the next decode, and is copied out before.
        unsafe {
            if vpx_codec_decode(
                &mut *self.ctx,
                data.as_ptr(),
                data.len() as c_uint,
                ptr::null_mut(),
                0,
            ) != vpx_codec_err_t::VPX_CODEC_OK
            {
                return Err(bad(err(&mut *self.ctx)));
            }
            let mut iter: vpx_codec_iter_t = ptr::null();
            let mut last = None;
            loop {
                let img = vpx_codec_get_frame(&mut *self.ctx, &mut iter);
                if img.is_null() {
                    break;
                }
                last = Some(copy_image(&*img).ok_or_else(|| bad("not an I420 picture".into()))?);
            }
            Ok(last)
        }
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new, destroyed once.
        unsafe {
            vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// A decoded image copied out of libvpx's buffers (which have strides and borders).
///
/// # Safety
/// `img` must be an image libvpx returned and has not yet reused.
unsafe fn copy_image(img: &vpx_image_t) -> Option<Frame> {
    if img.fmt != vpx_img_fmt::VPX_IMG_FMT_I420 {
        return None;
    }
    let (w, h) = (img.d_w as usize, img.d_h as usize);
    let (_, ch) = chroma_size(w, h);
    let mut planes = [(&[][..], 0usize); 3];
    for (plane, rows) in [(0, h), (1, ch), (2, ch)] {
        let stride = usize::try_from(img.stride[plane]).ok()?;
        let base = img.planes[plane];
        if base.is_null() || rows == 0 {
            return None;
        }
        // SAFETY: libvpx's plane holds `rows` rows of `stride` bytes (the last one at
        // least as long as the picture is wide, which from_strided checks against).
        planes[plane] = (
            unsafe { std::slice::from_raw_parts(base, stride * rows) },
            stride,
        );
    }
    Frame::from_strided(w, h, planes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::pattern::TestPattern;
    use crate::media::video::vp8_payload::{Vp8Depacketizer, packetize};
    use std::time::Duration;

    #[test]
    fn pictures_survive_encoding_packets_and_decoding() {
        let (w, h) = (320, 240);
        let p = TestPattern::new(w, h);
        let mut enc = Vp8Encoder::new(w, h, 600, 30).unwrap();
        let mut dec = Vp8Decoder::new().unwrap();
        let mut depack = Vp8Depacketizer::new(1 << 20);
        let mut seq = 0u16;
        let mut decoded = 0;
        for i in 0..30u32 {
            let pic = p.picture(Duration::from_millis(u64::from(i) * 66));
            let pts = i64::from(i) * 6000;
            if i == 20 {
                enc.request_key_frame();
            }
            let Some(e) = enc.encode(&pic, pts, 6000).unwrap() else {
                continue;
            };
            assert_eq!(e.key, i == 0 || i == 20, "frame {i}");
            let packets = packetize(&e.data, i as u16, 1200);
            let n = packets.len();
            let mut whole = None;
            for (k, pk) in packets.iter().enumerate() {
                whole = depack.push(seq, pts as u32, k + 1 == n, pk).unwrap();
                seq = seq.wrapping_add(1);
            }
            let whole = whole.unwrap();
            assert_eq!(whole.key, e.key);
            let out = dec.decode(&whole.data).unwrap().unwrap();
            let psnr = pic.psnr(&out).unwrap();
            assert!(psnr > 30.0, "frame {i}: {psnr:.1} dB");
            decoded += 1;
        }
        assert!(decoded >= 28, "{decoded}");
        enc.set_kbps(200).unwrap();
        assert!(enc.encode(&Frame::black(16, 16), 0, 1).is_err());
    }

    #[test]
    fn garbage_is_refused_not_crashed_on() {
        let mut dec = Vp8Decoder::new().unwrap();
        assert!(dec.decode(&[]).is_err());
        let mut state = 1u32;
        for len in [1usize, 3, 10, 100, 1000, 5000] {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (state >> 16) as u8
                })
                .collect();
            let _ = dec.decode(&junk);
            // A key frame header claiming a huge picture, with nothing behind it.
            let _ = dec.decode(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0xff, 0x3f, 0xff, 0x3f]);
        }
        // It still decodes a good stream afterwards.
        let p = TestPattern::new(64, 64);
        let mut enc = Vp8Encoder::new(64, 64, 200, 10).unwrap();
        let e = enc
            .encode(&p.picture(Duration::ZERO), 0, 3000)
            .unwrap()
            .unwrap();
        assert!(dec.decode(&e.data).unwrap().is_some());
    }
}
