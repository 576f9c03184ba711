//! Seeded random weights for any key map: a [`TensorSource`] that invents each tensor on
//! request, with the fixtures' initialisation recipe (matrices and kernels N(0, 1/fan_in),
//! biases N(0, 0.1²), 1-D scales 1 + N(0, 0.1²)). The demo model draws them on the host from a
//! fixed seed, so it is the same everywhere; measurements at the released sizes draw them on
//! the device ([`RandomWeights::on_device`]), where the real 50 GB of weights are not at hand.

use std::path::{Path, PathBuf};

use burn::tensor::Distribution;

use super::error::WeightsError;
use super::keymap::ExpectedTensor;
use super::loader::{TensorInfo, TensorSource};
use crate::rng::SplitMix64;

pub struct RandomWeights {
    name: PathBuf,
    tensors: Vec<ExpectedTensor>,
    seed: u64,
    on_device: bool,
}

/// The initialisation of one tensor: values are `mean + std · N(0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recipe {
    mean: f32,
    std: f32,
}

impl Recipe {
    fn of(key: &str, shape: &[usize]) -> Self {
        match shape.len() {
            // A 1-D tensor is a bias, or a norm scale (`gamma`/`weight`), which starts near 1.
            0 | 1 => Self {
                mean: if key.ends_with("gamma") || key.ends_with(".weight") {
                    1.0
                } else {
                    0.0
                },
                std: 0.1,
            },
            _ => {
                let fan_in: usize = shape[1..].iter().product();
                Self {
                    mean: 0.0,
                    std: (1.0 / fan_in.max(1) as f32).sqrt(),
                }
            }
        }
    }
}

impl RandomWeights {
    /// Values drawn on the host from `seed`: the same on every backend and machine. `name`
    /// stands in for a file path in messages (e.g. "random VAE weights").
    pub fn new(name: &str, tensors: Vec<ExpectedTensor>, seed: u64) -> Self {
        Self {
            name: PathBuf::from(name),
            tensors,
            seed,
            on_device: false,
        }
    }

    /// Values drawn by the device's own generator (seed it with `Backend::seed`): a 14B model's
    /// worth in seconds, and never a copy of it in host RAM.
    pub fn on_device(name: &str, tensors: Vec<ExpectedTensor>) -> Self {
        Self {
            name: PathBuf::from(name),
            tensors,
            seed: 0,
            on_device: true,
        }
    }

    fn find(&self, key: &str) -> Option<(usize, &ExpectedTensor)> {
        self.tensors.iter().enumerate().find(|(_, t)| t.key == key)
    }
}

impl TensorSource for RandomWeights {
    fn path(&self) -> &Path {
        &self.name
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.tensors.iter().map(|t| t.key.clone()).collect();
        keys.sort();
        keys
    }

    fn info(&self, key: &str) -> Option<TensorInfo> {
        self.find(key).map(|(_, t)| TensorInfo {
            dtype: "F32".into(),
            shape: t.shape.clone(),
            bytes: 4 * t.shape.iter().product::<usize>(),
        })
    }

    fn load_f32(&self, key: &str) -> Result<Vec<f32>, WeightsError> {
        let (index, tensor) = self.find(key).ok_or_else(|| WeightsError::MissingKey {
            path: self.name.clone(),
            key: key.to_string(),
        })?;
        let count: usize = tensor.shape.iter().product();
        let mut rng =
            SplitMix64::new(self.seed ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let recipe = Recipe::of(key, &tensor.shape);
        Ok((0..count)
            .map(|_| recipe.mean + recipe.std * rng.normal())
            .collect())
    }

    fn device_distribution(&self, key: &str) -> Option<Distribution> {
        if !self.on_device {
            return None;
        }
        let (_, tensor) = self.find(key)?;
        let recipe = Recipe::of(key, &tensor.shape);
        Some(Distribution::Normal(
            f64::from(recipe.mean),
            f64::from(recipe.std),
        ))
    }
}
