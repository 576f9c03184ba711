//! Errors raised while reading checkpoints; each one names the file and, where it applies, the
//! tensor key, so that a user can tell which download is broken.

use std::path::PathBuf;

/// Everything that can go wrong while reading weights from disk or matching them to a model.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// Host RAM for DiT blocks parked there (layer streaming) could not be reserved.
    #[error(transparent)]
    HostMemory(#[from] crate::kernels::host_tensor::HostTensorError),
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid safetensors header: {reason}")]
    Header { path: PathBuf, reason: String },
    /// Not the expected container format (bad zip, bad pickle framing, unknown extension).
    #[error("{path}: invalid checkpoint: {reason}")]
    Format { path: PathBuf, reason: String },
    /// The pickle inside a `.pth` asked for something other than plain tensors (for example a
    /// function call); it is refused, never executed.
    #[error("{path}: refused pickle content: {reason}")]
    Pickle { path: PathBuf, reason: String },
    #[error("{path}: tensor `{key}`: {reason}")]
    Tensor {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{path}: tensor `{key}` not found")]
    MissingKey { path: PathBuf, key: String },
    #[error("{path}: tensor `{key}` has shape {found:?}, expected {expected:?}")]
    Shape {
        path: PathBuf,
        key: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{path}: tensor `{key}` has unsupported dtype {dtype}")]
    Dtype {
        path: PathBuf,
        key: String,
        dtype: String,
    },
    /// The bytes of a tensor run past the end of the file.
    #[error("{path}: tensor `{key}` is truncated ({needed} bytes needed, {available} present)")]
    Truncated {
        path: PathBuf,
        key: String,
        needed: usize,
        available: usize,
    },
    #[error("{path}: invalid JSON: {reason}")]
    Json { path: PathBuf, reason: String },
    /// A model configuration file could not be parsed or is inconsistent.
    #[error("{path}: bad configuration: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    #[error(transparent)]
    InvalidConfig(#[from] crate::model::config::InvalidConfig),
    #[error("{path}: LoRA: {reason}")]
    Lora { path: PathBuf, reason: String },
}
