//! The LiveAvatar clip loop (spec §5.6, §5.7): for each clip the sink prefill where the spec
//! calls for it, then for each block of latent frames every denoising step with its own KV
//! cache and the Euler update, then the decode of the chosen mode. Frames leave through
//! [`RenderHooks::frames`] as soon as they exist; nothing holds more than one clip, so the
//! memory of a render does not grow with its length.

use std::time::Instant;

use burn::tensor::{Tensor, backend::Backend};

use super::conditions::{
    STREAM_PRIME_LATENTS, audio_features, portrait_tensor, sink_latents, text_context,
};
use super::error::PipelineError;
use super::models::Models;
use super::randomness::Randomness;
use super::request::{DecodeMode, RenderRequest};
use crate::media::timeline::DROPPED_LEAD_FRAMES;
use crate::model::vae::StreamDecoder;
use crate::model::{KvCache, StreamInput};
use crate::sampler::FlowMatchSchedule;

/// The stages a render reports progress for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading the weights (the engine reports this one; models stay loaded between jobs).
    LoadingModels,
    EncodingText,
    EncodingAudio,
    EncodingPortrait,
    /// The sink prefill: reference and motion tokens through every block.
    Prefill,
    /// Denoising and decoding blocks; `done`/`total` count blocks.
    Rendering,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Self::LoadingModels => "loading the models",
            Self::EncodingText => "encoding the prompt",
            Self::EncodingAudio => "encoding the voice",
            Self::EncodingPortrait => "encoding the portrait",
            Self::Prefill => "preparing the reference",
            Self::Rendering => "rendering",
        }
    }
}

/// Whether the render goes on after a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Decoded frames of one block (streaming decode) or one clip (clip-context decode).
pub struct FrameChunk<B: Backend> {
    pub clip: usize,
    /// The block inside the clip, for the streaming decode.
    pub block: Option<usize>,
    /// Index of the chunk's first frame in the finished video.
    pub first_frame: u64,
    /// `[3, frames, H, W]` in [-1, 1].
    pub video: Tensor<B, 4>,
    /// The chunk completes its clip.
    pub ends_clip: bool,
}

/// What the render tells its caller, and where the caller can stop it.
pub trait RenderHooks<B: Backend> {
    /// Called before every block (and between stages); [`Flow::Stop`] ends the render with what
    /// was already delivered. A paused caller blocks here.
    fn checkpoint(&mut self) -> Flow {
        Flow::Continue
    }
    /// `done` of `total` units of `stage` are finished.
    fn progress(&mut self, _stage: Stage, _done: u64, _total: u64) {}
    /// The final latents `[C, T, h, w]` of a clip, before decoding.
    fn clip_latents(&mut self, _clip: usize, _latents: &Tensor<B, 4>) {}
    /// New frames, in order.
    fn frames(&mut self, chunk: FrameChunk<B>) -> Result<(), PipelineError>;
}

/// The shape of a render, known once the inputs are encoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RenderShape {
    pub clips: usize,
    pub blocks_per_clip: usize,
    /// Latent frames per clip (`frames_per_clip / 4`).
    pub clip_latents: usize,
    pub latent_height: usize,
    pub latent_width: usize,
    /// Frames the render makes: `frames_per_clip · clips − 3`.
    pub frames: u64,
}

/// How a render ended (errors aside).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOutcome {
    pub shape: RenderShape,
    pub clips_done: usize,
    pub frames_delivered: u64,
    /// Stopped by the caller before the last clip.
    pub stopped: bool,
    pub seconds: f64,
}

/// Spatial compression of the VAE.
const VAE_STRIDE: usize = 8;
/// VAE frames per latent frame after the first.
const VAE_TEMPORAL: usize = 4;

fn shape_of<B: Backend>(
    models: &Models<B>,
    request: &RenderRequest,
    clips_covered: usize,
) -> Result<RenderShape, PipelineError> {
    let config = models.dit.config();
    let block_frames = config.frames_per_block * VAE_TEMPORAL;
    let fpc = request.frames_per_clip;
    if fpc == 0 || !fpc.is_multiple_of(block_frames) {
        return Err(PipelineError::Unsupported(format!(
            "frames per clip must be a positive multiple of {block_frames}, got {fpc}"
        )));
    }
    let (w, h) = (
        request.portrait.width as usize,
        request.portrait.height as usize,
    );
    let unit = VAE_STRIDE * config.patch_size[1].max(config.patch_size[2]);
    if w == 0 || h == 0 || !w.is_multiple_of(unit) || !h.is_multiple_of(unit) {
        return Err(PipelineError::Unsupported(format!(
            "the frame size {w}×{h} must be a multiple of {unit} on both sides"
        )));
    }
    if request.portrait.chw.len() != 3 * w * h {
        return Err(PipelineError::Unsupported(format!(
            "the portrait has {} values, {w}×{h} needs {}",
            request.portrait.chw.len(),
            3 * w * h
        )));
    }
    if request.steps == 0 {
        return Err(PipelineError::Unsupported(
            "at least one denoising step is needed".into(),
        ));
    }
    let clips = request
        .max_clips
        .map_or(clips_covered, |n| n.min(clips_covered));
    if clips == 0 {
        return Err(PipelineError::Unsupported(
            "the voice is too short for one clip".into(),
        ));
    }
    Ok(RenderShape {
        clips,
        blocks_per_clip: fpc / block_frames,
        clip_latents: fpc / VAE_TEMPORAL,
        latent_height: h / VAE_STRIDE,
        latent_width: w / VAE_STRIDE,
        frames: (fpc * clips) as u64 - u64::from(DROPPED_LEAD_FRAMES),
    })
}

/// The denoising loop's state across clips.
struct ClipLoop<'a, B: Backend> {
    models: &'a Models<B>,
    request: &'a RenderRequest,
    shape: &'a RenderShape,
    schedule: FlowMatchSchedule,
    cache: KvCache<B>,
    /// `[layers, channels, clips · frames_per_clip]`.
    audio: Tensor<B, 3>,
    /// `[cond_dim, frames_per_block, h, w]`; the pose condition is zero without a pose video.
    cond_states: Tensor<B, 4>,
}

/// A block on its way through the denoising steps.
struct InFlight<B: Backend> {
    clip: usize,
    block: usize,
    /// Its latents after `step` steps.
    x: Tensor<B, 4>,
    step: usize,
}

impl<B: Backend> ClipLoop<'_, B> {
    /// The DiT input of block `block` of clip `clip` at denoising step `step`.
    fn stream_input(
        &self,
        flight: &InFlight<B>,
        randomness: &mut dyn Randomness<B>,
    ) -> StreamInput<B> {
        let config = self.models.dit.config();
        let fpb = config.frames_per_block;
        let frame_tokens = config
            .geometry(self.shape.latent_height, self.shape.latent_width)
            .frame_tokens;
        let video_per_block = self.request.frames_per_clip / self.shape.blocks_per_clip;
        let audio_start =
            flight.clip * self.request.frames_per_clip + flight.block * video_per_block;
        let block_index = flight.clip * self.shape.blocks_per_clip + flight.block;
        // Calls are numbered in the sequential order (every step of a block before the next
        // block), whatever order they run in, so both schedules draw the same offsets.
        let call = block_index * self.schedule.steps() + flight.step;
        StreamInput {
            latents: flight.x.clone(),
            timestep: self.schedule.timesteps[flight.step],
            cond_states: self.cond_states.clone(),
            audio: self.audio.clone().narrow(2, audio_start, video_per_block),
            current_start: block_index * fpb * frame_tokens,
            ref_offset: randomness.ref_offset(call, config.ref_offset_range),
        }
    }

    /// One tick: every block in flight takes its next denoising step, with its step's ring —
    /// one DiT call per block (sequential schedule) or one call for all (step-batched).
    fn tick(
        &mut self,
        flights: &mut [InFlight<B>],
        text: &crate::model::TextContext<B>,
        randomness: &mut dyn Randomness<B>,
    ) {
        let inputs: Vec<StreamInput<B>> = flights
            .iter()
            .map(|flight| self.stream_input(flight, randomness))
            .collect();
        // Blocks in flight are at distinct steps, so each borrows a different ring;
        // `forward_blocks` runs a lone call as a plain `forward_block`.
        let mut rings: Vec<Option<&mut crate::model::RingCache<B>>> =
            self.cache.steps.iter_mut().map(Some).collect();
        let calls = inputs
            .into_iter()
            .zip(flights.iter())
            .filter_map(|(input, flight)| {
                rings.get_mut(flight.step)?.take().map(|ring| (input, ring))
            })
            .collect();
        let velocities = self
            .models
            .dit
            .forward_blocks(calls, &self.cache.cond, text);
        for (flight, v) in flights.iter_mut().zip(velocities) {
            flight.x = self.schedule.euler_step(flight.step, flight.x.clone(), v);
            flight.step += 1;
        }
    }
}

/// Runs one render with `models` on `device`.
pub fn render<B: Backend>(
    models: &Models<B>,
    request: &RenderRequest,
    randomness: &mut dyn Randomness<B>,
    hooks: &mut dyn RenderHooks<B>,
    device: &B::Device,
) -> Result<RenderOutcome, PipelineError> {
    let started = Instant::now();
    let config = models.dit.config().clone();
    if config.text_dim != models.t5_config.dim {
        return Err(PipelineError::Unsupported(format!(
            "the DiT reads {}-wide text, the text encoder makes {}-wide",
            config.text_dim, models.t5_config.dim
        )));
    }

    hooks.progress(Stage::EncodingAudio, 0, 1);
    let (audio, clips_covered) = audio_features(
        models,
        &request.samples_16k,
        request.frames_per_clip,
        device,
    )?;
    let shape = shape_of(models, request, clips_covered)?;
    hooks.progress(Stage::EncodingAudio, 1, 1);
    let stopped_early = |shape: &RenderShape| RenderOutcome {
        shape: shape.clone(),
        clips_done: 0,
        frames_delivered: 0,
        stopped: true,
        seconds: started.elapsed().as_secs_f64(),
    };
    if hooks.checkpoint() == Flow::Stop {
        return Ok(stopped_early(&shape));
    }

    hooks.progress(Stage::EncodingText, 0, 1);
    let text = text_context(models, &request.prompt, device)?;
    if request.release_encoders {
        // The plan needs their room for the DiT's stages; the engine loads them again for the
        // next render.
        models.release_encoders(device);
    }
    hooks.progress(Stage::EncodingText, 1, 1);
    if hooks.checkpoint() == Flow::Stop {
        return Ok(stopped_early(&shape));
    }

    hooks.progress(Stage::EncodingPortrait, 0, 1);
    let image = portrait_tensor::<B>(&request.portrait, device);
    let sink = sink_latents(models, &image, request.decode)?;
    hooks.progress(Stage::EncodingPortrait, 1, 1);
    if hooks.checkpoint() == Flow::Stop {
        return Ok(stopped_early(&shape));
    }

    let (h, w) = (shape.latent_height, shape.latent_width);
    let geometry = config.geometry(h, w);
    let schedule = FlowMatchSchedule::liveavatar(request.steps);
    let mut state = ClipLoop {
        models,
        request,
        shape: &shape,
        cache: KvCache::with_placement(
            &config,
            &geometry,
            shape.clip_latents,
            schedule.steps(),
            request.kv_placement,
            device,
        )?,
        schedule,
        audio,
        cond_states: Tensor::zeros([config.cond_dim, config.frames_per_block, h, w], device),
    };

    let mut decoder = Decoder::new(models, &sink, request, device)?;
    // The allocator keeps every page it has used: the reference encode (73 frames through the
    // VAE encoder) and the encoders' work leave gigabytes reserved in sizes the clip loop never
    // asks for. Handing them back keeps the process's GPU memory near what the plan counts.
    B::memory_cleanup(device);
    let mut reference = sink.reference.clone();
    let total_blocks = (shape.clips * shape.blocks_per_clip) as u64;
    let mut outcome = RenderOutcome {
        shape: shape.clone(),
        clips_done: 0,
        frames_delivered: 0,
        stopped: false,
        seconds: 0.0,
    };
    let fpb = config.frames_per_block;
    let steps = state.schedule.steps();
    // At most this many blocks are in flight: one (each block finishes before the next
    // starts), or one per step (TPP's schedule: at each tick block n takes step 0, n−1 step 1…).
    let depth = if request.step_batched { steps } else { 1 };
    let order: Vec<(usize, usize)> = (0..shape.clips)
        .flat_map(|clip| (0..shape.blocks_per_clip).map(move |block| (clip, block)))
        .collect();
    let mut next = 0;
    let mut flights: std::collections::VecDeque<InFlight<B>> = Default::default();
    let mut noise: Option<(usize, Tensor<B, 4>)> = None;
    let mut blocks = Vec::with_capacity(shape.blocks_per_clip);
    while next < order.len() || !flights.is_empty() {
        if hooks.checkpoint() == Flow::Stop {
            outcome.stopped = true;
            outcome.seconds = started.elapsed().as_secs_f64();
            return Ok(outcome);
        }
        if let Some(&(clip, block)) = order.get(next) {
            // The sink runs for the first clip, and again for the second when the streaming
            // mode has refreshed the reference from the first generated latent (spec §5.6
            // step 4, §5.7); blocks still in flight read the cond cache, so they finish first.
            let needs_sink =
                block == 0 && (clip == 0 || (clip == 1 && request.decode == DecodeMode::Streaming));
            let admit = flights.len() < depth && (!needs_sink || flights.is_empty());
            if admit {
                if needs_sink {
                    hooks.progress(Stage::Prefill, 0, 1);
                    models.dit.sink_prefill(
                        &mut state.cache.cond,
                        &text,
                        reference.clone(),
                        sink.motion.clone(),
                    );
                    hooks.progress(Stage::Prefill, 1, 1);
                }
                if block == 0 {
                    noise = Some((
                        clip,
                        randomness.clip_noise(
                            clip,
                            [config.in_dim, shape.clip_latents, h, w],
                            device,
                        ),
                    ));
                }
                let x = match &noise {
                    Some((noise_clip, n)) if *noise_clip == clip => {
                        n.clone().narrow(1, block * fpb, fpb)
                    }
                    _ => {
                        return Err(PipelineError::Unsupported(
                            "internal: a block started before its clip's noise".into(),
                        ));
                    }
                };
                flights.push_back(InFlight {
                    clip,
                    block,
                    x,
                    step: 0,
                });
                next += 1;
            }
        }
        state.tick(flights.make_contiguous(), &text, randomness);
        while flights.front().is_some_and(|f| f.step == steps) {
            let Some(InFlight { clip, block, x, .. }) = flights.pop_front() else {
                break;
            };
            if clip == 0 && block == 0 && shape.clips > 1 && request.decode == DecodeMode::Streaming
            {
                reference = x.clone().narrow(1, 0, 1);
            }
            if let Some(chunk) = decoder.block_done(clip, block, &x, &shape)? {
                outcome.frames_delivered += chunk.video.dims()[1] as u64;
                hooks.frames(chunk)?;
            }
            blocks.push(x);
            let done = (clip * shape.blocks_per_clip + block + 1) as u64;
            hooks.progress(Stage::Rendering, done, total_blocks);
            if block + 1 == shape.blocks_per_clip {
                let latents = Tensor::cat(std::mem::take(&mut blocks), 1);
                hooks.clip_latents(clip, &latents);
                if let Some(chunk) = decoder.clip_done(clip, latents, &shape)? {
                    outcome.frames_delivered += chunk.video.dims()[1] as u64;
                    hooks.frames(chunk)?;
                }
                outcome.clips_done = clip + 1;
            }
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// The two decode modes' state.
enum Decoder<'a, B: Backend> {
    Streaming {
        models: &'a Models<B>,
        stream: StreamDecoder<B>,
        frames_out: u64,
    },
    ClipContext {
        models: &'a Models<B>,
        /// Latents decoded in front of each clip (starts as the motion latents).
        context: Tensor<B, 5>,
        /// The last pixel frames, slid by each clip and re-encoded into `context`.
        window: Tensor<B, 5>,
        motion_frames: usize,
        frames_out: u64,
    },
}

impl<'a, B: Backend> Decoder<'a, B> {
    fn new(
        models: &'a Models<B>,
        sink: &super::conditions::SinkLatents<B>,
        request: &RenderRequest,
        _device: &B::Device,
    ) -> Result<Self, PipelineError> {
        match request.decode {
            DecodeMode::Streaming => {
                // TPP primes its decoder with the first motion latents and discards the frames,
                // so the first block decodes with a warm causal cache (spec §5.7).
                let mut stream = StreamDecoder::new();
                let prime = STREAM_PRIME_LATENTS.min(sink.motion.dims()[1]);
                stream.decode(
                    &models.vae,
                    sink.motion.clone().narrow(1, 0, prime).unsqueeze_dim(0),
                )?;
                Ok(Self::Streaming {
                    models,
                    stream,
                    frames_out: 0,
                })
            }
            DecodeMode::ClipContext => {
                let window = sink.motion_pixels.clone().ok_or_else(|| {
                    PipelineError::Unsupported("the clip-context decode needs its pixels".into())
                })?;
                Ok(Self::ClipContext {
                    models,
                    context: sink.motion.clone().unsqueeze_dim(0),
                    window,
                    motion_frames: models.dit.config().motion_frames,
                    frames_out: 0,
                })
            }
        }
    }

    /// Streaming: decodes the block's 12 frames (the very first block keeps frames 3.. only).
    fn block_done(
        &mut self,
        clip: usize,
        block: usize,
        latents: &Tensor<B, 4>,
        shape: &RenderShape,
    ) -> Result<Option<FrameChunk<B>>, PipelineError> {
        let Self::Streaming {
            models,
            stream,
            frames_out,
        } = self
        else {
            return Ok(None);
        };
        let video = stream
            .decode(&models.vae, latents.clone().unsqueeze_dim(0))?
            .squeeze_dim::<4>(0);
        let frames = video.dims()[1];
        let video = if clip == 0 && block == 0 {
            let drop = DROPPED_LEAD_FRAMES as usize;
            video.narrow(1, drop, frames - drop)
        } else {
            video
        };
        let chunk = FrameChunk {
            clip,
            block: Some(block),
            first_frame: *frames_out,
            ends_clip: block + 1 == shape.blocks_per_clip,
            video,
        };
        *frames_out += chunk.video.dims()[1] as u64;
        Ok(Some(chunk))
    }

    /// Clip context: decodes `cat(context, clip)`, keeps the clip's frames (clip 0 drops its
    /// first 3), slides the pixel window and re-encodes it as the next clip's context.
    fn clip_done(
        &mut self,
        clip: usize,
        latents: Tensor<B, 4>,
        shape: &RenderShape,
    ) -> Result<Option<FrameChunk<B>>, PipelineError> {
        let Self::ClipContext {
            models,
            context,
            window,
            motion_frames,
            frames_out,
        } = self
        else {
            return Ok(None);
        };
        let clip_frames = shape.clip_latents * VAE_TEMPORAL;
        let decoded = models.vae.decode(Tensor::cat(
            vec![context.clone(), latents.unsqueeze_dim(0)],
            2,
        ))?;
        let total = decoded.dims()[2];
        let keep = clip_frames.min(total);
        let mut image = decoded.narrow(2, total - keep, keep);
        if clip == 0 {
            let drop = (DROPPED_LEAD_FRAMES as usize).min(keep);
            image = image.narrow(2, drop, keep - drop);
        }
        let new_frames = image.dims()[2];
        let overlap = (*motion_frames).min(new_frames);
        let window_len = window.dims()[2];
        // The last clip's context would feed nothing.
        if overlap > 0 && clip + 1 < shape.clips {
            *window = Tensor::cat(
                vec![
                    window.clone().narrow(2, overlap, window_len - overlap),
                    image.clone().narrow(2, new_frames - overlap, overlap),
                ],
                2,
            );
            *context = models.vae.encode(window.clone())?;
        }
        let chunk = FrameChunk {
            clip,
            block: None,
            first_frame: *frames_out,
            ends_clip: true,
            video: image.squeeze_dim::<4>(0),
        };
        *frames_out += new_frames as u64;
        Ok(Some(chunk))
    }
}
