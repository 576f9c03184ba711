//! Helpers of the encoder parity tests (VAE, T5, wav2vec2): fixture access through the
//! `TensorSource` readers, and tolerance checks that report the worst error.

use avatar_studio::weights::StFile;

pub use super::fixtures::{device, fixture, fixtures_dir, manifest};
use avatar_studio::weights::loader::TensorSource;
use burn::tensor::{Tensor, TensorData};

pub type B = super::fixtures::TestBackend;

/// `manifest.components.<name>.config`.
pub fn component_config(name: &str) -> serde_json::Value {
    manifest()["components"][name]["config"].clone()
}

pub fn open(rel: &str) -> StFile {
    StFile::open(fixture(rel)).unwrap_or_else(|e| panic!("{e}"))
}

pub fn shape(st: &StFile, key: &str) -> Vec<usize> {
    st.info(key)
        .unwrap_or_else(|| panic!("fixture lacks {key}"))
        .shape
}

pub fn tensor<const D: usize>(st: &StFile, key: &str) -> Tensor<B, D> {
    let s = shape(st, key);
    let arr: [usize; D] = s
        .clone()
        .try_into()
        .unwrap_or_else(|_| panic!("{key}: rank {s:?}"));
    let v = st.load_f32(key).unwrap_or_else(|e| panic!("{e}"));
    Tensor::from_data(TensorData::new(v, arr), &device())
}

pub fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().expect("f32 tensor")
}

/// Worst absolute error and worst excess over `atol + rtol·|expected|`.
pub struct Diff {
    pub max_abs: f32,
    pub worst_excess: f32,
    pub n: usize,
}

pub fn diff(actual: &[f32], expected: &[f32], atol: f32, rtol: f32) -> Diff {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    let mut max_abs = 0f32;
    let mut worst_excess = f32::NEG_INFINITY;
    for (a, e) in actual.iter().zip(expected) {
        let d = (a - e).abs();
        let d = if d.is_nan() { f32::INFINITY } else { d };
        max_abs = max_abs.max(d);
        worst_excess = worst_excess.max(d - (atol + rtol * e.abs()));
    }
    Diff {
        max_abs,
        worst_excess,
        n: actual.len(),
    }
}

/// Asserts `actual ≈ expected` within `atol + rtol·|expected|` and prints the worst error.
pub fn assert_close<const D: usize>(
    name: &str,
    actual: Tensor<B, D>,
    expected: Tensor<B, D>,
    atol: f32,
    rtol: f32,
) -> f32 {
    assert_eq!(actual.dims(), expected.dims(), "{name}: shape mismatch");
    let d = diff(&values(actual), &values(expected), atol, rtol);
    println!(
        "{name}: max abs err {:.3e} over {} values (atol {atol:e}, rtol {rtol:e})",
        d.max_abs, d.n
    );
    assert!(
        d.worst_excess <= 0.0,
        "{name}: max abs err {:.3e} exceeds tolerance",
        d.max_abs
    );
    d.max_abs
}
