//! The Wan 2.1 VAE encoder (`Encoder3d`): video chunk → 2·z_dim channels at 1/8 spatial and
//! 1/4 temporal resolution, with the per-convolution cache carried between chunks.

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

/// `Encoder3d` of the reference.
#[derive(Debug, Clone)]
pub struct VaeEncoder<B: Backend> {
    conv1: CausalConv3d<B>,
    downsamples: Vec<Stage<B>>,
    middle: Middle<B>,
    head_norm: RmsNorm<B>,
    head_conv: CausalConv3d<B>,
}

impl<B: Backend> VaeEncoder<B> {
    /// Loads the `encoder.*` keys for `cfg`.
    pub fn load(
        src: &dyn TensorSource,
        cfg: &VaeConfig,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        let dims: Vec<usize> = std::iter::once(1)
            .chain(cfg.dim_mult.iter().copied())
            .map(|m| cfg.dim * m)
            .collect();
        let conv1 = CausalConv3d::load(src, "encoder.conv1", 3, dims[0], ConvGeom::CUBE3, device)?;
        let mut downsamples = Vec::new();
        let mut scale = 1.0f64;
        let mut out_dim = dims[0];
        for i in 0..cfg.dim_mult.len() {
            let mut in_dim = dims[i];
            out_dim = dims[i + 1];
            for _ in 0..cfg.num_res_blocks {
                let p = format!("encoder.downsamples.{}", downsamples.len());
                downsamples.push(Stage::Res(ResidualBlock::load(
                    src, &p, in_dim, out_dim, device,
                )?));
                if cfg.attn_scales.contains(&scale) {
                    let p = format!("encoder.downsamples.{}", downsamples.len());
                    downsamples.push(Stage::Attn(AttentionBlock::load(src, &p, out_dim, device)?));
                }
                in_dim = out_dim;
            }
            if i != cfg.dim_mult.len() - 1 {
                let mode = if cfg.temperal_downsample.get(i).copied().unwrap_or(false) {
                    ResampleMode::Downsample3d
                } else {
                    ResampleMode::Downsample2d
                };
                let p = format!("encoder.downsamples.{}", downsamples.len());
                downsamples.push(Stage::Resample(Resample::load(
                    src, &p, out_dim, mode, device,
                )?));
                scale /= 2.0;
            }
        }
        Ok(Self {
            conv1,
            downsamples,
            middle: Middle::load(src, "encoder", out_dim, device)?,
            head_norm: RmsNorm::load(src, "encoder.head.0", out_dim, false, device)?,
            head_conv: CausalConv3d::load(
                src,
                "encoder.head.2",
                out_dim,
                cfg.z_dim * 2,
                ConvGeom::CUBE3,
                device,
            )?,
        })
    }

    /// Encodes one chunk (1 frame first, then 4 frames each) continuing `cache`.
    pub fn forward(&self, x: Tensor<B, 5>, cache: &mut FeatCache<B>) -> Tensor<B, 5> {
        cache.start_chunk();
        let mut x = self.conv1.forward_cached(x, cache);
        for stage in &self.downsamples {
            x = stage.forward(x, cache);
        }
        let x = self.middle.forward(x, cache);
        let x = silu(self.head_norm.forward(x));
        self.head_conv.forward_cached(x, cache)
    }
}
