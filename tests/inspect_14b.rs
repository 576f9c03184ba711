//! A folder with the full Wan2.2-S2V-14B DiT headers (1260 bf16 tensors in four shards plus
//! index) whose data regions are sparse (`File::set_len`), so ~33 GB of "weights" cost no disk.
//! Inspect must read only the headers and report spec §3.1.12 / §3.9 / §7.5's figures.

mod common;

use std::io::Write;
use std::path::Path;

use avatar_studio::model::DitConfig;
use avatar_studio::model::inventory::{ParameterSpec, parameter_inventory};
use avatar_studio::weights::folder_report::{EncoderConfigs, inspect_folder};
use common::*;

/// Spec §3.1.12: total DiT parameters.
const SPEC_PARAMETERS: u64 = 16_295_755_609;
/// Spec §3.9: weight elements of the 460 FP8 linears.
const SPEC_FP8_ELEMENTS: u64 = 15_938_355_200;

/// Writes one safetensors file: the JSON header, then a hole as long as the data.
fn write_sparse_shard(path: &Path, specs: &[ParameterSpec]) -> u64 {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for spec in specs {
        let bytes = 2 * spec.elements();
        header.insert(
            spec.key.clone(),
            serde_json::json!({"dtype": "BF16", "shape": spec.shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let header = serde_json::Value::Object(header).to_string().into_bytes();
    let mut file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
    file.write_all(&(header.len() as u64).to_le_bytes())
        .and_then(|()| file.write_all(&header))
        .unwrap_or_else(|e| panic!("{e}"));
    file.set_len(8 + header.len() as u64 + offset)
        .unwrap_or_else(|e| panic!("{e}"));
    offset
}

#[test]
fn full_14b_headers_give_the_spec_sizes() {
    let dir = scratch_dir("inspect_14b");
    let config = DitConfig::default();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&config).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Cut into shards of at most 10 GB, in inventory order, as the released files are.
    let inventory = parameter_inventory(&config);
    let mut shards: Vec<Vec<ParameterSpec>> = vec![Vec::new()];
    let mut size = 0u64;
    for spec in inventory {
        if size + 2 * spec.elements() > 10_000_000_000 {
            shards.push(Vec::new());
            size = 0;
        }
        size += 2 * spec.elements();
        if let Some(last) = shards.last_mut() {
            last.push(spec);
        }
    }
    assert_eq!(shards.len(), 4, "four shards like the release");
    let mut weight_map = serde_json::Map::new();
    let mut data_bytes = 0u64;
    for (i, specs) in shards.iter().enumerate() {
        let name = format!("diffusion_pytorch_model-{:05}-of-00004.safetensors", i + 1);
        data_bytes += write_sparse_shard(&dir.join(&name), specs);
        for spec in specs {
            weight_map.insert(spec.key.clone(), serde_json::Value::String(name.clone()));
        }
    }
    let index =
        serde_json::json!({"metadata": {"total_size": data_bytes}, "weight_map": weight_map});
    std::fs::write(
        dir.join("diffusion_pytorch_model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let started = std::time::Instant::now();
    let report =
        inspect_folder(&dir, None, &EncoderConfigs::default()).unwrap_or_else(|e| panic!("{e}"));
    // Header-only: touching 33 GB of data would take far longer than this.
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    assert!(report.dit.error.is_none(), "{:?}", report.dit.error);
    assert!(
        report.dit.shard_errors.is_empty(),
        "{:?}",
        report.dit.shard_errors
    );
    assert!(report.dit.index_mismatches.is_empty());
    let dit = report
        .dit
        .report
        .as_ref()
        .unwrap_or_else(|| panic!("no DiT report"));
    assert!(dit.missing.is_empty() && dit.unexpected.is_empty() && dit.mis_shaped.is_empty());
    assert_eq!(dit.tensors_stored, 1260);
    assert_eq!(dit.stored_parameters, SPEC_PARAMETERS);
    assert_eq!(dit.expected.parameters, SPEC_PARAMETERS);
    assert_eq!(
        dit.stored_bytes_by_dtype.get("bf16").copied(),
        Some(2 * SPEC_PARAMETERS)
    );
    assert_eq!(data_bytes, 2 * SPEC_PARAMETERS);
    // Spec: 32.59 GB in bf16, 16.65 GB with FP8 linears (460 layers).
    assert_eq!(dit.expected.bf16_bytes, 32_591_511_218);
    assert_eq!(dit.expected.fp8_layers, 460);
    assert_eq!(dit.expected.fp8_weight_elements, SPEC_FP8_ELEMENTS);
    assert_eq!(
        dit.expected.fp8_bytes,
        2 * SPEC_PARAMETERS - SPEC_FP8_ELEMENTS
    );
    assert_eq!((dit.expected.fp8_bytes as f64 / 1e7).round() / 100.0, 16.65);
    let text = report.to_text();
    assert!(
        text.contains("32.59 GB (32591511218 bytes) in bf16"),
        "{text}"
    );
    assert!(
        text.contains("16.65 GB (16653156018 bytes) with FP8"),
        "{text}"
    );
    // Cut at 10 GB in key order, the shards come out at the released sizes (spec §4.1).
    let shard_gb: Vec<f64> = report
        .dit
        .shards
        .iter()
        .map(|s| (s.bytes as f64 / 1e7).round() / 100.0)
        .collect();
    assert_eq!(shard_gb, [9.97, 9.89, 9.96, 2.77]);
    // Only the DiT was written: the encoders and tokenizer are reported missing, by file.
    assert!(!report.complete);
    assert!(
        report.problems.iter().all(|p| !p.starts_with("DiT")),
        "{:#?}",
        report.problems
    );
    for name in [
        "models_t5_umt5-xxl-enc-bf16.pth",
        "Wan2.1_VAE.pth",
        "tokenizer.json",
    ] {
        assert!(report.problems.iter().any(|p| p.contains(name)), "{name}");
    }
    // The holes take (almost) no disk: allocated blocks stay far below the apparent size.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let allocated: u64 = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.blocks() * 512)
            .sum();
        assert!(allocated < 100_000_000, "{allocated} bytes allocated");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
