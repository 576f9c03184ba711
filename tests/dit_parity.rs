//! DiT parity against the streaming-run fixture (`dit/dit_run.safetensors`): debug
//! activations, the sink caches, every streaming call in call order (teacher-forced), the
//! free-running final latents, and the pure-float32 variant.

mod common;

use avatar_studio::model::{
    DitConfig, DitModel, DitTrace, KvCache, Numerics, StreamInput, TextContext,
};
use avatar_studio::sampler::FlowMatchSchedule;
use avatar_studio::weights::{LoraAdapter, SafetensorsFile, WeightSet, load_dit};
use burn::tensor::Tensor;
use common::*;

type B = TestBackend;

struct Fixture {
    config: DitConfig,
    manifest: serde_json::Value,
    run: SafetensorsFile,
    model: DitModel<B>,
}

fn load_fixture() -> Fixture {
    let manifest = manifest();
    let config = dit_config(&manifest);
    let weights =
        WeightSet::open(&[fixture("dit/dit_base.safetensors")]).unwrap_or_else(|e| panic!("{e}"));
    let lora = LoraAdapter::open(fixture("dit/dit_lora.safetensors"), None, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let model =
        load_dit::<B>(&config, &weights, Some(&lora), &device()).unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        config,
        manifest,
        run: open("dit/dit_run.safetensors"),
        model,
    }
}

/// One row of `call_meta`.
#[derive(Debug, Clone, Copy)]
struct CallMeta {
    clip: usize,
    block: usize,
    step: usize,
    current_start: usize,
    frame: i64,
    rd: i64,
    roll: i64,
    ring_offset: usize,
}

fn call_meta(run: &SafetensorsFile) -> Vec<CallMeta> {
    let (meta, shape) = ints(run, "call_meta");
    let (rd, _) = ints(run, "rd_per_call");
    assert_eq!(shape[1], 8);
    meta.chunks(8)
        .enumerate()
        .map(|(k, m)| {
            assert_eq!(m[5], rd[k], "call {k}: call_meta rd vs rd_per_call");
            CallMeta {
                clip: m[0] as usize,
                block: m[1] as usize,
                step: m[2] as usize,
                current_start: m[3] as usize,
                frame: m[4],
                rd: m[5],
                roll: m[6],
                ring_offset: m[7] as usize,
            }
        })
        .collect()
}

/// Pieces of the run every call needs.
struct RunInputs {
    text: TextContext<B>,
    timesteps: Vec<f32>,
    sigmas: Vec<f32>,
    cond_states: Tensor<B, 5>,
    audio: Tensor<B, 4>,
    motion: Tensor<B, 4>,
    x_in: Tensor<B, 5>,
}

fn run_inputs(f: &Fixture) -> RunInputs {
    let context = tensor::<2>(&f.run, "context");
    let motion = tensor::<5>(&f.run, "motion_latents");
    let [_, c, t, h, w] = motion.dims();
    RunInputs {
        text: f.model.prepare_text(context),
        timesteps: floats(&f.run, "timesteps"),
        sigmas: floats(&f.run, "sigmas"),
        cond_states: tensor::<5>(&f.run, "cond_states"),
        audio: tensor::<4>(&f.run, "audio_emb"),
        motion: motion.reshape([c, t, h, w]),
        x_in: tensor::<5>(&f.run, "x_in"),
    }
}

fn squeeze_first<const D: usize, const D2: usize>(t: Tensor<B, D>) -> Tensor<B, D2> {
    let dims = t.dims();
    let mut shape = [0usize; D2];
    shape.copy_from_slice(&dims[1..]);
    t.reshape(shape)
}

fn pick<const D: usize, const D2: usize>(t: &Tensor<B, D>, index: usize) -> Tensor<B, D2> {
    squeeze_first(t.clone().narrow(0, index, 1))
}

impl RunInputs {
    fn stream_input(&self, f: &Fixture, meta: &CallMeta, latents: Tensor<B, 4>) -> StreamInput<B> {
        let frames = f.config.frames_per_block;
        let clip_frames = geometry_number(&f.manifest, "infer_frames");
        let video_per_block = clip_frames / geometry_number(&f.manifest, "num_blocks");
        let cond: Tensor<B, 4> = pick(&self.cond_states, meta.clip);
        let audio: Tensor<B, 3> = squeeze_first(self.audio.clone());
        let audio_start = clip_frames * meta.clip + video_per_block * meta.block;
        StreamInput {
            latents,
            timestep: self.timesteps[meta.step],
            cond_states: cond.narrow(1, frames * meta.block, frames),
            audio: audio.narrow(2, audio_start, video_per_block),
            current_start: meta.current_start,
            ref_offset: meta.rd,
        }
    }
}

fn new_cache(f: &Fixture) -> KvCache<B> {
    let h = geometry_number(&f.manifest, "h");
    let w = geometry_number(&f.manifest, "w");
    let geometry = f.config.geometry(h, w);
    assert_eq!(geometry.frame_tokens, geometry_number(&f.manifest, "fsl"));
    assert_eq!(geometry.cond_tokens, geometry_number(&f.manifest, "L_cond"));
    let clip_latents = geometry_number(&f.manifest, "lat_target_frames");
    let steps = floats(&f.run, "timesteps").len();
    let cache = KvCache::new(&f.config, &geometry, clip_latents, steps, &device());
    assert_eq!(
        cache.steps[0].capacity(),
        geometry_number(&f.manifest, "ring_tokens_S")
    );
    cache
}

fn check_sink(f: &Fixture, cache: &KvCache<B>, sink: &str) -> (f64, f64) {
    let expected_k = tensor::<4>(&f.run, &format!("{sink}.cond_k"));
    let expected_v = tensor::<4>(&f.run, &format!("{sink}.cond_v"));
    let (mut first, mut later) = (0.0f64, 0.0f64);
    for layer in 0..f.config.num_layers {
        let (k, v) = cache.cond.read(layer);
        let dk = Diff::of(&values(k), &values(pick::<4, 3>(&expected_k, layer)));
        let dv = Diff::of(&values(v), &values(pick::<4, 3>(&expected_v, layer)));
        let worst = dk.max_abs.max(dv.max_abs);
        if layer == 0 {
            first = first.max(worst);
        } else {
            later = later.max(worst);
        }
    }
    println!("{sink}: cond K/V max abs layer 0 {first:e}, later layers {later:e}");
    assert!(
        first <= 1e-5,
        "{sink}: layer 0 cond K/V error {first:e} > 1e-5"
    );
    assert!(
        later <= 2e-3,
        "{sink}: later-layer cond K/V error {later:e} > 2e-3"
    );
    (first, later)
}

fn sink(f: &Fixture, inputs: &RunInputs, cache: &mut KvCache<B>, ref_latents: Tensor<B, 4>) {
    f.model.sink_prefill(
        &mut cache.cond,
        &inputs.text,
        ref_latents,
        inputs.motion.clone(),
    );
}

fn ref_latents(f: &Fixture, key: &str) -> Tensor<B, 4> {
    squeeze_first(tensor::<5>(&f.run, key))
}

/// Block-level activations against `debug.<prefix>.*`: the block input at the embedding
/// tolerance, block / audio / head outputs at the block tolerance of the fixture README.
fn check_trace(f: &Fixture, prefix: &str, trace: &DitTrace<B>) {
    let debug = |name: &str| floats(&f.run, &format!("debug.{prefix}.{name}"));
    let input = trace
        .block_input
        .clone()
        .unwrap_or_else(|| panic!("{prefix}: no block input"));
    let d = Diff::of(&values(input), &debug("block_in"));
    println!("debug.{prefix}.block_in: max abs {:.3e}", d.max_abs);
    assert!(
        d.max_abs <= 1e-5,
        "{prefix} block_in: max abs {:e}",
        d.max_abs
    );
    assert_eq!(trace.block_outputs.len(), f.config.num_layers);
    let mut compared = Vec::new();
    for (i, out) in trace.block_outputs.iter().enumerate() {
        let name = format!("block{i}.out");
        compared.push((name.clone(), Diff::of(&values(out.clone()), &debug(&name))));
    }
    for (i, out) in trace.after_audio.iter().enumerate() {
        let name = format!("block{i}.after_audio");
        compared.push((name.clone(), Diff::of(&values(out.clone()), &debug(&name))));
    }
    if let Some(head) = &trace.head {
        compared.push((
            "head.out".into(),
            Diff::of(&values(head.clone()), &debug("head.out")),
        ));
    }
    for (name, d) in &compared {
        println!(
            "debug.{prefix}.{name}: max abs {:.3e} rel-L2 {:.3e}",
            d.max_abs,
            d.rel_l2()
        );
        assert!(
            d.max_abs <= 2e-3 && d.rel_l2() <= 1e-4,
            "debug.{prefix}.{name}: max abs {:e}, rel-L2 {:e}",
            d.max_abs,
            d.rel_l2()
        );
    }
}

fn has_debug(f: &Fixture, prefix: &str) -> bool {
    f.run
        .tensors()
        .contains_key(&format!("debug.{prefix}.block_in"))
}

/// Every streaming call in call order, fed the recorded inputs; caches fill from our own
/// calls. Also checks the sink caches of both clips, the RoPE and ring offsets, and the
/// block-level debug activations of the traced sink and calls.
#[test]
fn teacher_forced_calls_match() {
    let f = load_fixture();
    let inputs = run_inputs(&f);
    let metas = call_meta(&f.run);
    let expected_v = tensor::<5>(&f.run, "v");
    let fsl = geometry_number(&f.manifest, "fsl");
    let mut cache = new_cache(&f);
    let mut current_clip = None;
    let mut total = Diff::default();
    let mut traced = 0;
    for (k, meta) in metas.iter().enumerate() {
        if current_clip != Some(meta.clip) {
            let key = format!("sink{}", meta.clip);
            let prefix = format!("sink_r{}", meta.clip);
            let mut trace = DitTrace::default();
            let record = has_debug(&f, &prefix);
            f.model.sink_prefill_traced(
                &mut cache.cond,
                &inputs.text,
                ref_latents(&f, &format!("{key}.ref_latents")),
                inputs.motion.clone(),
                record.then_some(&mut trace),
            );
            if record {
                check_trace(&f, &prefix, &trace);
                traced += 1;
            }
            check_sink(&f, &cache, &key);
            current_clip = Some(meta.clip);
        }
        assert_eq!(
            f.model.ref_roll(meta.frame, meta.rd),
            meta.roll,
            "call {k}: ref roll"
        );
        assert_eq!(meta.current_start / fsl, meta.frame as usize);
        let slot = cache.steps[meta.step].slot(meta.current_start, f.config.frames_per_block * fsl);
        assert_eq!(slot.write_offset, meta.ring_offset, "call {k}: ring offset");
        let input = inputs.stream_input(&f, meta, pick(&inputs.x_in, k));
        let prefix = format!("call{k}");
        let record = has_debug(&f, &prefix);
        let mut trace = DitTrace::default();
        let v = f.model.forward_block_traced(
            input,
            &mut cache.steps[meta.step],
            &cache.cond,
            &inputs.text,
            record.then_some(&mut trace),
        );
        if record {
            check_trace(&f, &prefix, &trace);
            traced += 1;
        }
        let diff = Diff::of(&values(v), &values(pick::<5, 4>(&expected_v, k)));
        println!(
            "call {k:2} (clip {} block {} step {}): max abs {:.3e} rel-L2 {:.3e}",
            meta.clip,
            meta.block,
            meta.step,
            diff.max_abs,
            diff.rel_l2()
        );
        total = total.merge(diff);
    }
    println!(
        "all calls: max abs {:e}, rel-L2 {:e}",
        total.max_abs,
        total.rel_l2()
    );
    assert!(
        traced >= 3,
        "debug activations of the sink and two calls expected, got {traced}"
    );
    assert!(
        total.max_abs <= 5e-3,
        "v max abs {:e} > 5e-3",
        total.max_abs
    );
    assert!(
        total.rel_l2() <= 1e-4,
        "v rel-L2 {:e} > 1e-4",
        total.rel_l2()
    );
}

/// Clip 0 with the norm3 bf16 rounding switched off, against `v_pure_f32` (its own sink and
/// caches, same recorded inputs).
#[test]
fn pure_float32_calls_match() {
    let mut f = load_fixture();
    f.model = f.model.clone().with_numerics(Numerics {
        round_norm3_bf16: false,
        ..Numerics::default()
    });
    let inputs = run_inputs(&f);
    let metas = call_meta(&f.run);
    let expected = tensor::<5>(&f.run, "v_pure_f32");
    let calls = expected.dims()[0];
    let mut cache = new_cache(&f);
    sink(
        &f,
        &inputs,
        &mut cache,
        ref_latents(&f, "sink0.ref_latents"),
    );
    let mut total = Diff::default();
    for (k, meta) in metas.iter().take(calls).enumerate() {
        assert_eq!(meta.clip, 0, "v_pure_f32 covers clip 0 only");
        let input = inputs.stream_input(&f, meta, pick(&inputs.x_in, k));
        let v = f.model.forward_block(
            input,
            &mut cache.steps[meta.step],
            &cache.cond,
            &inputs.text,
        );
        let diff = Diff::of(&values(v), &values(pick::<5, 4>(&expected, k)));
        total = total.merge(diff);
    }
    println!(
        "v_pure_f32 over {calls} calls: max abs {:e}, rel-L2 {:e}",
        total.max_abs,
        total.rel_l2()
    );
    assert!(total.max_abs <= 1e-4, "max abs {:e} > 1e-4", total.max_abs);
    assert!(total.rel_l2() <= 1e-5, "rel-L2 {:e} > 1e-5", total.rel_l2());
}

/// The whole schedule fed with our own Euler outputs (and our own refreshed reference
/// latent), compared on the final latents of every block.
#[test]
fn free_running_block_outputs_match() {
    let f = load_fixture();
    let inputs = run_inputs(&f);
    let metas = call_meta(&f.run);
    let expected = tensor::<5>(&f.run, "block_out");
    let schedule = FlowMatchSchedule {
        sigmas: inputs.sigmas.clone(),
        timesteps: inputs.timesteps.clone(),
    };
    let steps = schedule.steps();
    let blocks_per_clip = geometry_number(&f.manifest, "num_blocks");
    let mut cache = new_cache(&f);
    let mut reference = ref_latents(&f, "sink0.ref_latents");
    let mut current_clip = None;
    let mut latents: Option<Tensor<B, 4>> = None;
    let mut total = Diff::default();
    for (k, meta) in metas.iter().enumerate() {
        if current_clip != Some(meta.clip) {
            sink(&f, &inputs, &mut cache, reference.clone());
            current_clip = Some(meta.clip);
        }
        // Step 0 of every block starts from the recorded initial noise.
        let x = match (meta.step, latents.take()) {
            (0, _) | (_, None) => pick(&inputs.x_in, k),
            (_, Some(x)) => x,
        };
        let input = inputs.stream_input(&f, meta, x.clone());
        let v = f.model.forward_block(
            input,
            &mut cache.steps[meta.step],
            &cache.cond,
            &inputs.text,
        );
        let next = schedule.euler_step(meta.step, x, v);
        if meta.step + 1 == steps {
            let index = meta.clip * blocks_per_clip + meta.block;
            let diff = Diff::of(
                &values(next.clone()),
                &values(pick::<5, 4>(&expected, index)),
            );
            println!(
                "block_out {index}: max abs {:.3e} rel-L2 {:.3e}",
                diff.max_abs,
                diff.rel_l2()
            );
            total = total.merge(diff);
            if meta.clip == 0 && meta.block == 0 {
                // TPP behaviour recorded by the fixture: the ref becomes this block's first latent.
                let [c, _, h, w] = next.dims();
                reference = next.clone().narrow(1, 0, 1).reshape([c, 1, h, w]);
            }
        } else {
            latents = Some(next);
        }
    }
    println!(
        "block_out: max abs {:e}, rel-L2 {:e}",
        total.max_abs,
        total.rel_l2()
    );
    assert!(total.max_abs <= 5e-3, "max abs {:e} > 5e-3", total.max_abs);
    assert!(total.rel_l2() <= 1e-4, "rel-L2 {:e} > 1e-4", total.rel_l2());
}
