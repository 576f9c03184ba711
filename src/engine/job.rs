//! One render as the engine queues it: checked inputs, the model to use, where the output
//! goes.

use std::path::PathBuf;

use super::events::JobId;
use crate::inputs::RenderInputs;
use crate::pipeline::ModelSpec;

/// Where a job's frames are written.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputTarget {
    /// H.264 + AAC MP4 (the settings' CRF).
    Mp4(PathBuf),
    /// A folder of PNG frames plus `audio.wav`.
    PngSequence(PathBuf),
    /// Frames go out as events only (a preview render).
    EventsOnly,
}

impl OutputTarget {
    pub fn path(&self) -> Option<&PathBuf> {
        match self {
            Self::Mp4(p) | Self::PngSequence(p) => Some(p),
            Self::EventsOnly => None,
        }
    }
}

#[derive(Debug)]
pub struct Job {
    /// Assigned by [`super::Engine::submit`]; any value given is replaced.
    pub id: JobId,
    pub inputs: RenderInputs,
    pub model: ModelSpec,
    pub output: OutputTarget,
}

impl Job {
    pub fn new(inputs: RenderInputs, model: ModelSpec, output: OutputTarget) -> Self {
        Self {
            id: 0,
            inputs,
            model,
            output,
        }
    }
}
