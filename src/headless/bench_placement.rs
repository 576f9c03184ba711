//! `bench --placement P`: the DiT's steady state under one memory placement, at the 14B config
//! with random weights made on the device. It builds the model as the placement keeps it
//! (resident, or its blocks parked in host RAM), the four step rings where the placement keeps
//! them, fills the cond cache with a sink prefill, then times whole blocks: the four denoising
//! calls of one block (one step-batched call of four blocks in the layer-streaming placements,
//! which finishes one block per call). It reports the time per block, the output frames per
//! second the DiT alone allows, the bytes copied from host RAM per block, and the GPU memory
//! this process holds (NVML) against the planner's prediction for the same stage.

use std::cell::RefCell;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use super::bench::Measurement;
use super::bench_model::{bench_config, bench_dit};
use crate::memory::Placement;
use crate::model::dit::{DitModel, StreamInput};
use crate::model::kv_cache::{KvCache, KvPlacement, RingCache};

/// Latent frames per clip (the ring holds one clip).
const CLIP_LATENT_FRAMES: usize = 12;
/// Denoising steps (LiveAvatar's four).
const STEPS: usize = 4;
/// Output frames per block (3 latent frames).
const FRAMES_PER_BLOCK: f64 = 12.0;

/// What one placement run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlacementReport {
    pub placement: String,
    pub frame: String,
    pub fp8: bool,
    pub timing: Measurement,
    /// DiT-only output frames per second (the VAE decode comes on top).
    pub dit_fps: f64,
    /// Host→device bytes per block (DiT layers and KV windows).
    pub host_to_device_gb_per_block: f64,
    /// Page-locked host RAM the placement holds.
    pub pinned_host_gb: f64,
}

/// The steady-state inputs of the calls of one block.
struct Calls<B: Backend> {
    latents: Tensor<B, 4>,
    cond_states: Tensor<B, 4>,
    audio: Tensor<B, 3>,
    ring_tokens: usize,
    block_tokens: usize,
}

impl<B: Backend> Calls<B> {
    /// The call of `step` for the block that starts `blocks_ahead` blocks after a wrapped ring.
    fn input(&self, step: usize, blocks_ahead: usize) -> StreamInput<B> {
        let timesteps = [1000.0, 937.5, 833.3, 625.0];
        StreamInput {
            latents: self.latents.clone(),
            timestep: timesteps[step % timesteps.len()],
            cond_states: self.cond_states.clone(),
            audio: self.audio.clone(),
            current_start: self.ring_tokens + blocks_ahead * self.block_tokens,
            ref_offset: 10,
        }
    }
}

/// Runs the placement bench; `latent` is the latent grid `(height, width)`.
#[allow(clippy::too_many_arguments)]
pub fn run<B: Backend>(
    device: &B::Device,
    placement: Placement,
    fp8: bool,
    step_batched: bool,
    scale: usize,
    latent: (usize, usize),
    iters: u32,
    time: super::bench_model::Timer<'_>,
) -> Result<PlacementReport, String> {
    let config = bench_config(scale);
    let (height, width) = latent;
    let model: DitModel<B> = bench_dit(&config, fp8, placement.streams_layers(), device)
        .map_err(|e| format!("the bench model could not be built: {e}"))?;
    let geometry = config.geometry(height, width);
    let kv = if placement.kv_on_host() {
        KvPlacement::Host
    } else {
        KvPlacement::Device
    };
    let mut cache =
        KvCache::with_placement(&config, &geometry, CLIP_LATENT_FRAMES, STEPS, kv, device)
            .map_err(|e| e.to_string())?;
    let random =
        |shape: [usize; 4]| Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let text = model.prepare_text(Tensor::random(
        [config.text_len, config.text_dim],
        Distribution::Normal(0.0, 1.0),
        device,
    ));
    let _ = model.sink_prefill(
        &mut cache.cond,
        &text,
        random([config.in_dim, 1, height, width]),
        random([config.in_dim, config.latent_motion_frames(), height, width]),
    );
    let frames = config.frames_per_block;
    let calls = Calls {
        latents: random([config.in_dim, frames, height, width]),
        cond_states: random([config.cond_dim, frames, height, width]),
        audio: Tensor::<B, 3>::random(
            [config.audio_encoder_layers, config.audio_dim, 4 * frames],
            Distribution::Normal(0.0, 1.0),
            device,
        ),
        ring_tokens: CLIP_LATENT_FRAMES * geometry.frame_tokens,
        block_tokens: frames * geometry.frame_tokens,
    };
    let rings: RefCell<&mut Vec<RingCache<B>>> = RefCell::new(&mut cache.steps);
    let cond = &cache.cond;
    let step_batched = step_batched || placement.streams_layers();
    let tag = format!(
        "block_{}_{}x{}{}{}",
        placement.name(),
        width * 8,
        height * 8,
        if fp8 { "_fp8" } else { "" },
        if step_batched { "_step_batched" } else { "" }
    );
    let mut timing = time(&tag, 0.0, iters, &|| {
        let mut rings = rings.borrow_mut();
        if step_batched {
            // One tick: four consecutive blocks, each at its own step with its step's ring.
            let batch = rings
                .iter_mut()
                .enumerate()
                .map(|(step, ring)| (calls.input(step, STEPS - 1 - step), ring))
                .collect();
            let _ = model.forward_blocks(batch, cond, &text);
        } else {
            for (step, ring) in rings.iter_mut().enumerate() {
                let _ = model.forward_block(calls.input(step, 0), ring, cond, &text);
            }
        }
    });
    let dit_fps = FRAMES_PER_BLOCK / (timing.ms * 1e-3);
    timing.output_fps = Some(dit_fps);
    let element = <B::FloatElem as burn::tensor::Element>::dtype().size();
    let window_rows = calls.ring_tokens - calls.block_tokens;
    let kv_in = if placement.kv_on_host() {
        STEPS * 2 * window_rows * config.dim * element * config.num_layers
    } else {
        0
    };
    let parked = model.parked.as_ref().map_or(0, |p| p.bytes());
    // The layers are copied in once per call: four calls per block, or one step-batched tick.
    let layers_in = if step_batched { parked } else { STEPS * parked };
    let copied = (kv_in + layers_in) as f64;
    timing.host_to_device_gb = Some(copied / 1e9);
    let pinned = cache
        .steps
        .iter()
        .map(|ring| ring.host_bytes())
        .sum::<usize>()
        + parked;
    Ok(PlacementReport {
        placement: placement.name().to_string(),
        frame: format!("{}x{}", width * 8, height * 8),
        fp8,
        timing,
        dit_fps,
        host_to_device_gb_per_block: copied / 1e9,
        pinned_host_gb: pinned as f64 / 1e9,
    })
}
