//! The Wan 2.1 VAE decoder (`Decoder3d`): one latent frame per call, continuing the
//! per-convolution cache; the first latent yields 1 frame, each later one 4 frames.

use burn::tensor::activation::silu;
use burn::tensor::{Tensor, backend::Backend};

use super::vae::VaeConfig;
use super::vae_blocks::{
    AttentionBlock, CausalConv3d, ConvGeom, Middle, Resample, ResampleMode, ResidualBlock, RmsNorm,
    Stage,
};
use super::vae_cache::FeatCache;
use crate::weights::WeightsError;
use crate::weights::loader::TensorSource;

/// `Decoder3d` of the reference.
#[derive(Debug, Clone)]
pub struct VaeDecoder<B: Backend> {
    conv1: CausalConv3d<B>,
    middle: Middle<B>,
    upsamples: Vec<Stage<B>>,
    head_norm: RmsNorm<B>,
    head_conv: CausalConv3d<B>,
}

impl<B: Backend> VaeDecoder<B> {
    /// Loads the `decoder.*` keys for `cfg`.
    pub fn load(
        src: &dyn TensorSource,
        cfg: &VaeConfig,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        let n = cfg.dim_mult.len();
        let last = cfg.dim_mult.last().copied().unwrap_or(1);
        let dims: Vec<usize> = std::iter::once(last)
            .chain(cfg.dim_mult.iter().rev().copied())
            .map(|m| cfg.dim * m)
            .collect();
        let temperal_upsample: Vec<bool> = cfg.temperal_downsample.iter().rev().copied().collect();
        let conv1 = CausalConv3d::load(
            src,
            "decoder.conv1",
            cfg.z_dim,
            dims[0],
            ConvGeom::CUBE3,
            device,
        )?;
        let middle = Middle::load(src, "decoder", dims[0], device)?;
        let mut upsamples = Vec::new();
        let mut scale = 1.0 / 2f64.powi(n as i32 - 2);
        let mut out_dim = dims[0];
        for i in 0..n {
            let mut in_dim = dims[i];
            out_dim = dims[i + 1];
            // After a resample the width was halved by its conv (reference: i in 1..=3).
            if (1..=3).contains(&i) {
                in_dim /= 2;
            }
            for _ in 0..cfg.num_res_blocks + 1 {
                let p = format!("decoder.upsamples.{}", upsamples.len());
                upsamples.push(Stage::Res(ResidualBlock::load(
                    src, &p, in_dim, out_dim, device,
                )?));
                if cfg.attn_scales.contains(&scale) {
                    let p = format!("decoder.upsamples.{}", upsamples.len());
                    upsamples.push(Stage::Attn(AttentionBlock::load(src, &p, out_dim, device)?));
                }
                in_dim = out_dim;
            }
            if i != n - 1 {
                let mode = if temperal_upsample.get(i).copied().unwrap_or(false) {
                    ResampleMode::Upsample3d
                } else {
                    ResampleMode::Upsample2d
                };
                let p = format!("decoder.upsamples.{}", upsamples.len());
                upsamples.push(Stage::Resample(Resample::load(
                    src, &p, out_dim, mode, device,
                )?));
                scale *= 2.0;
            }
        }
        Ok(Self {
            conv1,
            middle,
            upsamples,
            head_norm: RmsNorm::load(src, "decoder.head.0", out_dim, false, device)?,
            head_conv: CausalConv3d::load(
                src,
                "decoder.head.2",
                out_dim,
                3,
                ConvGeom::CUBE3,
                device,
            )?,
        })
    }

    /// Decodes one latent frame `[b, z_dim, 1, h, w]` (after `conv2`), continuing `cache`.
    pub fn forward(&self, x: Tensor<B, 5>, cache: &mut FeatCache<B>) -> Tensor<B, 5> {
        cache.start_chunk();
        let x = self.conv1.forward_cached(x, cache);
        let mut x = self.middle.forward(x, cache);
        for stage in &self.upsamples {
            x = stage.forward(x, cache);
        }
        let x = silu(self.head_norm.forward(x));
        self.head_conv.forward_cached(x, cache)
    }
}
