//! `.pth` (PyTorch pickle) checkpoints, read through burn-store's PyTorch reader.
//!
//! That reader interprets the pickle opcodes itself and only rebuilds the handful of torch
//! tensor-constructor globals it knows; any other global (`os.system`, `builtins.eval`...) makes
//! it fail. Nothing in the file is ever executed; `tests/pth_loading.rs` proves this with a
//! hostile pickle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::DType;
use burn_store::TensorSnapshot;
use burn_store::pytorch::{PytorchError, PytorchReader};

use super::error::WeightsError;
use super::loader::{TensorInfo, TensorSource, convert_to_f32};

/// An opened `.pth` state dict; tensor data is materialised per key on demand.
pub struct PthFile {
    path: PathBuf,
    tensors: BTreeMap<String, TensorSnapshot>,
}

impl PthFile {
    /// Parses the pickle of `path` (zip or legacy format) without executing anything.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref().to_path_buf();
        if let Err(source) = std::fs::metadata(&path) {
            return Err(WeightsError::Io { path, source });
        }
        let reader = PytorchReader::new(&path).map_err(|e| map_error(&path, e))?;
        let tensors = reader.into_tensors().into_iter().collect();
        Ok(Self { path, tensors })
    }
}

fn map_error(path: &Path, e: PytorchError) -> WeightsError {
    let file = path.to_path_buf();
    match e {
        PytorchError::Io(source) => WeightsError::Io { path: file, source },
        PytorchError::Pickle(p) => WeightsError::Pickle {
            path: file,
            reason: p.to_string(),
        },
        other => WeightsError::Format {
            path: file,
            reason: other.to_string(),
        },
    }
}

fn dtype_name(dtype: DType) -> String {
    match dtype {
        DType::F64 => "F64".into(),
        DType::F32 => "F32".into(),
        DType::F16 => "F16".into(),
        DType::BF16 => "BF16".into(),
        DType::I64 => "I64".into(),
        DType::I32 => "I32".into(),
        DType::I16 => "I16".into(),
        DType::I8 => "I8".into(),
        DType::U8 => "U8".into(),
        DType::Bool(_) => "BOOL".into(),
        other => format!("{other:?}"),
    }
}

impl TensorSource for PthFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn keys(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn info(&self, key: &str) -> Option<TensorInfo> {
        self.tensors.get(key).map(|t| TensorInfo {
            dtype: dtype_name(t.dtype),
            shape: t.shape.to_vec(),
            bytes: t.shape.num_elements() * t.dtype.size(),
        })
    }

    fn load_f32(&self, key: &str) -> Result<Vec<f32>, WeightsError> {
        let snap = self
            .tensors
            .get(key)
            .ok_or_else(|| WeightsError::MissingKey {
                path: self.path.clone(),
                key: key.to_string(),
            })?;
        // A short storage record inside the archive surfaces here, when the bytes are read.
        let data = snap.to_data().map_err(|e| WeightsError::Format {
            path: self.path.clone(),
            reason: format!("tensor `{key}`: {e}"),
        })?;
        let name = dtype_name(data.dtype);
        let values = convert_to_f32(&name, data.as_bytes()).ok_or_else(|| WeightsError::Dtype {
            path: self.path.clone(),
            key: key.to_string(),
            dtype: name.clone(),
        })?;
        let expected = snap.shape.num_elements();
        if values.len() != expected {
            return Err(WeightsError::Truncated {
                path: self.path.clone(),
                key: key.to_string(),
                needed: expected,
                available: values.len(),
            });
        }
        Ok(values)
    }
}
