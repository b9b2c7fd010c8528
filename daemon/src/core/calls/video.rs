//! Video in a call: our `m=video` in offers and answers, the stream started, changed or
//! stopped as each offer/answer exchange says, and `voipctl video on|off` as a re-INVITE
//! that adds or removes the stream (RFC 3264 §8).

use super::{Call, DialogGone, Media};
use crate::media::session::VideoPorts;
use crate::media::video::VideoCodec;
use crate::media::video_stream::{VideoParams, VideoStats};
use crate::sdp::video::{NegotiatedVideo, VideoMode, answer_video, read_video_answer, video_media};
use crate::sdp::{Direction, Sdp};
use crate::sip::dialog::Dialog;

/// The call's video as the faces show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInfo {
    /// "VP8" or "H264".
    pub codec: &'static str,
    /// Which ways it goes: "sendrecv", "sendonly", "recvonly" or "inactive".
    pub direction: &'static str,
    /// Our video RTP address and the far side's.
    pub rtp_local: Option<std::net::SocketAddr>,
    pub rtp_remote: std::net::SocketAddr,
    /// Frames, size, rate, bitrate and loss, as they are now.
    pub stats: VideoStats,
}

/// An account's video settings, as a call keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct VideoPrefs {
    /// What the call does with video now (`voipctl video on|off` changes it).
    pub mode: VideoMode,
    pub codecs: Vec<VideoCodec>,
}

impl VideoPrefs {
    /// The account's settings; `asked`: the user wants video in this call whatever they say.
    pub(super) fn of(account: &Option<crate::config::Account>, asked: bool) -> VideoPrefs {
        let mut p = match account {
            Some(a) => VideoPrefs {
                mode: a.video,
                codecs: a.video_codecs.clone(),
            },
            None => VideoPrefs {
                mode: VideoMode::Off,
                codecs: vec![VideoCodec::Vp8, VideoCodec::H264],
            },
        };
        p.asked(asked);
        p
    }

    /// The user asked for video in this call: both ways, unless the account limits it to
    /// one.
    pub(super) fn asked(&mut self, asked: bool) {
        if asked && self.mode == VideoMode::Off {
            self.mode = VideoMode::Both;
        }
    }
}

/// A call's own size and rate, over the configuration's.
pub(super) fn ask(settings: &mut crate::media::video_stream::VideoSettings, a: super::VideoAsk) {
    if let Some((w, h)) = a.size {
        (settings.width, settings.height) = (w, h);
    }
    if let Some(fps) = a.fps {
        settings.fps = fps;
    }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::SendRecv => "sendrecv",
        Direction::SendOnly => "sendonly",
        Direction::RecvOnly => "recvonly",
        Direction::Inactive => "inactive",
    }
}

fn codec_name(c: VideoCodec) -> &'static str {
    match c {
        VideoCodec::Vp8 => "VP8",
        VideoCodec::H264 => "H264",
    }
}

/// The media layer's parameters for what was agreed; `held`: nothing goes either way.
fn params(n: &NegotiatedVideo, held: bool) -> VideoParams {
    VideoParams {
        codec: n.codec,
        pt: n.pt,
        mode: n.mode,
        remote: n.remote,
        send: !held && matches!(n.direction, Direction::SendRecv | Direction::SendOnly),
        receive: !held && matches!(n.direction, Direction::SendRecv | Direction::RecvOnly),
        nack: n.nack,
        pli: n.pli,
        fir: n.fir,
        srtp: n.srtp.clone(),
        dtls: n.dtls.clone(),
    }
}

/// Our video section in `sdp`, if it is on (port not 0).
fn ours_on(sdp: &Sdp) -> Option<&crate::sdp::Media> {
    sdp.media.iter().find(|m| m.kind == "video" && m.port != 0)
}

impl Call {
    /// Binds ports for a video stream and plans how the far side reaches them (STUN, ICE
    /// in `ice`'s role), as the call's audio was; writes them into `m`.
    async fn video_plan(&mut self, m: &mut crate::sdp::Media, ice: Option<bool>) -> bool {
        let Some((local, public)) = self.media_ips else {
            return false;
        };
        let rtp = match crate::media::session::bind(local, self.ctx.audio.rtp_ports) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(call_id = self.info.id, "no port for video: {e}");
                return false;
            }
        };
        let plan = super::nat::plan(&self.prefs.nat, &rtp, local, public, ice).await;
        m.port = plan.at.port();
        m.connection = Some(plan.at.ip());
        plan.describe(m);
        self.video_ports = Some(VideoPorts {
            rtp,
            rtcp: plan.rtcp,
            mapping: plan.mapping,
            ice: plan.ice,
        });
        true
    }

    /// Adds our `m=video` to an offer of ours when the call does video: in the audio's
    /// transport, with fresh SDES keys of the same suites, or DTLS-SRTP's fingerprint,
    /// when the audio has them; through STUN and ICE as the audio goes.
    pub(super) async fn offer_video(&mut self, offer: &mut Sdp) {
        if self.video.mode == VideoMode::Off {
            return;
        }
        let (proto, crypto, attrs) = match crate::sdp::in_use_of(offer) {
            Some(a) => {
                let fresh: Result<Vec<String>, _> = a
                    .crypto
                    .iter()
                    .filter_map(|l| crate::sdp::Crypto::parse(l).ok().flatten())
                    .map(|c| crate::sdp::Crypto::generate(c.tag, c.suite).map(|k| k.value()))
                    .collect();
                let Ok(lines) = fresh else {
                    tracing::warn!(call_id = self.info.id, "no video: no SRTP keys");
                    return;
                };
                // A new stream's DTLS roles are open, whatever the audio's became.
                let mut dtls: Vec<String> = a
                    .other_attrs
                    .iter()
                    .filter(|x| x.starts_with("fingerprint:"))
                    .cloned()
                    .collect();
                if !dtls.is_empty() {
                    dtls.push("setup:actpass".into());
                }
                (a.proto.clone(), lines, dtls)
            }
            None => ("RTP/AVP".to_string(), Vec::new(), Vec::new()),
        };
        let mut m = video_media(
            &self.video.codecs,
            0,
            self.video.mode.direction(),
            &proto,
            crypto,
        );
        m.other_attrs.extend(attrs);
        let role = self.ice_role;
        if !self.video_plan(&mut m, role).await {
            return;
        }
        if offer.connection == m.connection {
            m.connection = None;
        }
        match offer.media.iter_mut().find(|m| m.kind == "video") {
            // A stream once removed (port 0) is taken up again in its place.
            Some(old) => *old = m,
            None => offer.media.push(m),
        }
    }

    /// What the far side's answer (`answer`) agreed for the video of our offer `offer`.
    pub(super) fn video_answered(&self, offer: &Sdp, answer: &[u8]) -> Option<NegotiatedVideo> {
        let ours = ours_on(offer)?;
        let answer = Sdp::parse(answer).ok()?;
        read_video_answer(ours, &answer)
    }

    /// Answers the offer's first video section in `ans` (which holds a refusal in its
    /// place): on the running stream's ports, or on ports planned for a new one.
    pub(super) async fn answer_video(
        &mut self,
        offer: &Sdp,
        ans: &mut Sdp,
        media: Option<&Media>,
    ) -> Option<NegotiatedVideo> {
        let index = offer.media.iter().position(|m| m.kind == "video")?;
        if self.video.mode == VideoMode::Off || offer.media[index].port == 0 {
            return None;
        }
        let running = media
            .filter(|m| m.session.video_mid().is_some())
            .and_then(|m| ours_on(&m.ours))
            .cloned();
        let security = self.prefs.security();
        let port = running.as_ref().map_or(0, |r| r.port);
        let (mut m, n) = match answer_video(
            offer,
            index,
            &self.video.codecs,
            self.video.mode,
            port,
            security,
        ) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(call_id = self.info.id, "video not answered: {e}");
                return None;
            }
        };
        let mut n = n?;
        // Refused now rather than accepted and then not sent: no clear video beside
        // encrypted audio.
        let audio_encrypted = crate::sdp::in_use_of(ans)
            .is_some_and(|a| !a.crypto.is_empty() || a.proto.starts_with("UDP/TLS"));
        if audio_encrypted && n.srtp.is_none() && n.dtls.is_none() {
            tracing::info!(
                call_id = self.info.id,
                "video refused: it would go in clear beside encrypted audio"
            );
            return None;
        }
        match &running {
            // The same stream goes on: our address and ICE as they were, and the DTLS
            // role it has (a re-offer's actpass does not start a new handshake).
            Some(r) => {
                m.connection = r.connection;
                crate::sdp::IceDescription::carry(r, &mut m);
                let before = media
                    .and_then(|x| x.video.as_ref())
                    .and_then(|v| v.dtls.as_ref());
                if let (Some(d), Some(before)) = (n.dtls.as_mut(), before) {
                    crate::sdp::keep_stream_dtls_role(
                        offer,
                        &offer.media[index],
                        &mut m,
                        d,
                        before,
                    );
                }
            }
            None => {
                let ice = crate::sdp::IceDescription::of(offer, &offer.media[index])
                    .map(|theirs| theirs.lite)
                    .filter(|_| self.ice_role.is_some());
                if !self.video_plan(&mut m, ice).await {
                    return None;
                }
                if ans.connection == m.connection {
                    m.connection = None;
                }
            }
        }
        if let Some(slot) = ans.media.get_mut(index) {
            *slot = m;
        }
        Some(n)
    }

    /// Starts, changes or stops the call's video as the last exchange agreed (`n`). When
    /// it cannot run (nothing agreed, a source or keys that fail), our description says
    /// so from then on: its video section gets port 0.
    pub(super) async fn video_follow(
        &mut self,
        media: &mut Media,
        n: Option<NegotiatedVideo>,
        held: bool,
    ) {
        let running = match n {
            Some(n) => self.video_run(media, n, held),
            None => false,
        };
        if running {
            self.report().await;
            return;
        }
        self.video_ports = None;
        if media.session.stop_video().await.is_some() {
            tracing::info!(call_id = self.info.id, "video stopped");
        }
        media.video = None;
        if let Some(m) = media
            .ours
            .media
            .iter_mut()
            .find(|m| m.kind == "video" && m.port != 0)
        {
            *m = m.refused();
        }
        if self.info.video.take().is_some() {
            self.report().await;
        }
    }

    /// Updates the running stream, or starts one on the ports planned for it. False when
    /// there is none to run.
    fn video_run(&mut self, media: &mut Media, n: NegotiatedVideo, held: bool) -> bool {
        // Never video in clear beside encrypted audio.
        if n.srtp.is_none()
            && n.dtls.is_none()
            && self.info.media_encryption != super::MediaEncryption::None
        {
            tracing::info!(
                call_id = self.info.id,
                "video left out: it would go in clear beside encrypted audio"
            );
            return false;
        }
        let mut rtp_local = self.info.video.as_ref().and_then(|v| v.rtp_local);
        if media.session.video_mid().is_some() {
            media.session.update_video(params(&n, held));
            self.video_ports = None;
        } else {
            let Some(mut ports) = self.video_ports.take() else {
                return false;
            };
            rtp_local = ports.rtp.local_addr().ok();
            match (ports.ice.as_mut(), &n.ice) {
                (Some(ice), Some(theirs)) => {
                    ice.set_remote(&theirs.ufrag, &theirs.pwd, &theirs.candidates);
                }
                // The far side runs no ICE: the video goes where its SDP says.
                (Some(_), None) => ports.ice = None,
                (None, _) => {}
            }
            let mut settings = self.ctx.video.clone();
            // One file per call; the stream takes a free name for each file it starts.
            let id = self.info.id.to_string();
            settings.sink = settings
                .sink
                .map(|p| std::path::PathBuf::from(p.to_string_lossy().replace("{id}", &id)));
            let started = media.session.start_video(
                &self.ctx.media,
                &n.mid,
                ports,
                params(&n, held),
                settings,
                self.live.clone(),
            );
            if let Err(e) = started {
                tracing::warn!(call_id = self.info.id, "no video: {e}");
                return false;
            }
            tracing::info!(
                call_id = self.info.id,
                "video {} with {} ({})",
                codec_name(n.codec),
                n.remote,
                direction_name(n.direction)
            );
        }
        self.info.video = Some(VideoInfo {
            codec: codec_name(n.codec),
            direction: direction_name(n.direction),
            rtp_local,
            rtp_remote: n.remote,
            stats: VideoStats::default(),
        });
        media.video = Some(n);
        true
    }

    /// `voipctl video on|off`: a re-INVITE that adds our video (or takes it up again) or
    /// removes it. True when the far side took the new offer.
    pub(super) async fn video_toggle(
        &mut self,
        dialog: &mut Dialog,
        media: &mut Media,
        on: bool,
    ) -> Result<bool, DialogGone> {
        let before = (media.ours.clone(), self.video.mode);
        let mut offer = media.ours.clone();
        if on {
            if ours_on(&offer).is_some() && media.session.video_mid().is_some() {
                return Ok(true);
            }
            if self.video.mode == VideoMode::Off {
                self.video.mode = VideoMode::Both;
            }
            self.offer_video(&mut offer).await;
            if ours_on(&offer).is_none() {
                self.video.mode = before.1;
                return Ok(false);
            }
        } else {
            let Some(m) = offer
                .media
                .iter_mut()
                .find(|m| m.kind == "video" && m.port != 0)
            else {
                return Ok(true);
            };
            m.port = 0;
            self.video.mode = VideoMode::Off;
        }
        media.ours = offer;
        let direction =
            crate::sdp::in_use(&mut media.ours).map_or(Direction::SendRecv, |m| m.direction);
        let accepted = Box::pin(self.reinvite(dialog, media, direction)).await;
        if !matches!(accepted, Ok(true)) {
            (media.ours, self.video.mode) = before;
            self.video_ports = None;
        }
        accepted
    }
}

#[cfg(test)]
mod tests {
    use super::super::VideoAsk;
    use crate::core::CoreError;

    #[test]
    fn video_asked_per_call_is_checked_and_names_the_field() {
        assert_eq!(VideoAsk::for_call(false, "", 0).unwrap(), None);
        let a = VideoAsk::for_call(true, "320x240", 10).unwrap().unwrap();
        assert_eq!((a.size, a.fps), (Some((320, 240)), Some(10)));
        for (on, size, fps, field) in [
            (false, "320x240", 0, "video_size"),
            (true, "15x15", 0, "video_size"),
            (true, "", 31, "video_fps"),
        ] {
            match VideoAsk::for_call(on, size, fps) {
                Err(CoreError::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{on} {size} {fps}: {other:?}"),
            }
        }
    }
}
