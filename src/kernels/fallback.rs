//! The hot operations in plain burn: what every backend can run, and the reference the CUDA
//! kernels are tested against.

use burn::tensor::activation::{gelu_approximate, softmax};
use burn::tensor::{DType, Int, Tensor, TensorData, backend::Backend};

use super::{Activation, Fp8Matrix, HotOps};
use crate::weights::fp8::{Fp8Weight, e4m3_to_f32};

/// Plain-burn implementation of [`HotOps`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BurnKernels;

/// Largest attention score matrix materialised at once (elements); bigger problems are split
/// over heads so that a 14B streaming call does not need the full `[heads, Lq, Lk]` at once.
const MAX_SCORE_ELEMENTS: usize = 1 << 28;

impl<B: Backend> HotOps<B> for BurnKernels {
    fn name(&self) -> &'static str {
        "burn"
    }

    fn linear(
        &self,
        x: Tensor<B, 2>,
        weight_t: &Tensor<B, 2>,
        bias: Option<&Tensor<B, 1>>,
        activation: Activation,
    ) -> Tensor<B, 2> {
        let y = x.matmul(weight_t.clone());
        let y = match bias {
            Some(bias) => y + bias.clone().unsqueeze_dim(0),
            None => y,
        };
        match activation {
            Activation::None => y,
            Activation::GeluTanh => gelu_approximate(y),
        }
    }

    fn attention(&self, q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 3> {
        let [batch, len_q, heads, head_dim] = q.dims();
        let len_k = k.dims()[1];
        let per_head = (batch * len_q * len_k).max(1);
        let heads_per_chunk = (MAX_SCORE_ELEMENTS / per_head).clamp(1, heads.max(1));
        let scale = 1.0 / (head_dim as f64).sqrt();
        let q = q.swap_dims(1, 2);
        let k = k.swap_dims(1, 2);
        let v = v.swap_dims(1, 2);
        let mut outputs = Vec::with_capacity(heads.div_ceil(heads_per_chunk));
        for first in (0..heads).step_by(heads_per_chunk) {
            let count = heads_per_chunk.min(heads - first);
            let qh = q.clone().narrow(1, first, count);
            let kh = k.clone().narrow(1, first, count);
            let vh = v.clone().narrow(1, first, count);
            let scores = qh.matmul(kh.transpose()).mul_scalar(scale);
            outputs.push(softmax(scores, 3).matmul(vh));
        }
        Tensor::cat(outputs, 1)
            .swap_dims(1, 2)
            .reshape([batch, len_q, heads * head_dim])
    }

    fn native_fp8(&self, _device: &B::Device) -> bool {
        false
    }

    /// On the host, with the same rounding as the CUDA kernel and the reference.
    fn quantize_fp8(&self, weight: Tensor<B, 2>) -> Fp8Matrix<B> {
        let device = weight.device();
        let dims = weight.dims();
        let values = host_values(weight);
        let q = Fp8Weight::quantize(&values, dims.to_vec());
        let max_abs = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        Fp8Matrix {
            codes: Tensor::<B, 2, Int>::from_data(
                TensorData::new(q.codes, dims),
                (&device, DType::U8),
            ),
            scales: Tensor::from_data(
                TensorData::new(vec![q.scale_inv, max_abs], [2]),
                (&device, DType::F32),
            ),
        }
    }

    /// An emulation on the host: the activation is quantised per tensor exactly as the
    /// reference does, both operands are decoded, and the product is taken in f32 (one rounding
    /// to `x`'s element type at the end, where FP8 tensor cores round their f32 sums).
    fn linear_fp8(
        &self,
        x: Tensor<B, 2>,
        weight: &Fp8Matrix<B>,
        bias: Option<&Tensor<B, 1>>,
        activation: Activation,
    ) -> Tensor<B, 2> {
        let device = x.device();
        let dtype = x.dtype();
        let [rows, cols] = x.dims();
        let xq = Fp8Weight::quantize_rounding(&host_values(x), vec![rows, cols], rounding(dtype))
            .dequantize();
        let xq =
            Tensor::<B, 2>::from_data(TensorData::new(xq, [rows, cols]), (&device, DType::F32));
        let w_t = decode_fp8(weight).transpose();
        let bias = bias.map(|b| b.clone().cast(DType::F32));
        self.linear(xq, &w_t, bias.as_ref(), activation).cast(dtype)
    }

    fn attention_segments(
        &self,
        q: Tensor<B, 4>,
        first: (Tensor<B, 4>, Tensor<B, 4>),
        second: (Tensor<B, 4>, Tensor<B, 4>),
    ) -> Tensor<B, 3> {
        let keys = Tensor::cat(vec![first.0, second.0], 1);
        let values = Tensor::cat(vec![first.1, second.1], 1);
        self.attention(q, keys, values)
    }

    fn modulated_layer_norm(
        &self,
        x: Tensor<B, 3>,
        scale: Tensor<B, 3>,
        shift: Tensor<B, 3>,
        eps: f64,
    ) -> Tensor<B, 3> {
        layer_norm(x, eps) * (scale + 1.0) + shift
    }

    fn affine_layer_norm(
        &self,
        x: Tensor<B, 2>,
        weight: &Tensor<B, 1>,
        bias: &Tensor<B, 1>,
        eps: f64,
    ) -> Tensor<B, 2> {
        layer_norm(x, eps) * weight.clone().unsqueeze::<2>() + bias.clone().unsqueeze::<2>()
    }

    fn rms_norm(&self, x: Tensor<B, 2>, weight: &Tensor<B, 1>, eps: f64) -> Tensor<B, 2> {
        let mean_square = x.clone().powi_scalar(2).mean_dim(1);
        let normed = x * (mean_square + eps).sqrt().recip();
        normed * weight.clone().unsqueeze::<2>()
    }

    fn rope(&self, x: Tensor<B, 3>, cos: &Tensor<B, 2>, sin: &Tensor<B, 2>) -> Tensor<B, 3> {
        let [tokens, heads, head_dim] = x.dims();
        let pairs = head_dim / 2;
        let x = x.reshape([tokens, heads, pairs, 2]);
        let real = x.clone().narrow(3, 0, 1);
        let imag = x.narrow(3, 1, 1);
        let cos = cos.clone().reshape([tokens, 1, pairs, 1]);
        let sin = sin.clone().reshape([tokens, 1, pairs, 1]);
        let out_real = real.clone() * cos.clone() - imag.clone() * sin.clone();
        let out_imag = real * sin + imag * cos;
        Tensor::cat(vec![out_real, out_imag], 3).reshape([tokens, heads, head_dim])
    }

    fn gated_residual(&self, x: Tensor<B, 3>, y: Tensor<B, 3>, gate: Tensor<B, 3>) -> Tensor<B, 3> {
        x + y * gate
    }
}

/// The f32 weight an [`Fp8Matrix`] stands for, decoded on the host.
pub fn decode_fp8<B: Backend>(weight: &Fp8Matrix<B>) -> Tensor<B, 2> {
    let device = weight.codes.device();
    let scales = host_values(weight.scales.clone());
    let scale_inv = scales.first().copied().unwrap_or(1.0);
    let codes = weight
        .codes
        .clone()
        .into_data()
        .convert::<u8>()
        .to_vec::<u8>()
        .unwrap_or_default();
    let values: Vec<f32> = codes.iter().map(|&c| e4m3_to_f32(c) * scale_inv).collect();
    Tensor::from_data(
        TensorData::new(values, weight.dims()),
        (&device, DType::F32),
    )
}

/// A tensor's values as f32 on the host.
fn host_values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default()
}

/// Rounding to `dtype` (torch computes a quantisation's `x·s` in `x`'s own element type).
fn rounding(dtype: DType) -> fn(f32) -> f32 {
    match dtype {
        DType::BF16 => |v| half::bf16::from_f32(v).to_f32(),
        DType::F16 => |v| half::f16::from_f32(v).to_f32(),
        _ => |v| v,
    }
}

/// LayerNorm without affine parameters over the last dimension (biased variance).
pub fn layer_norm<B: Backend, const D: usize>(x: Tensor<B, D>, eps: f64) -> Tensor<B, D> {
    let mean = x.clone().mean_dim(D - 1);
    let centered = x - mean;
    let variance = centered.clone().powi_scalar(2).mean_dim(D - 1);
    centered / (variance + eps).sqrt()
}
