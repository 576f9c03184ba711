//! Small functional layers shared by the text and audio encoders (linear, layer norm), holding
//! plain tensors loaded under PyTorch key names.

use burn::tensor::{FloatDType, Tensor, backend::Backend};

use crate::weights::WeightsError;
use crate::weights::loader::{TensorSource, load_tensor};

/// `y = x·Wᵀ + b` with a PyTorch `[out, in]` weight (stored transposed once at load time).
#[derive(Debug, Clone)]
pub struct Linear<B: Backend> {
    weight_t: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
}

impl<B: Backend> Linear<B> {
    /// Loads `{prefix}.weight` `[out, in]` and, if `bias`, `{prefix}.bias` `[out]`.
    pub fn load(
        src: &dyn TensorSource,
        prefix: &str,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        let w: Tensor<B, 2> =
            load_tensor(src, &format!("{prefix}.weight"), [out_dim, in_dim], device)?;
        let bias = if bias {
            Some(load_tensor(
                src,
                &format!("{prefix}.bias"),
                [out_dim],
                device,
            )?)
        } else {
            None
        };
        Ok(Self {
            weight_t: w.transpose(),
            bias,
        })
    }

    /// Applies the layer over the last dimension of `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let w = self.weight_t.clone().unsqueeze::<D>();
        let y = x.matmul(w);
        match &self.bias {
            Some(b) => y + b.clone().unsqueeze::<D>(),
            None => y,
        }
    }
}

/// Affine layer norm over the last dimension (biased variance, like `torch.nn.LayerNorm`).
#[derive(Debug, Clone)]
pub struct LayerNorm<B: Backend> {
    weight: Tensor<B, 1>,
    bias: Tensor<B, 1>,
    eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    /// Loads `{prefix}.weight` / `{prefix}.bias` of size `dim`.
    pub fn load(
        src: &dyn TensorSource,
        prefix: &str,
        dim: usize,
        eps: f64,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            weight: load_tensor(src, &format!("{prefix}.weight"), [dim], device)?,
            bias: load_tensor(src, &format!("{prefix}.bias"), [dim], device)?,
            eps,
        })
    }

    /// Normalises the last dimension of `x` (statistics in f32 whatever the activation dtype).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = x.cast(FloatDType::F32);
        let mean = x.clone().mean_dim(D - 1);
        let centred = x - mean;
        let var = centred.clone().square().mean_dim(D - 1);
        let normed = (centred / (var + self.eps).sqrt()).cast(dtype);
        normed * self.weight.clone().unsqueeze::<D>() + self.bias.clone().unsqueeze::<D>()
    }
}
