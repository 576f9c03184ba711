//! Seeded random weights for any key map: a [`TensorSource`] that invents each tensor on
//! request, with the fixtures' initialisation recipe (matrices and kernels N(0, 1/fan_in),
//! biases N(0, 0.1²), 1-D scales 1 + N(0, 0.1²)). Benchmarks and memory measurements at the
//! released model sizes use it where the real 50 GB of weights are not at hand.

use std::path::{Path, PathBuf};

use super::error::WeightsError;
use super::keymap::ExpectedTensor;
use super::loader::{TensorInfo, TensorSource};

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

/// SplitMix64: tiny, seedable, and good enough for weights whose only job is to be
/// realistically scaled.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard normal sample (Box–Muller).
fn normal(state: &mut u64) -> f32 {
    let u1 = ((splitmix(state) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (splitmix(state) >> 11) as f64 / (1u64 << 53) as f64;
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
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
        let mut state = self.seed ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let values = match tensor.shape.len() {
            // A 1-D tensor is a bias, or a norm scale (`gamma`/`weight`), which starts near 1.
            0 | 1 => {
                let base = if key.ends_with("gamma") || key.ends_with(".weight") {
                    1.0
                } else {
                    0.0
                };
                (0..count)
                    .map(|_| base + 0.1 * normal(&mut state))
                    .collect()
            }
            _ => {
                let fan_in: usize = tensor.shape[1..].iter().product();
                let scale = (1.0 / fan_in.max(1) as f32).sqrt();
                (0..count).map(|_| scale * normal(&mut state)).collect()
            }
        };
        Ok(values)
    }
}
