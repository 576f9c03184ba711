//! FramePack motion tokens (`FramePackMotioner`): the last motion latents packed at 1×, 2× and
//! 4× compression, with their fixed (never rolled) negative temporal RoPE positions.

use burn::tensor::{Tensor, backend::Backend};

use super::config::DitConfig;
use super::layers::{ParameterSource, PatchConv3d};
use super::rope::RopeGroup;

/// The three FramePack projections.
#[derive(Debug, Clone)]
pub struct FramePack<B: Backend> {
    pub proj: PatchConv3d<B>,
    pub proj_2x: PatchConv3d<B>,
    pub proj_4x: PatchConv3d<B>,
    pub buckets: [usize; 3],
}

impl<B: Backend> FramePack<B> {
    pub fn load<S: ParameterSource<B>>(src: &S, config: &DitConfig) -> Result<Self, S::Error> {
        let [pt, ph, pw] = config.patch_size;
        let channels = config.in_dim;
        Ok(Self {
            proj: PatchConv3d::load(src, "frame_packer.proj", channels, config.dim, [pt, ph, pw])?,
            proj_2x: PatchConv3d::load(
                src,
                "frame_packer.proj_2x",
                channels,
                config.dim,
                [2 * pt, 2 * ph, 2 * pw],
            )?,
            proj_4x: PatchConv3d::load(
                src,
                "frame_packer.proj_4x",
                channels,
                config.dim,
                [4 * pt, 4 * ph, 4 * pw],
            )?,
            buckets: config.framepack_buckets,
        })
    }

    /// `motion_latents` is `[C, T_m, h, w]`. Returns the tokens `[post, 2x, 4x]` as
    /// `[tokens, dim]`. Fewer than `sum(buckets)` latents are zero-padded at the front.
    pub fn forward(&self, motion_latents: Tensor<B, 4>) -> Tensor<B, 2> {
        let [channels, frames, height, width] = motion_latents.dims();
        let total: usize = self.buckets.iter().sum();
        let kept = frames.min(total);
        let recent = motion_latents.narrow(1, frames - kept, kept);
        let packed = if kept < total {
            let zeros = Tensor::zeros([channels, total - kept, height, width], &recent.device());
            Tensor::cat(vec![zeros, recent], 1)
        } else {
            recent
        };
        let [b_post, b_2x, b_4x] = self.buckets;
        let latents_4x = packed.clone().narrow(1, 0, b_4x);
        let latents_2x = packed.clone().narrow(1, b_4x, b_2x);
        let latents_post = packed.narrow(1, b_4x + b_2x, b_post);
        let (post, _) = self.proj.forward(latents_post);
        let (x2, _) = self.proj_2x.forward(latents_2x);
        let (x4, _) = self.proj_4x.forward(latents_4x);
        Tensor::cat(vec![post, x2, x4], 0)
    }
}

/// RoPE groups of the FramePack tokens for a latent grid `h × w` (patch grid `hp × wp`).
pub fn motion_rope_groups(
    buckets: [usize; 3],
    latent_height: usize,
    latent_width: usize,
    patch: [usize; 3],
) -> [RopeGroup; 3] {
    let hp = (latent_height / patch[1]) as i64;
    let wp = (latent_width / patch[2]) as i64;
    let [b_post, b_2x, b_4x] = buckets.map(|b| b as i64);
    let (h, w) = (latent_height as i64, latent_width as i64);
    let post_start = -b_post;
    let start_2x = -(b_post + b_2x);
    let start_4x = -(b_post + b_2x + b_4x);
    [
        RopeGroup {
            start: [post_start, 0, 0],
            end: [post_start + b_post, hp, wp],
            range: [b_post, hp, wp],
        },
        RopeGroup {
            start: [start_2x, 0, 0],
            end: [start_2x + b_2x / 2, h / 4, w / 4],
            range: [b_2x, hp, wp],
        },
        RopeGroup {
            start: [start_4x, 0, 0],
            end: [start_4x + b_4x / 4, h / 8, w / 8],
            range: [b_4x, hp, wp],
        },
    ]
}
