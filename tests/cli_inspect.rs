//! `avatar-studio inspect` through the real binary on checkpoint folders built from the tiny
//! fixtures (spec §4.1 layout, DiT in two shards with an index): a complete folder, then one
//! kind of damage per test, each of which must exit 2 with a message that names file and key.
//! `tests/inspect.rs` covers the DiT key comparison of the library on a single-file folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use avatar_studio::weights::folder_report::{
    T5_FILE, TOKENIZER_DIR, TOKENIZER_FILE, VAE_FILE, WAV2VEC_DIR,
};
use common::*;

const SHARD_1: &str = "diffusion_pytorch_model-00001-of-00002.safetensors";
const SHARD_2: &str = "diffusion_pytorch_model-00002-of-00002.safetensors";
const INDEX: &str = "diffusion_pytorch_model.safetensors.index.json";

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avatar-studio"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run avatar-studio: {e}"))
}

fn copy(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("{} -> {}: {e}", from.display(), to.display()));
}

/// Writes the DiT as two shards plus index (the released layout, scaled down).
fn write_dit(dir: &Path, tensors: &Tensors) {
    let half = tensors.len() / 2;
    let (first, second) = tensors.split_at(half);
    write_safetensors(&dir.join(SHARD_1), first, &[]);
    write_safetensors(&dir.join(SHARD_2), second, &[]);
    let mut map = serde_json::Map::new();
    for (shard, part) in [(SHARD_1, first), (SHARD_2, second)] {
        for (key, _, _) in part {
            map.insert(key.clone(), serde_json::Value::String(shard.into()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(dir.join(INDEX), index.to_string()).unwrap_or_else(|e| panic!("{e}"));
}

/// A complete folder: DiT (config from the manifest), umT5, VAE, wav2vec2, tokenizer, and the
/// encoder-size file that describes the tiny encoders. Returns the folder and that file.
fn good_folder(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch_dir(name);
    let manifest = manifest();
    let config = dit_config(&manifest);
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&config).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    write_dit(&dir, &all_tensors(&open("dit/dit_base.safetensors")));
    copy(&fixture("t5/t5.pth"), &dir.join(T5_FILE));
    copy(&fixture("vae/vae.pth"), &dir.join(VAE_FILE));
    let w2v = dir.join(WAV2VEC_DIR);
    copy(&fixture("audio/w2v_config.json"), &w2v.join("config.json"));
    copy(
        &fixture("audio/w2v_preprocessor_config.json"),
        &w2v.join("preprocessor_config.json"),
    );
    copy(
        &fixture("audio/w2v.safetensors"),
        &w2v.join("model.safetensors"),
    );
    let tok = dir.join(TOKENIZER_DIR).join(TOKENIZER_FILE);
    if let Some(parent) = tok.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(
        &tok,
        r#"{"version":"1.0","model":{"type":"Unigram","vocab":[]}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let components = &manifest["components"];
    let encoders = serde_json::json!({
        "t5": components["t5"]["config"],
        "vae": components["vae"]["config"],
    });
    let enc_path = dir.join("encoders.json");
    std::fs::write(&enc_path, encoders.to_string()).unwrap_or_else(|e| panic!("{e}"));
    (dir, enc_path)
}

fn inspect_json(dir: &Path, encoders: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let dir = dir.display().to_string();
    let enc = encoders.display().to_string();
    let mut args = vec!["inspect", "--model", &dir, "--encoders", &enc, "--json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn problems(json: &serde_json::Value) -> Vec<String> {
    json["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems array: {json}"))
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect()
}

/// Exit code 2 and exactly one `error:` line on stderr.
fn assert_bad(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    lines[0].to_string()
}

#[test]
fn complete_folder_passes_in_text_and_json() {
    let (dir, enc) = good_folder("cli_inspect_good");
    let (out, json) = inspect_json(&dir, &enc, &[]);
    assert!(out.status.success(), "{}\n{json:#}", stderr(&out));
    assert_eq!(json["complete"], true);
    assert!(problems(&json).is_empty());
    let base = open("dit/dit_base.safetensors");
    let params: u64 = base
        .tensors()
        .values()
        .map(|i| i.num_elements() as u64)
        .sum();
    let dit = &json["dit"]["report"];
    assert_eq!(dit["stored_parameters"].as_u64(), Some(params));
    assert_eq!(dit["expected"]["parameters"].as_u64(), Some(params));
    assert_eq!(dit["expected"]["bf16_bytes"].as_u64(), Some(2 * params));
    assert_eq!(json["dit"]["shards"].as_array().map(Vec::len), Some(2));
    let vae_params = manifest()["components"]["vae"]["config"]["n_params"].as_u64();
    assert_eq!(json["vae"]["parameters"].as_u64(), vae_params);
    for c in ["t5", "vae", "wav2vec2", "tokenizer"] {
        assert_eq!(json[c]["ready"], true, "{c}: {:#}", json[c]);
    }

    let text = run(&[
        "inspect",
        "--model",
        &dir.display().to_string(),
        "--encoders",
        &enc.display().to_string(),
    ]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(SHARD_2), "{text}");
    assert!(text.contains("complete"), "{text}");
    assert!(text.contains(&format!("{params} parameters")), "{text}");
}

#[test]
fn released_encoder_sizes_are_the_default() {
    // Without --encoders the tiny umT5 and VAE do not match umT5-XXL / Wan 2.1.
    let (dir, _) = good_folder("cli_inspect_default_encoders");
    let out = run(&["inspect", "--model", &dir.display().to_string()]);
    let line = assert_bad(&out);
    assert!(line.contains(T5_FILE) || line.contains(VAE_FILE), "{line}");
}

#[test]
fn missing_shard_is_named() {
    let (dir, enc) = good_folder("cli_inspect_missing_shard");
    std::fs::remove_file(dir.join(SHARD_2)).unwrap_or_else(|e| panic!("{e}"));
    let (out, json) = inspect_json(&dir, &enc, &[]);
    let line = assert_bad(&out);
    assert!(line.contains(SHARD_2) && line.contains("missing"), "{line}");
    let problems = problems(&json);
    // Every tensor of the lost shard is reported missing, located in that shard.
    assert!(
        problems
            .iter()
            .any(|p| p.contains(SHARD_2) && p.contains("missing tensor `")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().all(|p| !p.contains(SHARD_1)),
        "{problems:#?}"
    );
}

#[test]
fn missing_components_are_named() {
    let (dir, enc) = good_folder("cli_inspect_missing_components");
    std::fs::remove_file(dir.join(VAE_FILE)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(dir.join(WAV2VEC_DIR)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(dir.join("google")).unwrap_or_else(|e| panic!("{e}"));
    let (out, json) = inspect_json(&dir, &enc, &[]);
    assert_bad(&out);
    let problems = problems(&json);
    for name in [VAE_FILE, WAV2VEC_DIR, TOKENIZER_FILE] {
        assert!(
            problems.iter().any(|p| p.contains(name)),
            "{name}: {problems:#?}"
        );
    }
    assert_eq!(json["t5"]["ready"], true);
    assert_eq!(json["vae"]["ready"], false);
}

#[test]
fn renamed_key_is_missing_and_unexpected() {
    let (dir, enc) = good_folder("cli_inspect_renamed");
    let mut tensors = all_tensors(&open("dit/dit_base.safetensors"));
    let old = "blocks.0.self_attn.q.weight";
    let new = "blocks.0.self_attn.query.weight";
    for t in tensors.iter_mut().filter(|t| t.0 == old) {
        t.0 = new.into();
    }
    write_dit(&dir, &tensors);
    let (out, json) = inspect_json(&dir, &enc, &[]);
    let line = assert_bad(&out);
    assert!(line.contains("2 problems"), "{line}");
    let problems = problems(&json);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&format!("missing tensor `{old}`")))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&format!("unexpected tensor `{new}`")))
    );
    assert_eq!(json["dit"]["report"]["missing"], serde_json::json!([old]));
}

#[test]
fn wrong_shape_names_key_and_shapes() {
    let (dir, enc) = good_folder("cli_inspect_shape");
    let mut tensors = all_tensors(&open("dit/dit_base.safetensors"));
    let key = "blocks.1.ffn.0.weight";
    let mut expected = Vec::new();
    for t in tensors.iter_mut().filter(|t| t.0 == key) {
        // Stored transposed, as a converter that forgot PyTorch's [out, in] order would.
        expected = t.1.clone();
        t.1 = vec![t.1[1], t.1[0]];
    }
    assert_eq!(expected.len(), 2, "fixture lacks {key}");
    write_dit(&dir, &tensors);
    let (out, _) = inspect_json(&dir, &enc, &[]);
    let line = assert_bad(&out);
    let found = vec![expected[1], expected[0]];
    assert!(line.contains(key), "{line}");
    assert!(
        line.contains(&format!("{found:?}, expected {expected:?}")),
        "{line}"
    );
    // The shard holding it, from the index.
    assert!(line.contains("diffusion_pytorch_model-0000"), "{line}");
}

#[test]
fn truncated_shard_is_reported() {
    let (dir, enc) = good_folder("cli_inspect_truncated");
    let path = dir.join(SHARD_1);
    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{e}"));
    file.set_len(len - 10).unwrap_or_else(|e| panic!("{e}"));
    drop(file);
    let (out, json) = inspect_json(&dir, &enc, &[]);
    let line = assert_bad(&out);
    assert!(line.contains(SHARD_1), "{line}");
    assert!(line.contains("truncated"), "{line}");
    assert!(line.contains("tensor `"), "names the cut tensor: {line}");
    // The other shard is still compared.
    assert_eq!(json["dit"]["shards"].as_array().map(Vec::len), Some(2));
    assert!(
        json["dit"]["report"]["tensors_stored"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
}

/// The fixture LoRA with every key rewritten by `rename`, alpha kept in the metadata.
fn lora_with(dir: &Path, name: &str, rename: impl Fn(&str) -> String) -> PathBuf {
    let lora = open("dit/dit_lora.safetensors");
    let tensors: Tensors = all_tensors(&lora)
        .into_iter()
        .map(|(k, s, v)| (rename(&k), s, v))
        .collect();
    let meta: Vec<(&str, &str)> = lora
        .metadata()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let path = dir.join(name);
    write_safetensors(&path, &tensors, &meta);
    path
}

fn module_of(key: &str) -> &str {
    let key = key.strip_prefix("base_model.model.").unwrap_or(key);
    key.split(".lora_").next().unwrap_or(key)
}

#[test]
fn lora_in_another_accepted_spelling_is_reported() {
    let (dir, enc) = good_folder("cli_inspect_lora_spelling");
    // The fixture uses PEFT's `base_model.model.<m>.lora_A.default.weight`; this file uses the
    // other spelling of spec §3.8: `diffusion_model.<m>.lora_A.weight`.
    let path = lora_with(&dir, "lora_kijai.safetensors", |k| {
        let matrix = if k.contains("lora_A") { "A" } else { "B" };
        format!("diffusion_model.{}.lora_{matrix}.weight", module_of(k))
    });
    let (out, json) = inspect_json(&dir, &enc, &["--lora", &path.display().to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lora = &json["dit"]["report"]["lora"];
    assert_eq!(lora["pairs"], lora["expected_pairs"]);
    assert_eq!(
        lora["spellings"],
        serde_json::json!([
            "diffusion_model.<module>.lora_A.weight",
            "diffusion_model.<module>.lora_B.weight"
        ])
    );
}

#[test]
fn lora_in_a_foreign_spelling_is_rejected() {
    let (dir, enc) = good_folder("cli_inspect_lora_foreign");
    // kohya-ss naming: no accepted suffix at all.
    let path = lora_with(&dir, "lora_kohya.safetensors", |k| {
        let down = if k.contains("lora_A") {
            "lora_down"
        } else {
            "lora_up"
        };
        format!("lora_unet_{}.{down}.weight", module_of(k).replace('.', "_"))
    });
    let (out, json) = inspect_json(&dir, &enc, &["--lora", &path.display().to_string()]);
    let line = assert_bad(&out);
    assert!(line.contains("lora_kohya.safetensors"), "{line}");
    assert!(line.contains("no key has a known LoRA spelling"), "{line}");
    assert!(line.contains("lora_unet_"), "names a key: {line}");
    assert!(json["lora_error"].is_string());

    // Accepted suffixes under an unknown prefix: the pairs parse but adapt no DiT module.
    let path = lora_with(&dir, "lora_prefixed.safetensors", |k| {
        format!(
            "transformer.{}",
            k.strip_prefix("base_model.model.").unwrap_or(k)
        )
    });
    let (out, _) = inspect_json(&dir, &enc, &["--lora", &path.display().to_string()]);
    let line = assert_bad(&out);
    assert!(line.contains("lora_prefixed.safetensors"), "{line}");
    assert!(line.contains("transformer."), "{line}");
}

#[test]
fn lora_with_a_non_lora_tensor_names_it() {
    let (dir, enc) = good_folder("cli_inspect_lora_base_layer");
    // Spec §3.8: a `…base_layer.weight` in the file would overwrite the base weight in the
    // reference; this app does not copy it, so it is reported rather than silently ignored.
    let lora = open("dit/dit_lora.safetensors");
    let mut tensors = all_tensors(&lora);
    let extra = "base_model.model.blocks.0.self_attn.q.base_layer.weight";
    tensors.push((extra.into(), vec![2], vec![0.5, -0.5]));
    let meta: Vec<(&str, &str)> = lora
        .metadata()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let path = dir.join("lora_extra.safetensors");
    write_safetensors(&path, &tensors, &meta);
    let (out, json) = inspect_json(&dir, &enc, &["--lora", &path.display().to_string()]);
    let line = assert_bad(&out);
    assert!(
        line.contains(extra) && line.contains("lora_extra.safetensors"),
        "{line}"
    );
    let lora = &json["dit"]["report"]["lora"];
    assert_eq!(lora["pairs"], lora["expected_pairs"]);
    assert_eq!(lora["unrecognised_keys"], serde_json::json!([extra]));
}

#[test]
fn lora_without_alpha_metadata_uses_the_reference_alpha() {
    let (dir, enc) = good_folder("cli_inspect_lora_no_alpha");
    let lora = open("dit/dit_lora.safetensors");
    let path = dir.join("lora_bare.safetensors");
    write_safetensors(&path, &all_tensors(&lora), &[]);
    let (out, json) = inspect_json(&dir, &enc, &["--lora", &path.display().to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["dit"]["report"]["lora"]["alpha"].as_f64(), Some(64.0));
}

#[test]
fn unusable_model_argument_is_bad_input() {
    let out = run(&["inspect", "--model", "/nonexistent/avatar-ckpt"]);
    let line = assert_bad(&out);
    assert!(line.contains("/nonexistent/avatar-ckpt"), "{line}");
}
