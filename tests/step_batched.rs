//! The step-batched schedule (TPP's: at each tick block n at step 0, n−1 at step 1, …, all in
//! one DiT call) makes the same frames as the sequential one, across the clip boundaries where
//! the streaming mode refreshes the reference and re-runs the sink (the pipeline drains there),
//! and for a render whose blocks do not fill the pipeline. Demo weights, streaming decode.
//! Keeping the step KV caches in host RAM (the `kv-host` placements) makes the same frames too.

use avatar_studio::model::KvPlacement;
use avatar_studio::pipeline::demo::demo_models_with;
use avatar_studio::pipeline::{
    DecodeMode, FrameChunk, PipelineError, Portrait, PromptInput, RenderHooks, RenderRequest,
    SeededRandomness, render,
};
use burn::backend::Flex;
use burn::tensor::Tensor;

type B = Flex;

#[derive(Default)]
struct Frames {
    chunks: Vec<Tensor<B, 4>>,
    first_frames: Vec<u64>,
}

impl RenderHooks<B> for Frames {
    fn frames(&mut self, chunk: FrameChunk<B>) -> Result<(), PipelineError> {
        self.first_frames.push(chunk.first_frame);
        self.chunks.push(chunk.video);
        Ok(())
    }
}

fn request(clips: usize, steps: usize, step_batched: bool) -> RenderRequest {
    request_with(clips, steps, step_batched, KvPlacement::Device)
}

fn request_with(
    clips: usize,
    steps: usize,
    step_batched: bool,
    kv_placement: KvPlacement,
) -> RenderRequest {
    let (width, height) = (128u32, 64u32);
    let chw: Vec<f32> = (0..3 * width * height)
        .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
        .collect();
    // A voice-like tone long enough for `clips` clips of 48 frames at 25 fps.
    let samples = (clips as f32 * 48.0 / 25.0 + 0.5) * 16_000.0;
    let samples_16k = (0..samples as usize)
        .map(|i| 0.3 * (i as f32 * 0.05).sin() * (1.0 + (i as f32 * 0.0007).sin()))
        .collect();
    RenderRequest {
        portrait: Portrait { width, height, chw },
        samples_16k,
        prompt: PromptInput::Text("a person talking".into()),
        max_clips: Some(clips),
        frames_per_clip: 48,
        steps,
        decode: DecodeMode::Streaming,
        step_batched,
        kv_placement,
        release_encoders: false,
    }
}

fn render_frames(request: &RenderRequest) -> (Vec<f32>, Vec<u64>) {
    render_frames_with(request, false)
}

/// The frames of `request`, with the DiT's blocks parked in host RAM if `stream_layers`.
fn render_frames_with(request: &RenderRequest, stream_layers: bool) -> (Vec<f32>, Vec<u64>) {
    let device = Default::default();
    let models =
        demo_models_with::<B>(&device, false, stream_layers).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(models.dit.streams_layers(), stream_layers);
    render_with(&models, request, &device)
}

/// The frames of `request` rendered with `models` (seed 11), and each chunk's first frame.
fn render_with(
    models: &avatar_studio::pipeline::Models<B>,
    request: &RenderRequest,
    device: &burn::tensor::Device<B>,
) -> (Vec<f32>, Vec<u64>) {
    let mut hooks = Frames::default();
    let outcome = render(
        models,
        request,
        &mut SeededRandomness { seed: 11 },
        &mut hooks,
        device,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.frames_delivered, outcome.shape.frames);
    let video = Tensor::cat(hooks.chunks, 1);
    let values = video
        .into_data()
        .to_vec::<f32>()
        .unwrap_or_else(|e| panic!("{e:?}"));
    (values, hooks.first_frames)
}

fn assert_same_frames(clips: usize, steps: usize) {
    assert_same_frames_as(clips, steps, request(clips, steps, true), "step-batched");
}

fn assert_same_frames_as(clips: usize, steps: usize, other: RenderRequest, what: &str) {
    assert_same_frames_streaming(clips, steps, other, false, what);
}

fn assert_same_frames_streaming(
    clips: usize,
    steps: usize,
    other: RenderRequest,
    stream_layers: bool,
    what: &str,
) {
    let (sequential, seq_starts) = render_frames(&request(clips, steps, false));
    let (batched, batched_starts) = render_frames_with(&other, stream_layers);
    assert_eq!(
        seq_starts, batched_starts,
        "frame chunks arrive at the same positions"
    );
    assert_eq!(sequential.len(), batched.len());
    let max = sequential
        .iter()
        .zip(&batched)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!("{clips} clips, {steps} steps: {what} vs sequential max abs {max:e}");
    assert!(max <= 1e-5, "the schedules disagree by {max}");
}

#[test]
fn step_batched_frames_equal_sequential_across_the_reference_refresh() {
    // Clip 1 re-runs the sink with the refreshed reference: the pipeline drains before it.
    assert_same_frames(3, 4);
}

#[test]
fn step_batched_frames_equal_sequential_with_two_steps() {
    assert_same_frames(1, 2);
}

#[test]
fn kv_caches_in_host_ram_make_the_same_frames() {
    // Three clips wrap every step's ring (the writes go modulo its capacity and the whole ring
    // is read, the block's own rows excepted from the copy); step-batched, four rings are
    // copied per layer.
    assert_same_frames_as(
        3,
        4,
        request_with(3, 4, true, KvPlacement::Host),
        "step-batched with the KV caches in host RAM",
    );
}

#[test]
fn dit_layers_streamed_from_host_ram_make_the_same_frames() {
    // The smallest placement: the DiT's blocks and the step rings both in host RAM, every block
    // copied in per call while the one before computes, four blocks per call.
    assert_same_frames_streaming(
        3,
        4,
        request_with(3, 4, true, KvPlacement::Host),
        true,
        "layer streaming with the KV caches in host RAM",
    );
}

#[test]
fn released_encoders_come_back_for_the_next_render() {
    // A plan short of room drops umT5 and wav2vec2 once the prompt and the voice are encoded;
    // the frames do not change, and the encoders load again for the next render.
    let device = Default::default();
    let models = demo_models_with::<B>(&device, false, false).unwrap_or_else(|e| panic!("{e}"));
    let run = |request: &RenderRequest| render_with(&models, request, &device).0;
    let kept = run(&request(1, 2, false));
    assert!(models.encoders_loaded());
    let mut releasing = request(1, 2, false);
    releasing.release_encoders = true;
    let released = run(&releasing);
    assert!(!models.encoders_loaded(), "the encoders are still loaded");
    assert_eq!(kept, released, "releasing the encoders changed the frames");
    // Without them a render fails with a clear error instead of a panic...
    let message = render(
        &models,
        &request(1, 2, false),
        &mut SeededRandomness { seed: 11 },
        &mut Frames::default(),
        &device,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(message.contains("encoder was released"), "{message}");
    // ...and once reloaded it makes the same frames again.
    models
        .reload_encoders(&avatar_studio::pipeline::ModelSpec::demo(), &device)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run(&request(1, 2, false)), kept);
}
