//! Playing a file or a tone into an established call (`voipctl play`): checked and read
//! here, on the caller's task, so that neither the core nor the media engine waits on a
//! disk.

use super::*;
use crate::config::AudioEndpoint;
use crate::media::codec::{CODECS, sample_rate};
use crate::media::record::Prompt;

/// Longer than this is a stream, not a message: refused.
const MAX_SECS: f64 = 300.0;
/// A WAV file larger than this is refused before it is read (5 minutes of 48 kHz stereo
/// is 55 MB).
const MAX_FILE_BYTES: u64 = 64 << 20;
/// A tone lasts this long unless told.
const TONE_SECS: f64 = 1.0;

fn bad(message: String) -> CoreError {
    CoreError::InvalidArgument {
        field: "what",
        message,
    }
}

/// What `what` asks to play, for `secs` (0: a file's whole length, a tone's default), as
/// audio at `rate`; None for "stop".
fn prompt(what: &str, secs: f64, rate: u32) -> Result<Option<Prompt>, CoreError> {
    let what = what.trim();
    if what.is_empty() || what == "stop" {
        return Ok(None);
    }
    if !secs.is_finite() || !(0.0..=MAX_SECS).contains(&secs) {
        return Err(CoreError::InvalidArgument {
            field: "secs",
            message: format!("{secs} is not between 0 and {MAX_SECS} seconds"),
        });
    }
    let ep = AudioEndpoint::try_from(what.to_string()).map_err(bad)?;
    ep.check_absolute().map_err(bad)?;
    let (mut samples, from) = match ep {
        AudioEndpoint::Tone(hz) => {
            if !(20.0..=7000.0).contains(&hz) {
                return Err(bad(format!("tone:{hz} is not between 20 and 7000 Hz")));
            }
            if f64::from(hz) * 2.0 >= f64::from(rate) {
                return Err(bad(format!(
                    "tone:{hz} is above what the call's codec carries ({} Hz)",
                    rate / 2
                )));
            }
            // Made at the codec's rate: nothing to convert.
            let secs = if secs == 0.0 { TONE_SECS } else { secs };
            let mut s = vec![0i16; (secs * f64::from(rate)) as usize];
            crate::media::tone::Tone::new(hz, rate).fill(&mut s);
            (s, rate)
        }
        AudioEndpoint::File(p) | AudioEndpoint::FileOnce(p) => {
            let size = std::fs::metadata(&p)
                .map_err(|e| bad(format!("{}: {e}", p.display())))?
                .len();
            if size > MAX_FILE_BYTES {
                return Err(bad(format!(
                    "{} is larger than {} MiB",
                    p.display(),
                    MAX_FILE_BYTES >> 20
                )));
            }
            let (s, r) = crate::media::wav::read(&p).map_err(bad)?;
            if s.len() as f64 > MAX_SECS * f64::from(r.max(1)) {
                return Err(bad(format!("{} is longer than {MAX_SECS} s", p.display())));
            }
            (s, r)
        }
        _ => {
            return Err(bad(format!(
                "{what:?}: play a WAV file (file:/path.wav) or a tone (tone:HZ)"
            )));
        }
    };
    if secs > 0.0 {
        samples.truncate((secs * f64::from(from)) as usize);
    }
    Ok(Some(Prompt {
        samples: crate::media::source::resample(&samples, from, rate).into(),
        rate,
    }))
}

/// The sample rate of the codec a call's audio uses (8 kHz before it has one).
pub(super) fn codec_rate(call: &CallInfo) -> u32 {
    call.codec
        .as_deref()
        .and_then(|n| CODECS.iter().find(|c| c.encoding.eq_ignore_ascii_case(n)))
        .map_or(8000, |c| sample_rate(c.codec))
}

impl PhoneHandle {
    /// Plays a WAV file (`file:/path.wav`, or an absolute path) or a tone (`tone:HZ`) into
    /// an established call, once, in place of its input; the far side hears it. `stop` or
    /// nothing stops what plays. A bad argument changes nothing.
    pub async fn play(&self, id: u64, what: &str, secs: f64) -> Result<CallInfo, CoreError> {
        let call = self.call(id, CallAction::Get).await?;
        if !matches!(call.state, CallState::Active | CallState::Held) {
            return Err(CoreError::FailedPrecondition(format!(
                "call {id} is not established"
            )));
        }
        // Made at the codec's rate, so that the engine's tick has no resampling to do.
        let rate = codec_rate(&call);
        let what = if what.starts_with('/') {
            format!("file:{what}")
        } else {
            what.to_string()
        };
        let p = tokio::task::spawn_blocking(move || prompt(&what, secs, rate))
            .await
            .map_err(|_| CoreError::Stopped)??;
        self.call(id, CallAction::Play(p)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_and_files_become_audio_at_the_codec_rate() {
        let p = prompt("tone:1000", 0.0, 8000).unwrap().unwrap();
        assert_eq!((p.rate, p.samples.len()), (8000, 8000));
        let p = prompt("tone:440", 0.5, 16000).unwrap().unwrap();
        assert_eq!(p.samples.len(), 8000);
        assert_eq!(prompt("stop", 0.0, 8000).unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.wav");
        let mut w = crate::media::wav::WavWriter::create(&f, 16000).unwrap();
        w.write(&[100; 32000]).unwrap();
        w.finish(16000).unwrap();
        let p = prompt(&format!("file:{}", f.display()), 0.0, 8000)
            .unwrap()
            .unwrap();
        assert_eq!((p.rate, p.samples.len()), (8000, 16000));
    }

    #[test]
    fn bad_arguments_name_their_field() {
        for (what, secs, field) in [
            ("tone:5", 0.0, "what"),
            ("file:relative.wav", 0.0, "what"),
            ("file:/nonexistent/x.wav", 0.0, "what"),
            ("null", 0.0, "what"),
            ("tone:440", -1.0, "secs"),
            ("tone:440", 4000.0, "secs"),
            ("tone:5000", 0.0, "what"),
            ("tone:440", f64::NAN, "secs"),
        ] {
            match prompt(what, secs, 8000) {
                Err(CoreError::InvalidArgument { field: f, .. }) => assert_eq!(f, field, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}
