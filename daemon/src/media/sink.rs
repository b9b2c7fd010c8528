//! Where a stream's incoming audio goes: a sound device's playback, a WAV recording, both
//! or neither, one decoded frame at a time.

use std::path::PathBuf;

use super::device;
use super::record::Recorder;
use super::wav::WavWriter;
use crate::config::AudioEndpoint;

struct Recording {
    writer: WavWriter,
    path: PathBuf,
    rate: u32,
    /// The answering machine's: told of each frame, and of a failed disk.
    machine: Option<Recorder>,
    /// A frame at the file's rate, when that is lower than the call's.
    scratch: Vec<i16>,
}

/// A stream's audio sink.
pub(super) struct Sink {
    playback: Option<rtrb::Producer<i16>>,
    recording: Option<Recording>,
    /// The frame at the device's rate.
    upsampled: Vec<i16>,
}

impl Sink {
    /// Plays into `playback` (a device's, when one was opened) and records where `ep` is a
    /// file, at `rate` (the codec's, when the call starts).
    pub(super) fn open(
        ep: &AudioEndpoint,
        rate: u32,
        playback: Option<rtrb::Producer<i16>>,
    ) -> Sink {
        let recording = match ep {
            AudioEndpoint::File(p) | AudioEndpoint::FileOnce(p) => {
                match WavWriter::create(p, rate) {
                    Ok(writer) => Some(Recording {
                        writer,
                        path: p.clone(),
                        rate,
                        machine: None,
                        scratch: Vec::new(),
                    }),
                    Err(e) => {
                        tracing::warn!(
                            "cannot record to {}: {e}; received audio is dropped",
                            p.display()
                        );
                        None
                    }
                }
            }
            AudioEndpoint::Record(r) => match r.open(rate) {
                Ok((writer, rate)) => Some(Recording {
                    writer,
                    path: r.path().to_path_buf(),
                    rate,
                    machine: Some(r.clone()),
                    scratch: Vec::new(),
                }),
                Err(e) => {
                    tracing::error!("cannot record the message to {}: {e}", r.path().display());
                    r.fail();
                    None
                }
            },
            _ => None,
        };
        Sink {
            playback,
            recording,
            upsampled: Vec::new(),
        }
    }

    /// One frame at `rate`. (A recording keeps the rate it started with.)
    pub(super) fn play(&mut self, pcm: &[i16], rate: u32) {
        if let Some(out) = &mut self.playback {
            self.upsampled.resize(
                pcm.len() * device::DEVICE_RATE as usize / rate.max(1) as usize,
                0,
            );
            device::convert_into(pcm, &mut self.upsampled);
            for s in &self.upsampled {
                // Full: the device is not draining; drop rather than wait.
                let _ = out.push(*s);
            }
        }
        if pcm.is_empty() {
            return;
        }
        let Some(r) = &mut self.recording else { return };
        let pcm = match &r.machine {
            Some(m) => m.to_file_rate(m.admit(pcm), &mut r.scratch),
            None => pcm,
        };
        if pcm.is_empty() {
            return;
        }
        match r.writer.write(pcm) {
            Ok(()) => {
                if let Some(m) = &r.machine {
                    m.wrote(pcm);
                }
            }
            Err(e) => {
                tracing::warn!("recording to {} failed: {e}", r.path.display());
                if let Some(r) = self.recording.take()
                    && let Some(m) = r.machine
                {
                    if let Err(e) = r.writer.salvage() {
                        tracing::warn!("closing {}: {e}", r.path.display());
                    }
                    m.fail();
                }
            }
        }
    }

    /// Closes the recording. Blocking: it writes the file's header.
    pub(super) fn finish(self) {
        if let Some(r) = self.recording
            && let Err(e) = r.writer.finish(r.rate)
        {
            tracing::warn!("finishing recording {}: {e}", r.path.display());
        }
    }
}
