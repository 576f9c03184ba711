//! Seeded random weights for any key map: a [`TensorSource`] that invents each tensor on
//! request, with the fixtures' initialisation recipe (matrices and kernels N(0, 1/fan_in),
//! biases N(0, 0.1²), 1-D scales 1 + N(0, 0.1²)). Benchmarks and memory measurements at the
//! released model sizes use it where the real 50 GB of weights are not at hand.

use std::path::{Path, PathBuf};

use super::error::WeightsError;
use super::keymap::ExpectedTensor;
use super::loader::{TensorInfo, TensorSource};
use crate::rng::SplitMix64;

pub struct RandomWeights {
    name: PathBuf,
    tensors: Vec<ExpectedTensor>,
    seed: u64,
}

impl RandomWeights {
    /// `name` stands in for a file path in messages (e.g. "random VAE weights").
    pub fn new(name: &str, tensors: Vec<ExpectedTensor>, seed: u64) -> Self {
        Self {
            name: PathBuf::from(name),
            tensors,
            seed,
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
        let values = match tensor.shape.len() {
            // A 1-D tensor is a bias, or a norm scale (`gamma`/`weight`), which starts near 1.
            0 | 1 => {
                let base = if key.ends_with("gamma") || key.ends_with(".weight") {
                    1.0
                } else {
                    0.0
                };
                (0..count).map(|_| base + 0.1 * rng.normal()).collect()
            }
            _ => {
                let fan_in: usize = tensor.shape[1..].iter().product();
                let scale = (1.0 / fan_in.max(1) as f32).sqrt();
                (0..count).map(|_| scale * rng.normal()).collect()
            }
        };
        Ok(values)
    }
}
