//! Errors raised while reading checkpoints; each one names the file and, where it applies, the key.

use std::path::PathBuf;

/// Everything that can go wrong while reading weights from disk or matching them to the model.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid safetensors header: {reason}")]
    Header { path: PathBuf, reason: String },
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
    #[error("{path}: invalid JSON: {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    #[error(transparent)]
    InvalidConfig(#[from] crate::model::config::InvalidConfig),
    #[error("{path}: LoRA: {reason}")]
    Lora { path: PathBuf, reason: String },
}
