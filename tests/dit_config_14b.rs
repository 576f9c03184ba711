//! The full Wan2.2-S2V-14B inventory computed from the default config (no weights allocated),
//! checked against spec §3.1.12 / §3.9 / §7.5, and the tiny inventory against the fixture.

mod common;

use std::collections::BTreeMap;

use avatar_studio::model::DitConfig;
use avatar_studio::model::dit::lora_target_count;
use avatar_studio::model::inventory::{Component, parameter_inventory, size_summary};
use common::*;

#[test]
fn full_model_sizes_match_the_spec() {
    let config = DitConfig::default();
    let inventory = parameter_inventory(&config);
    // Spec §3.1.1: 1260 keys in the released index.
    assert_eq!(inventory.len(), 1260);
    let mut per_component: BTreeMap<Component, u64> = BTreeMap::new();
    for spec in &inventory {
        *per_component.entry(spec.component).or_default() += spec.elements();
    }
    // Spec §3.1.12 parameter table.
    let expected = [
        (Component::Blocks, 14_055_772_160u64),
        (Component::AudioInjectorAttention, 1_258_659_840),
        (Component::AudioInjectorAdaLn, 629_268_480),
        (Component::TimeProjection, 157_317_120),
        (Component::AudioEncoder, 95_051_545),
        (Component::TextEmbedding, 47_196_160),
        (Component::TimeEmbedding, 27_535_360),
        (Component::FramePack, 23_936_000),
        (Component::PatchEmbedding, 332_800),
        (Component::CondEncoder, 332_800),
        (Component::Head, 337_984),
        (Component::CondMask, 15_360),
    ];
    for (component, count) in expected {
        assert_eq!(
            per_component.get(&component).copied(),
            Some(count),
            "{component:?}"
        );
    }
    let block_params: u64 = inventory
        .iter()
        .filter(|s| s.key.starts_with("blocks.0."))
        .map(|s| s.elements())
        .sum();
    assert_eq!(block_params, 351_394_304, "one block (spec §3.1.12)");
    let summary = size_summary(&inventory);
    assert_eq!(
        summary.parameters, 16_295_755_609,
        "total DiT (spec §3.1.12)"
    );
    // 32.59 GB bf16 (spec §3.1.12 / §7.5).
    assert_eq!((summary.bf16_bytes as f64 / 1e7).round() / 100.0, 32.59);
    // FP8: 460 linears, 15 938 355 200 weight elements, 16.65 GB (spec §3.9 / §7.5).
    assert_eq!(summary.fp8_layers, 460);
    assert_eq!(summary.fp8_weight_elements, 15_938_355_200);
    assert_eq!((summary.fp8_bytes as f64 / 1e7).round() / 100.0, 16.65);
    // LoRA: 448 targets (spec §3.8).
    assert_eq!(lora_target_count(&config), 448);
    // KV cache at 384×704, 48 frames (spec §7.2): rolling k+v of one step and layer.
    let geometry = config.geometry(384 / 8, 704 / 8);
    assert_eq!(geometry.cond_tokens, 2640);
    let ring_tokens = 12 * geometry.frame_tokens;
    assert_eq!(2 * ring_tokens * config.dim * 2, 259_522_560);
}

#[test]
fn tiny_inventory_matches_the_fixture_state_dict() {
    let manifest = manifest();
    let config = dit_config(&manifest);
    let base = open("dit/dit_base.safetensors");
    let inventory = parameter_inventory(&config);
    assert_eq!(inventory.len(), base.tensors().len());
    for spec in &inventory {
        let info = base.info(&spec.key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.shape, spec.shape, "{}", spec.key);
    }
}

#[test]
fn config_json_keeps_class_defaults_for_dropped_fields() {
    let text =
        std::fs::read_to_string(fixture("e2e/dit_config.json")).unwrap_or_else(|e| panic!("{e}"));
    let from_file = DitConfig::from_json_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let recorded = dit_config(&manifest());
    // Fields present in config.json are taken from it ...
    assert_eq!(from_file.dim, recorded.dim);
    assert_eq!(from_file.num_heads, recorded.num_heads);
    assert_eq!(from_file.num_layers, recorded.num_layers);
    assert_eq!(from_file.audio_inject_layers, recorded.audio_inject_layers);
    assert_eq!(from_file.text_len, recorded.text_len);
    // ... the ones diffusers drops fall back to the class defaults, as `from_pretrained` does.
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(json.get("text_dim").is_none());
    assert_eq!(from_file.text_dim, DitConfig::default().text_dim);
    assert_eq!(from_file.patch_size, DitConfig::default().patch_size);
}

#[test]
fn invalid_configs_are_rejected() {
    let valid = dit_config(&manifest());
    assert_eq!(valid.validate(), Ok(()));
    let mut bad_heads = valid.clone();
    bad_heads.num_heads = valid.dim + 1;
    assert!(bad_heads.validate().is_err());
    let mut bad_layer = valid.clone();
    bad_layer.audio_inject_layers.push(valid.num_layers);
    assert!(bad_layer.validate().is_err());
    let mut duplicate = valid.clone();
    duplicate
        .audio_inject_layers
        .push(valid.audio_inject_layers[0]);
    assert!(duplicate.validate().is_err());
    let mut zero_tokens = valid;
    zero_tokens.num_audio_token = 0;
    assert!(zero_tokens.validate().is_err());
}
