//! Component inspection reports and the key → module map, checked against the fixture
//! checkpoints (which use the reference state-dict names) and against broken setups.

mod common;

use std::path::PathBuf;

use avatar_studio::model::t5::T5Config;
use avatar_studio::model::vae::VaeConfig;
use avatar_studio::model::wav2vec::Wav2Vec2;
use avatar_studio::weights::keymap::{t5_keys, vae_keys};
use avatar_studio::weights::report::{t5_report, vae_report, wav2vec_report};
use burn::tensor::Tensor;
use common::encoder_fixtures::*;

fn vae_config() -> VaeConfig {
    serde_json::from_value(component_config("vae")).expect("vae config")
}

fn t5_config() -> T5Config {
    // max_dist is not in the manifest config; the reference default (128, stated in the
    // fixtures README) applies when the field is absent.
    serde_json::from_value(component_config("t5")).expect("t5 config from manifest")
}

#[test]
fn vae_keymap_and_report() {
    let cfg = vae_config();
    let keys = vae_keys(&cfg);
    let n_keys = component_config("vae")["n_keys"].as_u64().expect("n_keys");
    assert_eq!(keys.len() as u64, n_keys);
    let real = vae_keys(&VaeConfig::wan21());
    assert_eq!(
        real.len() as u64,
        n_keys,
        "released VAE has the same key count"
    );
    for file in ["vae/vae.pth", "vae/vae.safetensors"] {
        let r = vae_report(fixture(file), &cfg);
        println!("{}", r.to_text());
        assert!(r.is_ready(), "{}", r.to_text());
        assert!(r.unused.is_empty());
        let params = r.checkpoint.as_ref().map(|c| c.parameters()).unwrap_or(0) as u64;
        assert_eq!(
            params,
            component_config("vae")["n_params"]
                .as_u64()
                .expect("n_params")
        );
    }
    let wrong = vae_report(fixture("t5/t5.pth"), &cfg);
    assert!(!wrong.is_ready());
    assert_eq!(wrong.missing.len() as u64, n_keys);
    assert_eq!(wrong.unused.len(), t5_keys(&t5_config()).len());
}

#[test]
fn t5_keymap_and_report() {
    let cfg = t5_config();
    let r = t5_report(fixture("t5/t5.pth"), None, &cfg);
    println!("{}", r.to_text());
    assert!(r.is_ready(), "{}", r.to_text());
    assert!(r.unused.is_empty());
    let wider = T5Config {
        dim_ffn: cfg.dim_ffn * 2,
        ..cfg.clone()
    };
    let r = t5_report(fixture("t5/t5.pth"), None, &wider);
    assert_eq!(
        r.wrong_shape.len(),
        3 * cfg.encoder_layers,
        "gate, fc1, fc2 per layer"
    );
    let r = t5_report(
        fixture("t5/t5.pth"),
        Some(&fixture("t5/no-such-tokenizer.json")),
        &cfg,
    );
    assert!(
        !r.is_ready(),
        "a missing tokenizer file makes the component not ready"
    );
}

fn hf_folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("avatar-studio-w2v-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for (from, to) in [
        ("audio/w2v_config.json", "config.json"),
        (
            "audio/w2v_preprocessor_config.json",
            "preprocessor_config.json",
        ),
        ("audio/w2v.safetensors", "model.safetensors"),
    ] {
        std::fs::copy(fixture(from), dir.join(to)).expect("copy fixture");
    }
    dir
}

#[test]
fn wav2vec_folder_report_and_loading() {
    let dir = hf_folder("ok");
    let r = wav2vec_report(&dir);
    println!("{}", r.to_text());
    assert!(r.is_ready(), "{}", r.to_text());
    assert!(
        r.unused.is_empty(),
        "only the CTC head and mask embedding are left out: {:?}",
        r.unused
    );

    let io = open("audio/audio_io.safetensors");
    let model = Wav2Vec2::<B>::from_folder(&dir, &device()).unwrap_or_else(|e| panic!("{e}"));
    let input: Tensor<B, 2> = tensor(&io, "input_values");
    let states = model.hidden_states_stacked(input).expect("hidden states");
    assert_close(
        "hidden_states (from folder)",
        states,
        tensor(&io, "hidden_states"),
        2e-4,
        1e-5,
    );

    std::fs::remove_file(dir.join("config.json")).expect("remove");
    let r = wav2vec_report(&dir);
    assert!(!r.is_ready());
    assert!(r.error.as_deref().unwrap_or("").contains("config.json"));
    let _ = std::fs::remove_dir_all(&dir);
}
