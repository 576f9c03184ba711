//! Helpers of the parity tests: fixture paths, the manifest, tensor comparison.

use std::path::PathBuf;

use avatar_studio::model::DitConfig;
use avatar_studio::weights::SafetensorsFile;
use burn::tensor::{Tensor, TensorData, backend::Backend};

/// The parity tests run on Flex (CPU) by default; built with `--features cuda` the same tests
/// run on an NVIDIA GPU through burn-cuda, in f32, against the same tolerances.
#[cfg(not(feature = "cuda"))]
pub type TestBackend = burn::backend::Flex;
#[cfg(feature = "cuda")]
pub type TestBackend = burn_cuda::Cuda<f32, i32>;

/// The device every test tensor lives on. On CUDA the first call turns on strict f32 matmuls:
/// the fixtures' f32 tolerances are far below the TF32 rounding that tensor-core kernels would
/// otherwise apply to f32 operands. Tests get their device here, never from `Default`, so the
/// switch is set before the first GPU operation.
pub fn device() -> burn::tensor::Device<TestBackend> {
    #[cfg(feature = "cuda")]
    {
        static STRICT: std::sync::Once = std::sync::Once::new();
        STRICT.call_once(|| avatar_studio::gpu::strict_f32_matmul(true));
    }
    Default::default()
}

/// The fixture folder: `$FIXTURES_DIR`, else `../shared/fixtures` next to the crate.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("FIXTURES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"),
    }
}

pub fn fixture(relative: &str) -> PathBuf {
    fixtures_dir().join(relative)
}

pub fn manifest() -> serde_json::Value {
    let path = fixture("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn open(relative: &str) -> SafetensorsFile {
    SafetensorsFile::open(fixture(relative)).unwrap_or_else(|e| panic!("{e}"))
}

pub fn tensor<const D: usize>(file: &SafetensorsFile, key: &str) -> Tensor<TestBackend, D> {
    file.tensor::<TestBackend, D>(key, &device())
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn floats(file: &SafetensorsFile, key: &str) -> Vec<f32> {
    file.read_f32(key).unwrap_or_else(|e| panic!("{e}")).0
}

pub fn ints(file: &SafetensorsFile, key: &str) -> (Vec<i64>, Vec<usize>) {
    file.read_i64(key).unwrap_or_else(|e| panic!("{e}"))
}

pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_else(|e| panic!("{e:?}"))
}

pub fn from_values<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<TestBackend, D> {
    Tensor::from_data(TensorData::new(values, shape), &device())
}

/// Difference statistics of `actual` against `expected`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Diff {
    pub max_abs: f64,
    pub sq_err: f64,
    pub sq_ref: f64,
}

impl Diff {
    pub fn of(actual: &[f32], expected: &[f32]) -> Self {
        assert_eq!(actual.len(), expected.len(), "length mismatch");
        let mut d = Diff::default();
        for (&a, &e) in actual.iter().zip(expected) {
            let err = f64::from(a) - f64::from(e);
            d.max_abs = d.max_abs.max(err.abs());
            d.sq_err += err * err;
            d.sq_ref += f64::from(e) * f64::from(e);
        }
        if actual.iter().any(|v| !v.is_finite()) {
            d.max_abs = f64::INFINITY;
        }
        d
    }

    pub fn merge(self, other: Diff) -> Diff {
        Diff {
            max_abs: self.max_abs.max(other.max_abs),
            sq_err: self.sq_err + other.sq_err,
            sq_ref: self.sq_ref + other.sq_ref,
        }
    }

    pub fn rel_l2(&self) -> f64 {
        (self.sq_err / self.sq_ref.max(f64::MIN_POSITIVE)).sqrt()
    }
}

/// The tiny DiT config recorded in the manifest, completed with the fixture geometry.
pub fn dit_config(manifest: &serde_json::Value) -> DitConfig {
    let dit = &manifest["components"]["dit"];
    let mut config: DitConfig = serde_json::from_value(dit["config"].clone())
        .unwrap_or_else(|e| panic!("manifest dit.config: {e}"));
    let geometry = &dit["geometry"];
    let number = |key: &str| {
        geometry[key]
            .as_u64()
            .unwrap_or_else(|| panic!("manifest geometry.{key} missing")) as usize
    };
    config.motion_frames = number("motion_frames");
    config.frames_per_block = number("frames_per_block");
    assert_eq!(config.latent_motion_frames(), number("lat_motion_frames"));
    let audio_shape = &dit["tensors"]["dit/dit_run.safetensors"]["audio_emb"]["shape"];
    config.audio_encoder_layers = audio_shape[1]
        .as_u64()
        .unwrap_or_else(|| panic!("audio_emb shape")) as usize;
    config
}

pub fn geometry_number(manifest: &serde_json::Value, key: &str) -> usize {
    manifest["components"]["dit"]["geometry"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("manifest geometry.{key} missing")) as usize
}

/// Writes an f32 safetensors file (for loader tests that need malformed or re-laid-out files).
pub fn write_safetensors(
    path: &std::path::Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: &[(&str, &str)],
) {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let map: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        header.insert("__metadata__".into(), serde_json::Value::Object(map));
    }
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let begin = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let header =
        serde_json::to_vec(&serde_json::Value::Object(header)).unwrap_or_else(|e| panic!("{e}"));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Every tensor of a fixture file as `(name, shape, values)`.
pub fn all_tensors(file: &SafetensorsFile) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    file.tensors()
        .keys()
        .map(|k| {
            let (v, s) = file.read_f32(k).unwrap_or_else(|e| panic!("{e}"));
            (k.clone(), s, v)
        })
        .collect()
}

/// A fresh scratch folder under cargo's per-target temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
