//! Small building blocks shared by the DiT modules: linear layers, norms, attention,
//! kernel-equals-stride 3D convolutions, causal 1D convolutions and precision rounding.

use burn::tensor::{FloatDType, Int, Tensor, TensorData, backend::Backend};

use crate::kernels::{Activation, Fp8Matrix, hot_ops};

/// Supplies parameters by state-dict key while a model is built (implemented by the
/// checkpoint loader in `crate::weights`; tests may implement it over anything).
pub trait ParameterSource<B: Backend> {
    type Error;

    /// The tensor stored under `key`, which must have `shape`.
    fn tensor<const D: usize>(
        &self,
        key: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>, Self::Error>;

    /// The `[out, in]` weight of the linear layer `module`, with any adapter merged in.
    fn linear_weight(&self, module: &str, shape: [usize; 2]) -> Result<Tensor<B, 2>, Self::Error> {
        self.tensor(&format!("{module}.weight"), shape)
    }

    /// Whether the linear layer `module` keeps its weight as FP8 codes (computed by FP8
    /// kernels) rather than in the weight's own type.
    fn stores_fp8(&self, _module: &str) -> bool {
        false
    }
}

/// `x` as `[rows, last dimension]`, for the row-wise hot ops.
fn as_rows<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, 2> {
    let dim = x.dims()[D - 1];
    let rows = x.shape().num_elements() / dim.max(1);
    x.reshape([rows, dim])
}

/// How a dense layer keeps its weight.
#[derive(Debug, Clone)]
pub enum LinearWeight<B: Backend> {
    /// Transposed (`[in, out]`, a view of the stored `[out, in]`) for the matmul.
    Dense(Tensor<B, 2>),
    /// FP8 e4m3 codes with a per-tensor scale, multiplied by FP8 kernels.
    Fp8(Fp8Matrix<B>),
}

/// A dense layer `y = x·Wᵀ + b`.
#[derive(Debug, Clone)]
pub struct Linear<B: Backend> {
    pub weight: LinearWeight<B>,
    pub bias: Option<Tensor<B, 1>>,
}

impl<B: Backend> Linear<B> {
    /// The weight (codes and scales for FP8), then the bias.
    pub fn for_each_tensor(
        &mut self,
        visit: &mut dyn FnMut(super::layer_stream::ParameterSlot<'_, B>),
    ) {
        use super::layer_stream::ParameterSlot;
        match &mut self.weight {
            LinearWeight::Dense(weight_t) => visit(ParameterSlot::Transposed(weight_t)),
            LinearWeight::Fp8(matrix) => {
                visit(ParameterSlot::Codes(&mut matrix.codes));
                visit(ParameterSlot::Vector(&mut matrix.scales));
            }
        }
        if let Some(bias) = &mut self.bias {
            visit(ParameterSlot::Vector(bias));
        }
    }

    /// Loads `<prefix>.weight` (`[out, in]`) and `<prefix>.bias`, merging a LoRA pair if the
    /// adapter has one for `prefix`.
    pub fn load<S: ParameterSource<B>>(
        src: &S,
        prefix: &str,
        in_features: usize,
        out_features: usize,
    ) -> Result<Self, S::Error> {
        let weight = src.linear_weight(prefix, [out_features, in_features])?;
        let bias = src.tensor::<1>(&format!("{prefix}.bias"), [out_features])?;
        let weight = if src.stores_fp8(prefix) {
            LinearWeight::Fp8(hot_ops::<B>().quantize_fp8(weight))
        } else {
            LinearWeight::Dense(weight.transpose())
        };
        Ok(Self {
            weight,
            bias: Some(bias),
        })
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        match &self.weight {
            LinearWeight::Dense(weight_t) => weight_t.dims()[1],
            LinearWeight::Fp8(weight) => weight.dims()[0],
        }
    }

    /// The weight as a dense `[out, in]` tensor (decoded to f32 if it is FP8).
    pub fn dense_weight(&self) -> Tensor<B, 2> {
        match &self.weight {
            LinearWeight::Dense(weight_t) => weight_t.clone().transpose(),
            LinearWeight::Fp8(weight) => weight.decode(),
        }
    }

    /// Applies the layer to the last dimension of a rank-`D` tensor.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.forward_activated(x, Activation::None)
    }

    /// `activation(layer(x))`, fused where the backend's kernels allow.
    pub fn forward_activated<const D: usize>(
        &self,
        x: Tensor<B, D>,
        activation: Activation,
    ) -> Tensor<B, D> {
        let dims = x.dims();
        let ops = hot_ops::<B>();
        let y = match &self.weight {
            LinearWeight::Dense(weight_t) => {
                ops.linear(as_rows(x), weight_t, self.bias.as_ref(), activation)
            }
            LinearWeight::Fp8(weight) => {
                ops.linear_fp8(as_rows(x), weight, self.bias.as_ref(), activation)
            }
        };
        let mut out_dims = dims;
        out_dims[D - 1] = self.out_features();
        y.reshape(out_dims)
    }
}

impl<B: Backend> Linear<B> {
    /// `x` `[rows, in]` through several layers of the same input width (the self-attention's
    /// q, k and v projections); with FP8 weights the input is quantised once for all of them.
    pub fn forward_shared<const N: usize>(
        x: Tensor<B, 2>,
        layers: [&Linear<B>; N],
    ) -> [Tensor<B, 2>; N] {
        let fp8: Vec<_> = layers
            .iter()
            .filter_map(|layer| match &layer.weight {
                LinearWeight::Fp8(weight) => Some((weight, layer.bias.as_ref())),
                LinearWeight::Dense(_) => None,
            })
            .collect();
        if fp8.len() == N {
            let outputs = hot_ops::<B>().linears_fp8(x.clone(), &fp8);
            if let Ok(outputs) = <[Tensor<B, 2>; N]>::try_from(outputs) {
                return outputs;
            }
        }
        layers.map(|layer| layer.forward(x.clone()))
    }
}

/// RMSNorm over the last dimension with a learned scale (`WanRMSNorm`).
#[derive(Debug, Clone)]
pub struct RmsNorm<B: Backend> {
    pub weight: Tensor<B, 1>,
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    pub fn load<S: ParameterSource<B>>(
        src: &S,
        prefix: &str,
        dim: usize,
        eps: f64,
    ) -> Result<Self, S::Error> {
        Ok(Self {
            weight: src.tensor::<1>(&format!("{prefix}.weight"), [dim])?,
            eps,
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dims = x.dims();
        hot_ops::<B>()
            .rms_norm(as_rows(x), &self.weight, self.eps)
            .reshape(dims)
    }
}

pub use crate::kernels::fallback::layer_norm;

/// LayerNorm with a learned scale and shift.
#[derive(Debug, Clone)]
pub struct AffineLayerNorm<B: Backend> {
    pub weight: Tensor<B, 1>,
    pub bias: Tensor<B, 1>,
    pub eps: f64,
}

impl<B: Backend> AffineLayerNorm<B> {
    pub fn load<S: ParameterSource<B>>(
        src: &S,
        prefix: &str,
        dim: usize,
        eps: f64,
    ) -> Result<Self, S::Error> {
        Ok(Self {
            weight: src.tensor::<1>(&format!("{prefix}.weight"), [dim])?,
            bias: src.tensor::<1>(&format!("{prefix}.bias"), [dim])?,
            eps,
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dims = x.dims();
        hot_ops::<B>()
            .affine_layer_norm(as_rows(x), &self.weight, &self.bias, self.eps)
            .reshape(dims)
    }
}

/// Rounds every value to the nearest bfloat16 (ties to even), keeping the tensor's own
/// element type (a no-op on bf16 tensors).
pub fn round_to_bf16<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let dtype = x.dtype();
    if dtype == burn::tensor::DType::BF16 {
        return x;
    }
    x.cast(FloatDType::BF16).cast(dtype)
}

/// Scaled dot-product attention without mask. Inputs are `[batch, len, heads, head_dim]`;
/// the output is `[batch, len_q, heads·head_dim]`. Runs on the backend's [`hot_ops`].
pub fn attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 3> {
    hot_ops::<B>().attention(q, k, v)
}

/// A 3D convolution whose stride equals its kernel (patchify), as one matmul.
#[derive(Debug, Clone)]
pub struct PatchConv3d<B: Backend> {
    /// `[in·kt·kh·kw, out]`
    pub weight_t: Tensor<B, 2>,
    pub bias: Tensor<B, 1>,
    pub kernel: [usize; 3],
}

impl<B: Backend> PatchConv3d<B> {
    pub fn load<S: ParameterSource<B>>(
        src: &S,
        prefix: &str,
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 3],
    ) -> Result<Self, S::Error> {
        let weight = src.tensor::<5>(
            &format!("{prefix}.weight"),
            [out_channels, in_channels, kernel[0], kernel[1], kernel[2]],
        )?;
        let bias = src.tensor::<1>(&format!("{prefix}.bias"), [out_channels])?;
        let patch = in_channels * kernel.iter().product::<usize>();
        Ok(Self {
            weight_t: weight.reshape([out_channels, patch]).transpose(),
            bias,
            kernel,
        })
    }

    /// `x` is `[C, T, H, W]`; returns the tokens `[T'·H'·W', out]` (frame-major, then row,
    /// then column) and the output grid `[T', H', W']`. Trailing remainders are dropped, as a
    /// strided convolution does.
    pub fn forward(&self, x: Tensor<B, 4>) -> (Tensor<B, 2>, [usize; 3]) {
        let [channels, frames, height, width] = x.dims();
        let [kt, kh, kw] = self.kernel;
        let grid = [frames / kt, height / kh, width / kw];
        let x = x
            .narrow(1, 0, grid[0] * kt)
            .narrow(2, 0, grid[1] * kh)
            .narrow(3, 0, grid[2] * kw);
        let patches = x
            .reshape([channels, grid[0], kt, grid[1], kh, grid[2], kw])
            .permute([1, 3, 5, 0, 2, 4, 6])
            .reshape([grid[0] * grid[1] * grid[2], channels * kt * kh * kw]);
        let tokens = patches.matmul(self.weight_t.clone()) + self.bias.clone().unsqueeze_dim(0);
        (tokens, grid)
    }
}

/// A kernel-3 1D convolution with causal replicate padding (`CausalConv1d`).
#[derive(Debug, Clone)]
pub struct CausalConv1d<B: Backend> {
    /// One `[in, out]` matrix per kernel tap.
    pub taps: Vec<Tensor<B, 2>>,
    pub bias: Tensor<B, 1>,
    pub stride: usize,
}

impl<B: Backend> CausalConv1d<B> {
    const KERNEL: usize = 3;

    pub fn load<S: ParameterSource<B>>(
        src: &S,
        prefix: &str,
        in_channels: usize,
        out_channels: usize,
        stride: usize,
    ) -> Result<Self, S::Error> {
        let weight = src.tensor::<3>(
            &format!("{prefix}.weight"),
            [out_channels, in_channels, Self::KERNEL],
        )?;
        let bias = src.tensor::<1>(&format!("{prefix}.bias"), [out_channels])?;
        let taps = (0..Self::KERNEL)
            .map(|k| {
                weight
                    .clone()
                    .narrow(2, k, 1)
                    .reshape([out_channels, in_channels])
                    .transpose()
            })
            .collect();
        Ok(Self { taps, bias, stride })
    }

    /// `x` is `[batch, time, in]`; returns `[batch, time', out]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, time, _] = x.dims();
        let first = x.clone().narrow(1, 0, 1);
        let padded = Tensor::cat(vec![first.clone(), first, x], 1);
        let out_time = (time + 2 - Self::KERNEL) / self.stride + 1;
        let device = padded.device();
        let mut out: Option<Tensor<B, 3>> = None;
        for (k, tap) in self.taps.iter().enumerate() {
            let indices: Vec<i64> = (0..out_time)
                .map(|t| (t * self.stride + k) as i64)
                .collect();
            let indices =
                Tensor::<B, 1, Int>::from_data(TensorData::new(indices, [out_time]), &device);
            let picked = padded.clone().select(1, indices);
            let in_channels = picked.dims()[2];
            let contribution = picked
                .reshape([batch * out_time, in_channels])
                .matmul(tap.clone())
                .reshape([batch, out_time, tap.dims()[1]]);
            out = Some(match out {
                Some(acc) => acc + contribution,
                None => contribution,
            });
        }
        let out =
            out.unwrap_or_else(|| Tensor::zeros([batch, out_time, self.bias.dims()[0]], &device));
        out + self.bias.clone().unsqueeze::<3>()
    }
}
