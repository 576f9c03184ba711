//! The DiT's hot operations — dense layers and attention — behind one trait, [`HotOps`], with
//! two implementations: plain burn ([`fallback::BurnKernels`], what runs on the CPU and in
//! the tests) and, in `cuda` builds, hand-picked GPU kernels ([`cuda::CudaKernels`]: cuBLASLt
//! GEMMs with fused epilogues and a flash-attention kernel) that work on burn-cuda's own
//! buffers and stream. [`hot_ops`] picks the implementation for a backend.

pub mod fallback;
pub mod host_tensor;

#[cfg(feature = "cuda")]
pub mod cuda;

use std::sync::atomic::{AtomicU8, Ordering};

use burn::tensor::{Int, Tensor, backend::Backend};

/// The pointwise function applied after a dense layer's bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    /// GELU with the tanh approximation (`torch.nn.GELU(approximate="tanh")`).
    GeluTanh,
}

/// A linear layer's `[out, in]` weight held as FP8 e4m3fn codes with one scale per tensor, as
/// the reference's FP8 linears keep it (spec §3.9): the weight is `decode(codes) · scales[0]`.
#[derive(Debug, Clone)]
pub struct Fp8Matrix<B: Backend> {
    /// `[out, in]` e4m3fn codes, one byte each.
    pub codes: Tensor<B, 2, Int>,
    /// `[1/s, max|W|]` in f32, on the device.
    pub scales: Tensor<B, 1>,
}

impl<B: Backend> Fp8Matrix<B> {
    /// `[out, in]`.
    pub fn dims(&self) -> [usize; 2] {
        self.codes.dims()
    }

    /// The weight these codes stand for, in f32 (through the host: for checks, not rendering).
    pub fn decode(&self) -> Tensor<B, 2> {
        fallback::decode_fp8(self)
    }
}

/// Runs `task` where the backend's own calls are cheapest: on burn-cuda's device thread for a
/// CUDA device (see `cuda::on_device_thread`), directly otherwise. The DiT's calls run through
/// this.
pub fn on_device_thread<B: Backend, R: Send + 'static>(
    device: &B::Device,
    task: impl FnOnce() -> R + Send,
) -> R {
    #[cfg(feature = "cuda")]
    {
        cuda::on_device_thread::<B, R>(device, task)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = device;
        task()
    }
}

/// `x` through each FP8 layer on its own ([`HotOps::linears_fp8`] without the shared
/// quantisation).
pub(crate) fn linear_fp8_each<B: Backend, O: HotOps<B> + ?Sized>(
    ops: &O,
    x: Tensor<B, 2>,
    layers: &[(&Fp8Matrix<B>, Option<&Tensor<B, 1>>)],
) -> Vec<Tensor<B, 2>> {
    layers
        .iter()
        .map(|(weight, bias)| ops.linear_fp8(x.clone(), weight, *bias, Activation::None))
        .collect()
}

/// The operations that dominate a DiT call.
pub trait HotOps<B: Backend>: Send + Sync {
    /// A short name for logs and the `bench` report.
    fn name(&self) -> &'static str;

    /// `activation(x·weight_t + bias)` for `x` `[rows, in]` and `weight_t` `[in, out]`.
    fn linear(
        &self,
        x: Tensor<B, 2>,
        weight_t: &Tensor<B, 2>,
        bias: Option<&Tensor<B, 1>>,
        activation: Activation,
    ) -> Tensor<B, 2>;

    /// Whether [`HotOps::linear_fp8`] runs on FP8 tensor cores on `device` (otherwise it is an
    /// exact but slow emulation, and loaders keep FP8 weights dequantised instead).
    fn native_fp8(&self, device: &B::Device) -> bool;

    /// Quantises an `[out, in]` weight to e4m3 with a per-tensor scale (spec §3.9), the scaled
    /// weight rounded to bf16 first as the reference's bf16 weights are.
    fn quantize_fp8(&self, weight: Tensor<B, 2>) -> Fp8Matrix<B>;

    /// `activation(x·Wᵀ + bias)` for an FP8 weight, with `x` `[rows, in]` quantised to e4m3
    /// per tensor on the way in, as the reference's `FP8ScaleLinear` does.
    fn linear_fp8(
        &self,
        x: Tensor<B, 2>,
        weight: &Fp8Matrix<B>,
        bias: Option<&Tensor<B, 1>>,
        activation: Activation,
    ) -> Tensor<B, 2>;

    /// [`HotOps::linear_fp8`] of one input through several FP8 layers without activation (the
    /// self-attention's q, k and v projections): the same outputs, with the input quantised
    /// once for all of them where the kernels allow.
    fn linears_fp8(
        &self,
        x: Tensor<B, 2>,
        layers: &[(&Fp8Matrix<B>, Option<&Tensor<B, 1>>)],
    ) -> Vec<Tensor<B, 2>> {
        linear_fp8_each(self, x, layers)
    }

    /// Scaled dot-product attention without a mask. Inputs are `[batch, len, heads,
    /// head_dim]` (keys and values may be longer than the queries); the output is `[batch,
    /// len_q, heads·head_dim]`.
    fn attention(&self, q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 3>;

    /// [`HotOps::attention`] over keys and values given in two segments along the sequence
    /// (`first` then `second`, each `(keys, values)`), as if they were concatenated.
    fn attention_segments(
        &self,
        q: Tensor<B, 4>,
        first: (Tensor<B, 4>, Tensor<B, 4>),
        second: (Tensor<B, 4>, Tensor<B, 4>),
    ) -> Tensor<B, 3>;

    /// `LayerNorm(x)·(1 + scale) + shift` over the last dimension (no affine parameters, biased
    /// variance), for `x` `[groups, per_group, dim]` and `scale` / `shift` `[groups, 1, dim]`.
    fn modulated_layer_norm(
        &self,
        x: Tensor<B, 3>,
        scale: Tensor<B, 3>,
        shift: Tensor<B, 3>,
        eps: f64,
    ) -> Tensor<B, 3>;

    /// `LayerNorm(x)·weight + bias` over the last dimension of `x` `[rows, dim]`.
    fn affine_layer_norm(
        &self,
        x: Tensor<B, 2>,
        weight: &Tensor<B, 1>,
        bias: &Tensor<B, 1>,
        eps: f64,
    ) -> Tensor<B, 2>;

    /// `x / sqrt(mean(x²) + eps) · weight` over the last dimension of `x` `[rows, dim]`.
    fn rms_norm(&self, x: Tensor<B, 2>, weight: &Tensor<B, 1>, eps: f64) -> Tensor<B, 2>;

    /// Rotates the interleaved channel pairs `(2k, 2k+1)` of `x` `[tokens, heads, head_dim]`
    /// by the angles whose cosines and sines are `cos` / `sin` `[tokens, head_dim / 2]`.
    fn rope(&self, x: Tensor<B, 3>, cos: &Tensor<B, 2>, sin: &Tensor<B, 2>) -> Tensor<B, 3>;

    /// `x + y·gate` for `x`, `y` `[groups, per_group, dim]` and `gate` `[groups, 1, dim]`.
    fn gated_residual(&self, x: Tensor<B, 3>, y: Tensor<B, 3>, gate: Tensor<B, 3>) -> Tensor<B, 3>;
}

/// Which implementation [`hot_ops`] hands out where a choice exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelChoice {
    /// The fastest one this build has for the backend.
    Fast,
    /// Plain burn everywhere (for comparisons, and a way around a kernel problem).
    Burn,
}

const UNSET: u8 = 0;
const FAST: u8 = 1;
const BURN: u8 = 2;
static CHOICE: AtomicU8 = AtomicU8::new(UNSET);

/// Sets the process-wide choice (the `AVATAR_STUDIO_KERNELS` variable, `burn` or `fast`, sets
/// the default).
pub fn set_kernel_choice(choice: KernelChoice) {
    let value = match choice {
        KernelChoice::Fast => FAST,
        KernelChoice::Burn => BURN,
    };
    CHOICE.store(value, Ordering::Relaxed);
}

/// The current process-wide choice.
pub fn kernel_choice() -> KernelChoice {
    match CHOICE.load(Ordering::Relaxed) {
        FAST => KernelChoice::Fast,
        BURN => KernelChoice::Burn,
        _ => {
            let from_env = std::env::var("AVATAR_STUDIO_KERNELS")
                .map(|v| v.eq_ignore_ascii_case("burn"))
                .unwrap_or(false);
            let choice = if from_env {
                KernelChoice::Burn
            } else {
                KernelChoice::Fast
            };
            set_kernel_choice(choice);
            choice
        }
    }
}

/// The implementation used for backend `B`: the CUDA kernels for burn-cuda tensors (unless
/// [`KernelChoice::Burn`] is set), plain burn otherwise.
pub fn hot_ops<B: Backend>() -> &'static dyn HotOps<B> {
    #[cfg(feature = "cuda")]
    if kernel_choice() == KernelChoice::Fast && cuda::serves::<B>() {
        return &cuda::CudaKernels;
    }
    &fallback::BurnKernels
}
