//! Everything the clip loop reads, computed once per render from the inputs: the text context,
//! the per-frame audio features, and the reference and motion latents in the layout the chosen
//! decode mode needs (spec §5.2–5.5).

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use super::error::PipelineError;
use super::models::Models;
use super::request::{DecodeMode, Portrait, PromptInput};
use crate::model::TextContext;
use crate::model::audio_features::encode_audio;
use crate::model::text::TokenizedPrompt;

/// Pixel frames the reference repeats the portrait into for its first-latent trick (the
/// single-GPU reference latent is latent 1 of this encode).
const REF_REPEAT_FRAMES: usize = 5;
/// Latents of the motion window that TPP primes its streaming decoder with (25 frames).
pub const STREAM_PRIME_LATENTS: usize = 7;

/// The text context the DiT attends to.
pub fn text_context<B: Backend>(
    models: &Models<B>,
    prompt: &PromptInput,
    device: &B::Device,
) -> Result<TextContext<B>, PipelineError> {
    let text_len = models.t5_config.text_len;
    let tokens = match prompt {
        PromptInput::Text(text) => models.tokenizer.encode(text)?,
        PromptInput::Ids(ids) => TokenizedPrompt::from_ids(ids, text_len),
    };
    let len = tokens.ids.len();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(tokens.ids, [1, len]), device);
    let mask = Tensor::<B, 2, Int>::from_data(TensorData::new(tokens.mask, [1, len]), device);
    let context = models
        .t5
        .with(|t5| t5.encode_trimmed(ids, mask))
        .ok_or_else(|| released("text"))??
        .into_iter()
        .next()
        .ok_or_else(|| PipelineError::Unsupported("the text encoder returned nothing".into()))?;
    Ok(models.dit.prepare_text(context))
}

/// wav2vec2 features bucketed per video frame: `[layers, channels, clips · frames_per_clip]`,
/// and the number of clips the audio covers.
pub fn audio_features<B: Backend>(
    models: &Models<B>,
    samples_16k: &[f32],
    frames_per_clip: usize,
    device: &B::Device,
) -> Result<(Tensor<B, 3>, usize), PipelineError> {
    let features = models
        .wav2vec
        .with(|wav2vec| {
            encode_audio(
                wav2vec,
                &models.processor,
                samples_16k,
                frames_per_clip,
                device,
            )
        })
        .ok_or_else(|| released("audio"))??;
    let clips = features.buckets.clips;
    Ok((features.audio_emb.squeeze_dim::<3>(0), clips))
}

/// The portrait as `[1, 3, 1, H, W]` in [-1, 1].
pub fn portrait_tensor<B: Backend>(portrait: &Portrait, device: &B::Device) -> Tensor<B, 5> {
    let (w, h) = (portrait.width as usize, portrait.height as usize);
    Tensor::<B, 1>::from_data(TensorData::new(portrait.chw.clone(), [3 * h * w]), device)
        .reshape([1, 3, 1, h, w])
}

/// Reference and motion latents (`[C, T, h, w]`), and for the clip-context decode the pixel
/// window they came from.
pub struct SinkLatents<B: Backend> {
    /// `[C, 1, h, w]`.
    pub reference: Tensor<B, 4>,
    /// All motion latents; FramePack reads the last ones.
    pub motion: Tensor<B, 4>,
    /// The pixel frames `motion` encodes (`[1, 3, T, H, W]`), kept by the clip-context decode
    /// to slide and re-encode after every clip.
    pub motion_pixels: Option<Tensor<B, 5>>,
}

/// Encodes the portrait as each mode's reference does (spec §5.5): single-GPU (clip-context
/// decode) takes latent 1 of the portrait repeated 5× and encodes it repeated 5·73 times (92
/// motion latents); TPP (streaming decode) encodes it once as a first frame and repeated 73×.
pub fn sink_latents<B: Backend>(
    models: &Models<B>,
    image: &Tensor<B, 5>,
    mode: DecodeMode,
) -> Result<SinkLatents<B>, PipelineError> {
    let motion_frames = models.dit.config().motion_frames;
    let squeeze = |t: Tensor<B, 5>| t.squeeze_dim::<4>(0);
    match mode {
        DecodeMode::ClipContext => {
            let repeated = image.clone().repeat_dim(2, REF_REPEAT_FRAMES);
            let reference = models.vae.encode(repeated.clone())?.narrow(2, 1, 1);
            let window = repeated.repeat_dim(2, motion_frames);
            let motion = models.vae.encode(window.clone())?;
            Ok(SinkLatents {
                reference: squeeze(reference),
                motion: squeeze(motion),
                motion_pixels: Some(window),
            })
        }
        DecodeMode::Streaming => {
            let reference = models.vae.encode(image.clone())?;
            let motion = models
                .vae
                .encode(image.clone().repeat_dim(2, motion_frames))?;
            Ok(SinkLatents {
                reference: squeeze(reference),
                motion: squeeze(motion),
                motion_pixels: None,
            })
        }
    }
}

/// The error of a render that found an encoder released (the engine reloads them first).
fn released(which: &str) -> PipelineError {
    PipelineError::Unsupported(format!(
        "internal: the {which} encoder was released by an earlier render and not loaded again"
    ))
}
