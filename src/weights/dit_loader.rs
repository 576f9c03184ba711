//! Builds the DiT from a [`WeightSet`]: serves parameters by key with shape checks, merges the
//! LoRA into its target linears on the way and verifies that the LoRA covered every target.
//! With [`WeightFormat::Fp8`] the linears that the reference's `replace_linear_with_scaled_fp8`
//! converts are quantised to e4m3 with a per-tensor scale right after the merge (spec §3.9:
//! build → LoRA → FP8). With [`WeightFormat::Fp8`] the weights are dequantised again at once
//! and the model computes with exactly the values an FP8 kernel would see (for backends
//! without FP8 kernels); with [`WeightFormat::Fp8Native`] the layer keeps the e4m3 codes on the
//! device, quantised there by the backend's kernels, and multiplies them on FP8 tensor cores.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::fp8::Fp8Weight;
use super::{LoraAdapter, WeightSet, WeightsError};
use crate::model::dit::lora_target_count;
use crate::model::inventory::parameter_inventory;
use crate::model::layers::ParameterSource;
use crate::model::{DitConfig, DitModel};

/// How the DiT's linear weights are kept after loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// As stored (plus the LoRA merge).
    #[default]
    Full,
    /// The reference's FP8 linears rounded through e4m3 with per-tensor scales, then kept
    /// dequantised in the weights' type.
    Fp8,
    /// The reference's FP8 linears kept as e4m3 codes on the device (one byte per weight) and
    /// run by FP8 GEMMs; for backends whose kernels have them
    /// ([`crate::kernels::HotOps::native_fp8`]).
    Fp8Native,
}

/// What the FP8 conversion did while loading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fp8Stats {
    /// Per converted linear (module path): `weight_scale = 1/s` (not read back from the device
    /// for [`WeightFormat::Fp8Native`]).
    pub scales: BTreeMap<String, f32>,
    /// Weight elements held as e4m3 (one byte each).
    pub fp8_elements: u64,
    /// Every parameter element the model loaded, converted or not.
    pub loaded_elements: u64,
}

impl Fp8Stats {
    /// Bytes of the model with e4m3 linears and everything else bf16 (scales not counted), the
    /// accounting of spec §3.9 / §7.5 and of `inspect`'s FP8 figure.
    pub fn model_bytes(&self) -> u64 {
        2 * self.loaded_elements - self.fp8_elements
    }
}

/// A [`ParameterSource`] over checkpoint files with an optional LoRA merged at load.
pub struct CheckpointSource<'a, B: Backend> {
    weights: &'a WeightSet,
    lora: Option<&'a LoraAdapter>,
    device: &'a B::Device,
    merged: RefCell<Vec<String>>,
    /// Module paths to convert (empty for [`WeightFormat::Full`]).
    fp8_modules: BTreeSet<String>,
    /// Keep the converted modules as device-side FP8 codes.
    native_fp8: bool,
    fp8: RefCell<Fp8Stats>,
}

impl<'a, B: Backend> CheckpointSource<'a, B> {
    pub fn new(
        weights: &'a WeightSet,
        lora: Option<&'a LoraAdapter>,
        device: &'a B::Device,
    ) -> Self {
        Self {
            weights,
            lora,
            device,
            merged: RefCell::new(Vec::new()),
            fp8_modules: BTreeSet::new(),
            native_fp8: false,
            fp8: RefCell::new(Fp8Stats::default()),
        }
    }

    /// Converts the FP8 linears of `config` (the inventory's `fp8` flags, which mirror the
    /// reference's ignore list) after the merge.
    pub fn with_format(mut self, config: &DitConfig, format: WeightFormat) -> Self {
        self.fp8_modules = match format {
            WeightFormat::Full => BTreeSet::new(),
            WeightFormat::Fp8 | WeightFormat::Fp8Native => fp8_modules(config),
        };
        self.native_fp8 = format == WeightFormat::Fp8Native;
        self
    }

    /// What the conversion did so far.
    pub fn fp8_stats(&self) -> Fp8Stats {
        self.fp8.borrow().clone()
    }

    fn quantise(&self, module: &str, weight: Tensor<B, 2>) -> Result<Tensor<B, 2>, WeightsError> {
        let elements = weight.shape().num_elements() as u64;
        let (weight, scale_inv) =
            fp8_round_trip(weight, self.device).map_err(|reason| WeightsError::Tensor {
                path: self.weights.location(),
                key: format!("{module}.weight"),
                reason,
            })?;
        let mut stats = self.fp8.borrow_mut();
        stats.scales.insert(module.to_string(), scale_inv);
        stats.fp8_elements += elements;
        Ok(weight)
    }

    /// Modules whose LoRA pair has been merged so far.
    pub fn merged_modules(&self) -> Vec<String> {
        self.merged.borrow().clone()
    }
}

impl<B: Backend> ParameterSource<B> for CheckpointSource<'_, B> {
    type Error = WeightsError;

    fn tensor<const D: usize>(
        &self,
        key: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>, WeightsError> {
        let t = self.weights.tensor(key, shape, self.device)?;
        self.fp8.borrow_mut().loaded_elements += shape.iter().product::<usize>() as u64;
        Ok(t)
    }

    fn linear_weight(&self, module: &str, shape: [usize; 2]) -> Result<Tensor<B, 2>, WeightsError> {
        let weight = self.tensor(&format!("{module}.weight"), shape)?;
        let merged = match self.lora {
            None => weight,
            Some(lora) => match lora.merge(module, weight.clone(), self.device)? {
                Some(merged) => {
                    self.merged.borrow_mut().push(module.to_string());
                    merged
                }
                None => weight,
            },
        };
        if !self.fp8_modules.contains(module) {
            Ok(merged)
        } else if self.native_fp8 {
            self.fp8.borrow_mut().fp8_elements += shape.iter().product::<usize>() as u64;
            Ok(merged)
        } else {
            self.quantise(module, merged)
        }
    }

    fn stores_fp8(&self, module: &str) -> bool {
        self.native_fp8 && self.fp8_modules.contains(module)
    }
}

/// `weight` quantised to e4m3 as the reference does and dequantised again (on the host), in its
/// own element type, with its `weight_scale = 1/s`; the reason on failure.
pub fn fp8_round_trip<B: Backend>(
    weight: Tensor<B, 2>,
    device: &B::Device,
) -> Result<(Tensor<B, 2>, f32), String> {
    let dims = weight.dims();
    let dtype = weight.dtype();
    let values = weight
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| format!("cannot read the weight for FP8: {e:?}"))?;
    let q = Fp8Weight::quantize(&values, dims.to_vec());
    let dequantised =
        Tensor::<B, 2>::from_data(TensorData::new(q.dequantize(), dims), device).cast(dtype);
    Ok((dequantised, q.scale_inv))
}

/// The module paths of `config`'s linears that the reference converts to FP8 (the inventory's
/// `fp8` flags, which mirror its ignore list).
pub fn fp8_modules(config: &DitConfig) -> BTreeSet<String> {
    parameter_inventory(config)
        .into_iter()
        .filter(|s| s.fp8)
        .filter_map(|s| s.key.strip_suffix(".weight").map(str::to_string))
        .collect()
}

/// Loads the DiT from `weights`, merging `lora` if given. With a LoRA, every pair in the file
/// must land on a model linear and every q/k/v/o/ffn target of the config must be covered.
pub fn load_dit<B: Backend>(
    config: &DitConfig,
    weights: &WeightSet,
    lora: Option<&LoraAdapter>,
    device: &B::Device,
) -> Result<DitModel<B>, WeightsError> {
    load_dit_as(config, weights, lora, WeightFormat::Full, false, device).map(|(model, _)| model)
}

/// [`load_dit`] with a choice of [`WeightFormat`], and with the transformer blocks parked in
/// host RAM as they load if `stream_layers`; also says what the FP8 conversion did.
pub fn load_dit_as<B: Backend>(
    config: &DitConfig,
    weights: &WeightSet,
    lora: Option<&LoraAdapter>,
    format: WeightFormat,
    stream_layers: bool,
    device: &B::Device,
) -> Result<(DitModel<B>, Fp8Stats), WeightsError> {
    let source = CheckpointSource::new(weights, lora, device).with_format(config, format);
    let model = if stream_layers {
        DitModel::from_source_streaming(config, &source)?
    } else {
        DitModel::from_source(config, &source)?
    };
    if let Some(lora) = lora {
        let merged = source.merged_modules();
        let expected = lora_target_count(config);
        let unmatched: Vec<&str> = lora
            .modules()
            .filter(|m| !merged.iter().any(|x| x == m))
            .collect();
        if !unmatched.is_empty() || merged.len() < expected {
            return Err(WeightsError::Lora {
                path: lora.path().to_path_buf(),
                reason: format!(
                    "{} of {expected} target linears merged; {} file pairs matched no linear (first: {:?})",
                    merged.len(),
                    unmatched.len(),
                    unmatched.first()
                ),
            });
        }
    }
    Ok((model, source.fp8_stats()))
}
