//! Core types to their wire form.

use std::time::{Duration, SystemTime};

use voipd_proto::v1 as pb;

use crate::core::{
    AccountInfo, CallDirection, CallInfo, CallState, ConfigSource, Event, EventKind,
    MediaEncryption, RegState, ReloadReport, Status,
};

pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl From<ConfigSource> for pb::ConfigSource {
    fn from(c: ConfigSource) -> Self {
        pb::ConfigSource {
            path: c.path.display().to_string(),
            embedded_default: c.embedded,
        }
    }
}

impl From<Status> for pb::Status {
    fn from(s: Status) -> Self {
        pb::Status {
            version: s.version.into(),
            pid: s.pid,
            uptime_seconds: s.uptime.as_secs(),
            started_unix_ms: unix_ms(s.started),
            config: Some(s.config.into()),
            listening: s.listening,
            counts: Some(pb::Counts {
                accounts: s.accounts,
                accounts_registered: s.accounts_registered,
                calls: s.calls,
                watchers: s.watchers,
                strangers_refused: s.strangers.refused,
                stranger_sources: s.strangers.sources,
            }),
            config_loaded_unix_ms: unix_ms(s.config_loaded),
        }
    }
}

impl From<ReloadReport> for pb::ReloadResponse {
    fn from(r: ReloadReport) -> Self {
        pb::ReloadResponse {
            config: Some(r.config.into()),
            changes: r.applied,
            restart_required: r.restart_required,
        }
    }
}

impl From<&Event> for pb::Event {
    fn from(e: &Event) -> Self {
        use pb::event::Kind;
        let kind = match e.kind.clone() {
            EventKind::DaemonStarted { version } => {
                Kind::DaemonStarted(pb::DaemonStarted { version })
            }
            EventKind::ConfigReloaded {
                config,
                applied,
                restart_required,
            } => Kind::ConfigReloaded(pb::ConfigReloaded {
                config: Some(config.into()),
                changes: applied,
                restart_required,
            }),
            EventKind::ConfigReloadFailed { config, error } => {
                Kind::ConfigReloadFailed(pb::ConfigReloadFailed {
                    config: Some(config.into()),
                    error,
                })
            }
            EventKind::ShuttingDown { reason } => Kind::ShuttingDown(pb::ShuttingDown { reason }),
            EventKind::AccountChanged(a) => Kind::AccountChanged(a.into()),
            EventKind::AccountRemoved { id } => Kind::AccountRemoved(pb::AccountRemoved { id }),
            EventKind::CallChanged(c) => Kind::CallChanged((*c).into()),
            EventKind::DtmfReceived { call, digit } => Kind::DtmfReceived(pb::DtmfReceived {
                call_id: call,
                digit: digit.to_string(),
            }),
            EventKind::MessageReceived(m) => Kind::MessageReceived(m.into()),
            EventKind::MessageChanged(m) => Kind::MessageChanged(m.into()),
            EventKind::HistoryChanged { missed_unseen } => {
                Kind::HistoryChanged(pb::HistoryChanged { missed_unseen })
            }
            EventKind::ContactChanged(c) => Kind::ContactChanged(c.into()),
            EventKind::UnreadMessages { count } => {
                Kind::UnreadMessages(pb::UnreadMessages { count })
            }
            EventKind::ContactRemoved { id } => Kind::ContactRemoved(pb::ContactRemoved { id }),
            EventKind::ContactsImported { added, updated } => {
                Kind::ContactsImported(pb::ContactsImported { added, updated })
            }
            EventKind::VoicemailReceived(v) => Kind::VoicemailReceived(v.into()),
            EventKind::VoicemailsChanged { unheard } => {
                Kind::VoicemailsChanged(pb::VoicemailsChanged { unheard })
            }
        };
        pb::Event {
            seq: e.seq,
            unix_ms: unix_ms(e.at),
            name: e.name.into(),
            kind: Some(kind),
        }
    }
}

impl From<AccountInfo> for pb::Account {
    fn from(a: AccountInfo) -> Self {
        use pb::RegistrationState as S;
        let mut out = pb::Account {
            id: a.id,
            aor: a.aor,
            display_name: a.display_name.unwrap_or_default(),
            enabled: a.enabled,
            forwarding: a
                .forwarding
                .into_iter()
                .map(|f| pb::Forward {
                    rule: f.rule.name().into(),
                    after_secs: f.target.as_ref().map_or(0, |t| t.after_secs),
                    to: f.target.map(|t| t.to).unwrap_or_default(),
                    live: f.live,
                })
                .collect(),
            messages_waiting: a.voicemail.is_some_and(|v| v.waiting),
            voicemail_new: a.voicemail.map_or(0, |v| v.new),
            voicemail_old: a.voicemail.map_or(0, |v| v.old),
            voicemail_urgent: a.voicemail.map_or(0, |v| v.urgent_new),
            ..Default::default()
        };
        let state = match a.state {
            RegState::Unregistered => S::Unregistered,
            RegState::Registering => S::Registering,
            RegState::Registered { until, registrar } => {
                out.registered_until_unix_ms = unix_ms(until);
                out.registrar = registrar.to_string();
                S::Registered
            }
            RegState::Failed {
                code,
                reason,
                retry_at,
            } => {
                out.last_code = code.into();
                out.last_reason = reason;
                out.retry_at_unix_ms = unix_ms(retry_at);
                S::Failed
            }
            RegState::BackingOff {
                code,
                reason,
                retry_at,
            } => {
                out.last_code = code.map_or(0, u32::from);
                out.last_reason = reason;
                out.retry_at_unix_ms = unix_ms(retry_at);
                S::BackingOff
            }
        };
        out.state = state.into();
        out
    }
}

impl From<CallInfo> for pb::Call {
    fn from(c: CallInfo) -> Self {
        let (state, end_code, end_reason) = match c.state {
            CallState::Dialing => (pb::CallState::Dialing, 0, String::new()),
            CallState::Ringing => (pb::CallState::Ringing, 0, String::new()),
            CallState::Active => (pb::CallState::Active, 0, String::new()),
            CallState::Held => (pb::CallState::Held, 0, String::new()),
            CallState::Ending => (pb::CallState::Ending, 0, String::new()),
            CallState::Early => (pb::CallState::Early, 0, String::new()),
            CallState::Ended { code, reason } => {
                (pb::CallState::Ended, code.into(), reason.to_string())
            }
        };
        let media_encryption = match c.media_encryption {
            MediaEncryption::None => pb::MediaEncryption::None,
            MediaEncryption::Sdes => pb::MediaEncryption::Sdes,
            MediaEncryption::Dtls => pb::MediaEncryption::Dtls,
        };
        pb::Call {
            id: c.id,
            account: c.account.unwrap_or_default(),
            remote_uri: c.remote_uri,
            remote_name: c.remote_name.unwrap_or_default(),
            contact: c.contact.unwrap_or_default(),
            progress: c.progress.unwrap_or_default(),
            audio_note: c.audio_note.unwrap_or_default(),
            media_encryption: media_encryption.into(),
            transport: c.transport.param().into(),
            ice: c.ice.map(|i| i.state.name().into()).unwrap_or_default(),
            ice_gathering_ms: c.ice.map_or(0, |i| millis(i.gathering)),
            ice_checks_ms: c.ice.and_then(|i| i.checks).map_or(0, millis),
            answered_by_machine: c.answered_by_machine,
            recording: c
                .recording
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            conference: c.conference.unwrap_or_default(),
            transfer: c.transfer.unwrap_or_default(),
            transfer_asked: c.transfer_asked.unwrap_or_default(),
            video: c.video.map(|v| pb::Video {
                codec: v.codec.into(),
                direction: v.direction.into(),
                width: v.stats.width,
                height: v.stats.height,
                fps: v.stats.fps,
                send_kbps: v.stats.send_kbps,
                target_kbps: v.stats.target_kbps,
                frames_sent: v.stats.frames_sent,
                frames_received: v.stats.frames_received,
                packets_lost: v.stats.packets_lost,
                malformed: v.stats.malformed,
                key_frames_asked: v.stats.key_frames_asked,
                nacks_sent: v.stats.nacks_sent,
                retransmitted: v.stats.retransmitted,
                key_frames_sent_on_request: v.stats.key_frames_sent_on_request,
                rtp_local: v.rtp_local.map(|a| a.to_string()).unwrap_or_default(),
                rtp_remote: v.rtp_remote.to_string(),
            }),
            incoming: c.direction == CallDirection::Incoming,
            state: state.into(),
            started_unix_ms: unix_ms(c.started),
            answered_unix_ms: c.answered.map_or(0, unix_ms),
            end_code,
            end_reason,
            codec: c.codec.unwrap_or_default(),
            muted: c.muted,
            rtp_local: c.rtp_local.map(|a| a.to_string()).unwrap_or_default(),
            rtp_remote: c.rtp_remote.map(|a| a.to_string()).unwrap_or_default(),
            media: Some(pb::MediaStats {
                packets_sent: c.stats.sent,
                packets_received: c.stats.received,
                packets_malformed: c.stats.malformed,
                packets_other_payload: c.stats.other_payload,
                packets_lost: c.stats.lost,
                packets_late: c.stats.late,
                jitter_ms: c.stats.jitter_ms,
                rtcp_reports: c.stats.rtcp_reports,
                remote_lost: c.stats.remote_lost,
                remote_jitter_ms: c.stats.remote_jitter_ms,
                packets_auth_failed: c.stats.auth_failed,
                packets_replayed: c.stats.replayed,
            }),
        }
    }
}
