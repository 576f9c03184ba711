//! `.pth` loading: the pickle copies give exactly the safetensors tensors (float32 VAE,
//! bfloat16 T5), hostile pickles are refused without running anything, and broken files fail
//! with errors that name the file and key.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use avatar_studio::model::vae::{VaeConfig, WanVae};
use avatar_studio::weights::loader::TensorSource;
use avatar_studio::weights::report::report_checkpoint;
use avatar_studio::weights::{PthFile, StFile, WeightsError};
use common::encoder_fixtures::*;

fn same_tensors(pth: &str, st: &str) {
    let p = PthFile::open(fixture(pth)).unwrap_or_else(|e| panic!("{e}"));
    let s = StFile::open(fixture(st)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.keys(), s.keys(), "{pth} and {st} hold different keys");
    for key in s.keys() {
        assert_eq!(
            p.info(&key).map(|i| i.shape),
            s.info(&key).map(|i| i.shape),
            "{key} shape"
        );
        let a = p.load_f32(&key).unwrap_or_else(|e| panic!("{e}"));
        let b = s.load_f32(&key).unwrap_or_else(|e| panic!("{e}"));
        assert!(a == b, "{pth}: tensor {key} differs from {st}");
    }
}

#[test]
fn vae_pth_equals_safetensors() {
    same_tensors("vae/vae.pth", "vae/vae.safetensors");
}

#[test]
fn t5_bf16_pth_equals_safetensors() {
    let p = PthFile::open(fixture("t5/t5.pth")).unwrap_or_else(|e| panic!("{e}"));
    let k = p.keys();
    assert!(
        k.iter()
            .all(|k| p.info(k).map(|i| i.dtype == "BF16").unwrap_or(false)),
        "t5.pth stores bf16"
    );
    same_tensors("t5/t5.pth", "t5/t5.safetensors");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("avatar-studio-pth-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A protocol-2 pickle of `{"weight": os.system("touch <marker>")}`: loading it with Python's
/// pickle would create the marker file.
fn hostile_pickle(marker: &Path) -> Vec<u8> {
    let cmd = format!("touch {}", marker.display());
    let mut p = vec![0x80, 0x02]; // PROTO 2
    p.push(b'}'); // EMPTY_DICT
    p.push(b'X'); // BINUNICODE key
    p.extend_from_slice(&(6u32).to_le_bytes());
    p.extend_from_slice(b"weight");
    p.extend_from_slice(b"cos\nsystem\n"); // GLOBAL os.system
    p.push(b'X'); // BINUNICODE argument
    p.extend_from_slice(&(cmd.len() as u32).to_le_bytes());
    p.extend_from_slice(cmd.as_bytes());
    p.push(0x85); // TUPLE1
    p.push(b'R'); // REDUCE: call os.system(cmd)
    p.push(b's'); // SETITEM
    p.push(b'.'); // STOP
    p
}

fn write_zip(path: &Path, pickle: &[u8]) {
    let file = std::fs::File::create(path).expect("create zip");
    let mut zip = zip::ZipWriter::new(file);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", opts).expect("zip entry");
    zip.write_all(pickle).expect("zip write");
    zip.start_file("archive/version", opts).expect("zip entry");
    zip.write_all(b"3\n").expect("zip write");
    zip.finish().expect("zip finish");
}

#[test]
fn hostile_pickle_is_refused_not_executed() {
    let dir = scratch("hostile");
    let marker = dir.join("pwned");
    let _ = std::fs::remove_file(&marker);
    let pickle = hostile_pickle(&marker);

    let raw = dir.join("raw.pth");
    std::fs::write(&raw, &pickle).expect("write raw pickle");
    let zipped = dir.join("zipped.pth");
    write_zip(&zipped, &pickle);

    for path in [&raw, &zipped] {
        match PthFile::open(path) {
            Ok(_) => panic!("{}: hostile pickle was accepted", path.display()),
            Err(e) => {
                let msg = e.to_string();
                println!("refused: {msg}");
                assert!(
                    msg.contains(&path.display().to_string()),
                    "error names the file: {msg}"
                );
                assert!(
                    matches!(e, WeightsError::Pickle { .. }),
                    "refused as a pickle error: {msg}"
                );
            }
        }
        assert!(!marker.exists(), "the pickle's os.system call was executed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn truncated_pth_is_an_error_naming_the_file() {
    let dir = scratch("trunc");
    let bytes = std::fs::read(fixture("vae/vae.pth")).expect("read vae.pth");
    let cut = dir.join("vae_cut.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let cfg: VaeConfig = serde_json::from_value(component_config("vae")).expect("vae config");
    let err = match PthFile::open(&cut) {
        Err(e) => e,
        Ok(f) => match WanVae::<B>::load(&f, cfg, &device()) {
            Err(e) => e,
            Ok(_) => panic!("truncated file loaded"),
        },
    };
    assert!(err.to_string().contains("vae_cut.pth"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn truncated_safetensors_names_file_and_key() {
    let dir = scratch("trunc-st");
    let bytes = std::fs::read(fixture("vae/vae.safetensors")).expect("read");
    let cut = dir.join("vae_cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).expect("write");
    match StFile::open(&cut) {
        Err(WeightsError::Truncated {
            path: file, key, ..
        }) => {
            assert_eq!(file, cut);
            assert!(!key.is_empty());
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("truncated safetensors opened"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_key_and_wrong_shape_are_reported() {
    let cfg: VaeConfig = serde_json::from_value(component_config("vae")).expect("vae config");
    let t5 = StFile::open(fixture("t5/t5.safetensors")).expect("t5");
    match WanVae::<B>::load(&t5, cfg.clone(), &device()) {
        Err(WeightsError::MissingKey { path: file, key }) => {
            assert!(file.ends_with("t5.safetensors"));
            assert!(key.starts_with("encoder."), "{key}");
        }
        other => panic!("expected a missing key, got {:?}", other.err()),
    }
    let vae = StFile::open(fixture("vae/vae.safetensors")).expect("vae");
    let wider = VaeConfig {
        dim: cfg.dim * 2,
        ..cfg
    };
    match WanVae::<B>::load(&vae, wider, &device()) {
        Err(WeightsError::Shape {
            key,
            found,
            expected,
            ..
        }) => {
            assert_eq!(key, "encoder.conv1.weight");
            assert_ne!(found, expected);
        }
        other => panic!("expected a shape error, got {:?}", other.err()),
    }
}

#[test]
fn report_lists_every_tensor() {
    let r = report_checkpoint(fixture("vae/vae.pth")).unwrap_or_else(|e| panic!("{e}"));
    let m = manifest();
    let vae = &m["components"]["vae"];
    assert_eq!(
        r.tensors.len() as u64,
        vae["config"]["n_keys"].as_u64().expect("n_keys")
    );
    assert_eq!(
        r.parameters() as u64,
        vae["config"]["n_params"].as_u64().expect("n_params")
    );
    let expected: Vec<String> = vae["tensors"]["vae/vae.safetensors"]
        .as_object()
        .expect("tensor list")
        .keys()
        .cloned()
        .collect();
    assert!(r.missing(&expected).is_empty());
    assert!(r.to_text().contains("encoder.conv1.weight"));
}
