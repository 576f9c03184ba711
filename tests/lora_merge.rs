//! LoRA merge at load time against `dit_lora_merged_expected.safetensors`, plus the loader's
//! refusal of LoRA files that cover fewer targets than the model has.

mod common;

use avatar_studio::model::dit::lora_target_count;
use avatar_studio::model::layers::Linear;
use avatar_studio::model::{DitConfig, DitModel};
use avatar_studio::weights::{LoraAdapter, WeightSet, WeightsError, load_dit};
use common::*;

type B = TestBackend;

/// The merge is exact in the reference (`W + (α/r)·B·A`); allow only float32 summation-order
/// differences.
const MERGE_ATOL: f64 = 1e-6;

fn linears(model: &DitModel<B>, config: &DitConfig) -> Vec<(String, Linear<B>)> {
    let mut out = Vec::new();
    for (i, b) in model.blocks.iter().enumerate() {
        for (name, l) in [
            ("self_attn.q", &b.self_q),
            ("self_attn.k", &b.self_k),
            ("self_attn.v", &b.self_v),
            ("self_attn.o", &b.self_o),
            ("cross_attn.q", &b.cross_q),
            ("cross_attn.k", &b.cross_k),
            ("cross_attn.v", &b.cross_v),
            ("cross_attn.o", &b.cross_o),
            ("ffn.0", &b.ffn_in),
            ("ffn.2", &b.ffn_out),
        ] {
            out.push((format!("blocks.{i}.{name}"), l.clone()));
        }
    }
    for (j, inj) in model.audio_injectors.iter().enumerate() {
        for (name, l) in [("q", &inj.q), ("k", &inj.k), ("v", &inj.v), ("o", &inj.o)] {
            out.push((format!("audio_injector.injector.{j}.{name}"), l.clone()));
        }
    }
    assert_eq!(out.len(), lora_target_count(config));
    out
}

#[test]
fn merged_weights_match_peft() {
    let manifest = manifest();
    let config = dit_config(&manifest);
    let lora_manifest = &manifest["components"]["dit"]["lora"];
    let weights =
        WeightSet::open(&[fixture("dit/dit_base.safetensors")]).unwrap_or_else(|e| panic!("{e}"));
    let lora = LoraAdapter::open(fixture("dit/dit_lora.safetensors"), None, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        lora.rank() as u64,
        lora_manifest["rank"].as_u64().unwrap_or_default()
    );
    assert_eq!(
        f64::from(lora.alpha()),
        lora_manifest["alpha"].as_f64().unwrap_or_default()
    );
    assert_eq!(
        f64::from(lora.scale()),
        lora_manifest["scale"].as_f64().unwrap_or_default()
    );
    let targets = lora_manifest["n_targets"].as_u64().unwrap_or_default() as usize;
    assert_eq!(lora.len(), targets);
    assert_eq!(lora_target_count(&config), targets);

    let model =
        load_dit::<B>(&config, &weights, Some(&lora), &device()).unwrap_or_else(|e| panic!("{e}"));
    let expected = open("dit/dit_lora_merged_expected.safetensors");
    let base = open("dit/dit_base.safetensors");
    let mut checked = 0;
    let mut worst = 0.0f64;
    for (module, linear) in linears(&model, &config) {
        let key = format!("{module}.weight");
        let reference = if expected.tensors().contains_key(&key) {
            checked += 1;
            floats(&expected, &key)
        } else {
            floats(&base, &key)
        };
        let diff = Diff::of(&values(linear.dense_weight()), &reference);
        worst = worst.max(diff.max_abs);
        assert!(
            diff.max_abs <= MERGE_ATOL,
            "{key}: max abs {:e}",
            diff.max_abs
        );
    }
    println!("merged {checked} targets, max abs error {worst:e}");
    assert_eq!(checked, targets, "every merged target must be compared");
}

#[test]
fn lora_with_missing_pairs_is_rejected() {
    let manifest = manifest();
    let config = dit_config(&manifest);
    let weights =
        WeightSet::open(&[fixture("dit/dit_base.safetensors")]).unwrap_or_else(|e| panic!("{e}"));
    let full = open("dit/dit_lora.safetensors");
    // Drop one module's pair and rename to the un-prefixed, non-"default" spelling.
    let tensors: Vec<_> = all_tensors(&full)
        .into_iter()
        .filter(|(k, _, _)| !k.contains("blocks.1.ffn.2."))
        .map(|(k, s, v)| {
            let k = k
                .trim_start_matches("base_model.model.")
                .replace(".default.weight", ".weight");
            (k, s, v)
        })
        .collect();
    let dir = scratch_dir("lora_missing_pairs");
    let path = dir.join("partial.safetensors");
    let metadata: Vec<(&str, &str)> = full
        .metadata()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    write_safetensors(&path, &tensors, &metadata);
    let partial = LoraAdapter::open(&path, None, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(partial.len() + 1, full.tensors().len() / 2);
    match load_dit::<B>(&config, &weights, Some(&partial), &device()) {
        Err(WeightsError::Lora { path: p, reason }) => {
            assert_eq!(p, path);
            assert!(reason.contains("target linears merged"), "{reason}");
        }
        other => panic!(
            "expected a LoRA coverage error, got {:?}",
            other.map(|_| ())
        ),
    }
}

#[test]
fn lora_without_alpha_needs_one() {
    let full = open("dit/dit_lora.safetensors");
    let dir = scratch_dir("lora_no_alpha");
    let path = dir.join("no_alpha.safetensors");
    write_safetensors(&path, &all_tensors(&full), &[]);
    assert!(matches!(
        LoraAdapter::open(&path, None, None),
        Err(WeightsError::Lora { .. })
    ));
    let with_alpha = LoraAdapter::open(&path, None, Some(2.0)).unwrap_or_else(|e| panic!("{e}"));
    // The rank then comes from the A matrices.
    let rank = manifest()["components"]["dit"]["lora"]["rank"]
        .as_u64()
        .unwrap_or_default() as usize;
    assert_eq!(with_alpha.rank(), rank);
}
