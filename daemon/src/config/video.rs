//! `[video]`: what video calls send and where received video goes, and the account's
//! `video` and `video_codecs` settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::media::video::VideoCodec;
use crate::media::video::sink::SinkFormat;
use crate::media::video_stream::{VideoSettings, VideoSource};
use crate::sdp::video::VideoMode;

/// `[video]`, read into the media layer's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawVideo")]
pub struct VideoConfig(pub VideoSettings);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVideo {
    #[serde(default = "default_source")]
    source: String,
    #[serde(default = "default_size")]
    size: String,
    #[serde(default = "default_fps")]
    fps: u32,
    #[serde(default = "default_max_kbps")]
    max_kbps: u32,
    #[serde(default = "default_key_interval")]
    key_interval_secs: u32,
    #[serde(default = "default_sink")]
    sink: String,
}

fn default_source() -> String {
    "pattern".into()
}
fn default_size() -> String {
    "640x480".into()
}
fn default_fps() -> u32 {
    15
}
fn default_max_kbps() -> u32 {
    1000
}
fn default_key_interval() -> u32 {
    10
}
fn default_sink() -> String {
    "null".into()
}

/// `WIDTHxHEIGHT`, both even (I420's chroma is half each way) and within what the codecs
/// take at the level we signal.
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("{s:?} is not WIDTHxHEIGHT, e.g. \"640x480\"");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (usize, usize) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(16..=1920).contains(&w) || !(16..=1088).contains(&h) || w % 2 == 1 || h % 2 == 1 {
        return Err(format!(
            "{s:?}: width and height must be even, 16-1920 by 16-1088"
        ));
    }
    Ok((w, h))
}

impl TryFrom<RawVideo> for VideoConfig {
    type Error = String;

    fn try_from(r: RawVideo) -> Result<VideoConfig, String> {
        let source = match r.source.as_str() {
            "pattern" => VideoSource::Pattern,
            p if p.ends_with(".y4m") && p.starts_with('/') => VideoSource::Y4m(PathBuf::from(p)),
            p if p.starts_with("/dev/") => VideoSource::Camera(PathBuf::from(p)),
            other => {
                return Err(format!(
                    "source: {other:?} is not \"pattern\", an absolute path to a .y4m file, or a camera's device (/dev/video0; see voipctl video devices)"
                ));
            }
        };
        let (width, height) = parse_size(&r.size).map_err(|e| format!("size: {e}"))?;
        if !(1..=30).contains(&r.fps) {
            return Err(format!("fps: {} is not between 1 and 30", r.fps));
        }
        if !(64..=8000).contains(&r.max_kbps) {
            return Err(format!(
                "max_kbps: {} is not between 64 and 8000",
                r.max_kbps
            ));
        }
        if !(1..=300).contains(&r.key_interval_secs) {
            return Err(format!(
                "key_interval_secs: {} is not between 1 and 300",
                r.key_interval_secs
            ));
        }
        let sink = match r.sink.as_str() {
            "null" => None,
            p => {
                let path = PathBuf::from(p);
                if !path.is_absolute() || SinkFormat::of(&path).is_none() {
                    return Err(format!(
                        "sink: {p:?} is neither \"null\" nor an absolute path ending in .ivf (VP8), .h264 (H.264) or .y4m (decoded; a file or a FIFO)"
                    ));
                }
                Some(path)
            }
        };
        Ok(VideoConfig(VideoSettings {
            source,
            width,
            height,
            fps: r.fps,
            max_kbps: r.max_kbps,
            key_interval: Duration::from_secs(u64::from(r.key_interval_secs)),
            sink,
        }))
    }
}

/// An account's `video = "off" | "receive" | "send" | "both"`.
pub(super) fn video_mode(s: Option<&str>) -> Result<VideoMode, String> {
    match s.unwrap_or("off") {
        "off" => Ok(VideoMode::Off),
        "receive" => Ok(VideoMode::Receive),
        "send" => Ok(VideoMode::Send),
        "both" => Ok(VideoMode::Both),
        other => Err(format!(
            "video: {other:?} is not one of \"off\", \"receive\", \"send\", \"both\""
        )),
    }
}

/// An account's `video_codecs`, in order of preference.
pub(super) fn video_codecs(names: Option<&[String]>) -> Result<Vec<VideoCodec>, String> {
    let Some(names) = names else {
        return Ok(vec![VideoCodec::Vp8, VideoCodec::H264]);
    };
    let mut out = Vec::new();
    for n in names {
        let c = match n.to_ascii_lowercase().as_str() {
            "vp8" => VideoCodec::Vp8,
            "h264" => VideoCodec::H264,
            _ => return Err(format!("video_codecs: {n:?} is not vp8 or h264")),
        };
        if out.contains(&c) {
            return Err(format!("video_codecs: {n:?} is listed twice"));
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err("video_codecs: the list is empty; name vp8, h264 or both".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(toml_text: &str) -> Result<VideoConfig, String> {
        toml::from_str::<VideoConfig>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_each_bad_field_named() {
        let v = read("").unwrap().0;
        assert_eq!((v.width, v.height, v.fps, v.max_kbps), (640, 480, 15, 1000));
        assert_eq!((v.source, v.sink), (VideoSource::Pattern, None));
        let v = read("source = \"/srv/door.y4m\"\nsink = \"/run/door.y4m\"\nsize = \"320x240\"")
            .unwrap()
            .0;
        assert_eq!(v.source, VideoSource::Y4m("/srv/door.y4m".into()));
        assert_eq!((v.width, v.sink), (320, Some("/run/door.y4m".into())));
        let v = read("source = \"/dev/video0\"").unwrap().0;
        assert_eq!(v.source, VideoSource::Camera("/dev/video0".into()));
        for (text, field) in [
            ("source = \"door.y4m\"", "source"),
            ("size = \"641x480\"", "size"),
            ("size = \"big\"", "size"),
            ("fps = 0", "fps"),
            ("max_kbps = 10", "max_kbps"),
            ("key_interval_secs = 0", "key_interval_secs"),
            ("sink = \"/tmp/a.mkv\"", "sink"),
            ("colour = 1", "colour"),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.contains(field), "{text}: {e}");
        }
    }

    #[test]
    fn account_settings() {
        assert_eq!(video_mode(None), Ok(VideoMode::Off));
        assert_eq!(video_mode(Some("both")), Ok(VideoMode::Both));
        assert!(video_mode(Some("on")).unwrap_err().contains("video:"));
        assert_eq!(
            video_codecs(Some(&["H264".into()])),
            Ok(vec![VideoCodec::H264])
        );
        assert!(video_codecs(Some(&[])).is_err());
        assert!(
            video_codecs(Some(&["vp9".into()]))
                .unwrap_err()
                .contains("video_codecs")
        );
        assert!(video_codecs(Some(&["vp8".into(), "vp8".into()])).is_err());
    }
}
