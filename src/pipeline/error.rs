//! Why a render stopped: every failure of the pipeline as one error type, each naming the file,
//! setting or stage the user has to look at.

use std::path::PathBuf;

use crate::media::MediaError;
use crate::model::error::InputError as ModelInputError;
use crate::model::text::TextError;
use crate::weights::WeightsError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A checkpoint file is missing, malformed or does not fit the model.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The checkpoint folder failed the header check before anything was loaded.
    #[error("{folder}: {summary}")]
    Checkpoint { folder: PathBuf, summary: String },
    /// The tokenizer could not be loaded or applied.
    #[error(transparent)]
    Text(#[from] TextError),
    /// A model refused its input (shape or range).
    #[error(transparent)]
    Model(#[from] ModelInputError),
    /// Reading the inputs or writing the output failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The inputs cannot drive this model (e.g. a frame size the model's patching cannot split).
    #[error("{0}")]
    Unsupported(String),
    /// The device asked for is not available in this build or on this machine.
    #[error("{0}")]
    Device(String),
    /// The memory plan says the render does not fit (or needs a placement this version cannot
    /// run); the message carries the plan's verdict and the settings that would fit.
    #[error("{0}")]
    DoesNotFit(String),
    /// The compute backend failed on its own thread mid-render (out of GPU memory, above all).
    #[error("{0}")]
    DeviceFault(String),
    /// Host RAM for a cache the placement keeps off the GPU could not be reserved.
    #[error(transparent)]
    HostMemory(#[from] crate::kernels::host_tensor::HostTensorError),
}

impl PipelineError {
    /// Whether the user can fix this by changing an input, a flag or the model folder (the CLI
    /// exits with code 2 for these), as opposed to a failure while rendering.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Weights(_) | Self::Checkpoint { .. } | Self::Text(_) | Self::Unsupported(_) => {
                true
            }
            Self::Device(_) | Self::DoesNotFit(_) | Self::HostMemory(_) => true,
            Self::Model(_) | Self::DeviceFault(_) => false,
            Self::Media(e) => !matches!(e, MediaError::Encode { .. }),
        }
    }
}
