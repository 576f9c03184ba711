//! What a model weighs, worked out from its configs alone: bytes of every network as the
//! pipeline holds it on a device (bf16, and with FP8 DiT linears), the DiT split per layer for
//! layer streaming, and the widths the planner needs to size caches and activations. Nothing
//! here reads a weight file, so a plan can be made before anything loads, or for a model the
//! user has not downloaded.

use serde::Serialize;

use crate::model::DitConfig;
use crate::model::inventory::{Component, parameter_inventory, size_summary};
use crate::model::t5::T5Config;
use crate::model::vae::VaeConfig;
use crate::model::wav2vec::Wav2VecConfig;
use crate::weights::keymap::{ExpectedTensor, t5_keys, vae_keys, wav2vec_keys};

/// Bytes of one part in both weight formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WeightBytes {
    pub bf16: u64,
    /// FP8 (e4m3) linear weights at one byte plus a per-tensor f32 scale, the rest bf16.
    pub fp8: u64,
}

impl WeightBytes {
    pub fn get(self, fp8: bool) -> u64 {
        if fp8 { self.fp8 } else { self.bf16 }
    }

    fn add(self, other: Self) -> Self {
        Self {
            bf16: self.bf16 + other.bf16,
            fp8: self.fp8 + other.fp8,
        }
    }
}

/// The sizes of the four networks the planner places.
#[derive(Debug, Clone)]
pub struct ModelConfigs {
    pub dit: DitConfig,
    pub t5: T5Config,
    pub vae: VaeConfig,
    pub wav2vec: Wav2VecConfig,
}

impl ModelConfigs {
    /// The released model: Wan2.2-S2V-14B, umT5-XXL, the Wan 2.1 VAE and wav2vec2-large-xlsr-53.
    pub fn released() -> Self {
        Self {
            dit: DitConfig::default(),
            t5: T5Config::umt5_xxl(),
            vae: VaeConfig::wan21(),
            wav2vec: Wav2VecConfig::large_xlsr53(),
        }
    }
}

/// Everything the planner needs to know about a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFootprint {
    pub dit_parameters: u64,
    /// Transformer layer `i` with its audio injector, if it has one (what layer streaming moves).
    pub dit_layers: Vec<WeightBytes>,
    /// Embeddings, head, audio encoder, FramePack: used by every call, so always resident.
    pub dit_shared: WeightBytes,
    pub t5_bytes: u64,
    pub vae_encoder_bytes: u64,
    pub vae_decoder_bytes: u64,
    pub wav2vec_bytes: u64,
    pub dit_dim: usize,
    pub dit_ffn_dim: usize,
    pub dit_heads: usize,
    pub text_len: usize,
    pub t5_dim: usize,
    pub t5_ffn_dim: usize,
    /// Channels of the VAE's full-resolution stage.
    pub vae_base_channels: usize,
    pub wav2vec_hidden: usize,
    pub wav2vec_layers: usize,
    /// The DiT's latent frames per block (3).
    pub frames_per_block: usize,
    /// Motion frames the VAE encodes at the start (73).
    pub motion_frames: usize,
    pub configs: ModelConfigsSummary,
    /// For the token counts of a frame size.
    #[serde(skip)]
    pub dit_config: DitConfig,
}

/// The config facts a plan prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfigsSummary {
    pub dit_layers: usize,
    pub dit_dim: usize,
    pub t5_layers: usize,
    pub vae_dim: usize,
}

impl ModelFootprint {
    pub fn from_configs(configs: &ModelConfigs) -> Self {
        let dit = &configs.dit;
        let inventory = parameter_inventory(dit);
        let bytes_of = |component: Component| -> WeightBytes {
            let s = size_summary(inventory.iter().filter(|p| p.component == component));
            WeightBytes {
                bf16: s.bf16_bytes,
                fp8: s.fp8_bytes + 4 * s.fp8_layers as u64,
            }
        };
        let layers = dit.num_layers.max(1) as u64;
        let blocks = bytes_of(Component::Blocks);
        let per_block = WeightBytes {
            bf16: blocks.bf16 / layers,
            fp8: blocks.fp8 / layers,
        };
        let injected = dit.audio_inject_layers.len().max(1) as u64;
        let injectors = bytes_of(Component::AudioInjectorAttention)
            .add(bytes_of(Component::AudioInjectorAdaLn));
        let per_injector = WeightBytes {
            bf16: injectors.bf16 / injected,
            fp8: injectors.fp8 / injected,
        };
        let dit_layers = (0..dit.num_layers)
            .map(|i| {
                if dit.injector_index(i).is_some() {
                    per_block.add(per_injector)
                } else {
                    per_block
                }
            })
            .collect();
        let all = size_summary(&inventory);
        let dit_shared = WeightBytes {
            bf16: all.bf16_bytes - blocks.bf16 - injectors.bf16,
            fp8: all.fp8_bytes + 4 * all.fp8_layers as u64 - blocks.fp8 - injectors.fp8,
        };
        let vae = vae_keys(&configs.vae);
        let is_decoder =
            |t: &&ExpectedTensor| t.key.starts_with("decoder.") || t.key.starts_with("conv2.");
        let vae_decoder_bytes = bf16_bytes(vae.iter().filter(is_decoder));
        let vae_encoder_bytes = bf16_bytes(vae.iter()) - vae_decoder_bytes;
        Self {
            dit_parameters: all.parameters,
            dit_layers,
            dit_shared,
            t5_bytes: bf16_bytes(t5_keys(&configs.t5).iter()),
            vae_encoder_bytes,
            vae_decoder_bytes,
            wav2vec_bytes: bf16_bytes(wav2vec_keys(&configs.wav2vec, "").iter()),
            dit_dim: dit.dim,
            dit_ffn_dim: dit.ffn_dim,
            dit_heads: dit.num_heads,
            text_len: configs.t5.text_len,
            t5_dim: configs.t5.dim,
            t5_ffn_dim: configs.t5.dim_ffn,
            vae_base_channels: configs.vae.dim * configs.vae.dim_mult.first().copied().unwrap_or(1),
            wav2vec_hidden: configs.wav2vec.hidden_size,
            wav2vec_layers: configs.wav2vec.num_hidden_layers,
            frames_per_block: dit.frames_per_block,
            motion_frames: dit.motion_frames,
            configs: ModelConfigsSummary {
                dit_layers: dit.num_layers,
                dit_dim: dit.dim,
                t5_layers: configs.t5.encoder_layers,
                vae_dim: configs.vae.dim,
            },
            dit_config: dit.clone(),
        }
    }

    /// The whole DiT in the given format.
    pub fn dit_bytes(&self, fp8: bool) -> u64 {
        self.dit_shared.get(fp8) + self.dit_layers.iter().map(|l| l.get(fp8)).sum::<u64>()
    }

    /// The largest single layer (what one streaming buffer must hold).
    pub fn largest_layer(&self, fp8: bool) -> u64 {
        self.dit_layers
            .iter()
            .map(|l| l.get(fp8))
            .max()
            .unwrap_or(0)
    }

    pub fn num_layers(&self) -> usize {
        self.dit_layers.len()
    }
}

fn bf16_bytes<'a>(tensors: impl Iterator<Item = &'a ExpectedTensor>) -> u64 {
    tensors
        .map(|t| 2 * t.shape.iter().map(|&d| d as u64).product::<u64>())
        .sum()
}
