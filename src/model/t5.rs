//! umT5 encoder (`T5Encoder` of Wan's t5.py): token embedding, pre-RMS-norm self-attention
//! without 1/√d scaling and with a per-layer bidirectional relative position bias
//! (`shared_pos = False`), gated-GELU (tanh) feed-forward, final RMS norm. No biases anywhere.

use std::path::Path;

use burn::tensor::activation::{gelu_approximate, softmax};
use burn::tensor::{Bool, FloatDType, Int, Tensor, TensorData, backend::Backend};
use serde::Deserialize;

use super::error::InputError;
use super::nn::Linear;
use crate::weights::WeightsError;
use crate::weights::loader::{TensorSource, load_tensor, open_checkpoint};

/// Sizes of the encoder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct T5Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub dim: usize,
    /// Attention width (heads × head dim).
    pub dim_attn: usize,
    /// Feed-forward width.
    pub dim_ffn: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Transformer layers.
    pub encoder_layers: usize,
    /// Relative position buckets.
    pub num_buckets: usize,
    /// Largest distinguished relative distance.
    #[serde(default = "default_max_dist")]
    pub max_dist: usize,
    /// Sequence length the prompt is padded / truncated to.
    #[serde(default = "default_text_len")]
    pub text_len: usize,
    /// RMS norm epsilon.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// One relative-position table for all layers (T5) instead of one per layer (umT5). Only
    /// the umT5 layout (`false`) is implemented; `true` is refused at load time.
    #[serde(default)]
    pub shared_pos: bool,
}

fn default_max_dist() -> usize {
    128
}
fn default_text_len() -> usize {
    512
}
fn default_eps() -> f64 {
    1e-6
}

impl T5Config {
    /// `umt5_xxl` encoder sizes (`models_t5_umt5-xxl-enc-bf16.pth`).
    pub fn umt5_xxl() -> Self {
        Self {
            vocab_size: 256_384,
            dim: 4096,
            dim_attn: 4096,
            dim_ffn: 10_240,
            num_heads: 64,
            encoder_layers: 24,
            num_buckets: 32,
            max_dist: 128,
            text_len: 512,
            eps: 1e-6,
            shared_pos: false,
        }
    }
}

/// Bidirectional relative position bucket of `rel = j − i` (key minus query position), as in
/// `T5RelativeEmbedding._relative_position_bucket` (log part computed in f32, truncated).
pub fn relative_bucket(rel: i64, num_buckets: usize, max_dist: usize) -> usize {
    let half = (num_buckets / 2) as i64;
    let mut bucket = if rel > 0 { half } else { 0 };
    let a = rel.abs();
    let max_exact = half / 2;
    if a < max_exact {
        bucket += a;
    } else {
        let ratio = (a as f32 / max_exact as f32).ln();
        let denom = (max_dist as f64 / max_exact as f64).ln() as f32;
        let large = max_exact + (ratio / denom * (half - max_exact) as f32) as i64;
        bucket += large.min(half - 1);
    }
    bucket as usize
}

/// RMS norm without mean subtraction: `w · x / sqrt(mean(x²) + eps)`.
#[derive(Debug, Clone)]
struct T5Norm<B: Backend> {
    weight: Tensor<B, 1>,
    eps: f64,
}

impl<B: Backend> T5Norm<B> {
    /// The mean square is taken in f32 (the reference's `x.float()`), the scaled activations
    /// return to the input dtype before the weight multiply.
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let dtype = x.dtype();
        let x = x.cast(FloatDType::F32);
        let ms = x.clone().square().mean_dim(2);
        let x = (x * (ms + self.eps).sqrt().recip()).cast(dtype);
        x * self.weight.clone().unsqueeze::<3>()
    }
}

#[derive(Debug, Clone)]
struct Block<B: Backend> {
    norm1: T5Norm<B>,
    q: Linear<B>,
    k: Linear<B>,
    v: Linear<B>,
    o: Linear<B>,
    norm2: T5Norm<B>,
    gate: Linear<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    /// `[num_buckets, heads]`.
    pos_embedding: Tensor<B, 2>,
}

/// A loaded umT5 encoder.
#[derive(Debug, Clone)]
pub struct T5Encoder<B: Backend> {
    config: T5Config,
    token_embedding: Tensor<B, 2>,
    blocks: Vec<Block<B>>,
    norm: T5Norm<B>,
}

impl<B: Backend> T5Encoder<B> {
    /// Loads from `models_t5_umt5-xxl-enc-bf16.pth` (or a safetensors copy).
    pub fn from_file(
        path: impl AsRef<Path>,
        config: T5Config,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        let src = open_checkpoint(path)?;
        Self::load(src.as_ref(), config, device)
    }

    /// Loads from any source with the reference key names.
    pub fn load(
        src: &dyn TensorSource,
        config: T5Config,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        if config.num_heads == 0 || !config.dim_attn.is_multiple_of(config.num_heads) {
            return Err(WeightsError::Config {
                path: src.path().to_path_buf(),
                reason: "dim_attn must be a multiple of num_heads".into(),
            });
        }
        if config.shared_pos {
            return Err(WeightsError::Config {
                path: src.path().to_path_buf(),
                reason: "shared_pos = true (one position table for all layers) is not the umT5 \
                         layout and is not supported"
                    .into(),
            });
        }
        let (d, a, f) = (config.dim, config.dim_attn, config.dim_ffn);
        let norm = |key: String| -> Result<T5Norm<B>, WeightsError> {
            Ok(T5Norm {
                weight: load_tensor(src, &key, [d], device)?,
                eps: config.eps,
            })
        };
        let lin = |key: String, i: usize, o: usize| Linear::load(src, &key, i, o, false, device);
        let mut blocks = Vec::with_capacity(config.encoder_layers);
        for i in 0..config.encoder_layers {
            let p = format!("blocks.{i}");
            blocks.push(Block {
                norm1: norm(format!("{p}.norm1.weight"))?,
                q: lin(format!("{p}.attn.q"), d, a)?,
                k: lin(format!("{p}.attn.k"), d, a)?,
                v: lin(format!("{p}.attn.v"), d, a)?,
                o: lin(format!("{p}.attn.o"), a, d)?,
                norm2: norm(format!("{p}.norm2.weight"))?,
                gate: lin(format!("{p}.ffn.gate.0"), d, f)?,
                fc1: lin(format!("{p}.ffn.fc1"), d, f)?,
                fc2: lin(format!("{p}.ffn.fc2"), f, d)?,
                pos_embedding: load_tensor(
                    src,
                    &format!("{p}.pos_embedding.embedding.weight"),
                    [config.num_buckets, config.num_heads],
                    device,
                )?,
            });
        }
        Ok(Self {
            token_embedding: load_tensor(
                src,
                "token_embedding.weight",
                [config.vocab_size, d],
                device,
            )?,
            blocks,
            norm: norm("norm.weight".into())?,
            config,
        })
    }

    /// The configuration this encoder was built with.
    pub fn config(&self) -> &T5Config {
        &self.config
    }

    /// Bucket table `[lq, lk]` for a square sequence of length `len`.
    fn bucket_ids(&self, len: usize, device: &B::Device) -> Tensor<B, 1, Int> {
        let mut ids = Vec::with_capacity(len * len);
        for i in 0..len {
            for j in 0..len {
                let b = relative_bucket(
                    j as i64 - i as i64,
                    self.config.num_buckets,
                    self.config.max_dist,
                );
                ids.push(b as i64);
            }
        }
        Tensor::from_data(TensorData::new(ids, [len * len]), device)
    }

    /// Relative position bias of block `layer` for length `len`: `[1, heads, len, len]`.
    pub fn position_bias(&self, layer: usize, len: usize) -> Option<Tensor<B, 4>> {
        let block = self.blocks.get(layer)?;
        let device = block.pos_embedding.device();
        Some(self.bias_from(block, &self.bucket_ids(len, &device), len))
    }

    fn bias_from(&self, block: &Block<B>, ids: &Tensor<B, 1, Int>, len: usize) -> Tensor<B, 4> {
        let h = self.config.num_heads;
        block
            .pos_embedding
            .clone()
            .select(0, ids.clone())
            .reshape([len, len, h])
            .permute([2, 0, 1])
            .unsqueeze_dim::<4>(0)
    }

    /// Encodes token ids `[b, L]` with an optional attention mask `[b, L]` (1 = real token,
    /// 0 = padding; padded *keys* are excluded, padded query rows are still computed).
    /// Returns `[b, L, dim]`.
    pub fn forward(
        &self,
        ids: Tensor<B, 2, Int>,
        mask: Option<Tensor<B, 2, Int>>,
    ) -> Result<Tensor<B, 3>, InputError> {
        let [b, len] = ids.dims();
        if b == 0 || len == 0 {
            return Err(InputError::Shape {
                what: "T5 token ids",
                expected: "[batch >= 1, length >= 1]".into(),
                shape: vec![b, len],
            });
        }
        if let Some(m) = &mask
            && m.dims() != [b, len]
        {
            return Err(InputError::Shape {
                what: "T5 attention mask",
                expected: format!("the ids shape [{b}, {len}]"),
                shape: m.dims().to_vec(),
            });
        }
        let vocab = self.config.vocab_size;
        let out_of_range = ids
            .clone()
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap_or_default()
            .into_iter()
            .find(|&i| i < 0 || i as u64 >= vocab as u64);
        if let Some(bad) = out_of_range {
            return Err(InputError::Invalid {
                what: "T5 token ids",
                reason: format!("id {bad} is outside the vocabulary of {vocab}"),
            });
        }
        let device = ids.device();
        let d = self.config.dim;
        let mut x = self
            .token_embedding
            .clone()
            .select(0, ids.reshape([b * len]))
            .reshape([b, len, d]);
        let bucket_ids = self.bucket_ids(len, &device);
        // Masked keys get float32's lowest value in place of the position bias, as the
        // reference's `masked_fill` does.
        let key_pad: Option<Tensor<B, 4, Bool>> = mask.map(|m| {
            m.equal_elem(0)
                .reshape([b, 1, 1, len])
                .expand([b, self.config.num_heads, len, len])
        });
        for block in &self.blocks {
            let bias = self.bias_from(block, &bucket_ids, len).expand([
                b,
                self.config.num_heads,
                len,
                len,
            ]);
            let bias = match &key_pad {
                Some(m) => bias.mask_fill(m.clone(), f32::MIN),
                None => bias,
            };
            let a = self.attention(block, block.norm1.forward(x.clone()), bias);
            x = x + a;
            let hdn = block.norm2.forward(x.clone());
            let ff = block.fc2.forward(
                block.fc1.forward(hdn.clone()) * gelu_approximate(block.gate.forward(hdn)),
            );
            x = x + ff;
        }
        Ok(self.norm.forward(x))
    }

    fn attention(&self, block: &Block<B>, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, len, _] = x.dims();
        let n = self.config.num_heads;
        let c = self.config.dim_attn / n;
        let split = |y: Tensor<B, 3>| y.reshape([b, len, n, c]).swap_dims(1, 2);
        let q = split(block.q.forward(x.clone()));
        let k = split(block.k.forward(x.clone()));
        let v = split(block.v.forward(x));
        let attn = softmax(q.matmul(k.swap_dims(2, 3)) + bias, 3);
        let o = attn.matmul(v).swap_dims(1, 2).reshape([b, len, n * c]);
        block.o.forward(o)
    }

    /// `T5EncoderModel.__call__`: encodes padded ids with their mask and returns, per row, the
    /// hidden states of the real tokens only (`[seq_len_i, dim]`), which is what the DiT gets.
    pub fn encode_trimmed(
        &self,
        ids: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Int>,
    ) -> Result<Vec<Tensor<B, 2>>, InputError> {
        let [b, _] = ids.dims();
        let lens: Vec<i64> = mask
            .clone()
            .greater_elem(0)
            .int()
            .sum_dim(1)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap_or_default();
        let hidden = self.forward(ids, Some(mask))?;
        Ok((0..b)
            .map(|i| {
                let n = lens.get(i).copied().unwrap_or(0).max(0) as usize;
                hidden
                    .clone()
                    .narrow(0, i, 1)
                    .squeeze_dim::<2>(0)
                    .narrow(0, 0, n)
            })
            .collect())
    }
}
