//! Memory-mapped safetensors reader: validates the header, then converts stored tensors
//! (f32 / bf16 / f16, plus integer tensors for fixtures) to f32 host data or burn tensors.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData, backend::Backend};
use memmap2::Mmap;

use super::WeightsError;

/// Element types a safetensors file may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDtype {
    F64,
    F32,
    F16,
    BF16,
    F8E4M3,
    F8E5M2,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StoredDtype {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "F64" => Self::F64,
            "F32" => Self::F32,
            "F16" => Self::F16,
            "BF16" => Self::BF16,
            "F8_E4M3" => Self::F8E4M3,
            "F8_E5M2" => Self::F8E5M2,
            "I64" => Self::I64,
            "I32" => Self::I32,
            "I16" => Self::I16,
            "I8" => Self::I8,
            "U8" => Self::U8,
            "BOOL" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::F8E4M3 | Self::F8E5M2 | Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

/// One entry of the header: dtype, shape and byte range inside the data section.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub dtype: StoredDtype,
    pub shape: Vec<usize>,
    pub begin: usize,
    pub end: usize,
}

impl TensorInfo {
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A validated, memory-mapped safetensors file.
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    tensors: BTreeMap<String, TensorInfo>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

fn header_error(path: &Path, reason: impl Into<String>) -> WeightsError {
    WeightsError::Header {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl SafetensorsFile {
    /// Maps `path` and validates its header; no tensor data is read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let io = |source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the mapping is read-only; checkpoint files are not expected to be modified
        // while a render holds them open (the same contract every safetensors loader relies on).
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (data_start, tensors, metadata) = parse_header(path, &mmap)?;
        Ok(Self {
            path: path.to_path_buf(),
            mmap,
            data_start,
            tensors,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.tensors
    }

    /// The `__metadata__` string map of the header (empty when absent).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    pub fn info(&self, key: &str) -> Result<&TensorInfo, WeightsError> {
        self.tensors
            .get(key)
            .ok_or_else(|| WeightsError::MissingKey {
                path: self.path.clone(),
                key: key.to_string(),
            })
    }

    fn bytes(&self, info: &TensorInfo) -> &[u8] {
        // Offsets were validated against the file length in `parse_header`.
        &self.mmap[self.data_start + info.begin..self.data_start + info.end]
    }

    fn tensor_error(&self, key: &str, reason: impl Into<String>) -> WeightsError {
        WeightsError::Tensor {
            path: self.path.clone(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// Reads a floating-point tensor as f32 values (bf16 / f16 / f64 are converted).
    pub fn read_f32(&self, key: &str) -> Result<(Vec<f32>, Vec<usize>), WeightsError> {
        let info = self.info(key)?;
        let bytes = self.bytes(info);
        let values: Vec<f32> = match info.dtype {
            StoredDtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            StoredDtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            StoredDtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            StoredDtype::F64 => bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    f64::from_le_bytes(b) as f32
                })
                .collect(),
            other => {
                return Err(self.tensor_error(key, format!("dtype {other:?} is not a float type")));
            }
        };
        Ok((values, info.shape.clone()))
    }

    /// Reads an integer tensor (i64 / i32) as i64 values.
    pub fn read_i64(&self, key: &str) -> Result<(Vec<i64>, Vec<usize>), WeightsError> {
        let info = self.info(key)?;
        let bytes = self.bytes(info);
        let values = match info.dtype {
            StoredDtype::I64 => bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    i64::from_le_bytes(b)
                })
                .collect(),
            StoredDtype::I32 => bytes
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            other => {
                return Err(
                    self.tensor_error(key, format!("dtype {other:?} is not an integer type"))
                );
            }
        };
        Ok((values, info.shape.clone()))
    }

    /// Loads a float tensor of rank `D` onto `device` as f32.
    pub fn tensor<B: Backend, const D: usize>(
        &self,
        key: &str,
        device: &B::Device,
    ) -> Result<Tensor<B, D>, WeightsError> {
        let (values, shape) = self.read_f32(key)?;
        if shape.len() != D {
            return Err(self.tensor_error(
                key,
                format!(
                    "has rank {} (shape {shape:?}), expected rank {D}",
                    shape.len()
                ),
            ));
        }
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }
}

type ParsedHeader = (
    usize,
    BTreeMap<String, TensorInfo>,
    BTreeMap<String, String>,
);

fn parse_header(path: &Path, bytes: &[u8]) -> Result<ParsedHeader, WeightsError> {
    if bytes.len() < 8 {
        return Err(header_error(
            path,
            "file shorter than the 8-byte header length",
        ));
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&bytes[..8]);
    let header_len = u64::from_le_bytes(len_bytes);
    let header_end = usize::try_from(header_len)
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            header_error(
                path,
                format!(
                    "header length {header_len} exceeds the file size {}",
                    bytes.len()
                ),
            )
        })?;
    let json: serde_json::Value = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| header_error(path, format!("header is not JSON: {e}")))?;
    let object = json
        .as_object()
        .ok_or_else(|| header_error(path, "header is not a JSON object"))?;
    let data_len = bytes.len() - header_end;
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    for (key, entry) in object {
        if key == "__metadata__" {
            if let Some(map) = entry.as_object() {
                for (k, v) in map {
                    if let Some(s) = v.as_str() {
                        metadata.insert(k.clone(), s.to_string());
                    }
                }
            }
            continue;
        }
        let bad = |reason: &str| header_error(path, format!("tensor `{key}`: {reason}"));
        let dtype_name = entry
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad("missing dtype"))?;
        let dtype = StoredDtype::parse(dtype_name)
            .ok_or_else(|| bad(&format!("unknown dtype {dtype_name}")))?;
        let shape = entry
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("missing shape"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad("shape entries must be non-negative integers"))?;
        let offsets = entry
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .filter(|a| a.len() == 2)
            .ok_or_else(|| bad("data_offsets must be a pair"))?;
        let begin = offsets[0]
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| bad("bad data_offsets"))?;
        let end = offsets[1]
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| bad("bad data_offsets"))?;
        if begin > end || end > data_len {
            return Err(bad(&format!(
                "data_offsets [{begin}, {end}] run past the {data_len}-byte data section (truncated file?)"
            )));
        }
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad("shape overflows"))?;
        if expected != end - begin {
            return Err(bad(&format!(
                "{} bytes stored, shape {shape:?} of {dtype:?} needs {expected}",
                end - begin
            )));
        }
        tensors.insert(
            key.clone(),
            TensorInfo {
                dtype,
                shape,
                begin,
                end,
            },
        );
    }
    Ok((header_end, tensors, metadata))
}
