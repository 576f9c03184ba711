//! Inspection reports for checkpoint files (present?, size, keys, shapes, bytes), meant for a
//! future `inspect` command and for clear start-up diagnostics.

use std::path::{Path, PathBuf};

use super::error::WeightError;
use super::loader::{TensorInfo, open_checkpoint};

/// What one checkpoint file holds.
#[derive(Debug, Clone)]
pub struct CheckpointReport {
    /// The file.
    pub file: PathBuf,
    /// File size on disk.
    pub file_bytes: u64,
    /// Every tensor, sorted by name.
    pub tensors: Vec<(String, TensorInfo)>,
}

impl CheckpointReport {
    /// Sum of the stored tensor bytes.
    pub fn tensor_bytes(&self) -> usize {
        self.tensors.iter().map(|(_, i)| i.bytes).sum()
    }

    /// Number of stored scalar values.
    pub fn parameters(&self) -> usize {
        self.tensors
            .iter()
            .map(|(_, i)| i.shape.iter().product::<usize>())
            .sum()
    }

    /// Names from `expected` that the file lacks (e.g. a module's key list).
    pub fn missing<'a>(&self, expected: &'a [String]) -> Vec<&'a str> {
        expected
            .iter()
            .filter(|k| self.tensors.binary_search_by(|(n, _)| n.cmp(k)).is_err())
            .map(String::as_str)
            .collect()
    }

    /// Human-readable multi-line listing.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}: {} bytes on disk, {} tensors, {} parameters, {} tensor bytes\n",
            self.file.display(),
            self.file_bytes,
            self.tensors.len(),
            self.parameters(),
            self.tensor_bytes()
        );
        for (name, info) in &self.tensors {
            out.push_str(&format!(
                "  {name}  {}  {:?}  {} bytes\n",
                info.dtype, info.shape, info.bytes
            ));
        }
        out
    }
}

/// Opens `path` (safetensors or `.pth`) and lists its tensors without reading their values.
pub fn report_checkpoint(path: impl AsRef<Path>) -> Result<CheckpointReport, WeightError> {
    let path = path.as_ref();
    let file_bytes = std::fs::metadata(path)
        .map_err(|source| WeightError::Io {
            file: path.to_path_buf(),
            source,
        })?
        .len();
    let src = open_checkpoint(path)?;
    let tensors = src
        .keys()
        .into_iter()
        .filter_map(|k| src.info(&k).map(|i| (k, i)))
        .collect();
    Ok(CheckpointReport {
        file: path.to_path_buf(),
        file_bytes,
        tensors,
    })
}
