//! Builds the DiT from a [`WeightSet`]: serves parameters by key with shape checks, merges the
//! LoRA into its target linears on the way and verifies that the LoRA covered every target.

use std::cell::RefCell;

use burn::tensor::{Tensor, backend::Backend};

use super::{LoraAdapter, WeightSet, WeightsError};
use crate::model::dit::lora_target_count;
use crate::model::layers::ParameterSource;
use crate::model::{DitConfig, DitModel};

/// A [`ParameterSource`] over checkpoint files with an optional LoRA merged at load.
pub struct CheckpointSource<'a, B: Backend> {
    weights: &'a WeightSet,
    lora: Option<&'a LoraAdapter>,
    device: &'a B::Device,
    merged: RefCell<Vec<String>>,
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
        }
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
        self.weights.tensor(key, shape, self.device)
    }

    fn linear_weight(&self, module: &str, shape: [usize; 2]) -> Result<Tensor<B, 2>, WeightsError> {
        let weight = self.tensor(&format!("{module}.weight"), shape)?;
        let Some(lora) = self.lora else {
            return Ok(weight);
        };
        match lora.merge(module, weight.clone(), self.device)? {
            Some(merged) => {
                self.merged.borrow_mut().push(module.to_string());
                Ok(merged)
            }
            None => Ok(weight),
        }
    }
}

/// Loads the DiT from `weights`, merging `lora` if given. With a LoRA, every pair in the file
/// must land on a model linear and every q/k/v/o/ffn target of the config must be covered.
pub fn load_dit<B: Backend>(
    config: &DitConfig,
    weights: &WeightSet,
    lora: Option<&LoraAdapter>,
    device: &B::Device,
) -> Result<DitModel<B>, WeightsError> {
    let source = CheckpointSource::new(weights, lora, device);
    let model = DitModel::from_source(config, &source)?;
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
    Ok(model)
}
