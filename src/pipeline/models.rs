//! The four networks of one render, loaded together: from a `Wan2.2-S2V-14B` checkpoint folder
//! (plus the LiveAvatar LoRA), or the built-in demo model. A folder is checked from its file
//! headers first, so a missing or broken component is reported before gigabytes are read.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use serde::Serialize;

use super::demo::{DEMO_LABEL, demo_models_with};
use super::error::PipelineError;
use super::random_models::{Draw, random_encoders, random_models};
use super::releasable::Releasable;
use crate::memory::ModelConfigs;
use crate::model::DitModel;
use crate::model::audio_features::ProcessorConfig;
use crate::model::t5::{T5Config, T5Encoder};
use crate::model::text::PromptTokenizer;
use crate::model::vae::WanVae;
use crate::model::wav2vec::Wav2Vec2;
use crate::weights::folder_report::{
    EncoderConfigs, T5_FILE, TOKENIZER_DIR, TOKENIZER_FILE, VAE_FILE, WAV2VEC_DIR, inspect_folder,
};
use crate::weights::{DitCheckpoint, LoraAdapter, WeightFormat, load_dit_as};

/// The words outputs made with [`ModelOrigin::Random`] carry.
pub const RANDOM_LABEL: &str = "random weights";

/// The seed of `--random-weights` (the render seed is separate).
pub const RANDOM_WEIGHTS_SEED: u64 = 20_261_122;

/// Where a render's weights come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelOrigin {
    /// The built-in tiny model with seeded random weights.
    Demo { seed: u64 },
    /// The released sizes (14B DiT, umT5-XXL, Wan 2.1 VAE, wav2vec2-large) with random weights
    /// drawn on the device: measures a whole render's memory and speed without the download.
    Random { seed: u64 },
    /// A checkpoint folder, with an optional LoRA merged at load.
    Checkpoint {
        folder: PathBuf,
        lora: Option<PathBuf>,
    },
}

impl ModelOrigin {
    pub fn is_demo(&self) -> bool {
        matches!(self, Self::Demo { .. })
    }

    /// For weights that make noise, the words every output made with them carries (log line,
    /// MP4 title); `None` for a real checkpoint.
    pub fn noise_label(&self) -> Option<&'static str> {
        match self {
            Self::Demo { .. } => Some(DEMO_LABEL),
            Self::Random { .. } => Some(RANDOM_LABEL),
            Self::Checkpoint { .. } => None,
        }
    }

    /// One line for logs and the studio.
    pub fn describe(&self) -> String {
        match self {
            Self::Demo { .. } => {
                format!("{DEMO_LABEL} (built-in tiny model, random weights: the video is noise)")
            }
            Self::Random { seed } => format!(
                "{RANDOM_LABEL} at the released 14B sizes (seed {seed}; for measuring memory and \
                 speed: the video is noise)"
            ),
            Self::Checkpoint { folder, lora } => match lora {
                Some(lora) => format!("{} + LoRA {}", folder.display(), lora.display()),
                None => folder.display().to_string(),
            },
        }
    }
}

/// What the engine should load.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub origin: ModelOrigin,
    /// Encoder sizes for folders whose encoders are not the released ones.
    pub encoders: Option<PathBuf>,
    /// FP8 (e4m3, per-tensor scale) DiT linears.
    pub fp8: bool,
    /// DiT blocks parked in host RAM and copied in one ahead of use (the layer-streaming
    /// placements; the memory plan sets it).
    pub stream_layers: bool,
}

impl AsRef<ModelSpec> for ModelSpec {
    fn as_ref(&self) -> &ModelSpec {
        self
    }
}

impl AsRef<ModelSpec> for (ModelSpec, u32) {
    fn as_ref(&self) -> &ModelSpec {
        &self.0
    }
}

impl ModelSpec {
    pub fn demo() -> Self {
        Self {
            origin: ModelOrigin::Demo {
                seed: super::demo::DEMO_WEIGHTS_SEED,
            },
            encoders: None,
            fp8: false,
            stream_layers: false,
        }
    }

    /// The released sizes with random weights drawn on the device (`--random-weights`).
    pub fn random_released(fp8: bool) -> Self {
        Self {
            origin: ModelOrigin::Random {
                seed: RANDOM_WEIGHTS_SEED,
            },
            encoders: None,
            fp8,
            stream_layers: false,
        }
    }
}

impl ModelSpec {
    /// The sizes of the four networks, from the folder's config files (no weights read), for
    /// the memory planner.
    pub fn configs(&self) -> Result<crate::memory::ModelConfigs, PipelineError> {
        match &self.origin {
            ModelOrigin::Demo { .. } => {
                let demo = super::demo::DemoConfigs::default();
                Ok(demo.into())
            }
            ModelOrigin::Random { .. } => Ok(ModelConfigs::released()),
            ModelOrigin::Checkpoint { folder, .. } => {
                let encoders = match &self.encoders {
                    Some(path) => EncoderConfigs::from_file(path)?,
                    None => EncoderConfigs::default(),
                };
                let w2v_config = folder.join(WAV2VEC_DIR).join("config.json");
                let wav2vec = if w2v_config.exists() {
                    crate::model::wav2vec::Wav2VecConfig::from_file(&w2v_config)?
                } else {
                    crate::model::wav2vec::Wav2VecConfig::large_xlsr53()
                };
                Ok(crate::memory::ModelConfigs {
                    dit: DitCheckpoint::read_config(folder)?,
                    t5: encoders.t5,
                    vae: encoders.vae,
                    wav2vec,
                })
            }
        }
    }
}

/// Everything a render runs.
pub struct Models<B: Backend> {
    pub origin: ModelOrigin,
    pub dit: DitModel<B>,
    pub vae: WanVae<B>,
    /// The text encoder: released after the prompt stage when the plan needs its room.
    pub t5: Releasable<T5Encoder<B>>,
    /// Its sizes, known when it is released too.
    pub t5_config: T5Config,
    pub tokenizer: PromptTokenizer,
    /// The audio encoder: released after the audio stage when the plan needs its room.
    pub wav2vec: Releasable<Wav2Vec2<B>>,
    pub processor: ProcessorConfig,
}

impl<B: Backend> Models<B> {
    /// Whether the text and audio encoders are on the device (a render that released them
    /// leaves them out until [`Self::reload_encoders`]).
    pub fn encoders_loaded(&self) -> bool {
        self.t5.is_loaded() && self.wav2vec.is_loaded()
    }

    /// Drops the text and audio encoders from the device and hands their memory back.
    pub fn release_encoders(&self, device: &B::Device) {
        self.t5.release();
        self.wav2vec.release();
        B::memory_cleanup(device);
    }

    /// Loads the encoders a render released again, from where `spec` says the models came.
    pub fn reload_encoders(
        &self,
        spec: &ModelSpec,
        device: &B::Device,
    ) -> Result<(), PipelineError> {
        let (t5, wav2vec) = match &spec.origin {
            ModelOrigin::Demo { .. } => super::demo::demo_encoders(device)?,
            ModelOrigin::Random { seed } => random_encoders(
                &ModelConfigs::released(),
                Draw::Device { seed: *seed },
                device,
            )?,
            ModelOrigin::Checkpoint { folder, .. } => {
                let encoders = match &spec.encoders {
                    Some(path) => EncoderConfigs::from_file(path)?,
                    None => EncoderConfigs::default(),
                };
                load_encoders(folder, &encoders, device)?
            }
        };
        self.t5.restore(t5);
        self.wav2vec.restore(wav2vec);
        B::memory_cleanup(device);
        Ok(())
    }

    /// Loads what `spec` names onto `device`.
    pub fn load(spec: &ModelSpec, device: &B::Device) -> Result<Self, PipelineError> {
        let models = Self::load_unsettled(spec, device)?;
        // Loading passes every tensor through transient buffers (conversions, FP8 codes, blocks
        // on their way to host RAM); the allocator would keep their pages reserved.
        B::memory_cleanup(device);
        Ok(models)
    }

    fn load_unsettled(spec: &ModelSpec, device: &B::Device) -> Result<Self, PipelineError> {
        match &spec.origin {
            ModelOrigin::Demo { .. } => demo_models_with(device, spec.fp8, spec.stream_layers),
            ModelOrigin::Random { seed } => random_models(
                &ModelConfigs::released(),
                Draw::Device { seed: *seed },
                spec.origin.clone(),
                spec.fp8,
                spec.stream_layers,
                device,
            ),
            ModelOrigin::Checkpoint { folder, lora } => {
                let encoders = match &spec.encoders {
                    Some(path) => EncoderConfigs::from_file(path)?,
                    None => EncoderConfigs::default(),
                };
                Self::from_folder(
                    folder,
                    lora.as_deref(),
                    &encoders,
                    spec.fp8,
                    spec.stream_layers,
                    device,
                )
            }
        }
    }

    /// Validates the folder from its headers, then loads every component.
    pub fn from_folder(
        folder: &Path,
        lora: Option<&Path>,
        encoders: &EncoderConfigs,
        fp8: bool,
        stream_layers: bool,
        device: &B::Device,
    ) -> Result<Self, PipelineError> {
        check_folder(folder, lora, encoders)?;
        let checkpoint = DitCheckpoint::open(folder)?;
        let adapter = lora
            .map(|path| LoraAdapter::open(path, None, None))
            .transpose()?;
        let format = if fp8 && crate::kernels::hot_ops::<B>().native_fp8(device) {
            WeightFormat::Fp8Native
        } else if fp8 {
            WeightFormat::Fp8
        } else {
            WeightFormat::Full
        };
        let (dit, _) = load_dit_as(
            &checkpoint.config,
            &checkpoint.weights,
            adapter.as_ref(),
            format,
            stream_layers,
            device,
        )?;
        let vae = WanVae::from_file(folder.join(VAE_FILE), encoders.vae.clone(), device)?;
        let (t5, wav2vec) = load_encoders(folder, encoders, device)?;
        let tokenizer = PromptTokenizer::from_file(
            folder.join(TOKENIZER_DIR).join(TOKENIZER_FILE),
            encoders.t5.text_len,
        )?;
        let w2v_dir = folder.join(WAV2VEC_DIR);
        let processor_file = w2v_dir.join("preprocessor_config.json");
        let processor = if processor_file.is_file() {
            ProcessorConfig::from_file(&processor_file)?
        } else {
            ProcessorConfig::default()
        };
        Ok(Self {
            origin: ModelOrigin::Checkpoint {
                folder: folder.to_path_buf(),
                lora: lora.map(Path::to_path_buf),
            },
            dit,
            vae,
            t5_config: t5.config().clone(),
            t5: Releasable::new(t5),
            tokenizer,
            wav2vec: Releasable::new(wav2vec),
            processor,
        })
    }
}

/// The text and audio encoders of a checkpoint folder.
fn load_encoders<B: Backend>(
    folder: &Path,
    encoders: &EncoderConfigs,
    device: &B::Device,
) -> Result<(T5Encoder<B>, Wav2Vec2<B>), PipelineError> {
    let t5 = T5Encoder::from_file(folder.join(T5_FILE), encoders.t5.clone(), device)?;
    let wav2vec = Wav2Vec2::from_folder(folder.join(WAV2VEC_DIR), device)?;
    Ok((t5, wav2vec))
}

/// The header-only folder check `inspect` prints, as one error naming the first problem.
pub fn check_folder(
    folder: &Path,
    lora: Option<&Path>,
    encoders: &EncoderConfigs,
) -> Result<(), PipelineError> {
    let report = inspect_folder(folder, lora, encoders)?;
    match report.summary_line() {
        None => Ok(()),
        Some(summary) => Err(PipelineError::Checkpoint {
            folder: folder.to_path_buf(),
            summary: format!(
                "{summary} (run `avatar-studio inspect --model {}` for the full list)",
                folder.display()
            ),
        }),
    }
}
