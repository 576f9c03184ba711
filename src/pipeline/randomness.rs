//! The two random inputs of a render: the initial noise of each clip and the per-call RoPE
//! offset of the reference latent. The reference draws the offset from Python's unseeded
//! `random`, so two of its runs differ even with the same seed; here both come from the render
//! seed, so the same inputs and seed give the same frames. Tests inject recorded values instead.

use burn::tensor::{Tensor, TensorData, backend::Backend};

use crate::rng::SplitMix64;

/// Where a render's randomness comes from.
pub trait Randomness<B: Backend> {
    /// Initial noise of clip `clip`, `shape = [channels, latent frames, h, w]`.
    fn clip_noise(&mut self, clip: usize, shape: [usize; 4], device: &B::Device) -> Tensor<B, 4>;
    /// The reference RoPE offset of DiT streaming call `call` (0-based, in call order), drawn
    /// from the inclusive `range`.
    fn ref_offset(&mut self, call: usize, range: [i64; 2]) -> i64;
}

/// Noise and offsets derived from one seed; each clip and call has its own stream, so the
/// values do not depend on how many were drawn before.
#[derive(Debug, Clone, Copy)]
pub struct SeededRandomness {
    pub seed: u64,
}

/// Stream tags keep the noise and the offsets of one seed independent.
const NOISE_STREAM: u64 = 1 << 40;
const OFFSET_STREAM: u64 = 2 << 40;

impl<B: Backend> Randomness<B> for SeededRandomness {
    fn clip_noise(&mut self, clip: usize, shape: [usize; 4], device: &B::Device) -> Tensor<B, 4> {
        let mut rng = SplitMix64::derived(self.seed, NOISE_STREAM + clip as u64);
        let count: usize = shape.iter().product();
        let values: Vec<f32> = (0..count).map(|_| rng.normal()).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    fn ref_offset(&mut self, call: usize, range: [i64; 2]) -> i64 {
        SplitMix64::derived(self.seed, OFFSET_STREAM + call as u64)
            .range_inclusive(range[0], range[1])
    }
}
