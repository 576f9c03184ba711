//! A job's output file, opened when the first frames arrive (so a render that fails before
//! making anything leaves nothing behind) and cut where the voice ends, as the reference's
//! `-shortest` mux does.

use std::path::{Path, PathBuf};

use super::job::OutputTarget;
use crate::media::MediaError;
use crate::media::export::PngSequenceWriter;
use crate::media::frame::{FrameSink, RgbFrame};
use crate::media::soundtrack::Soundtrack;

/// Writes a job's frames to its target.
pub struct JobOutput {
    target: OutputTarget,
    width: u32,
    height: u32,
    /// Frames the file keeps (the voice's length); later frames are dropped.
    frame_limit: u64,
    // Only the MP4 writer reads these.
    #[cfg_attr(not(feature = "video"), allow(dead_code))]
    crf: u8,
    #[cfg_attr(not(feature = "video"), allow(dead_code))]
    title: Option<String>,
    soundtrack: Soundtrack,
    sink: Option<Box<dyn FrameSink>>,
    written: u64,
}

impl JobOutput {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        target: OutputTarget,
        width: u32,
        height: u32,
        frame_limit: u64,
        crf: u8,
        title: Option<String>,
        soundtrack: Soundtrack,
    ) -> Self {
        Self {
            target,
            width,
            height,
            frame_limit,
            crf,
            title,
            soundtrack,
            sink: None,
            written: 0,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.target.path().map(PathBuf::as_path)
    }

    pub fn frames_written(&self) -> u64 {
        self.written
    }

    /// Whether a file exists yet.
    pub fn started(&self) -> bool {
        self.sink.is_some()
    }

    fn open(&self) -> Result<Option<Box<dyn FrameSink>>, MediaError> {
        match &self.target {
            OutputTarget::EventsOnly => Ok(None),
            OutputTarget::PngSequence(dir) => Ok(Some(Box::new(PngSequenceWriter::create(
                dir,
                self.width,
                self.height,
                Some(self.soundtrack.clone()),
            )?))),
            #[cfg(feature = "video")]
            OutputTarget::Mp4(path) => {
                use crate::media::video::{Mp4Options, Mp4Writer};
                let options = Mp4Options {
                    crf: self.crf,
                    title: self.title.clone(),
                    soundtrack: Some(self.soundtrack.clone()),
                };
                Ok(Some(Box::new(Mp4Writer::create(
                    path,
                    self.width,
                    self.height,
                    options,
                )?)))
            }
            #[cfg(not(feature = "video"))]
            OutputTarget::Mp4(path) => Err(MediaError::Encode {
                path: path.clone(),
                detail: "this build has no MP4 writer (built without the `video` feature); \
                         export a PNG sequence instead"
                    .into(),
            }),
        }
    }

    /// Appends frames up to the frame limit.
    pub fn write(&mut self, frames: &[RgbFrame]) -> Result<(), MediaError> {
        let room = self.frame_limit.saturating_sub(self.written) as usize;
        let frames = &frames[..frames.len().min(room)];
        if frames.is_empty() {
            return Ok(());
        }
        if self.sink.is_none() {
            self.sink = self.open()?;
        }
        if let Some(sink) = self.sink.as_mut() {
            sink.write_frames(frames)?;
        }
        self.written += frames.len() as u64;
        Ok(())
    }

    /// Completes the file; `None` if nothing was written.
    pub fn finish(self) -> Result<Option<PathBuf>, MediaError> {
        match self.sink {
            Some(sink) => sink.finish().map(Some),
            None => Ok(None),
        }
    }

    /// Removes what was written (a failed render that completed no clip).
    pub fn discard(self) {
        let Some(sink) = self.sink else { return };
        drop(sink);
        match &self.target {
            OutputTarget::Mp4(path) => {
                let _ = std::fs::remove_file(path);
            }
            OutputTarget::PngSequence(dir) => {
                // Only what this writer made: the numbered frames and the WAV.
                for i in 0..self.written {
                    let _ =
                        std::fs::remove_file(dir.join(crate::media::export::frame_file_name(i)));
                }
                let _ = std::fs::remove_file(dir.join(crate::media::export::WAV_NAME));
                let _ = std::fs::remove_dir(dir);
            }
            OutputTarget::EventsOnly => {}
        }
    }
}
