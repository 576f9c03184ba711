//! The built-in demo model: the real LiveAvatar architecture at toy widths with seeded random
//! weights, built in memory in well under a second. It lets a new user (and the tests) run the
//! whole path — inputs, every model, the clip loop, the MP4 — without the 50 GB download. Its
//! pictures are noise shaped by the architecture, not a talking face, and every output made with
//! it says so.

use std::collections::BTreeSet;

use burn::tensor::{Tensor, backend::Backend};

use super::error::PipelineError;
use super::models::{ModelOrigin, Models};
use super::releasable::Releasable;
use crate::kernels::hot_ops;
use crate::model::DitConfig;
use crate::model::DitModel;
use crate::model::audio_features::ProcessorConfig;
use crate::model::inventory::parameter_inventory;
use crate::model::layers::ParameterSource;
use crate::model::t5::{T5Config, T5Encoder};
use crate::model::text::PromptTokenizer;
use crate::model::vae::{VaeConfig, WanVae};
use crate::model::wav2vec::{Wav2Vec2, Wav2VecConfig};
use crate::weights::WeightsError;
use crate::weights::dit_loader::{fp8_modules, fp8_round_trip};
use crate::weights::keymap::{ExpectedTensor, t5_keys, vae_keys, wav2vec_keys};
use crate::weights::loader::SourceParameters;
use crate::weights::random::RandomWeights;

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

/// The DiT's state-dict keys and shapes, as random-weight requests.
fn dit_tensors(config: &DitConfig) -> Vec<ExpectedTensor> {
    parameter_inventory(config)
        .into_iter()
        .map(|spec| ExpectedTensor {
            module: spec.key.clone(),
            key: spec.key,
            shape: spec.shape,
        })
        .collect()
}

/// The demo DiT's weights, with the reference's FP8 linears converted as `--fp8` asks: kept as
/// e4m3 codes where the backend has FP8 kernels, else rounded through e4m3 and kept dequantised
/// (as the checkpoint loader does).
struct DemoDitSource<'a, B: Backend> {
    inner: SourceParameters<'a, B>,
    fp8_modules: BTreeSet<String>,
    native: bool,
}

impl<B: Backend> ParameterSource<B> for DemoDitSource<'_, B> {
    type Error = WeightsError;

    fn tensor<const D: usize>(
        &self,
        key: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>, WeightsError> {
        self.inner.tensor(key, shape)
    }

    fn linear_weight(&self, module: &str, shape: [usize; 2]) -> Result<Tensor<B, 2>, WeightsError> {
        let weight = self.inner.tensor(&format!("{module}.weight"), shape)?;
        if self.native || !self.fp8_modules.contains(module) {
            return Ok(weight);
        }
        fp8_round_trip(weight, self.inner.device)
            .map(|(weight, _)| weight)
            .map_err(|reason| WeightsError::Tensor {
                path: "demo weights".into(),
                key: format!("{module}.weight"),
                reason,
            })
    }

    fn stores_fp8(&self, module: &str) -> bool {
        self.native && self.fp8_modules.contains(module)
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
    let configs = DemoConfigs::default();
    let seed = DEMO_WEIGHTS_SEED;
    let dit_source = RandomWeights::new("demo DiT weights", dit_tensors(&configs.dit), seed);
    let source = DemoDitSource {
        inner: SourceParameters::<B> {
            source: &dit_source,
            device,
        },
        fp8_modules: if fp8 {
            fp8_modules(&configs.dit)
        } else {
            BTreeSet::new()
        },
        native: hot_ops::<B>().native_fp8(device),
    };
    let dit = if stream_layers {
        DitModel::from_source_streaming(&configs.dit, &source)?
    } else {
        DitModel::from_source(&configs.dit, &source)?
    };
    let vae_source = RandomWeights::new("demo VAE weights", vae_keys(&configs.vae), seed + 1);
    let vae = WanVae::load(&vae_source, configs.vae.clone(), device)?;
    let (t5, wav2vec) = demo_encoders(device)?;
    Ok(Models {
        origin: ModelOrigin::Demo { seed },
        dit,
        vae,
        t5: Releasable::new(t5),
        t5_config: configs.t5.clone(),
        tokenizer: PromptTokenizer::byte_level(configs.t5.vocab_size, configs.t5.text_len),
        wav2vec: Releasable::new(wav2vec),
        processor: ProcessorConfig::default(),
    })
}

/// The demo model's text and audio encoders (the same weights every time).
pub fn demo_encoders<B: Backend>(
    device: &B::Device,
) -> Result<(T5Encoder<B>, Wav2Vec2<B>), PipelineError> {
    let configs = DemoConfigs::default();
    let seed = DEMO_WEIGHTS_SEED;
    let t5_source = RandomWeights::new("demo umT5 weights", t5_keys(&configs.t5), seed + 2);
    let t5 = T5Encoder::load(&t5_source, configs.t5.clone(), device)?;
    let w2v_source = RandomWeights::new(
        "demo wav2vec2 weights",
        wav2vec_keys(&configs.wav2vec, ""),
        seed + 3,
    );
    let wav2vec = Wav2Vec2::load(&w2v_source, configs.wav2vec.clone(), device)?;
    Ok((t5, wav2vec))
}
