//! The model half of `avatar-studio bench`: a DiT with random weights at the 14B config (sizes
//! divided by `scale` for quick checks), one transformer layer of a steady-state streaming
//! call (3168 queries against the 12672-token ring and the 2640 cond tokens at 704×384) and
//! the whole streaming call, all through the same code the renderer runs.

use std::cell::RefCell;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use super::bench::Measurement;
use crate::kernels::on_device_thread;
use crate::model::config::DitConfig;
use crate::model::dit::{DitModel, StreamInput};
use crate::model::kv_cache::{KvCache, RingCache};
use crate::pipeline::models::RANDOM_WEIGHTS_SEED;
use crate::pipeline::random_models::{Draw, Fp8Linears, random_dit};
use crate::weights::WeightsError;

/// Latent grid of a 704×384 video.
const LATENT_HEIGHT: usize = 48;
const LATENT_WIDTH: usize = 88;
/// Latent frames per clip (the ring holds one clip).
const CLIP_LATENT_FRAMES: usize = 12;
/// Output frames made per four streaming calls (one block of 3 latent frames, 4 steps).
const FRAMES_PER_FOUR_CALLS: f64 = 12.0;

/// The bench's random DiT: weights drawn on the device, the reference's FP8 linears as FP8
/// codes if `fp8` (the bench times the FP8 kernels), blocks parked in host RAM if
/// `stream_layers`.
pub fn bench_dit<B: Backend>(
    config: &DitConfig,
    fp8: bool,
    stream_layers: bool,
    device: &B::Device,
) -> Result<DitModel<B>, WeightsError> {
    let fp8 = if fp8 {
        Fp8Linears::Codes
    } else {
        Fp8Linears::No
    };
    let draw = Draw::Device {
        seed: RANDOM_WEIGHTS_SEED,
    };
    random_dit(config, draw, fp8, stream_layers, device)
}

/// The 14B config, or a narrower and shallower one with the same head width for `scale > 1`.
pub fn bench_config(scale: usize) -> DitConfig {
    let mut config = DitConfig::default();
    if scale > 1 {
        config.dim /= scale;
        config.ffn_dim /= scale;
        config.num_heads = (config.num_heads / scale).max(1);
        config.num_layers = (config.num_layers / scale).max(2);
        config.text_dim /= scale;
        config.text_len /= scale;
        config
            .audio_inject_layers
            .retain(|&l| l < config.num_layers);
    }
    config
}

/// Times `call` under a name, with its FLOP count and the number of timed calls.
pub type Timer<'a> = &'a dyn Fn(&str, f64, u32, &dyn Fn()) -> Measurement;

/// Builds the model (with FP8 linears if `fp8`) and times one layer and the whole streaming
/// call; `time` runs the timing loop, `print` reports.
pub fn run<B: Backend>(
    device: &B::Device,
    scale: usize,
    iters: u32,
    fp8: bool,
    time: Timer<'_>,
    print: &dyn Fn(&Measurement),
) {
    let config = bench_config(scale);
    let (height, width) = (LATENT_HEIGHT / scale.min(4), LATENT_WIDTH / scale.min(4));
    let suffix = if fp8 { "_fp8" } else { "" };
    let model = match bench_dit::<B>(&config, fp8, false, device) {
        Ok(model) => model,
        Err(e) => {
            eprintln!("error: the bench model could not be built: {e}");
            return;
        }
    };
    let geometry = config.geometry(height, width);
    let random = |shape: [usize; 4], std: f64| {
        Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, std), device)
    };
    let text = model.prepare_text(Tensor::random(
        [config.text_len, config.text_dim],
        Distribution::Normal(0.0, 1.0),
        device,
    ));
    let mut cache = KvCache::new(&config, &geometry, CLIP_LATENT_FRAMES, 1, device);
    let _ = model.sink_prefill(
        &mut cache.cond,
        &text,
        random([config.in_dim, 1, height, width], 1.0),
        random(
            [config.in_dim, config.latent_motion_frames(), height, width],
            1.0,
        ),
    );
    let frames = config.frames_per_block;
    let queries = frames * geometry.frame_tokens;
    let ring = CLIP_LATENT_FRAMES * geometry.frame_tokens;
    let keys = ring + cache.cond.len();
    // A block past the first clip: the ring has wrapped and is attended whole.
    let current_start = ring;
    let (dim, ffn) = (config.dim as f64, config.ffn_dim as f64);
    let (l, kv, ctx) = (queries as f64, keys as f64, config.text_len as f64);
    // Counted as torch_dit.py counts a block, so the TFLOP/s figures compare.
    let layer_flops =
        2.0 * l * (6.0 * dim * dim + 2.0 * dim * ffn) + 4.0 * l * kv * dim + 4.0 * l * ctx * dim;

    let Some(ring_cache) = cache.steps.pop() else {
        return;
    };
    let ring_cache = RefCell::new(ring_cache);
    let inputs = model.stream_layer_inputs(&geometry, frames, 500.0, current_start, 10);
    let x = Tensor::<B, 2>::random(
        [queries, config.dim],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    print(&time(
        &format!("block_{queries}:{keys}{suffix}"),
        layer_flops,
        iters,
        &|| {
            // On the device thread, as the layers of a DiT call run (`DitModel::forward_block`).
            let mut ring = ring_cache.borrow_mut();
            let ring: &mut RingCache<B> = &mut ring;
            on_device_thread::<B, _>(device, || {
                let _ = model.stream_layer(1, x.clone(), &inputs, ring, &cache.cond, &text);
            });
        },
    ));

    let latents = random([config.in_dim, frames, height, width], 1.0);
    let cond_states = random([config.cond_dim, frames, height, width], 1.0);
    let audio = Tensor::<B, 3>::random(
        [config.audio_encoder_layers, config.audio_dim, 4 * frames],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    // The 40-layer call with `ring`, under `name`.
    let time_call = |name: String, ring: &RefCell<RingCache<B>>| {
        let mut call = time(
            &name,
            layer_flops * config.num_layers as f64,
            iters.min(5),
            &|| {
                let input = StreamInput {
                    latents: latents.clone(),
                    timestep: 500.0,
                    cond_states: cond_states.clone(),
                    audio: audio.clone(),
                    current_start,
                    ref_offset: 10,
                };
                let _ = model.forward_block(input, &mut ring.borrow_mut(), &cache.cond, &text);
            },
        );
        call.output_fps = Some(FRAMES_PER_FOUR_CALLS / (4.0 * call.ms * 1e-3));
        call
    };
    let name = format!("forward{}_{queries}:{keys}{suffix}", config.num_layers);
    print(&time_call(name.clone(), &ring_cache));
    drop(ring_cache);

    // The same call with the ring in host RAM (the `kv-host` placements): every layer's window
    // is copied in while the layer before computes, and the block's rows are copied out.
    let host_ring = match RingCache::<B>::on_host(
        config.num_layers,
        ring,
        config.num_heads,
        config.head_dim(),
        device,
    ) {
        Ok(ring) => RefCell::new(ring),
        Err(e) => {
            eprintln!("note: no KV-in-host-RAM timing: {e}");
            return;
        }
    };
    let element_bytes = <B::FloatElem as burn::tensor::Element>::dtype().size();
    let copied_in = (2 * (ring - queries) * config.dim * element_bytes * config.num_layers) as f64;
    let mut call = time_call(format!("{name}_kv_host"), &host_ring);
    call.host_to_device_gb = Some(copied_in / 1e9);
    print(&call);
}
