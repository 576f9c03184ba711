//! The common view of a checkpoint ([`TensorSource`]) and the helpers that turn a named tensor
//! into a burn tensor of a checked shape.

use std::path::Path;

use burn::tensor::{Distribution, Tensor, TensorData, backend::Backend};

use super::error::WeightsError;
use super::pth::PthFile;
use super::st_reader::StFile;

/// Name-level description of one stored tensor (for loading checks and inspection reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Stored element type, safetensors spelling (`F32`, `BF16`, `I64`...).
    pub dtype: String,
    /// Stored shape, PyTorch order.
    pub shape: Vec<usize>,
    /// Stored byte size.
    pub bytes: usize,
}

/// A checkpoint opened for reading: named tensors with lazily converted f32 values.
pub trait TensorSource {
    /// The file this source reads (used in every error message).
    fn path(&self) -> &Path;
    /// All tensor names, sorted.
    fn keys(&self) -> Vec<String>;
    /// Shape and dtype of one tensor without reading its values.
    fn info(&self, key: &str) -> Option<TensorInfo>;
    /// The values of one tensor converted to f32, row-major in the stored shape.
    fn load_f32(&self, key: &str) -> Result<Vec<f32>, WeightsError>;

    /// Whether `key` exists.
    fn contains(&self, key: &str) -> bool {
        self.info(key).is_some()
    }

    /// For sources that invent their values: the distribution to draw `key` from on the
    /// device itself, so that gigabytes of weights never pass through host RAM. `None` (every
    /// real checkpoint) means the values come from [`Self::load_f32`].
    fn device_distribution(&self, _key: &str) -> Option<Distribution> {
        None
    }
}

/// Opens `.safetensors` through the memory-mapped reader and `.pth` / `.pt` / `.bin` through the
/// pickle-free PyTorch reader, chosen by extension.
pub fn open_checkpoint(path: impl AsRef<Path>) -> Result<Box<dyn TensorSource>, WeightsError> {
    let path = path.as_ref();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "safetensors" => Ok(Box::new(StFile::open(path)?)),
        "pth" | "pt" | "bin" | "ckpt" => Ok(Box::new(PthFile::open(path)?)),
        _ => Err(WeightsError::Format {
            path: path.to_path_buf(),
            reason: format!("unknown checkpoint extension `{ext}` (expected .safetensors or .pth)"),
        }),
    }
}

/// Converts little-endian stored bytes of a floating or integer dtype to f32 values; `None`
/// for dtypes that have no meaningful f32 reading.
pub(crate) fn convert_to_f32(dtype: &str, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        "F32" => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "F64" => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        "BF16" => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
        "F16" => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Checks that `key` exists with exactly `expected` shape.
pub fn check_shape(
    src: &dyn TensorSource,
    key: &str,
    expected: &[usize],
) -> Result<(), WeightsError> {
    let info = src.info(key).ok_or_else(|| WeightsError::MissingKey {
        path: src.path().to_path_buf(),
        key: key.to_string(),
    })?;
    if info.shape != expected {
        return Err(WeightsError::Shape {
            path: src.path().to_path_buf(),
            key: key.to_string(),
            found: info.shape,
            expected: expected.to_vec(),
        });
    }
    Ok(())
}

/// Shape of `key`, or a missing-key error.
pub fn shape_of(src: &dyn TensorSource, key: &str) -> Result<Vec<usize>, WeightsError> {
    src.info(key)
        .map(|i| i.shape)
        .ok_or_else(|| WeightsError::MissingKey {
            path: src.path().to_path_buf(),
            key: key.to_string(),
        })
}

/// Loads `key` as an f32 tensor of exactly the `expected` shape.
pub fn load_tensor<B: Backend, const D: usize>(
    src: &dyn TensorSource,
    key: &str,
    expected: [usize; D],
    device: &B::Device,
) -> Result<Tensor<B, D>, WeightsError> {
    check_shape(src, key, &expected)?;
    if let Some(distribution) = src.device_distribution(key) {
        return Ok(Tensor::random(expected, distribution, device));
    }
    let values = src.load_f32(key)?;
    if values.len() != expected.iter().product::<usize>() {
        return Err(WeightsError::Truncated {
            path: src.path().to_path_buf(),
            key: key.to_string(),
            needed: expected.iter().product::<usize>(),
            available: values.len(),
        });
    }
    Ok(Tensor::from_data(TensorData::new(values, expected), device))
}

/// Loads `key` with a stored shape that is reshaped to `target` (same element count), e.g. a
/// `[C,1,1,1]` norm scale read as `[C]`.
pub fn load_reshaped<B: Backend, const D: usize>(
    src: &dyn TensorSource,
    key: &str,
    stored: &[usize],
    target: [usize; D],
    device: &B::Device,
) -> Result<Tensor<B, D>, WeightsError> {
    check_shape(src, key, stored)?;
    if let Some(distribution) = src.device_distribution(key)
        && stored.iter().product::<usize>() == target.iter().product::<usize>()
    {
        return Ok(Tensor::random(target, distribution, device));
    }
    let values = src.load_f32(key)?;
    if values.len() != target.iter().product::<usize>() {
        return Err(WeightsError::Shape {
            path: src.path().to_path_buf(),
            key: key.to_string(),
            found: stored.to_vec(),
            expected: target.to_vec(),
        });
    }
    Ok(Tensor::from_data(TensorData::new(values, target), device))
}

/// Any [`TensorSource`] as the model builders' [`ParameterSource`]: loads each parameter at the
/// shape the model asks for (used for the demo model's seeded random weights).
pub struct SourceParameters<'a, B: Backend> {
    pub source: &'a dyn TensorSource,
    pub device: &'a B::Device,
}

impl<B: Backend> crate::model::layers::ParameterSource<B> for SourceParameters<'_, B> {
    type Error = WeightsError;

    fn tensor<const D: usize>(
        &self,
        key: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>, WeightsError> {
        load_tensor(self.source, key, shape, self.device)
    }
}
