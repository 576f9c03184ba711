//! FP8 conversion at DiT load (spec §3.9, after the LoRA merge of §3.8): which linears are
//! converted, that each equals the reference's quantise→dequantise of the merged weight, that
//! the tiny DiT still runs close to float32, and that the byte count is `inspect`'s FP8 figure.

mod common;

use std::collections::BTreeSet;

use avatar_studio::model::inventory::parameter_inventory;
use avatar_studio::model::layers::{LinearWeight, ParameterSource};
use avatar_studio::model::{DitConfig, DitModel, KvCache, StreamInput};
use avatar_studio::weights::fp8::Fp8Weight;
use avatar_studio::weights::inspect::inspect;
use avatar_studio::weights::{CheckpointSource, LoraAdapter, WeightFormat, WeightSet, load_dit_as};
use burn::tensor::Tensor;
use common::*;

type B = TestBackend;

fn weights() -> WeightSet {
    WeightSet::open(&[fixture("dit/dit_base.safetensors")]).unwrap_or_else(|e| panic!("{e}"))
}

fn lora() -> LoraAdapter {
    LoraAdapter::open(fixture("dit/dit_lora.safetensors"), None, None)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn converted_linears_are_the_reference_quantisation_of_the_merged_weights() {
    let config = dit_config(&manifest());
    let (weights, lora) = (weights(), lora());
    let device = device();
    let full = CheckpointSource::<B>::new(&weights, Some(&lora), &device);
    let fp8 = CheckpointSource::<B>::new(&weights, Some(&lora), &device)
        .with_format(&config, WeightFormat::Fp8);
    let mut converted = BTreeSet::new();
    let mut changed = 0;
    for spec in parameter_inventory(&config) {
        // Linear weights only: two-dimensional `.weight`s outside the fixed non-linear keys.
        let Some(module) = spec.key.strip_suffix(".weight") else {
            continue;
        };
        if spec.shape.len() != 2 || module == "trainable_cond_mask" {
            continue;
        }
        let shape = [spec.shape[0], spec.shape[1]];
        let merged = values(
            full.linear_weight(module, shape)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let got = values(
            fp8.linear_weight(module, shape)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        if spec.fp8 {
            let expected = Fp8Weight::quantize(&merged, spec.shape.clone()).dequantize();
            assert_eq!(
                got, expected,
                "{module}: not quantise→dequantise of the merge"
            );
            changed += usize::from(got != merged);
            converted.insert(module.to_string());
        } else {
            // text/time embeddings, time_projection, head.head, the audio final_linear.
            assert_eq!(got, merged, "{module} must stay unconverted");
        }
    }
    let stats = fp8.fp8_stats();
    let recorded: BTreeSet<String> = stats.scales.keys().cloned().collect();
    assert_eq!(recorded, converted);
    // Spec §3.9's set: per block 10 linears, 4 per audio injector, 1 AdaLN linear each.
    let injectors = config.audio_inject_layers.len();
    assert_eq!(converted.len(), 10 * config.num_layers + 5 * injectors);
    for name in [
        "text_embedding.0",
        "time_embedding.2",
        "time_projection.1",
        "head.head",
        "casual_audio_encoder.encoder.final_linear",
    ] {
        assert!(!converted.contains(name), "{name}");
    }
    assert!(converted.contains("audio_injector.injector_adain_layers.0.linear"));
    // Rounding to 3 mantissa bits must change most of the weights; an unconverted load would
    // leave them equal and fail here.
    assert!(
        changed * 2 > converted.len(),
        "{changed} of {}",
        converted.len()
    );

    // The fixture's independent PEFT merge, quantised the same way, lands on the same codes up
    // to the float32 merge differences (one e4m3 step at most where a value sits on a tie).
    let reference = open("dit/dit_lora_merged_expected.safetensors");
    let key = "blocks.0.self_attn.q.weight";
    let (expected_merge, shape) = reference.read_f32(key).unwrap_or_else(|e| panic!("{e}"));
    let q = Fp8Weight::quantize(&expected_merge, shape.clone());
    let got = values(
        fp8.linear_weight("blocks.0.self_attn.q", [shape[0], shape[1]])
            .unwrap_or_else(|e| panic!("{e}")),
    );
    for (g, e) in got.iter().zip(q.dequantize()) {
        assert!((g - e).abs() <= e.abs() / 8.0 + 1e-6, "{g} vs {e}");
    }
}

#[test]
fn fp8_byte_count_matches_inspect() {
    let config = dit_config(&manifest());
    let (weights, lora) = (weights(), lora());
    let (_, stats) = load_dit_as::<B>(
        &config,
        &weights,
        Some(&lora),
        WeightFormat::Fp8,
        false,
        &device(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = scratch_dir("fp8_inspect_folder");
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&config).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(
        fixture("dit/dit_base.safetensors"),
        dir.join("diffusion_pytorch_model.safetensors"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let report = inspect(&dir, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.loaded_elements, report.expected.parameters);
    assert_eq!(stats.fp8_elements, report.expected.fp8_weight_elements);
    assert_eq!(stats.scales.len(), report.expected.fp8_layers);
    assert_eq!(stats.model_bytes(), report.expected.fp8_bytes);
    assert!(stats.model_bytes() < report.expected.bf16_bytes);

    let (_, full) = load_dit_as::<B>(
        &config,
        &weights,
        Some(&lora),
        WeightFormat::Full,
        false,
        &device(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(full.fp8_elements, 0);
    assert!(full.scales.is_empty());
}

/// Sink prefill and the first streaming call of the fixture run, on `model`.
fn first_call(model: &DitModel<B>, config: &DitConfig) -> Vec<f32> {
    let manifest = manifest();
    let run = open("dit/dit_run.safetensors");
    let text = model.prepare_text(tensor::<2>(&run, "context"));
    let motion = tensor::<5>(&run, "motion_latents");
    let [_, c, t, h, w] = motion.dims();
    let motion: Tensor<B, 4> = motion.reshape([c, t, h, w]);
    let geometry = config.geometry(
        geometry_number(&manifest, "h"),
        geometry_number(&manifest, "w"),
    );
    let timesteps = floats(&run, "timesteps");
    let mut cache = KvCache::<B>::new(
        config,
        &geometry,
        geometry_number(&manifest, "lat_target_frames"),
        timesteps.len(),
        &device(),
    );
    let ref_latents = tensor::<5>(&run, "sink0.ref_latents");
    let [_, c, t, h, w] = ref_latents.dims();
    model.sink_prefill(
        &mut cache.cond,
        &text,
        ref_latents.reshape([c, t, h, w]),
        motion,
    );
    let (meta, _) = ints(&run, "call_meta");
    // call_meta row 0: clip, block, step, current_start, frame, rd, roll, ring_offset.
    let (step, current_start, rd) = (meta[2] as usize, meta[3] as usize, meta[5]);
    assert_eq!((meta[0], meta[1]), (0, 0), "first call is clip 0, block 0");
    let frames = config.frames_per_block;
    let clip_frames = geometry_number(&manifest, "infer_frames");
    let video_per_block = clip_frames / geometry_number(&manifest, "num_blocks");
    let x_in = tensor::<5>(&run, "x_in");
    let [_, c, t, h, w] = x_in.dims();
    let latents: Tensor<B, 4> = x_in.narrow(0, 0, 1).reshape([c, t, h, w]);
    let cond = tensor::<5>(&run, "cond_states");
    let [_, c, t, h, w] = cond.dims();
    let cond: Tensor<B, 4> = cond.narrow(0, 0, 1).reshape([c, t, h, w]);
    let audio = tensor::<4>(&run, "audio_emb");
    let [_, a, b, d] = audio.dims();
    let audio: Tensor<B, 3> = audio.reshape([a, b, d]);
    let input = StreamInput {
        latents,
        timestep: timesteps[step],
        cond_states: cond.narrow(1, 0, frames),
        audio: audio.narrow(2, 0, video_per_block),
        current_start,
        ref_offset: rd,
    };
    values(model.forward_block(input, &mut cache.steps[step], &cache.cond, &text))
}

#[test]
fn tiny_dit_runs_with_fp8_weights() {
    let config = dit_config(&manifest());
    let (weights, lora) = (weights(), lora());
    let load = |format| {
        load_dit_as::<B>(&config, &weights, Some(&lora), format, false, &device())
            .unwrap_or_else(|e| panic!("{e}"))
            .0
    };
    let full = first_call(&load(WeightFormat::Full), &config);
    let fp8 = first_call(&load(WeightFormat::Fp8), &config);
    let diff = Diff::of(&fp8, &full);
    println!(
        "fp8 vs float32 weights: max abs {:e}, rel-L2 {:e}",
        diff.max_abs,
        diff.rel_l2()
    );
    // e4m3 keeps 3 mantissa bits: rounding moves a weight by at most 2^-4 of its value and by
    // about 2^-4/sqrt(12)·(mean mantissa factor) ≈ 2.5 % RMS. Independent errors in a dot
    // product add in quadrature, so each linear's output moves by about that RMS fraction;
    // norms and residuals keep it from compounding through the two tiny blocks. 10 % leaves
    // room for that, while a wrong scale (e.g. s instead of 1/s) would be off by orders of
    // magnitude.
    assert!(diff.max_abs.is_finite());
    assert!(diff.rel_l2() <= 0.10, "rel-L2 {:e} > 0.10", diff.rel_l2());
    // The weights did change: an output identical to float32 would mean nothing was converted.
    assert!(
        diff.rel_l2() >= 1e-4,
        "rel-L2 {:e}: fp8 had no effect",
        diff.rel_l2()
    );
}

#[test]
fn native_fp8_storage_keeps_the_reference_codes_and_runs_the_tiny_dit() {
    let config = dit_config(&manifest());
    let (weights, lora) = (weights(), lora());
    let load = |format| {
        load_dit_as::<B>(&config, &weights, Some(&lora), format, false, &device())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (native, stats) = load(WeightFormat::Fp8Native);
    let (emulated, emulated_stats) = load(WeightFormat::Fp8);
    assert_eq!(stats.fp8_elements, emulated_stats.fp8_elements);

    // The stored codes decode to exactly the dequantised weights of the emulated format.
    let LinearWeight::Fp8(codes) = &native.blocks[0].self_q.weight else {
        panic!("blocks.0.self_attn.q is not held as FP8");
    };
    let LinearWeight::Dense(_) = &native.text_embedding_in.weight else {
        panic!("text_embedding stays in its own type (the reference's ignore list)");
    };
    assert_eq!(
        values(codes.decode()),
        values(emulated.blocks[0].self_q.dense_weight())
    );

    // The only difference left is the per-tensor quantisation of each FP8 layer's input.
    let native_out = first_call(&native, &config);
    let emulated_out = first_call(&emulated, &config);
    let diff = Diff::of(&native_out, &emulated_out);
    println!(
        "FP8 codes with quantised activations vs dequantised weights: max abs {:e}, rel-L2 {:e}",
        diff.max_abs,
        diff.rel_l2()
    );
    // Quantising activations adds about as much rounding as quantising the weights did (the
    // 10 % bound of `tiny_dit_runs_with_fp8_weights`); it must have some effect.
    assert!(diff.rel_l2() <= 0.10, "rel-L2 {:e} > 0.10", diff.rel_l2());
    assert!(
        diff.rel_l2() >= 1e-5,
        "activation quantisation had no effect"
    );
}

#[test]
fn the_demo_model_honours_fp8() {
    use avatar_studio::pipeline::demo::demo_models;

    let full = demo_models::<B>(&device(), false).unwrap_or_else(|e| panic!("{e}"));
    let fp8 = demo_models::<B>(&device(), true).unwrap_or_else(|e| panic!("{e}"));
    let weight =
        |m: &avatar_studio::pipeline::Models<B>| values(m.dit.blocks[0].self_q.dense_weight());
    let dims = full.dit.blocks[0].self_q.dense_weight().dims().to_vec();
    // On the CPU the FP8 linears are the reference's quantise → dequantise of the same weights.
    let expected = Fp8Weight::quantize(&weight(&full), dims).dequantize();
    assert_eq!(weight(&fp8), expected);
    assert_ne!(weight(&fp8), weight(&full));
    // The text embedding is on the reference's ignore list.
    assert_eq!(
        values(fp8.dit.text_embedding_in.dense_weight()),
        values(full.dit.text_embedding_in.dense_weight())
    );
}
