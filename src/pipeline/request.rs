//! What one render is asked to make, independent of the backend: the prepared portrait, the
//! 16 kHz voice, the prompt and the loop's settings.

use serde::Serialize;

use crate::inputs::RenderInputs;
use crate::model::KvPlacement;

/// How latents become pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecodeMode {
    /// Each block is decoded as soon as it is denoised, continuing one streaming VAE decode
    /// (TPP's VAE rank, spec §5.7): the first frames reach the preview after one block.
    Streaming,
    /// The reference single-GPU decode (spec §5.6 step 7): each clip is decoded behind a
    /// 92-latent context re-encoded from the last 365 frames. The reference defers this until
    /// every clip is denoised; the DiT never reads its result, so decoding each clip as soon as
    /// it is done gives the same frames without holding every clip's latents.
    ClipContext,
}

/// The portrait at its output size, planar `[3, H, W]` in [-1, 1].
#[derive(Debug, Clone)]
pub struct Portrait {
    pub width: u32,
    pub height: u32,
    pub chw: Vec<f32>,
}

/// The prompt as text, or as token ids when they were made elsewhere (parity tests).
#[derive(Debug, Clone)]
pub enum PromptInput {
    Text(String),
    Ids(Vec<i64>),
}

#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub portrait: Portrait,
    /// Mono voice at 16 kHz.
    pub samples_16k: Vec<f32>,
    pub prompt: PromptInput,
    /// At most this many clips (`None`: as many as the audio covers).
    pub max_clips: Option<usize>,
    pub frames_per_clip: usize,
    pub steps: usize,
    pub decode: DecodeMode,
    /// Run the denoising steps of consecutive blocks together (TPP's schedule on one GPU):
    /// the same frames, one DiT call per tick for up to `steps` blocks.
    pub step_batched: bool,
    /// Where the step KV caches live: on the device, or in host RAM streamed per layer (the
    /// memory plan decides; the frames are the same).
    pub kv_placement: KvPlacement,
    /// Drop the text and audio encoders from the device once the prompt and the voice are
    /// encoded (the memory plan asks for it when the GPU needs their room).
    pub release_encoders: bool,
}

impl RenderRequest {
    /// The request for checked inputs.
    pub fn from_inputs(inputs: &RenderInputs) -> Self {
        let settings = &inputs.settings;
        Self {
            portrait: Portrait {
                width: inputs.portrait.width(),
                height: inputs.portrait.height(),
                chw: inputs.portrait.to_signed_unit_chw(),
            },
            samples_16k: inputs.voice.samples_16k.clone(),
            prompt: PromptInput::Text(settings.prompt.clone()),
            max_clips: Some(inputs.clips() as usize),
            frames_per_clip: settings.frames_per_clip as usize,
            steps: settings.sample_steps as usize,
            decode: if settings.online_decode {
                DecodeMode::Streaming
            } else {
                DecodeMode::ClipContext
            },
            step_batched: settings.step_batched,
            kv_placement: KvPlacement::Device,
            release_encoders: false,
        }
    }
}
