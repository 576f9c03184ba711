//! End-to-end parity: the whole pipeline (wav2vec2 → umT5 → VAE encode → sink → every block and
//! step → the reference single-GPU clip-context decode) reproduces the fixtures' e2e run of the
//! Python reference, with its recorded noise and RoPE offsets injected. Every size comes from
//! the fixture files.

mod common;

use avatar_studio::model::audio_features::ProcessorConfig;
use avatar_studio::model::t5::{T5Config, T5Encoder};
use avatar_studio::model::text::PromptTokenizer;
use avatar_studio::model::vae::{VaeConfig, WanVae};
use avatar_studio::model::wav2vec::{Wav2Vec2, Wav2VecConfig};
use avatar_studio::pipeline::releasable::Releasable;
use avatar_studio::pipeline::{
    DecodeMode, FrameChunk, ModelOrigin, Models, PipelineError, Portrait, PromptInput, Randomness,
    RenderHooks, RenderRequest, render,
};
use avatar_studio::weights::loader::TensorSource;
use avatar_studio::weights::{LoraAdapter, StFile, WeightSet, load_dit};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use common::encoder_fixtures::{component_config, fixture, manifest};
use common::fixtures::{Diff, TestBackend, device, dit_config, values};

type B = TestBackend;

fn st(rel: &str) -> StFile {
    StFile::open(fixture(rel)).unwrap_or_else(|e| panic!("{e}"))
}

fn load_tensor<const D: usize>(file: &StFile, key: &str) -> Tensor<B, D> {
    let shape = file
        .info(key)
        .unwrap_or_else(|| panic!("fixture lacks {key}"))
        .shape;
    let dims: [usize; D] = shape
        .clone()
        .try_into()
        .unwrap_or_else(|_| panic!("{key}: rank {shape:?}"));
    let v = file.load_f32(key).unwrap_or_else(|e| panic!("{e}"));
    Tensor::from_data(TensorData::new(v, dims), &device())
}

fn e2e_config() -> serde_json::Value {
    manifest()["components"]["e2e"]["config"].clone()
}

fn config_usize(key: &str) -> usize {
    e2e_config()[key]
        .as_u64()
        .unwrap_or_else(|| panic!("e2e config lacks {key}")) as usize
}

/// The models the reference run loaded: the DiT with the LoRA merged, the VAE and T5 from
/// their `.pth` files, wav2vec2 from its safetensors.
fn models() -> Models<B> {
    let dev = device();
    let config = dit_config(&manifest());
    let weights =
        WeightSet::open(&[fixture("dit/dit_base.safetensors")]).unwrap_or_else(|e| panic!("{e}"));
    let lora = LoraAdapter::open(fixture("dit/dit_lora.safetensors"), None, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let dit = load_dit::<B>(&config, &weights, Some(&lora), &dev).unwrap_or_else(|e| panic!("{e}"));

    let vae_io = st("vae/vae_io.safetensors");
    let mut vae_cfg: VaeConfig =
        serde_json::from_value(component_config("vae")).expect("vae config");
    vae_cfg.latent_mean = vae_io.load_f32("latent_mean").expect("latent_mean");
    vae_cfg.latent_std = vae_io.load_f32("latent_std").expect("latent_std");
    let vae =
        WanVae::from_file(fixture("vae/vae.pth"), vae_cfg, &dev).unwrap_or_else(|e| panic!("{e}"));

    let t5_cfg: T5Config = serde_json::from_value(component_config("t5")).expect("t5 config");
    let text_len = t5_cfg.text_len;
    let vocab = t5_cfg.vocab_size;
    let t5 =
        T5Encoder::from_file(fixture("t5/t5.pth"), t5_cfg, &dev).unwrap_or_else(|e| panic!("{e}"));

    let w2v_cfg = Wav2VecConfig::from_file(fixture("audio/w2v_config.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let w2v_src = st("audio/w2v.safetensors");
    let wav2vec = Wav2Vec2::load(&w2v_src, w2v_cfg, &dev).unwrap_or_else(|e| panic!("{e}"));
    let processor = ProcessorConfig::from_file(fixture("audio/w2v_preprocessor_config.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    Models {
        origin: ModelOrigin::Checkpoint {
            folder: fixture(""),
            lora: None,
        },
        dit,
        vae,
        t5_config: t5.config().clone(),
        t5: Releasable::new(t5),
        // The run is driven by the recorded token ids; the tokenizer is never asked.
        tokenizer: PromptTokenizer::byte_level(vocab, text_len),
        wav2vec: Releasable::new(wav2vec),
        processor,
    }
}

/// The recorded noise (per clip) and RoPE offsets (per call).
struct Recorded {
    noise: Tensor<B, 5>,
    offsets: Vec<i64>,
    calls_seen: usize,
}

impl Randomness<B> for Recorded {
    fn clip_noise(
        &mut self,
        clip: usize,
        shape: [usize; 4],
        _device: &burn::tensor::Device<B>,
    ) -> Tensor<B, 4> {
        let noise = self.noise.clone().narrow(0, clip, 1).squeeze_dim::<4>(0);
        assert_eq!(noise.dims(), shape, "clip {clip}: noise shape");
        noise
    }

    fn ref_offset(&mut self, call: usize, _range: [i64; 2]) -> i64 {
        self.calls_seen = self.calls_seen.max(call + 1);
        self.offsets[call]
    }
}

#[derive(Default)]
struct Collect {
    latents: Vec<Tensor<B, 4>>,
    video: Vec<Tensor<B, 4>>,
    first_frames: Vec<u64>,
}

impl RenderHooks<B> for Collect {
    fn clip_latents(&mut self, _clip: usize, latents: &Tensor<B, 4>) {
        self.latents.push(latents.clone());
    }

    fn frames(&mut self, chunk: FrameChunk<B>) -> Result<(), PipelineError> {
        self.first_frames.push(chunk.first_frame);
        self.video.push(chunk.video);
        Ok(())
    }
}

fn check(name: &str, actual: Tensor<B, 4>, expected: Tensor<B, 4>, atol: f64, rel_l2: f64) {
    assert_eq!(actual.dims(), expected.dims(), "{name}: shape");
    let d = Diff::of(&values(actual), &values(expected));
    println!(
        "{name}: max abs {:.3e}, rel-L2 {:.3e} (tolerance {atol:e}, {rel_l2:e})",
        d.max_abs,
        d.rel_l2()
    );
    assert!(d.max_abs <= atol, "{name}: max abs {:e}", d.max_abs);
    assert!(d.rel_l2() <= rel_l2, "{name}: rel-L2 {:e}", d.rel_l2());
}

#[test]
fn pipeline_reproduces_the_reference_run() {
    let sequential = reference_run(false);
    // TPP's step-batched schedule (four blocks at four steps in one DiT call) must make the
    // same frames as the sequential one: checked against the fixture, and against each other.
    let batched = reference_run(true);
    let (max, _) = max_and_rel(&batched, &sequential);
    println!("step-batched vs sequential frames: max abs {max:.3e}");
    assert!(
        max <= 1e-5,
        "the step-batched schedule changed the frames (max abs {max:e})"
    );
}

/// (max abs difference, relative L2) of two videos.
fn max_and_rel(a: &Tensor<B, 4>, b: &Tensor<B, 4>) -> (f64, f64) {
    let diff = a.clone() - b.clone();
    let max = diff.clone().abs().max().into_scalar().elem::<f64>();
    let num = diff.powi_scalar(2).sum().into_scalar().elem::<f64>();
    let den = b.clone().powi_scalar(2).sum().into_scalar().elem::<f64>();
    (max, (num / den.max(1e-30)).sqrt())
}

/// Renders the fixtures' e2e run with its recorded noise and offsets, checks the clip latents
/// and the video against the reference, and returns the video.
fn reference_run(step_batched: bool) -> Tensor<B, 4> {
    println!(
        "schedule: {}",
        if step_batched {
            "step-batched"
        } else {
            "sequential"
        }
    );
    let io = st("e2e/e2e.safetensors");
    let (dtype, shape, bytes) = io.raw("image_uint8").expect("image");
    assert_eq!(dtype, "U8");
    let (h, w) = (shape[0], shape[1]);
    let plane = h * w;
    let mut chw = vec![0f32; 3 * plane];
    for (i, px) in bytes.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = f32::from(px[c]) / 255.0 * 2.0 - 1.0;
        }
    }
    let (_, ids) = io.load_i64("prompt_ids").expect("prompt ids");
    let waveform = st("audio/audio_io.safetensors")
        .load_f32("waveform")
        .expect("waveform");
    let clips = config_usize("num_clip");
    let request = RenderRequest {
        portrait: Portrait {
            width: w as u32,
            height: h as u32,
            chw,
        },
        samples_16k: waveform,
        prompt: PromptInput::Ids(ids),
        max_clips: Some(clips),
        frames_per_clip: config_usize("infer_frames"),
        steps: config_usize("sampling_steps"),
        decode: DecodeMode::ClipContext,
        step_batched,
        kv_placement: Default::default(),
        release_encoders: false,
    };
    let (_, offsets) = io.load_i64("rd_per_call").expect("rd_per_call");
    let mut recorded = Recorded {
        noise: load_tensor(&io, "noise"),
        offsets,
        calls_seen: 0,
    };
    let models = models();
    let mut hooks = Collect::default();
    let outcome = render(&models, &request, &mut recorded, &mut hooks, &device())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.clips_done, clips);
    assert!(!outcome.stopped);
    assert_eq!(recorded.calls_seen, recorded.offsets.len(), "DiT calls");

    let expected_latents: Tensor<B, 5> = load_tensor(&io, "clip_latents");
    assert_eq!(hooks.latents.len(), clips);
    for (clip, ours) in hooks.latents.iter().enumerate() {
        let expected = expected_latents
            .clone()
            .narrow(0, clip, 1)
            .squeeze_dim::<4>(0);
        check(
            &format!("clip_latents[{clip}]"),
            ours.clone(),
            expected,
            5e-3,
            1e-4,
        );
    }

    let expected_video: Tensor<B, 4> = load_tensor(&io, "video");
    let ours = Tensor::cat(hooks.video.clone(), 1);
    assert_eq!(
        ours.dims()[1] as u64,
        outcome.shape.frames,
        "frames = frames_per_clip · clips − 3"
    );
    assert_eq!(outcome.frames_delivered, outcome.shape.frames);
    assert_eq!(hooks.first_frames[0], 0);
    check("video", ours.clone(), expected_video, 3e-3, 1e-4);
    ours
}
