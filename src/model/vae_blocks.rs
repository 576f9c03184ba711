//! Building blocks of the Wan 2.1 VAE: causal 3D convolution, channel RMS norm, residual block,
//! per-frame attention, the spatial/temporal resample layers, the middle section and the stage
//! list entries, each with the reference's cache behaviour.

use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::{conv2d, conv3d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{FloatDType, Tensor, backend::Backend};

use super::vae_cache::{CacheEntry, FeatCache, next_cache_frames};
use crate::weights::WeightsError;
use crate::weights::loader::{TensorSource, load_reshaped, load_tensor};

/// Kernel, padding and stride of a causal 3D convolution (reference `padding` semantics: the
/// temporal padding is doubled and applied in front only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Kernel size (t, h, w).
    pub kernel: [usize; 3],
    /// Padding (t, h, w) as passed to the reference constructor.
    pub pad: [usize; 3],
    /// Stride (t, h, w).
    pub stride: [usize; 3],
}

impl ConvGeom {
    /// 3×3×3, padding 1, stride 1.
    pub const CUBE3: Self = Self {
        kernel: [3, 3, 3],
        pad: [1, 1, 1],
        stride: [1, 1, 1],
    };
    /// 1×1×1 pointwise.
    pub const POINT: Self = Self {
        kernel: [1, 1, 1],
        pad: [0, 0, 0],
        stride: [1, 1, 1],
    };
}

/// 3D convolution that pads time only in front (causal), spatially symmetric.
#[derive(Debug, Clone)]
pub struct CausalConv3d<B: Backend> {
    weight: Tensor<B, 5>,
    bias: Tensor<B, 1>,
    /// Zero frames prepended when no cache is given (2 × temporal padding).
    front_pad: usize,
    spatial_pad: [usize; 2],
    stride: [usize; 3],
}

impl<B: Backend> CausalConv3d<B> {
    /// Loads `{prefix}.weight` `[out, in, k, k, k]` / `{prefix}.bias` with the geometry `geom`
    ///  (the reference's `CausalConv3d(in, out, k, padding=pad)`).
    pub fn load(
        src: &dyn TensorSource,
        prefix: &str,
        in_ch: usize,
        out_ch: usize,
        geom: ConvGeom,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        let ConvGeom {
            kernel,
            pad,
            stride,
        } = geom;
        Ok(Self {
            weight: load_tensor(
                src,
                &format!("{prefix}.weight"),
                [out_ch, in_ch, kernel[0], kernel[1], kernel[2]],
                device,
            )?,
            bias: load_tensor(src, &format!("{prefix}.bias"), [out_ch], device)?,
            front_pad: 2 * pad[0],
            spatial_pad: [pad[1], pad[2]],
            stride,
        })
    }

    /// Applies the convolution to `x` `[b, c, t, h, w]`; `cache` frames (if any) replace that
    /// many zero frames of the front padding.
    pub fn forward(&self, x: Tensor<B, 5>, cache: Option<&Tensor<B, 5>>) -> Tensor<B, 5> {
        let mut x = x;
        let mut front = self.front_pad;
        if front > 0
            && let Some(c) = cache
        {
            front = front.saturating_sub(c.dims()[2]);
            x = Tensor::cat(vec![c.clone(), x], 2);
        }
        if front > 0 {
            let [b, ch, _, h, w] = x.dims();
            let zeros = Tensor::zeros([b, ch, front, h, w], &x.device());
            x = Tensor::cat(vec![zeros, x], 2);
        }
        conv3d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            ConvOptions::new(
                self.stride,
                [0, self.spatial_pad[0], self.spatial_pad[1]],
                [1, 1, 1],
                1,
            ),
        )
    }

    /// Runs the convolution as one cached step: uses the slot's frames as history and replaces
    /// them with the last frames of this input.
    pub fn forward_cached(&self, x: Tensor<B, 5>, cache: &mut FeatCache<B>) -> Tensor<B, 5> {
        let (idx, prev) = cache.take_next();
        let prev = match prev {
            Some(CacheEntry::Frames(f)) => Some(f),
            _ => None,
        };
        let keep = next_cache_frames(&x, prev.as_ref());
        let out = self.forward(x, prev.as_ref());
        cache.put(idx, CacheEntry::Frames(keep));
        out
    }
}

/// `F.normalize(x, dim=1) · √C · γ`: L2 normalisation over channels (norm clamped at 1e-12).
#[derive(Debug, Clone)]
pub struct RmsNorm<B: Backend> {
    /// γ · √C, shaped to broadcast over `[b, c, ...]`.
    gamma: Tensor<B, 1>,
    scale: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// Loads `{prefix}.gamma`, stored `[C,1,1,1]` (video form) or `[C,1,1]` (image form).
    pub fn load(
        src: &dyn TensorSource,
        prefix: &str,
        channels: usize,
        image_form: bool,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        let key = format!("{prefix}.gamma");
        let gamma = if image_form {
            load_reshaped(src, &key, &[channels, 1, 1], [channels], device)?
        } else {
            load_reshaped(src, &key, &[channels, 1, 1, 1], [channels], device)?
        };
        Ok(Self {
            gamma,
            scale: (channels as f64).sqrt(),
        })
    }

    /// Normalises `x` `[b, c, ...]` over dim 1 (any rank ≥ 2). The norm is taken in f32 even
    /// for half-precision activations, then the result returns to the input dtype.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let xf = x.cast(FloatDType::F32);
        let norm = xf.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
        let normed = (xf / norm).cast(dtype);
        let mut gshape = [1usize; D];
        gshape[1] = self.gamma.dims()[0];
        let gamma = self.gamma.clone().reshape(gshape);
        normed * self.scale * gamma
    }
}

/// `ResidualBlock(in, out)`: RMS → SiLU → CConv3 → RMS → SiLU → CConv3, plus a 1×1×1 shortcut
/// when the width changes.
#[derive(Debug, Clone)]
pub struct ResidualBlock<B: Backend> {
    norm1: RmsNorm<B>,
    conv1: CausalConv3d<B>,
    norm2: RmsNorm<B>,
    conv2: CausalConv3d<B>,
    shortcut: Option<CausalConv3d<B>>,
}

impl<B: Backend> ResidualBlock<B> {
    /// Loads `{prefix}.residual.{0,2,3,6}` and `{prefix}.shortcut` (if `in ≠ out`).
    pub fn load(
        src: &dyn TensorSource,
        prefix: &str,
        in_ch: usize,
        out_ch: usize,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            norm1: RmsNorm::load(src, &format!("{prefix}.residual.0"), in_ch, false, device)?,
            conv1: CausalConv3d::load(
                src,
                &format!("{prefix}.residual.2"),
                in_ch,
                out_ch,
                ConvGeom::CUBE3,
                device,
            )?,
            norm2: RmsNorm::load(src, &format!("{prefix}.residual.3"), out_ch, false, device)?,
            conv2: CausalConv3d::load(
                src,
                &format!("{prefix}.residual.6"),
                out_ch,
                out_ch,
                ConvGeom::CUBE3,
                device,
            )?,
            shortcut: if in_ch != out_ch {
                Some(CausalConv3d::load(
                    src,
                    &format!("{prefix}.shortcut"),
                    in_ch,
                    out_ch,
                    ConvGeom::POINT,
                    device,
                )?)
            } else {
                None
            },
        })
    }

    /// One cached chunk through the block.
    pub fn forward(&self, x: Tensor<B, 5>, cache: &mut FeatCache<B>) -> Tensor<B, 5> {
        let h = match &self.shortcut {
            Some(s) => s.forward(x.clone(), None),
            None => x.clone(),
        };
        let r = silu(self.norm1.forward(x));
        let r = self.conv1.forward_cached(r, cache);
        let r = silu(self.norm2.forward(r));
        let r = self.conv2.forward_cached(r, cache);
        r + h
    }
}

/// 2D 3×3 (or 1×1) convolution applied to every frame.
#[derive(Debug, Clone)]
pub struct Conv2d<B: Backend> {
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    stride: usize,
    pad: usize,
}

impl<B: Backend> Conv2d<B> {
    /// Loads `{prefix}.weight` `[out, in, k, k]` and `{prefix}.bias`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        src: &dyn TensorSource,
        prefix: &str,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            weight: load_tensor(
                src,
                &format!("{prefix}.weight"),
                [out_ch, in_ch, kernel, kernel],
                device,
            )?,
            bias: load_tensor(src, &format!("{prefix}.bias"), [out_ch], device)?,
            stride,
            pad,
        })
    }

    /// `x` `[n, c, h, w]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            ConvOptions::new([self.stride, self.stride], [self.pad, self.pad], [1, 1], 1),
        )
    }
}

/// `[b, c, t, h, w]` → `[b·t, c, h, w]` (frames become batch items).
pub fn frames_to_batch<B: Backend>(x: Tensor<B, 5>) -> Tensor<B, 4> {
    let [b, c, t, h, w] = x.dims();
    x.permute([0, 2, 1, 3, 4]).reshape([b * t, c, h, w])
}

/// `[b·t, c, h, w]` → `[b, c, t, h, w]`.
pub fn batch_to_frames<B: Backend>(x: Tensor<B, 4>, b: usize) -> Tensor<B, 5> {
    let [bt, c, h, w] = x.dims();
    x.reshape([b, bt / b, c, h, w]).permute([0, 2, 1, 3, 4])
}

/// Single-head self-attention over the pixels of each frame (middle blocks only).
#[derive(Debug, Clone)]
pub struct AttentionBlock<B: Backend> {
    norm: RmsNorm<B>,
    to_qkv: Conv2d<B>,
    proj: Conv2d<B>,
    channels: usize,
}

impl<B: Backend> AttentionBlock<B> {
    /// Loads `{prefix}.norm`, `{prefix}.to_qkv`, `{prefix}.proj`.
    pub fn load(
        src: &dyn TensorSource,
        prefix: &str,
        channels: usize,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            norm: RmsNorm::load(src, &format!("{prefix}.norm"), channels, true, device)?,
            to_qkv: Conv2d::load(
                src,
                &format!("{prefix}.to_qkv"),
                channels,
                channels * 3,
                1,
                1,
                0,
                device,
            )?,
            proj: Conv2d::load(
                src,
                &format!("{prefix}.proj"),
                channels,
                channels,
                1,
                1,
                0,
                device,
            )?,
            channels,
        })
    }

    /// Attention of every frame of `x` `[b, c, t, h, w]` with itself, plus the identity.
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let [b, c, _, h, w] = x.dims();
        let identity = x.clone();
        let f = self.norm.forward(frames_to_batch(x));
        let n = f.dims()[0];
        // [n, 3c, h·w] → [n, h·w, 3c]; q, k, v are consecutive channel thirds.
        let qkv = self
            .to_qkv
            .forward(f)
            .reshape([n, 3 * c, h * w])
            .swap_dims(1, 2);
        let q = qkv.clone().narrow(2, 0, c);
        let k = qkv.clone().narrow(2, c, c);
        let v = qkv.narrow(2, 2 * c, c);
        let scale = 1.0 / (self.channels as f64).sqrt();
        let attn = softmax(q.matmul(k.swap_dims(1, 2)) * scale, 2);
        let o = attn.matmul(v).swap_dims(1, 2).reshape([n, c, h, w]);
        batch_to_frames(self.proj.forward(o), b) + identity
    }
}

/// Spatial ×2 nearest upsampling of `[n, c, h, w]` (for an exact factor 2, `nearest-exact`
/// maps output pixel `i` to input `i / 2`, i.e. plain pixel repetition).
pub fn upsample_nearest2x<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1])
        .expand([n, c, h, 2, w, 2])
        .reshape([n, c, 2 * h, 2 * w])
}

/// Which resample a [`Resample`] layer performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResampleMode {
    /// Nearest ×2 then 3×3 conv halving channels.
    Upsample2d,
    /// Temporal ×2 (channel halves interleaved in time), then as `Upsample2d`.
    Upsample3d,
    /// Right/bottom zero pad then 3×3 stride-2 conv.
    Downsample2d,
    /// As `Downsample2d`, then temporal stride-2 conv over (last cached frame, chunk).
    Downsample3d,
}

/// The reference `Resample` layer.
#[derive(Debug, Clone)]
pub struct Resample<B: Backend> {
    mode: ResampleMode,
    conv: Conv2d<B>,
    time_conv: Option<CausalConv3d<B>>,
}

impl<B: Backend> Resample<B> {
    /// Loads `{prefix}.resample.1` and, for the 3d modes, `{prefix}.time_conv`.
    pub fn load(
        src: &dyn TensorSource,
        prefix: &str,
        channels: usize,
        mode: ResampleMode,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        let rkey = format!("{prefix}.resample.1");
        let tkey = format!("{prefix}.time_conv");
        let (conv, time_conv) = match mode {
            ResampleMode::Upsample2d | ResampleMode::Upsample3d => {
                let conv = Conv2d::load(src, &rkey, channels, channels / 2, 3, 1, 1, device)?;
                let tc = if mode == ResampleMode::Upsample3d {
                    Some(CausalConv3d::load(
                        src,
                        &tkey,
                        channels,
                        channels * 2,
                        ConvGeom {
                            kernel: [3, 1, 1],
                            pad: [1, 0, 0],
                            stride: [1, 1, 1],
                        },
                        device,
                    )?)
                } else {
                    None
                };
                (conv, tc)
            }
            ResampleMode::Downsample2d | ResampleMode::Downsample3d => {
                let conv = Conv2d::load(src, &rkey, channels, channels, 3, 2, 0, device)?;
                let tc = if mode == ResampleMode::Downsample3d {
                    Some(CausalConv3d::load(
                        src,
                        &tkey,
                        channels,
                        channels,
                        ConvGeom {
                            kernel: [3, 1, 1],
                            pad: [0, 0, 0],
                            stride: [2, 1, 1],
                        },
                        device,
                    )?)
                } else {
                    None
                };
                (conv, tc)
            }
        };
        Ok(Self {
            mode,
            conv,
            time_conv,
        })
    }

    /// One cached chunk through the layer.
    pub fn forward(&self, x: Tensor<B, 5>, cache: &mut FeatCache<B>) -> Tensor<B, 5> {
        let mut x = x;
        if let (ResampleMode::Upsample3d, Some(tc)) = (self.mode, &self.time_conv) {
            x = temporal_upsample(tc, x, cache);
        }
        let b = x.dims()[0];
        let f = frames_to_batch(x);
        let f = match self.mode {
            ResampleMode::Upsample2d | ResampleMode::Upsample3d => {
                self.conv.forward(upsample_nearest2x(f))
            }
            ResampleMode::Downsample2d | ResampleMode::Downsample3d => {
                // ZeroPad2d((0, 1, 0, 1)): one zero column on the right, one row at the bottom.
                let [n, c, h, w] = f.dims();
                let dev = f.device();
                let f = Tensor::cat(vec![f, Tensor::zeros([n, c, h, 1], &dev)], 3);
                let f = Tensor::cat(vec![f, Tensor::zeros([n, c, 1, w + 1], &dev)], 2);
                self.conv.forward(f)
            }
        };
        let mut x = batch_to_frames(f, b);
        if let (ResampleMode::Downsample3d, Some(tc)) = (self.mode, &self.time_conv) {
            x = temporal_downsample(tc, x, cache);
        }
        x
    }
}

/// Decoder temporal upsample with the reference's three regimes: first chunk skips the time
/// conv (slot becomes `Rep`), second chunk runs it with zero history, later chunks use the
/// cached frames. The doubled channels are interleaved in time.
fn temporal_upsample<B: Backend>(
    tc: &CausalConv3d<B>,
    x: Tensor<B, 5>,
    cache: &mut FeatCache<B>,
) -> Tensor<B, 5> {
    let (idx, prev) = cache.take_next();
    let (y, keep) = match prev {
        None => {
            cache.put(idx, CacheEntry::Rep);
            return x;
        }
        Some(CacheEntry::Rep) => {
            let t = x.dims()[2];
            let keep = if t < 2 {
                // Zero frame in front of a single-frame chunk, as the reference does for `Rep`.
                Tensor::cat(vec![x.zeros_like(), x.clone()], 2)
            } else {
                x.clone().narrow(2, t - 2, 2)
            };
            (tc.forward(x, None), keep)
        }
        Some(CacheEntry::Frames(f)) => {
            let keep = next_cache_frames(&x, Some(&f));
            (tc.forward(x, Some(&f)), keep)
        }
    };
    cache.put(idx, CacheEntry::Frames(keep));
    let [b, c2, t, h, w] = y.dims();
    let c = c2 / 2;
    y.reshape([b, 2, c, t, h, w])
        .permute([0, 2, 3, 1, 4, 5])
        .reshape([b, c, t * 2, h, w])
}

/// Encoder temporal downsample: the first chunk is only remembered; later chunks run the
/// stride-2 time conv over (last frame of the previous chunk, this chunk).
fn temporal_downsample<B: Backend>(
    tc: &CausalConv3d<B>,
    x: Tensor<B, 5>,
    cache: &mut FeatCache<B>,
) -> Tensor<B, 5> {
    let (idx, prev) = cache.take_next();
    match prev {
        Some(CacheEntry::Frames(p)) => {
            let t = x.dims()[2];
            let keep = x.clone().narrow(2, t - 1, 1);
            let pt = p.dims()[2];
            let y = tc.forward(Tensor::cat(vec![p.narrow(2, pt - 1, 1), x], 2), None);
            cache.put(idx, CacheEntry::Frames(keep));
            y
        }
        _ => {
            cache.put(idx, CacheEntry::Frames(x.clone()));
            x
        }
    }
}

/// One entry of `encoder.downsamples` / `decoder.upsamples`.
#[derive(Debug, Clone)]
pub enum Stage<B: Backend> {
    /// Residual block.
    Res(ResidualBlock<B>),
    /// Attention block (only with non-empty `attn_scales`).
    Attn(AttentionBlock<B>),
    /// Spatial / temporal resample.
    Resample(Resample<B>),
}

impl<B: Backend> Stage<B> {
    /// One cached chunk through the stage.
    pub fn forward(&self, x: Tensor<B, 5>, cache: &mut FeatCache<B>) -> Tensor<B, 5> {
        match self {
            Stage::Res(r) => r.forward(x, cache),
            Stage::Attn(a) => a.forward(x),
            Stage::Resample(r) => r.forward(x, cache),
        }
    }
}

/// Middle section shared by encoder and decoder: Res, Attn, Res.
#[derive(Debug, Clone)]
pub struct Middle<B: Backend> {
    res0: ResidualBlock<B>,
    attn: AttentionBlock<B>,
    res2: ResidualBlock<B>,
}

impl<B: Backend> Middle<B> {
    /// Loads `{prefix}.middle.{0,1,2}`.
    pub fn load(
        src: &dyn TensorSource,
        prefix: &str,
        ch: usize,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            res0: ResidualBlock::load(src, &format!("{prefix}.middle.0"), ch, ch, device)?,
            attn: AttentionBlock::load(src, &format!("{prefix}.middle.1"), ch, device)?,
            res2: ResidualBlock::load(src, &format!("{prefix}.middle.2"), ch, ch, device)?,
        })
    }

    /// One cached chunk through the middle section.
    pub fn forward(&self, x: Tensor<B, 5>, cache: &mut FeatCache<B>) -> Tensor<B, 5> {
        let x = self.res0.forward(x, cache);
        let x = self.attn.forward(x);
        self.res2.forward(x, cache)
    }
}
