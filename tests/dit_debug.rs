//! DiT intermediate activations against the fixture's debug tensors: embeddings, time
//! projection, RoPE tables (exact fp16 values), audio encoder and FramePack outputs.

mod common;

use avatar_studio::model::DitModel;
use avatar_studio::weights::{LoraAdapter, SafetensorsFile, WeightSet, load_dit};
use burn::tensor::Tensor;
use common::*;

type B = TestBackend;

const EMBEDDING_ATOL: f64 = 1e-5;

fn load() -> (serde_json::Value, DitModel<B>, SafetensorsFile) {
    let manifest = manifest();
    let config = dit_config(&manifest);
    let weights =
        WeightSet::open(&[fixture("dit/dit_base.safetensors")]).unwrap_or_else(|e| panic!("{e}"));
    let lora = LoraAdapter::open(fixture("dit/dit_lora.safetensors"), None, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let model =
        load_dit::<B>(&config, &weights, Some(&lora), &device()).unwrap_or_else(|e| panic!("{e}"));
    (manifest, model, open("dit/dit_run.safetensors"))
}

fn assert_close(name: &str, actual: Vec<f32>, expected: Vec<f32>, atol: f64) {
    let diff = Diff::of(&actual, &expected);
    println!("{name}: max abs {:e}", diff.max_abs);
    assert!(
        diff.max_abs <= atol,
        "{name}: max abs {:e} > {atol:e}",
        diff.max_abs
    );
}

/// `[tokens, pairs]` cos / sin interleaved as the fixture's `[tokens, pairs, 2]`.
fn interleave(cos: Tensor<B, 2>, sin: Tensor<B, 2>) -> Vec<f32> {
    let [tokens, pairs] = cos.dims();
    Tensor::cat(
        vec![
            cos.reshape([tokens, pairs, 1]),
            sin.reshape([tokens, pairs, 1]),
        ],
        2,
    )
    .into_data()
    .to_vec::<f32>()
    .unwrap_or_else(|e| panic!("{e:?}"))
}

/// `[tokens, dim]` tokens as the fixture's `[1, dim, F, hp, wp]` conv output.
fn tokens_as_conv(tokens: Tensor<B, 2>, grid: [usize; 3]) -> Vec<f32> {
    let dim = tokens.dims()[1];
    values(
        tokens
            .reshape([grid[0], grid[1], grid[2], dim])
            .permute([3, 0, 1, 2]),
    )
}

#[test]
fn sink_debug_tensors_match() {
    let (manifest, model, run) = load();
    let h = geometry_number(&manifest, "h");
    let w = geometry_number(&manifest, "w");
    let geometry = model.config.geometry(h, w);
    let ref_latents: Tensor<B, 5> = tensor(&run, "sink0.ref_latents");
    let [_, c, f, rh, rw] = ref_latents.dims();
    let (patches, grid) = model
        .patch_embedding
        .forward(ref_latents.reshape([c, f, rh, rw]));
    assert_close(
        "sink patch_embedding",
        tokens_as_conv(patches, grid),
        floats(&run, "debug.sink_r0.patch_embedding.out"),
        EMBEDDING_ATOL,
    );
    let motion: Tensor<B, 5> = tensor(&run, "motion_latents");
    let [_, c, t, mh, mw] = motion.dims();
    let packed = model.frame_pack.forward(motion.reshape([c, t, mh, mw]));
    assert_close(
        "frame_packer",
        values(packed),
        floats(&run, "debug.sink_r0.frame_packer.out"),
        EMBEDDING_ATOL,
    );
    let rope = model.cond_rope(&geometry, 0);
    assert_eq!(
        interleave(rope.cos, rope.sin),
        floats(&run, "debug.sink_r0.pre_compute_freqs"),
        "sink RoPE table"
    );
    let text = model.prepare_text(tensor(&run, "context"));
    assert_close(
        "sink text_embedding",
        values(text.embedded),
        floats(&run, "debug.sink_r0.text_embedding.out"),
        EMBEDDING_ATOL,
    );
}

#[test]
fn streaming_debug_tensors_match() {
    let (manifest, model, run) = load();
    let h = geometry_number(&manifest, "h");
    let w = geometry_number(&manifest, "w");
    let fsl = geometry_number(&manifest, "fsl");
    let clip_frames = geometry_number(&manifest, "infer_frames");
    let video_per_block = clip_frames / geometry_number(&manifest, "num_blocks");
    let geometry = model.config.geometry(h, w);
    let (meta, _) = ints(&run, "call_meta");
    let timesteps = floats(&run, "timesteps");
    let x_in: Tensor<B, 5> = tensor(&run, "x_in");
    let cond_states: Tensor<B, 5> = tensor(&run, "cond_states");
    let audio: Tensor<B, 4> = tensor(&run, "audio_emb");
    let frames = model.config.frames_per_block;
    let debug_calls: Vec<usize> = run
        .tensors()
        .keys()
        .filter_map(|k| {
            k.strip_prefix("debug.call")?
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .collect::<std::collections::BTreeSet<usize>>()
        .into_iter()
        .collect();
    assert!(
        debug_calls.len() >= 2,
        "expected debug tensors of at least two calls"
    );
    for call in debug_calls {
        let m = &meta[call * 8..call * 8 + 8];
        let (clip, block, step, start, rd) = (
            m[0] as usize,
            m[1] as usize,
            m[2] as usize,
            m[3] as usize,
            m[5],
        );
        let p = format!("debug.call{call}");
        let [_, c, f, lh, lw] = x_in.dims();
        let latents = x_in.clone().narrow(0, call, 1).reshape([c, f, lh, lw]);
        let (patches, grid) = model.patch_embedding.forward(latents);
        assert_close(
            &format!("{p} patch_embedding"),
            tokens_as_conv(patches, grid),
            floats(&run, &format!("{p}.patch_embedding.out")),
            EMBEDDING_ATOL,
        );
        let [_, cc, cf, ch, cw] = cond_states.dims();
        let cond = cond_states
            .clone()
            .narrow(0, clip, 1)
            .reshape([cc, cf, ch, cw])
            .narrow(1, frames * block, frames);
        let (pose, grid) = model.cond_encoder.forward(cond);
        assert_close(
            &format!("{p} cond_encoder"),
            tokens_as_conv(pose, grid),
            floats(&run, &format!("{p}.cond_encoder.out")),
            EMBEDDING_ATOL,
        );
        let time = model.time_conditioning(&vec![timesteps[step]; frames]);
        assert_close(
            &format!("{p} time_embedding"),
            values(time.embedding),
            floats(&run, &format!("{p}.time_embedding.out")),
            EMBEDDING_ATOL,
        );
        assert_close(
            &format!("{p} time_projection"),
            values(time.projection),
            floats(&run, &format!("{p}.time_projection.out")),
            EMBEDDING_ATOL,
        );
        let first_frame = (start / fsl) as i64;
        let rope = model.block_rope(&geometry, first_frame, frames);
        assert_eq!(
            interleave(rope.cos, rope.sin),
            floats(&run, &format!("{p}.pre_compute_freqs")),
            "{p} noisy RoPE table"
        );
        let cond_rope = model.cond_rope(&geometry, model.ref_roll(first_frame, rd));
        assert_eq!(
            interleave(cond_rope.cos, cond_rope.sin),
            floats(&run, &format!("{p}.freqs_cond")),
            "{p} cond RoPE table"
        );
        let [_, layers, dim_a, total] = audio.dims();
        let audio_start = clip_frames * clip + video_per_block * block;
        assert!(audio_start + video_per_block <= total);
        let block_audio =
            audio
                .clone()
                .reshape([layers, dim_a, total])
                .narrow(2, audio_start, video_per_block);
        let encoded = model.audio_encoder.encode(block_audio);
        assert_close(
            &format!("{p} audio global"),
            values(encoded.global),
            floats(&run, &format!("{p}.audio_encoder.out_global")),
            EMBEDDING_ATOL,
        );
        assert_close(
            &format!("{p} audio local"),
            values(encoded.local),
            floats(&run, &format!("{p}.audio_encoder.out_local")),
            EMBEDDING_ATOL,
        );
    }
}
