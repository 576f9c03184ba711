//! The Wan 2.1 causal 3D VAE (`WanVAE_` / `Wan2_1_VAE` / streaming `WanVAE` of the reference):
//! configuration, loading, chunked encode (1, 4, 4, … frames), per-latent decode, latent
//! normalisation, and the streaming decoder whose caches survive between calls.

use std::path::Path;

use burn::tensor::module::conv3d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::Deserialize;

use super::error::InputError;
use super::vae_cache::FeatCache;
use super::vae_decoder::VaeDecoder;
use super::vae_encoder::VaeEncoder;
use crate::weights::WeightsError;
use crate::weights::loader::{TensorSource, load_tensor, open_checkpoint};

/// Published per-channel latent mean of `Wan2.1_VAE` (vae2_1.py).
pub const WAN21_LATENT_MEAN: [f32; 16] = [
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517,
    -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
];

/// Published per-channel latent standard deviation of `Wan2.1_VAE` (vae2_1.py).
pub const WAN21_LATENT_STD: [f32; 16] = [
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579,
    1.6382, 1.1253, 2.8251, 1.9160,
];

/// Architecture and latent statistics of the VAE.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VaeConfig {
    /// Base width (96 for the released model).
    pub dim: usize,
    /// Latent channels (16).
    pub z_dim: usize,
    /// Width multipliers per resolution level.
    pub dim_mult: Vec<usize>,
    /// Residual blocks per encoder level (the decoder uses one more).
    pub num_res_blocks: usize,
    /// Scales at which attention blocks are inserted (empty for Wan 2.1).
    #[serde(default)]
    pub attn_scales: Vec<f64>,
    /// Temporal downsampling per encoder level (reference spelling kept); the decoder uses the
    /// reverse for upsampling.
    pub temperal_downsample: Vec<bool>,
    /// Latent mean used by `encode`/`decode` normalisation.
    #[serde(default = "default_mean")]
    pub latent_mean: Vec<f32>,
    /// Latent standard deviation used by `encode`/`decode` normalisation.
    #[serde(default = "default_std")]
    pub latent_std: Vec<f32>,
}

fn default_mean() -> Vec<f32> {
    WAN21_LATENT_MEAN.to_vec()
}

fn default_std() -> Vec<f32> {
    WAN21_LATENT_STD.to_vec()
}

impl VaeConfig {
    /// The released `Wan2.1_VAE.pth` configuration.
    pub fn wan21() -> Self {
        Self {
            dim: 96,
            z_dim: 16,
            dim_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            attn_scales: Vec::new(),
            temperal_downsample: vec![false, true, true],
            latent_mean: default_mean(),
            latent_std: default_std(),
        }
    }

    /// Checks the structural constraints the reference architecture relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.dim == 0 || self.z_dim == 0 {
            return Err("dim and z_dim must be positive".into());
        }
        // The decoder's channel halving after each resample is written for four levels.
        if self.dim_mult.len() != 4 {
            return Err(format!(
                "dim_mult must have 4 levels, got {:?}",
                self.dim_mult
            ));
        }
        if self.temperal_downsample.len() + 1 != self.dim_mult.len() {
            return Err("temperal_downsample needs one entry per level transition".into());
        }
        if self.latent_mean.len() != self.z_dim || self.latent_std.len() != self.z_dim {
            return Err(format!(
                "latent mean/std have {}/{} entries, z_dim is {}",
                self.latent_mean.len(),
                self.latent_std.len(),
                self.z_dim
            ));
        }
        if self.latent_std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
            return Err("latent std must be finite and non-zero".into());
        }
        Ok(())
    }

    /// Latent frames produced by encoding `frames` video frames (chunks 1, 4, 4, …).
    pub fn latent_frames(frames: usize) -> usize {
        if frames == 0 { 0 } else { 1 + (frames - 1) / 4 }
    }

    /// Video frames produced by decoding `latents` latent frames from the start of a sequence.
    pub fn video_frames(latents: usize) -> usize {
        if latents == 0 {
            0
        } else {
            1 + 4 * (latents - 1)
        }
    }
}

/// A pointwise (1×1×1) convolution: the VAE's `conv1` (after the encoder) and `conv2` (before
/// the decoder).
#[derive(Debug, Clone)]
struct Pointwise<B: Backend> {
    weight: Tensor<B, 5>,
    bias: Tensor<B, 1>,
}

impl<B: Backend> Pointwise<B> {
    fn load(
        src: &dyn TensorSource,
        prefix: &str,
        ch: usize,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            weight: load_tensor(src, &format!("{prefix}.weight"), [ch, ch, 1, 1, 1], device)?,
            bias: load_tensor(src, &format!("{prefix}.bias"), [ch], device)?,
        })
    }

    fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        conv3d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            ConvOptions::new([1, 1, 1], [0, 0, 0], [1, 1, 1], 1),
        )
    }
}

/// The loaded VAE.
#[derive(Debug, Clone)]
pub struct WanVae<B: Backend> {
    config: VaeConfig,
    encoder: VaeEncoder<B>,
    decoder: VaeDecoder<B>,
    conv1: Pointwise<B>,
    conv2: Pointwise<B>,
    /// Mean, `[1, z, 1, 1, 1]`.
    mean: Tensor<B, 5>,
    /// `1 / std` computed in f32 as the reference does, `[1, z, 1, 1, 1]`.
    inv_std: Tensor<B, 5>,
}

impl<B: Backend> WanVae<B> {
    /// Loads the VAE from a `.pth` (e.g. `Wan2.1_VAE.pth`) or `.safetensors` state dict.
    pub fn from_file(
        path: impl AsRef<Path>,
        config: VaeConfig,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        let src = open_checkpoint(path)?;
        Self::load(src.as_ref(), config, device)
    }

    /// Loads the VAE from any [`TensorSource`] with the reference key names.
    pub fn load(
        src: &dyn TensorSource,
        config: VaeConfig,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        config.validate().map_err(|reason| WeightsError::Config {
            path: src.path().to_path_buf(),
            reason,
        })?;
        let z = config.z_dim;
        let mean = Tensor::from_data(
            TensorData::new(config.latent_mean.clone(), [1, z, 1, 1, 1]),
            device,
        );
        let inv: Vec<f32> = config.latent_std.iter().map(|s| 1.0 / s).collect();
        let inv_std = Tensor::from_data(TensorData::new(inv, [1, z, 1, 1, 1]), device);
        Ok(Self {
            encoder: VaeEncoder::load(src, &config, device)?,
            decoder: VaeDecoder::load(src, &config, device)?,
            conv1: Pointwise::load(src, "conv1", 2 * z, device)?,
            conv2: Pointwise::load(src, "conv2", z, device)?,
            mean,
            inv_std,
            config,
        })
    }

    /// The configuration this VAE was built with.
    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// Encodes video `[b, 3, T, H, W]` in [-1, 1] to normalised latents
    /// `[b, z, 1 + (T−1)/4, H/8, W/8]` (the mean of the posterior; no sampling). Frames past the
    /// last full 4-frame chunk are ignored, as in the reference.
    pub fn encode(&self, video: Tensor<B, 5>) -> Result<Tensor<B, 5>, InputError> {
        let [_, c, t, h, w] = video.dims();
        if c != 3 || t == 0 || h == 0 || w == 0 {
            return Err(InputError::Shape {
                what: "VAE encode input",
                expected: "[batch, 3, frames >= 1, height >= 1, width >= 1]".into(),
                shape: video.dims().to_vec(),
            });
        }
        let chunks = VaeConfig::latent_frames(t);
        let mut cache = FeatCache::new();
        let mut outs = Vec::with_capacity(chunks);
        for i in 0..chunks {
            let (start, len) = if i == 0 { (0, 1) } else { (1 + 4 * (i - 1), 4) };
            outs.push(
                self.encoder
                    .forward(video.clone().narrow(2, start, len), &mut cache),
            );
        }
        let h = self.conv1.forward(Tensor::cat(outs, 2));
        let mu = h.narrow(1, 0, self.config.z_dim);
        Ok((mu - self.mean.clone()) * self.inv_std.clone())
    }

    /// Decodes normalised latents `[b, z, N, h, w]` to video `[b, 3, 1 + 4(N−1), 8h, 8w]`,
    /// clamped to [-1, 1]. Equivalent to one [`StreamDecoder::decode`] call on a fresh decoder.
    pub fn decode(&self, latents: Tensor<B, 5>) -> Result<Tensor<B, 5>, InputError> {
        let mut stream = StreamDecoder::new();
        stream.decode(self, latents)
    }

    fn decode_frames(
        &self,
        latents: Tensor<B, 5>,
        cache: &mut FeatCache<B>,
    ) -> Result<Tensor<B, 5>, InputError> {
        let [_, c, n, h, w] = latents.dims();
        if c != self.config.z_dim || n == 0 || h == 0 || w == 0 {
            return Err(InputError::Shape {
                what: "VAE decode input",
                expected: format!(
                    "[batch, {}, latents >= 1, h >= 1, w >= 1]",
                    self.config.z_dim
                ),
                shape: latents.dims().to_vec(),
            });
        }
        let z = latents / self.inv_std.clone() + self.mean.clone();
        let x = self.conv2.forward(z);
        let n = x.dims()[2];
        let outs: Vec<_> = (0..n)
            .map(|i| self.decoder.forward(x.clone().narrow(2, i, 1), cache))
            .collect();
        Ok(Tensor::cat(outs, 2).clamp(-1.0, 1.0))
    }
}

/// Decoder state that persists across calls (`vae_streaming.WanVAE.stream_decode`): the first
/// call starts a sequence, later calls continue it, so decoding a run of latents in several
/// calls yields exactly the frames of decoding it in one call.
#[derive(Debug, Clone)]
pub struct StreamDecoder<B: Backend> {
    cache: FeatCache<B>,
    latents_seen: usize,
}

impl<B: Backend> Default for StreamDecoder<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> StreamDecoder<B> {
    /// A decoder at the start of a sequence.
    pub fn new() -> Self {
        Self {
            cache: FeatCache::new(),
            latents_seen: 0,
        }
    }

    /// Decodes the next latents `[b, z, n, h, w]`; returns `[b, 3, f, 8h, 8w]` with
    /// `f = 1 + 4(n−1)` on the first call of a sequence and `4n` afterwards.
    pub fn decode(
        &mut self,
        vae: &WanVae<B>,
        latents: Tensor<B, 5>,
    ) -> Result<Tensor<B, 5>, InputError> {
        let n = latents.dims()[2];
        let out = vae.decode_frames(latents, &mut self.cache)?;
        self.latents_seen += n;
        Ok(out)
    }

    /// Latent frames decoded since the start of the sequence.
    pub fn latents_seen(&self) -> usize {
        self.latents_seen
    }

    /// Starts a new sequence (the next latent is decoded as a first frame).
    pub fn reset(&mut self) {
        self.cache.clear();
        self.latents_seen = 0;
    }
}
