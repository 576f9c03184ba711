//! Checkpoint folder layouts (sharded with an index, single file) and the loader's errors on
//! malformed files: each must name the file and, where it applies, the tensor.

mod common;

use avatar_studio::model::dit::StreamInput;
use avatar_studio::model::{DitModel, KvCache};
use avatar_studio::weights::{DitCheckpoint, SafetensorsFile, WeightSet, WeightsError, load_dit};
use common::*;

type B = TestBackend;

/// A `config.json` holding the fixture's full DiT config (including the fields diffusers drops).
fn write_config(dir: &std::path::Path) {
    let manifest = manifest();
    let config = dit_config(&manifest);
    let text = serde_json::to_string_pretty(&config).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("config.json"), text).unwrap_or_else(|e| panic!("{e}"));
}

fn sharded_folder(name: &str) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    write_config(&dir);
    let tensors = all_tensors(&open("dit/dit_base.safetensors"));
    let half = tensors.len() / 2;
    let shards = [&tensors[..half], &tensors[half..]];
    let mut weight_map = serde_json::Map::new();
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("diffusion_pytorch_model-{:05}-of-00002.safetensors", i + 1);
        write_safetensors(&dir.join(&file), shard, &[]);
        for (key, _, _) in shard.iter() {
            weight_map.insert(key.clone(), serde_json::Value::String(file.clone()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.join("diffusion_pytorch_model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// One streaming call of a freshly loaded model (no LoRA) on the fixture's first inputs.
fn first_call(model: &DitModel<B>) -> Vec<f32> {
    let manifest = manifest();
    let run = open("dit/dit_run.safetensors");
    let h = geometry_number(&manifest, "h");
    let w = geometry_number(&manifest, "w");
    let geometry = model.config.geometry(h, w);
    let mut cache = KvCache::new(
        &model.config,
        &geometry,
        geometry_number(&manifest, "lat_target_frames"),
        1,
        &device(),
    );
    let text = model.prepare_text(tensor(&run, "context"));
    let reference: burn::tensor::Tensor<B, 5> = tensor(&run, "sink0.ref_latents");
    let motion: burn::tensor::Tensor<B, 5> = tensor(&run, "motion_latents");
    let [_, c, _, rh, rw] = reference.dims();
    let [_, _, t, _, _] = motion.dims();
    model.sink_prefill(
        &mut cache.cond,
        &text,
        reference.reshape([c, 1, rh, rw]),
        motion.reshape([c, t, rh, rw]),
    );
    let x_in: burn::tensor::Tensor<B, 5> = tensor(&run, "x_in");
    let [_, c, f, _, _] = x_in.dims();
    let cond: burn::tensor::Tensor<B, 5> = tensor(&run, "cond_states");
    let [_, cc, _, _, _] = cond.dims();
    let audio: burn::tensor::Tensor<B, 4> = tensor(&run, "audio_emb");
    let [_, layers, dim_a, total] = audio.dims();
    let input = StreamInput {
        latents: x_in.narrow(0, 0, 1).reshape([c, f, rh, rw]),
        timestep: floats(&run, "timesteps")[0],
        cond_states: cond
            .narrow(0, 0, 1)
            .narrow(2, 0, f)
            .reshape([cc, f, rh, rw]),
        audio: audio.reshape([layers, dim_a, total]).narrow(
            2,
            0,
            geometry_number(&manifest, "infer_frames") / geometry_number(&manifest, "num_blocks"),
        ),
        current_start: 0,
        ref_offset: ints(&run, "rd_per_call").0[0],
    };
    values(model.forward_block(input, &mut cache.steps[0], &cache.cond, &text))
}

#[test]
fn sharded_and_single_file_layouts_load_the_same_model() {
    let sharded =
        DitCheckpoint::open(sharded_folder("ckpt_sharded")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        DitCheckpoint::weight_files(&sharded.folder)
            .unwrap_or_default()
            .len(),
        2
    );
    let single_dir = scratch_dir("ckpt_single");
    write_config(&single_dir);
    std::fs::copy(
        fixture("dit/dit_base.safetensors"),
        single_dir.join("diffusion_pytorch_model.safetensors"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let single = DitCheckpoint::open(&single_dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sharded.config, single.config);
    assert_eq!(sharded.config, dit_config(&manifest()));
    let device = device();
    let a = first_call(
        &sharded
            .load_model::<B>(None, &device)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let b = first_call(
        &single
            .load_model::<B>(None, &device)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!(a, b);
    assert!(a.iter().all(|v| v.is_finite()));
}

#[test]
fn missing_and_misshaped_tensors_are_named() {
    let base = open("dit/dit_base.safetensors");
    let config = dit_config(&manifest());
    let dir = scratch_dir("ckpt_errors");
    let device = device();

    let missing: Vec<_> = all_tensors(&base)
        .into_iter()
        .filter(|(k, _, _)| k != "blocks.2.ffn.0.bias")
        .collect();
    let path = dir.join("missing.safetensors");
    write_safetensors(&path, &missing, &[]);
    let set = WeightSet::open(std::slice::from_ref(&path)).unwrap_or_else(|e| panic!("{e}"));
    match load_dit::<B>(&config, &set, None, &device) {
        Err(WeightsError::MissingKey { path: p, key }) => {
            assert_eq!(key, "blocks.2.ffn.0.bias");
            assert_eq!(p, path);
        }
        other => panic!("expected MissingKey, got {:?}", other.map(|_| ())),
    }

    let reshaped: Vec<_> = all_tensors(&base)
        .into_iter()
        .map(|(k, s, v)| {
            if k == "head.modulation" {
                (k, vec![2, s[2]], v)
            } else {
                (k, s, v)
            }
        })
        .collect();
    let path = dir.join("reshaped.safetensors");
    write_safetensors(&path, &reshaped, &[]);
    let set = WeightSet::open(std::slice::from_ref(&path)).unwrap_or_else(|e| panic!("{e}"));
    match load_dit::<B>(&config, &set, None, &device) {
        Err(WeightsError::Shape { key, found, .. }) => {
            assert_eq!(key, "head.modulation");
            assert_eq!(found.len(), 2);
        }
        other => panic!("expected Shape, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn malformed_files_are_rejected_with_their_path() {
    let dir = scratch_dir("ckpt_malformed");
    let bytes =
        std::fs::read(fixture("dit/dit_lora.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("short.safetensors", bytes[..5].to_vec()),
        ("huge_header.safetensors", {
            let mut b = bytes.clone();
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
        (
            "truncated_data.safetensors",
            bytes[..bytes.len() - 16].to_vec(),
        ),
        ("not_json.safetensors", {
            let mut b = bytes.clone();
            b[8] = b'#';
            b
        }),
    ];
    for (name, content) in cases {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("{e}"));
        match SafetensorsFile::open(&path) {
            Err(e @ WeightsError::Header { .. }) => assert!(e.to_string().contains(name), "{e}"),
            other => panic!("{name}: expected a header error, got {other:?}"),
        }
    }
    let folder = scratch_dir("ckpt_missing_shard");
    write_config(&folder);
    std::fs::write(
        folder.join("diffusion_pytorch_model.safetensors.index.json"),
        r#"{"weight_map": {"patch_embedding.weight": "diffusion_pytorch_model-00001-of-00002.safetensors"}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        DitCheckpoint::open(&folder),
        Err(WeightsError::Layout { .. })
    ));
}
