//! The four networks with random weights at any sizes: the built-in demo model (toy widths,
//! weights drawn on the host from a fixed seed) and the released sizes with weights drawn on
//! the device (`--random-weights`), which measures a whole render's memory and speed at 14B
//! without the 50 GB download. Either way the video is noise.

use std::collections::BTreeSet;

use burn::tensor::{Tensor, backend::Backend};

use super::error::PipelineError;
use super::models::{ModelOrigin, Models};
use super::releasable::Releasable;
use crate::kernels::hot_ops;
use crate::memory::ModelConfigs;
use crate::model::DitConfig;
use crate::model::DitModel;
use crate::model::audio_features::ProcessorConfig;
use crate::model::inventory::parameter_inventory;
use crate::model::layers::ParameterSource;
use crate::model::t5::T5Encoder;
use crate::model::text::PromptTokenizer;
use crate::model::vae::WanVae;
use crate::model::wav2vec::Wav2Vec2;
use crate::weights::WeightsError;
use crate::weights::dit_loader::{fp8_modules, fp8_round_trip};
use crate::weights::keymap::{ExpectedTensor, t5_keys, vae_keys, wav2vec_keys};
use crate::weights::loader::SourceParameters;
use crate::weights::random::RandomWeights;

/// Where the random values are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// On the host from this seed: the same model on every backend (the demo).
    Host { seed: u64 },
    /// By the device's generator, seeded with this (the released sizes: gigabytes in seconds).
    Device { seed: u64 },
}

impl Draw {
    /// The source of one network's weights; `offset` keeps the networks' host draws apart.
    fn source(self, name: &str, tensors: Vec<ExpectedTensor>, offset: u64) -> RandomWeights {
        match self {
            Self::Host { seed } => RandomWeights::new(name, tensors, seed + offset),
            Self::Device { .. } => RandomWeights::on_device(name, tensors),
        }
    }

    /// Seeds the device's generator for the networks at `offset`, so that a device draw is
    /// repeatable too, and encoders loaded again after a release are the same ones.
    fn prepare<B: Backend>(self, device: &B::Device, offset: u64) {
        if let Self::Device { seed } = self {
            B::seed(device, seed + offset);
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

/// How the reference's FP8 linears of a random DiT are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fp8Linears {
    /// In the backend's float type, as drawn.
    No,
    /// As e4m3 codes with per-tensor scales (for backends with FP8 kernels).
    Codes,
    /// Rounded through e4m3 and kept dequantised (as the checkpoint loader does elsewhere).
    RoundTrip,
}

impl Fp8Linears {
    /// What `--fp8` means on `device`: codes where the backend has FP8 kernels.
    pub fn for_device<B: Backend>(fp8: bool, device: &B::Device) -> Self {
        match (fp8, hot_ops::<B>().native_fp8(device)) {
            (false, _) => Self::No,
            (true, true) => Self::Codes,
            (true, false) => Self::RoundTrip,
        }
    }
}

/// Random DiT weights, with the reference's FP8 linears kept as `fp8` says.
struct RandomDitSource<'a, B: Backend> {
    inner: SourceParameters<'a, B>,
    fp8_modules: BTreeSet<String>,
    fp8: Fp8Linears,
}

impl<B: Backend> ParameterSource<B> for RandomDitSource<'_, B> {
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
        if self.fp8 != Fp8Linears::RoundTrip || !self.fp8_modules.contains(module) {
            return Ok(weight);
        }
        fp8_round_trip(weight, self.inner.device)
            .map(|(weight, _)| weight)
            .map_err(|reason| WeightsError::Tensor {
                path: "random DiT weights".into(),
                key: format!("{module}.weight"),
                reason,
            })
    }

    fn stores_fp8(&self, module: &str) -> bool {
        self.fp8 == Fp8Linears::Codes && self.fp8_modules.contains(module)
    }
}

/// A DiT at `config` with random weights drawn as `draw` says, its FP8 linears kept as `fp8`
/// says, and its blocks parked in host RAM if `stream_layers`. The renders and `bench` build
/// their random DiTs here.
pub fn random_dit<B: Backend>(
    config: &DitConfig,
    draw: Draw,
    fp8: Fp8Linears,
    stream_layers: bool,
    device: &B::Device,
) -> Result<DitModel<B>, WeightsError> {
    draw.prepare::<B>(device, 0);
    let weights = draw.source("random DiT weights", dit_tensors(config), 0);
    let source = RandomDitSource {
        inner: SourceParameters::<B> {
            source: &weights,
            device,
        },
        fp8_modules: if fp8 == Fp8Linears::No {
            BTreeSet::new()
        } else {
            fp8_modules(config)
        },
        fp8,
    };
    if stream_layers {
        DitModel::from_source_streaming(config, &source)
    } else {
        DitModel::from_source(config, &source)
    }
}

/// Builds all four networks at `configs` with random weights drawn as `draw` says; FP8 DiT
/// linears if `fp8`, the DiT's blocks parked in host RAM if `stream_layers`.
pub fn random_models<B: Backend>(
    configs: &ModelConfigs,
    draw: Draw,
    origin: ModelOrigin,
    fp8: bool,
    stream_layers: bool,
    device: &B::Device,
) -> Result<Models<B>, PipelineError> {
    let dit = random_dit(
        &configs.dit,
        draw,
        Fp8Linears::for_device::<B>(fp8, device),
        stream_layers,
        device,
    )?;
    let vae_source = draw.source("random VAE weights", vae_keys(&configs.vae), 1);
    let vae = WanVae::load(&vae_source, configs.vae.clone(), device)?;
    let (t5, wav2vec) = random_encoders(configs, draw, device)?;
    Ok(Models {
        origin,
        dit,
        vae,
        t5: Releasable::new(t5),
        t5_config: configs.t5.clone(),
        tokenizer: PromptTokenizer::byte_level(configs.t5.vocab_size, configs.t5.text_len),
        wav2vec: Releasable::new(wav2vec),
        processor: ProcessorConfig::default(),
    })
}

/// The text and audio encoders at `configs` with random weights (the same ones every time for
/// a host draw).
pub fn random_encoders<B: Backend>(
    configs: &ModelConfigs,
    draw: Draw,
    device: &B::Device,
) -> Result<(T5Encoder<B>, Wav2Vec2<B>), PipelineError> {
    draw.prepare::<B>(device, 2);
    let t5_source = draw.source("random umT5 weights", t5_keys(&configs.t5), 2);
    let t5 = T5Encoder::load(&t5_source, configs.t5.clone(), device)?;
    let w2v_source = draw.source(
        "random wav2vec2 weights",
        wav2vec_keys(&configs.wav2vec, ""),
        3,
    );
    let wav2vec = Wav2Vec2::load(&w2v_source, configs.wav2vec.clone(), device)?;
    Ok((t5, wav2vec))
}
