//! A small memory-mapped safetensors reader (header parsing, bounds checks, dtype conversion
//! to f32). It is kept separate from the DiT's reader on purpose; only what the encoder-side
//! models need lives here.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::WeightsError;
use super::loader::{TensorInfo, TensorSource, convert_to_f32};

/// An open safetensors file; tensor bytes stay in the memory map until a model asks for them.
pub struct StFile {
    path: PathBuf,
    map: Mmap,
    data_start: usize,
    entries: BTreeMap<String, StEntry>,
}

struct StEntry {
    dtype: String,
    shape: Vec<usize>,
    begin: usize,
    end: usize,
}

impl StFile {
    /// Opens and validates the header of `path`; every tensor's byte range is checked against
    /// the file length here, so a truncated download fails at open time with the key named.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| WeightsError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only and the file is not modified while this process runs;
        // a concurrent truncation would be a user error that at worst yields wrong numbers.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let format = |reason: String| WeightsError::Format {
            path: path.clone(),
            reason,
        };
        if map.len() < 8 {
            return Err(format("file shorter than the 8-byte header length".into()));
        }
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&map[..8]);
        let header_len = usize::try_from(u64::from_le_bytes(len_bytes))
            .map_err(|_| format("header length does not fit in memory".into()))?;
        let data_start = header_len
            .checked_add(8)
            .filter(|&s| s <= map.len())
            .ok_or_else(|| format(format!("header of {header_len} bytes runs past the end")))?;
        let header: serde_json::Value = serde_json::from_slice(&map[8..data_start])
            .map_err(|e| format(format!("header is not valid JSON: {e}")))?;
        let obj = header
            .as_object()
            .ok_or_else(|| format("header is not a JSON object".into()))?;
        let available = map.len() - data_start;
        let mut entries = BTreeMap::new();
        for (key, value) in obj {
            if key == "__metadata__" {
                continue;
            }
            let bad = |what: &str| format(format!("tensor `{key}`: {what}"));
            let dtype = value
                .get("dtype")
                .and_then(|d| d.as_str())
                .ok_or_else(|| bad("no dtype"))?
                .to_string();
            let shape = value
                .get("shape")
                .and_then(|s| s.as_array())
                .ok_or_else(|| bad("no shape"))?
                .iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| bad("shape is not a list of sizes"))?;
            let offsets = value
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .filter(|a| a.len() == 2)
                .ok_or_else(|| bad("no data_offsets"))?;
            let off = |i: usize| {
                offsets[i]
                    .as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| bad("bad data_offsets"))
            };
            let (begin, end) = (off(0)?, off(1)?);
            if begin > end {
                return Err(bad("data_offsets are reversed"));
            }
            if end > available {
                return Err(WeightsError::Truncated {
                    path: path.clone(),
                    key: key.clone(),
                    needed: end,
                    available,
                });
            }
            let elems: usize = shape.iter().product();
            if let Some(size) = dtype_size(&dtype)
                && elems.checked_mul(size) != Some(end - begin)
            {
                return Err(bad("byte length does not match shape and dtype"));
            }
            entries.insert(
                key.clone(),
                StEntry {
                    dtype,
                    shape,
                    begin,
                    end,
                },
            );
        }
        Ok(Self {
            path,
            map,
            data_start,
            entries,
        })
    }

    /// Raw little-endian bytes and dtype name of one tensor (for integer fixtures and tooling).
    pub fn raw(&self, key: &str) -> Result<(&str, &[usize], &[u8]), WeightsError> {
        let e = self
            .entries
            .get(key)
            .ok_or_else(|| WeightsError::MissingKey {
                path: self.path.clone(),
                key: key.to_string(),
            })?;
        let bytes = &self.map[self.data_start + e.begin..self.data_start + e.end];
        Ok((&e.dtype, &e.shape, bytes))
    }

    /// Reads an integer tensor (I64 / I32) as i64 values.
    pub fn load_i64(&self, key: &str) -> Result<(Vec<usize>, Vec<i64>), WeightsError> {
        let (dtype, shape, bytes) = self.raw(key)?;
        let values = match dtype {
            "I64" => bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            "I32" => bytes
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            other => {
                return Err(WeightsError::Dtype {
                    path: self.path.clone(),
                    key: key.to_string(),
                    dtype: other.to_string(),
                });
            }
        };
        Ok((shape.to_vec(), values))
    }
}

fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

impl TensorSource for StFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn keys(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    fn info(&self, key: &str) -> Option<TensorInfo> {
        self.entries.get(key).map(|e| TensorInfo {
            dtype: e.dtype.clone(),
            shape: e.shape.clone(),
            bytes: e.end - e.begin,
        })
    }

    fn load_f32(&self, key: &str) -> Result<Vec<f32>, WeightsError> {
        let (dtype, _, bytes) = self.raw(key)?;
        convert_to_f32(dtype, bytes).ok_or_else(|| WeightsError::Dtype {
            path: self.path.clone(),
            key: key.to_string(),
            dtype: dtype.to_string(),
        })
    }
}
