//! Errors raised while reading checkpoint files; each one names the file and, where it applies,
//! the tensor key, so that a user can tell which download is broken.

use std::path::PathBuf;

/// Failure to read a weight file or to find a usable tensor in it.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read file: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not in the expected container format (bad header, truncated, bad zip...).
    #[error("{file}: invalid checkpoint: {reason}")]
    Format { file: PathBuf, reason: String },
    /// The pickle inside a `.pth` asked for something other than plain tensors (for example a
    /// function call); it is refused, never executed.
    #[error("{file}: refused pickle content: {reason}")]
    Pickle { file: PathBuf, reason: String },
    /// A tensor the model needs is not in the file.
    #[error("{file}: missing tensor `{key}`")]
    MissingKey { file: PathBuf, key: String },
    /// A tensor exists but its shape does not match the model configuration.
    #[error("{file}: tensor `{key}` has shape {found:?}, expected {expected:?}")]
    Shape {
        file: PathBuf,
        key: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    /// A tensor exists but its element type cannot be converted to f32.
    #[error("{file}: tensor `{key}` has unsupported dtype {dtype}")]
    Dtype {
        file: PathBuf,
        key: String,
        dtype: String,
    },
    /// The bytes of a tensor run past the end of the file.
    #[error("{file}: tensor `{key}` is truncated ({needed} bytes needed, {available} present)")]
    Truncated {
        file: PathBuf,
        key: String,
        needed: usize,
        available: usize,
    },
    /// A model configuration file could not be parsed or is inconsistent.
    #[error("{file}: bad configuration: {reason}")]
    Config { file: PathBuf, reason: String },
}
