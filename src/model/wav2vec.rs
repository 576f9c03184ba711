//! wav2vec2 (Hugging Face `Wav2Vec2Model` / `Wav2Vec2ForCTC` layout) driven by the folder's
//! `config.json`: convolutional feature encoder, feature projection, weight-normed grouped
//! positional convolution and the transformer encoder (stable-layer-norm or post-norm). The
//! forward returns every hidden state, as the LiveAvatar audio front-end uses all of them.

use std::path::Path;

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{FloatDType, Tensor, backend::Backend};
use serde::Deserialize;

use super::error::InputError;
use super::nn::{LayerNorm, Linear};
use crate::weights::WeightsError;
use crate::weights::loader::{TensorSource, load_tensor, open_checkpoint, shape_of};

/// The fields of a Hugging Face wav2vec2 `config.json` that the encoder needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Wav2VecConfig {
    /// Transformer width.
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// FFN width.
    pub intermediate_size: usize,
    /// Output channels of each feature convolution.
    pub conv_dim: Vec<usize>,
    /// Kernel of each feature convolution.
    pub conv_kernel: Vec<usize>,
    /// Stride of each feature convolution.
    pub conv_stride: Vec<usize>,
    /// Whether the feature convolutions have biases.
    #[serde(default)]
    pub conv_bias: bool,
    /// `"layer"` (LayerNorm after every feature conv) or `"group"` (GroupNorm after the first).
    #[serde(default = "default_norm")]
    pub feat_extract_norm: String,
    /// Kernel of the positional convolution.
    pub num_conv_pos_embeddings: usize,
    /// Groups of the positional convolution.
    pub num_conv_pos_embedding_groups: usize,
    /// Pre-LN layers plus a final LayerNorm (XLSR) instead of post-LN layers.
    #[serde(default)]
    pub do_stable_layer_norm: bool,
    /// Epsilon of the transformer LayerNorms.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Transformer activation (only `"gelu"` is supported).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Feature-encoder activation (only `"gelu"` is supported).
    #[serde(default = "default_act")]
    pub feat_extract_activation: String,
}

fn default_norm() -> String {
    "group".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu".into()
}

impl Wav2VecConfig {
    /// `wav2vec2-large-xlsr-53-english`, the audio encoder the released model uses (its
    /// `config.json`, for planning before the folder is at hand).
    pub fn large_xlsr53() -> Self {
        Self {
            hidden_size: 1024,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            intermediate_size: 4096,
            conv_dim: vec![512; 7],
            conv_kernel: vec![10, 3, 3, 3, 3, 2, 2],
            conv_stride: vec![5, 2, 2, 2, 2, 2, 2],
            conv_bias: true,
            feat_extract_norm: "layer".into(),
            num_conv_pos_embeddings: 128,
            num_conv_pos_embedding_groups: 16,
            do_stable_layer_norm: true,
            layer_norm_eps: 1e-5,
            hidden_act: "gelu".into(),
            feat_extract_activation: "gelu".into(),
        }
    }

    /// Reads a Hugging Face `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let bad = |reason: String| WeightsError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    /// Checks internal consistency (list lengths, divisibility, supported options).
    pub fn validate(&self) -> Result<(), String> {
        let n = self.conv_dim.len();
        if n == 0 || self.conv_kernel.len() != n || self.conv_stride.len() != n {
            return Err(
                "conv_dim, conv_kernel and conv_stride must have the same non-zero length".into(),
            );
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err("hidden_size must be a multiple of num_attention_heads".into());
        }
        if self.num_conv_pos_embedding_groups == 0
            || !self
                .hidden_size
                .is_multiple_of(self.num_conv_pos_embedding_groups)
        {
            return Err("hidden_size must be a multiple of num_conv_pos_embedding_groups".into());
        }
        if self.feat_extract_norm != "layer" && self.feat_extract_norm != "group" {
            return Err(format!(
                "unsupported feat_extract_norm `{}`",
                self.feat_extract_norm
            ));
        }
        if self.hidden_act != "gelu" || self.feat_extract_activation != "gelu" {
            return Err("only the exact GELU activation is supported".into());
        }
        Ok(())
    }

    /// Number of frames the feature encoder produces from `samples` input samples.
    pub fn frames_for(&self, samples: usize) -> usize {
        let mut len = samples;
        for (k, s) in self.conv_kernel.iter().zip(&self.conv_stride) {
            if len < *k {
                return 0;
            }
            len = (len - k) / s + 1;
        }
        len
    }
}

/// Norm after a feature convolution.
#[derive(Debug, Clone)]
enum ConvNorm<B: Backend> {
    /// LayerNorm over channels per time step.
    Layer(LayerNorm<B>),
    /// GroupNorm with one group per channel: each channel normalised over time.
    Group {
        weight: Tensor<B, 1>,
        bias: Tensor<B, 1>,
    },
    None,
}

#[derive(Debug, Clone)]
struct FeatureConv<B: Backend> {
    weight: Tensor<B, 3>,
    bias: Option<Tensor<B, 1>>,
    stride: usize,
    norm: ConvNorm<B>,
}

impl<B: Backend> FeatureConv<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let y = conv1d(
            x,
            self.weight.clone(),
            self.bias.clone(),
            ConvOptions::new([self.stride], [0], [1], 1),
        );
        let y = match &self.norm {
            ConvNorm::Layer(ln) => ln.forward(y.swap_dims(1, 2)).swap_dims(1, 2),
            ConvNorm::Group { weight, bias } => {
                let dtype = y.dtype();
                let y = y.cast(FloatDType::F32);
                let mean = y.clone().mean_dim(2);
                let c = y - mean;
                let var = c.clone().square().mean_dim(2);
                let n = (c / (var + 1e-5).sqrt()).cast(dtype);
                let ch = weight.dims()[0];
                n * weight.clone().reshape([1, ch, 1]) + bias.clone().reshape([1, ch, 1])
            }
            ConvNorm::None => y,
        };
        gelu(y)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer<B: Backend> {
    q: Linear<B>,
    k: Linear<B>,
    v: Linear<B>,
    o: Linear<B>,
    layer_norm: LayerNorm<B>,
    ff_in: Linear<B>,
    ff_out: Linear<B>,
    final_layer_norm: LayerNorm<B>,
}

/// A loaded wav2vec2 encoder.
#[derive(Debug, Clone)]
pub struct Wav2Vec2<B: Backend> {
    config: Wav2VecConfig,
    convs: Vec<FeatureConv<B>>,
    proj_norm: LayerNorm<B>,
    proj: Linear<B>,
    pos_weight: Tensor<B, 3>,
    pos_bias: Tensor<B, 1>,
    encoder_norm: LayerNorm<B>,
    layers: Vec<EncoderLayer<B>>,
}

impl<B: Backend> Wav2Vec2<B> {
    /// Loads from a Hugging Face folder holding `config.json` and `model.safetensors` (or
    /// `pytorch_model.bin`).
    pub fn from_folder(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self, WeightsError> {
        let dir = dir.as_ref();
        let config = Wav2VecConfig::from_file(dir.join("config.json"))?;
        let st = dir.join("model.safetensors");
        let weights = if st.exists() {
            st
        } else {
            dir.join("pytorch_model.bin")
        };
        let src = open_checkpoint(&weights)?;
        Self::load(src.as_ref(), config, device)
    }

    /// Loads from any source with `Wav2Vec2ForCTC` (`wav2vec2.` prefix) or bare
    /// `Wav2Vec2Model` key names. The positional-conv weight norm may be stored under the new
    /// `parametrizations.weight.original0/1` names or the legacy `weight_g/weight_v`.
    pub fn load(
        src: &dyn TensorSource,
        config: Wav2VecConfig,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        config.validate().map_err(|reason| WeightsError::Config {
            path: src.path().to_path_buf(),
            reason,
        })?;
        let p = if src.contains("wav2vec2.feature_projection.projection.weight") {
            "wav2vec2."
        } else {
            ""
        };
        let eps = config.layer_norm_eps;
        let mut convs = Vec::new();
        let mut in_ch = 1;
        for (i, ((&c, &k), &s)) in config
            .conv_dim
            .iter()
            .zip(&config.conv_kernel)
            .zip(&config.conv_stride)
            .enumerate()
        {
            let pre = format!("{p}feature_extractor.conv_layers.{i}");
            let norm = match (config.feat_extract_norm.as_str(), i) {
                // The feature-encoder LayerNorm uses torch's default eps, not layer_norm_eps.
                ("layer", _) => ConvNorm::Layer(LayerNorm::load(
                    src,
                    &format!("{pre}.layer_norm"),
                    c,
                    1e-5,
                    device,
                )?),
                ("group", 0) => ConvNorm::Group {
                    weight: load_tensor(src, &format!("{pre}.layer_norm.weight"), [c], device)?,
                    bias: load_tensor(src, &format!("{pre}.layer_norm.bias"), [c], device)?,
                },
                _ => ConvNorm::None,
            };
            convs.push(FeatureConv {
                weight: load_tensor(src, &format!("{pre}.conv.weight"), [c, in_ch, k], device)?,
                bias: if config.conv_bias {
                    Some(load_tensor(src, &format!("{pre}.conv.bias"), [c], device)?)
                } else {
                    None
                },
                stride: s,
                norm,
            });
            in_ch = c;
        }
        let h = config.hidden_size;
        let pos_weight = load_pos_conv_weight(src, p, &config, device)?;
        let mut layers = Vec::new();
        for i in 0..config.num_hidden_layers {
            let pre = format!("{p}encoder.layers.{i}");
            let lin = |name: &str, i_dim: usize, o_dim: usize| {
                Linear::load(src, &format!("{pre}.{name}"), i_dim, o_dim, true, device)
            };
            layers.push(EncoderLayer {
                q: lin("attention.q_proj", h, h)?,
                k: lin("attention.k_proj", h, h)?,
                v: lin("attention.v_proj", h, h)?,
                o: lin("attention.out_proj", h, h)?,
                layer_norm: LayerNorm::load(src, &format!("{pre}.layer_norm"), h, eps, device)?,
                ff_in: lin(
                    "feed_forward.intermediate_dense",
                    h,
                    config.intermediate_size,
                )?,
                ff_out: lin("feed_forward.output_dense", config.intermediate_size, h)?,
                final_layer_norm: LayerNorm::load(
                    src,
                    &format!("{pre}.final_layer_norm"),
                    h,
                    eps,
                    device,
                )?,
            });
        }
        Ok(Self {
            proj_norm: LayerNorm::load(
                src,
                &format!("{p}feature_projection.layer_norm"),
                in_ch,
                eps,
                device,
            )?,
            proj: Linear::load(
                src,
                &format!("{p}feature_projection.projection"),
                in_ch,
                h,
                true,
                device,
            )?,
            pos_bias: load_tensor(
                src,
                &format!("{p}encoder.pos_conv_embed.conv.bias"),
                [h],
                device,
            )?,
            encoder_norm: LayerNorm::load(src, &format!("{p}encoder.layer_norm"), h, eps, device)?,
            pos_weight,
            convs,
            layers,
            config,
        })
    }

    /// The configuration this encoder was built with.
    pub fn config(&self) -> &Wav2VecConfig {
        &self.config
    }

    /// Runs the encoder on normalised input values `[batch, samples]` and returns all
    /// `num_hidden_layers + 1` hidden states, each `[batch, frames, hidden]`: the embedding-level
    /// state (projection + positional conv), then every layer output; in the stable-layer-norm
    /// variant the last one is taken after the final LayerNorm (Hugging Face semantics).
    pub fn hidden_states(
        &self,
        input_values: Tensor<B, 2>,
    ) -> Result<Vec<Tensor<B, 3>>, InputError> {
        let [batch, samples] = input_values.dims();
        if batch == 0 || self.config.frames_for(samples) == 0 {
            return Err(InputError::Invalid {
                what: "wav2vec2 input",
                reason: format!(
                    "{samples} samples (batch {batch}) are too short for one feature frame"
                ),
            });
        }
        let mut x = input_values.unsqueeze_dim::<3>(1);
        for conv in &self.convs {
            x = conv.forward(x);
        }
        let feats = x.swap_dims(1, 2);
        let h = self.proj.forward(self.proj_norm.forward(feats));
        let h = h.clone() + self.positional(h);
        let stable = self.config.do_stable_layer_norm;
        let mut h = if stable {
            h
        } else {
            self.encoder_norm.forward(h)
        };
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        for layer in &self.layers {
            states.push(h.clone());
            h = if stable {
                let a = h.clone() + self.attention(layer, layer.layer_norm.forward(h));
                let f = layer.final_layer_norm.forward(a.clone());
                a + layer.ff_out.forward(gelu(layer.ff_in.forward(f)))
            } else {
                let a = layer
                    .layer_norm
                    .forward(h.clone() + self.attention(layer, h));
                let f = a.clone() + layer.ff_out.forward(gelu(layer.ff_in.forward(a)));
                layer.final_layer_norm.forward(f)
            };
        }
        states.push(if stable {
            self.encoder_norm.forward(h)
        } else {
            h
        });
        Ok(states)
    }

    /// All hidden states of one waveform stacked as `[layers + 1, frames, hidden]`, the layout
    /// `torch.cat(hidden_states)` gives the reference.
    pub fn hidden_states_stacked(
        &self,
        input_values: Tensor<B, 2>,
    ) -> Result<Tensor<B, 3>, InputError> {
        Ok(Tensor::cat(self.hidden_states(input_values)?, 0))
    }

    fn positional(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let k = self.config.num_conv_pos_embeddings;
        let x = h.swap_dims(1, 2);
        let y = conv1d(
            x,
            self.pos_weight.clone(),
            Some(self.pos_bias.clone()),
            ConvOptions::new([1], [k / 2], [1], self.config.num_conv_pos_embedding_groups),
        );
        // An even kernel yields one extra frame, which the reference drops from the end.
        let t = y.dims()[2];
        let y = if k.is_multiple_of(2) {
            y.narrow(2, 0, t - 1)
        } else {
            y
        };
        gelu(y).swap_dims(1, 2)
    }

    fn attention(&self, layer: &EncoderLayer<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, h] = x.dims();
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let split = |y: Tensor<B, 3>| y.reshape([b, t, heads, d]).swap_dims(1, 2);
        let q = split(layer.q.forward(x.clone()) * (d as f64).powf(-0.5));
        let k = split(layer.k.forward(x.clone()));
        let v = split(layer.v.forward(x));
        let attn = softmax(q.matmul(k.swap_dims(2, 3)), 3);
        let o = attn.matmul(v).swap_dims(1, 2).reshape([b, t, h]);
        layer.o.forward(o)
    }
}

/// Rebuilds the weight-normed positional conv kernel `w = g · v / ‖v‖` (norm over output and
/// input channels, one per kernel tap: `weight_norm(dim=2)`).
fn load_pos_conv_weight<B: Backend>(
    src: &dyn TensorSource,
    p: &str,
    cfg: &Wav2VecConfig,
    device: &B::Device,
) -> Result<Tensor<B, 3>, WeightsError> {
    let base = format!("{p}encoder.pos_conv_embed.conv");
    let new_g = format!("{base}.parametrizations.weight.original0");
    let new_v = format!("{base}.parametrizations.weight.original1");
    let (gk, vk) = if src.contains(&new_g) || src.contains(&new_v) {
        (new_g, new_v)
    } else {
        (format!("{base}.weight_g"), format!("{base}.weight_v"))
    };
    let h = cfg.hidden_size;
    let k = cfg.num_conv_pos_embeddings;
    let ci = h / cfg.num_conv_pos_embedding_groups;
    // Report the legacy key as missing only if neither spelling exists.
    shape_of(src, &vk)?;
    let g: Tensor<B, 3> = load_tensor(src, &gk, [1, 1, k], device)?;
    let v: Tensor<B, 3> = load_tensor(src, &vk, [h, ci, k], device)?;
    let norm = v.clone().square().sum_dim(0).sum_dim(1).sqrt();
    Ok(v * (g / norm))
}
