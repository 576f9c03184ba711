//! The built-in demo model: the real LiveAvatar architecture at toy widths with seeded random
//! weights, built in memory in well under a second. It lets a new user (and the tests) run the
//! whole path — inputs, every model, the clip loop, the MP4 — without the 50 GB download. Its
//! pictures are noise shaped by the architecture, not a talking face, and every output made with
//! it says so.

use burn::tensor::backend::Backend;

use super::error::PipelineError;
use super::models::{ModelOrigin, Models};
use super::random_models::{Draw, random_encoders, random_models};
use crate::memory::ModelConfigs;
use crate::model::DitConfig;
use crate::model::t5::{T5Config, T5Encoder};
use crate::model::vae::VaeConfig;
use crate::model::wav2vec::{Wav2Vec2, Wav2VecConfig};

/// The seed of the demo weights (the render seed is separate).
pub const DEMO_WEIGHTS_SEED: u64 = 20_260_101;

/// The words every output made with the demo model carries (log line, MP4 title).
pub const DEMO_LABEL: &str = "demo weights";

/// The demo's text length (the released model pads prompts to 512 tokens).
const DEMO_TEXT_LEN: usize = 16;

/// The sizes of the demo model's four networks.
#[derive(Debug, Clone)]
pub struct DemoConfigs {
    pub dit: DitConfig,
    pub t5: T5Config,
    pub vae: VaeConfig,
    pub wav2vec: Wav2VecConfig,
}

impl Default for DemoConfigs {
    fn default() -> Self {
        let t5 = T5Config {
            vocab_size: 256,
            dim: 32,
            dim_attn: 32,
            dim_ffn: 64,
            num_heads: 4,
            encoder_layers: 2,
            num_buckets: 32,
            max_dist: 128,
            text_len: DEMO_TEXT_LEN,
            eps: 1e-6,
            shared_pos: false,
        };
        let wav2vec = Wav2VecConfig {
            hidden_size: 32,
            // The DiT's audio encoder weighs every hidden state (layers + embedding output).
            num_hidden_layers: DitConfig::default().audio_encoder_layers - 1,
            num_attention_heads: 2,
            intermediate_size: 64,
            conv_dim: vec![16; 7],
            num_conv_pos_embeddings: 16,
            num_conv_pos_embedding_groups: 4,
            // The released encoder's kernels, strides, norms and activations.
            ..Wav2VecConfig::large_xlsr53()
        };
        let dit = DitConfig {
            dim: 64,
            ffn_dim: 128,
            freq_dim: 32,
            num_heads: 2,
            num_layers: 4,
            text_dim: t5.dim,
            text_len: DEMO_TEXT_LEN,
            audio_dim: wav2vec.hidden_size,
            audio_inject_layers: vec![0, 2, 3],
            ..DitConfig::default()
        };
        let vae = VaeConfig {
            dim: 4,
            ..VaeConfig::wan21()
        };
        Self {
            dit,
            t5,
            vae,
            wav2vec,
        }
    }
}

impl From<DemoConfigs> for ModelConfigs {
    fn from(demo: DemoConfigs) -> Self {
        Self {
            dit: demo.dit,
            t5: demo.t5,
            vae: demo.vae,
            wav2vec: demo.wav2vec,
        }
    }
}

/// Builds the demo model on `device`, with FP8 DiT linears if `fp8`.
pub fn demo_models<B: Backend>(device: &B::Device, fp8: bool) -> Result<Models<B>, PipelineError> {
    demo_models_with(device, fp8, false)
}

/// [`demo_models`], with the DiT's blocks parked in host RAM if `stream_layers`.
pub fn demo_models_with<B: Backend>(
    device: &B::Device,
    fp8: bool,
    stream_layers: bool,
) -> Result<Models<B>, PipelineError> {
    let seed = DEMO_WEIGHTS_SEED;
    random_models(
        &DemoConfigs::default().into(),
        Draw::Host { seed },
        ModelOrigin::Demo { seed },
        fp8,
        stream_layers,
        device,
    )
}

/// The demo model's text and audio encoders (the same weights every time).
pub fn demo_encoders<B: Backend>(
    device: &B::Device,
) -> Result<(T5Encoder<B>, Wav2Vec2<B>), PipelineError> {
    random_encoders(
        &DemoConfigs::default().into(),
        Draw::Host {
            seed: DEMO_WEIGHTS_SEED,
        },
        device,
    )
}
