//! `--random-weights`: the four networks at any sizes with weights drawn by the device's own
//! generator. Each tensor follows the initialisation recipe of the host-drawn demo weights, a
//! seed makes the same model twice (so encoders loaded again after a release are the same), and
//! a model drawn this way renders through the whole pipeline. Run here at the demo's sizes; the
//! released sizes differ only in the configs.

use std::sync::Mutex;

use avatar_studio::memory::ModelConfigs;
use avatar_studio::model::KvPlacement;
use avatar_studio::pipeline::demo::{DemoConfigs, demo_models};
use avatar_studio::pipeline::random_models::{Draw, random_models};
use avatar_studio::pipeline::{
    DecodeMode, FrameChunk, ModelOrigin, Models, PipelineError, Portrait, PromptInput, RenderHooks,
    RenderRequest, SeededRandomness, render,
};
use avatar_studio::weights::keymap::ExpectedTensor;
use avatar_studio::weights::loader::{load_reshaped, load_tensor};
use avatar_studio::weights::random::RandomWeights;
use burn::backend::Flex;
use burn::tensor::Tensor;

type B = Flex;

/// The device generator is one per process: tests that draw from it take turns, or one's draws
/// would land in the middle of another's.
static GENERATOR: Mutex<()> = Mutex::new(());

fn expected(key: &str, shape: &[usize]) -> ExpectedTensor {
    ExpectedTensor {
        key: key.into(),
        shape: shape.to_vec(),
        module: key.into(),
    }
}

fn mean_and_std(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

fn values<const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor
        .into_data()
        .to_vec::<f32>()
        .unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn device_drawn_tensors_follow_the_demo_recipe() {
    let _turn = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let source = RandomWeights::on_device(
        "random test weights",
        vec![
            expected("blocks.0.ffn.0.weight", &[512, 64]),
            expected("blocks.0.norm.weight", &[8192]),
            expected("blocks.0.ffn.0.bias", &[8192]),
            expected("conv.weight", &[32, 16, 3, 3]),
        ],
    );
    // (tensor, wanted mean, wanted std): matrices N(0, 1/fan_in), scales 1 + N(0, 0.1²),
    // biases N(0, 0.1²); a kernel's fan-in is all its dimensions after the first.
    let cases: Vec<(Vec<f32>, f64, f64)> = vec![
        (
            values(
                load_tensor::<B, 2>(&source, "blocks.0.ffn.0.weight", [512, 64], &device)
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            0.0,
            (1.0f64 / 64.0).sqrt(),
        ),
        (
            values(
                load_tensor::<B, 1>(&source, "blocks.0.norm.weight", [8192], &device)
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            1.0,
            0.1,
        ),
        (
            values(
                load_tensor::<B, 1>(&source, "blocks.0.ffn.0.bias", [8192], &device)
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            0.0,
            0.1,
        ),
        (
            values(
                load_reshaped::<B, 2>(&source, "conv.weight", &[32, 16, 3, 3], [32, 144], &device)
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            0.0,
            (1.0f64 / 144.0).sqrt(),
        ),
    ];
    for (index, (drawn, mean, std)) in cases.iter().enumerate() {
        let (got_mean, got_std) = mean_and_std(drawn);
        assert!(
            (got_mean - mean).abs() < 4.0 * std / (drawn.len() as f64).sqrt() + 1e-6,
            "tensor {index}: mean {got_mean}, wanted {mean}"
        );
        assert!(
            (got_std / std - 1.0).abs() < 0.05,
            "tensor {index}: std {got_std}, wanted {std}"
        );
    }
    // A wrong shape is still refused before anything is drawn.
    let error = load_tensor::<B, 2>(&source, "blocks.0.ffn.0.weight", [64, 512], &device)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("blocks.0.ffn.0.weight"), "{error}");
}

#[derive(Default)]
struct Frames {
    chunks: Vec<Tensor<B, 4>>,
}

impl RenderHooks<B> for Frames {
    fn frames(&mut self, chunk: FrameChunk<B>) -> Result<(), PipelineError> {
        self.chunks.push(chunk.video);
        Ok(())
    }
}

fn one_clip() -> RenderRequest {
    let (width, height) = (128u32, 64u32);
    let chw: Vec<f32> = (0..3 * width * height)
        .map(|i| ((i % 89) as f32 / 44.0) - 1.0)
        .collect();
    let samples = (48.0 / 25.0 + 0.5) * 16_000.0;
    RenderRequest {
        portrait: Portrait { width, height, chw },
        samples_16k: (0..samples as usize)
            .map(|i| 0.3 * (i as f32 * 0.03).sin())
            .collect(),
        prompt: PromptInput::Text("a person talking".into()),
        max_clips: Some(1),
        frames_per_clip: 48,
        steps: 2,
        decode: DecodeMode::Streaming,
        step_batched: false,
        kv_placement: KvPlacement::Device,
        release_encoders: true,
    }
}

fn render_values(models: &Models<B>, device: &burn::tensor::Device<B>) -> Vec<f32> {
    let mut hooks = Frames::default();
    let outcome = render(
        models,
        &one_clip(),
        &mut SeededRandomness { seed: 3 },
        &mut hooks,
        device,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.frames_delivered, outcome.shape.frames);
    values(Tensor::cat(hooks.chunks, 1))
}

fn device_drawn(seed: u64, device: &burn::tensor::Device<B>) -> Models<B> {
    let configs: ModelConfigs = DemoConfigs::default().into();
    random_models::<B>(
        &configs,
        Draw::Device { seed },
        ModelOrigin::Random { seed },
        false,
        false,
        device,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_device_drawn_model_renders_and_a_seed_draws_it_again() {
    let _turn = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let first = device_drawn(7, &device);
    let frames = render_values(&first, &device);
    assert!(
        frames.iter().all(|v| v.is_finite()),
        "a frame is not finite"
    );
    // The render released the encoders; loading them again draws the same ones.
    assert!(!first.encoders_loaded());
    let spec = avatar_studio::pipeline::ModelSpec {
        origin: ModelOrigin::Random { seed: 7 },
        encoders: None,
        fp8: false,
        stream_layers: false,
    };
    // `reload_encoders` draws at the released sizes, so this test reloads through the same
    // function the engine uses at the demo's sizes instead.
    let (t5, wav2vec) = avatar_studio::pipeline::random_models::random_encoders::<B>(
        &DemoConfigs::default().into(),
        Draw::Device { seed: 7 },
        &device,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    first.t5.restore(t5);
    first.wav2vec.restore(wav2vec);
    assert_eq!(
        render_values(&first, &device),
        frames,
        "reloaded encoders differ"
    );
    // `--random-weights` itself is the released sizes.
    let configs = spec.configs().unwrap_or_else(|e| panic!("{e}"));
    let released = ModelConfigs::released();
    assert_eq!((configs.dit, configs.t5), (released.dit, released.t5));

    let again = device_drawn(7, &device);
    assert_eq!(
        render_values(&again, &device),
        frames,
        "the same seed drew another model"
    );
    let other = device_drawn(8, &device);
    assert_ne!(
        render_values(&other, &device),
        frames,
        "the seed is ignored"
    );
    // The device draw is not the demo's host draw.
    let demo = demo_models::<B>(&device, false).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(render_values(&demo, &device), frames);
}
