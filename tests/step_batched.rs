//! The step-batched schedule (TPP's: at each tick block n at step 0, n−1 at step 1, …, all in
//! one DiT call) makes the same frames as the sequential one, across the clip boundaries where
//! the streaming mode refreshes the reference and re-runs the sink (the pipeline drains there),
//! and for a render whose blocks do not fill the pipeline. Demo weights, streaming decode.

use avatar_studio::pipeline::demo::demo_models;
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
    }
}

fn render_frames(request: &RenderRequest) -> (Vec<f32>, Vec<u64>) {
    let device = Default::default();
    let models = demo_models::<B>(&device, false).unwrap_or_else(|e| panic!("{e}"));
    let mut hooks = Frames::default();
    let outcome = render(
        &models,
        request,
        &mut SeededRandomness { seed: 11 },
        &mut hooks,
        &device,
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
    let (sequential, seq_starts) = render_frames(&request(clips, steps, false));
    let (batched, batched_starts) = render_frames(&request(clips, steps, true));
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
    println!("{clips} clips, {steps} steps: step-batched vs sequential max abs {max:e}");
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
