//! `weights::inspect` on a fixture checkpoint folder, complete and damaged.

mod common;

use avatar_studio::model::inventory::parameter_inventory;
use avatar_studio::weights::inspect::inspect;
use common::*;

fn folder_with(name: &str, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    let config = dit_config(&manifest());
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&config).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    write_safetensors(
        &dir.join("diffusion_pytorch_model.safetensors"),
        tensors,
        &[],
    );
    dir
}

#[test]
fn complete_folder_and_lora_pass() {
    let base = open("dit/dit_base.safetensors");
    let dir = folder_with("inspect_complete", &all_tensors(&base));
    let report =
        inspect(&dir, Some(&fixture("dit/dit_lora.safetensors"))).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_complete(), "{report:#?}");
    assert_eq!(report.tensors_stored, base.tensors().len());
    let expected: u64 = base
        .tensors()
        .values()
        .map(|i| i.num_elements() as u64)
        .sum();
    assert_eq!(report.stored_parameters, expected);
    assert_eq!(report.expected.parameters, expected);
    assert_eq!(
        report.stored_bytes_by_dtype.get("f32").copied(),
        Some(4 * expected)
    );
    let lora = report
        .lora
        .as_ref()
        .unwrap_or_else(|| panic!("no LoRA report"));
    assert_eq!(lora.pairs, lora.expected_pairs);
}

#[test]
fn damaged_folder_is_reported() {
    let base = open("dit/dit_base.safetensors");
    let config = dit_config(&manifest());
    let mut tensors: Vec<_> = all_tensors(&base)
        .into_iter()
        .filter(|(k, _, _)| k != "blocks.0.norm3.bias")
        .collect();
    tensors.push(("stray.weight".into(), vec![2], vec![0.0, 1.0]));
    for t in tensors.iter_mut().filter(|t| t.0 == "head.head.bias") {
        t.1 = vec![1, t.2.len()];
    }
    let dir = folder_with("inspect_damaged", &tensors);
    let report = inspect(&dir, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.is_complete());
    assert_eq!(report.missing, vec!["blocks.0.norm3.bias".to_string()]);
    assert_eq!(report.unexpected, vec!["stray.weight".to_string()]);
    assert_eq!(report.mis_shaped.len(), 1);
    assert_eq!(report.mis_shaped[0].key, "head.head.bias");
    assert_eq!(report.tensors_expected, parameter_inventory(&config).len());
}
