//! Inspection reports for checkpoint files (present?, size, keys, shapes, bytes) and per
//! component (VAE, T5, wav2vec2: what is missing or mis-shaped), used by `folder_report` (the
//! `inspect` command) and meant for clear start-up diagnostics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::error::WeightsError;
use super::keymap::{
    ExpectedTensor, t5_keys, vae_keys, wav2vec_canonical_key, wav2vec_ignored, wav2vec_keys,
};
use super::loader::{TensorInfo, open_checkpoint};
use crate::model::t5::T5Config;
use crate::model::vae::VaeConfig;
use crate::model::wav2vec::Wav2VecConfig;

/// What one checkpoint file holds.
#[derive(Debug, Clone)]
pub struct CheckpointReport {
    /// The file.
    pub file: PathBuf,
    /// File size on disk.
    pub file_bytes: u64,
    /// Every tensor, sorted by name.
    pub tensors: Vec<(String, TensorInfo)>,
}

impl CheckpointReport {
    /// Sum of the stored tensor bytes.
    pub fn tensor_bytes(&self) -> usize {
        self.tensors.iter().map(|(_, i)| i.bytes).sum()
    }

    /// Number of stored scalar values.
    pub fn parameters(&self) -> usize {
        self.tensors
            .iter()
            .map(|(_, i)| i.shape.iter().product::<usize>())
            .sum()
    }

    /// Names from `expected` that the file lacks (e.g. a module's key list).
    pub fn missing<'a>(&self, expected: &'a [String]) -> Vec<&'a str> {
        expected
            .iter()
            .filter(|k| self.tensors.binary_search_by(|(n, _)| n.cmp(k)).is_err())
            .map(String::as_str)
            .collect()
    }

    /// Human-readable multi-line listing.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}: {} bytes on disk, {} tensors, {} parameters, {} tensor bytes\n",
            self.file.display(),
            self.file_bytes,
            self.tensors.len(),
            self.parameters(),
            self.tensor_bytes()
        );
        for (name, info) in &self.tensors {
            out.push_str(&format!(
                "  {name}  {}  {:?}  {} bytes\n",
                info.dtype, info.shape, info.bytes
            ));
        }
        out
    }
}

/// Opens `path` (safetensors or `.pth`) and lists its tensors without reading their values.
pub fn report_checkpoint(path: impl AsRef<Path>) -> Result<CheckpointReport, WeightsError> {
    let path = path.as_ref();
    let file_bytes = std::fs::metadata(path)
        .map_err(|source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let src = open_checkpoint(path)?;
    let tensors = src
        .keys()
        .into_iter()
        .filter_map(|k| src.info(&k).map(|i| (k, i)))
        .collect();
    Ok(CheckpointReport {
        file: path.to_path_buf(),
        file_bytes,
        tensors,
    })
}

/// Presence and size of one file a component needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    /// The file.
    pub path: PathBuf,
    /// Whether it exists.
    pub present: bool,
    /// Its size (0 when absent).
    pub bytes: u64,
}

impl FileStatus {
    /// Looks `path` up on disk.
    pub fn of(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        match std::fs::metadata(&path) {
            Ok(m) => Self {
                path,
                present: true,
                bytes: m.len(),
            },
            Err(_) => Self {
                path,
                present: false,
                bytes: 0,
            },
        }
    }
}

/// What a component (VAE, T5, wav2vec2) has on disk compared with what its loader needs.
#[derive(Debug, Clone)]
pub struct ComponentReport {
    /// Component name.
    pub component: String,
    /// The files the component reads.
    pub files: Vec<FileStatus>,
    /// The weight file's listing, when it could be opened.
    pub checkpoint: Option<CheckpointReport>,
    /// Expected tensors that are absent.
    pub missing: Vec<ExpectedTensor>,
    /// Expected tensors present with another shape (expected, found shape).
    pub wrong_shape: Vec<(ExpectedTensor, Vec<usize>)>,
    /// Stored tensors the loader does not read.
    pub unused: Vec<String>,
    /// Why the files could not be examined, if they could not.
    pub error: Option<String>,
}

impl ComponentReport {
    fn failed(component: &str, files: Vec<FileStatus>, error: String) -> Self {
        Self {
            component: component.to_string(),
            files,
            checkpoint: None,
            missing: Vec::new(),
            wrong_shape: Vec::new(),
            unused: Vec::new(),
            error: Some(error),
        }
    }

    /// Whether every file is present and every expected tensor has the right shape.
    pub fn is_ready(&self) -> bool {
        self.error.is_none()
            && self.files.iter().all(|f| f.present)
            && self.checkpoint.is_some()
            && self.missing.is_empty()
            && self.wrong_shape.is_empty()
    }

    /// Human-readable summary.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}: {}\n",
            self.component,
            if self.is_ready() {
                "ready"
            } else {
                "NOT READY"
            }
        );
        for f in &self.files {
            let state = if f.present {
                format!("{} bytes", f.bytes)
            } else {
                "missing".to_string()
            };
            out.push_str(&format!("  file {}: {state}\n", f.path.display()));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        if let Some(c) = &self.checkpoint {
            out.push_str(&format!(
                "  {} tensors, {} parameters, {} tensor bytes\n",
                c.tensors.len(),
                c.parameters(),
                c.tensor_bytes()
            ));
        }
        for m in &self.missing {
            out.push_str(&format!(
                "  missing {} {:?} ({})\n",
                m.key, m.shape, m.module
            ));
        }
        for (m, found) in &self.wrong_shape {
            out.push_str(&format!(
                "  wrong shape {}: {found:?}, expected {:?} ({})\n",
                m.key, m.shape, m.module
            ));
        }
        if !self.unused.is_empty() {
            out.push_str(&format!("  {} unused tensors\n", self.unused.len()));
        }
        out
    }
}

/// Compares a checkpoint listing with the expected tensors. `canonical` maps stored names to
/// expected ones (legacy spellings); `ignored` marks stored keys that are knowingly unused.
fn compare(
    component: &str,
    files: Vec<FileStatus>,
    weights: &Path,
    expected: &[ExpectedTensor],
    canonical: &dyn Fn(&str) -> String,
    ignored: &dyn Fn(&str) -> bool,
) -> ComponentReport {
    let checkpoint = match report_checkpoint(weights) {
        Ok(c) => c,
        Err(e) => return ComponentReport::failed(component, files, e.to_string()),
    };
    let stored: BTreeMap<String, Vec<usize>> = checkpoint
        .tensors
        .iter()
        .map(|(k, i)| (canonical(k), i.shape.clone()))
        .collect();
    let mut missing = Vec::new();
    let mut wrong_shape = Vec::new();
    for e in expected {
        match stored.get(&e.key) {
            None => missing.push(e.clone()),
            Some(s) if *s != e.shape => wrong_shape.push((e.clone(), s.clone())),
            Some(_) => {}
        }
    }
    let wanted: BTreeSet<&str> = expected.iter().map(|e| e.key.as_str()).collect();
    let unused = stored
        .keys()
        .filter(|k| !wanted.contains(k.as_str()) && !ignored(k))
        .cloned()
        .collect();
    ComponentReport {
        component: component.to_string(),
        files,
        checkpoint: Some(checkpoint),
        missing,
        wrong_shape,
        unused,
        error: None,
    }
}

/// Report for the VAE weight file (`Wan2.1_VAE.pth`).
pub fn vae_report(weights: impl AsRef<Path>, cfg: &VaeConfig) -> ComponentReport {
    let weights = weights.as_ref();
    compare(
        "vae",
        vec![FileStatus::of(weights)],
        weights,
        &vae_keys(cfg),
        &|k| k.to_string(),
        &|_| false,
    )
}

/// Report for the umT5 encoder weights and, if given, its `tokenizer.json`.
pub fn t5_report(
    weights: impl AsRef<Path>,
    tokenizer_json: Option<&Path>,
    cfg: &T5Config,
) -> ComponentReport {
    let weights = weights.as_ref();
    let mut files = vec![FileStatus::of(weights)];
    if let Some(t) = tokenizer_json {
        files.push(FileStatus::of(t));
    }
    compare(
        "t5",
        files,
        weights,
        &t5_keys(cfg),
        &|k| k.to_string(),
        &|_| false,
    )
}

/// Report for a Hugging Face wav2vec2 folder (`config.json`, `preprocessor_config.json`,
/// `model.safetensors` or `pytorch_model.bin`).
pub fn wav2vec_report(folder: impl AsRef<Path>) -> ComponentReport {
    let dir = folder.as_ref();
    let st = dir.join("model.safetensors");
    let weights = if st.exists() {
        st
    } else {
        dir.join("pytorch_model.bin")
    };
    let files = vec![
        FileStatus::of(dir.join("config.json")),
        FileStatus::of(dir.join("preprocessor_config.json")),
        FileStatus::of(&weights),
    ];
    let cfg = match Wav2VecConfig::from_file(dir.join("config.json")) {
        Ok(c) => c,
        Err(e) => return ComponentReport::failed("wav2vec2", files, e.to_string()),
    };
    // Decide the prefix from the listing, as the loader does.
    let prefix = match open_checkpoint(&weights) {
        Ok(src) if src.contains("wav2vec2.feature_projection.projection.weight") => "wav2vec2.",
        Ok(_) => "",
        Err(e) => return ComponentReport::failed("wav2vec2", files, e.to_string()),
    };
    compare(
        "wav2vec2",
        files,
        &weights,
        &wav2vec_keys(&cfg, prefix),
        &|k| wav2vec_canonical_key(k),
        &|k| wav2vec_ignored(k),
    )
}
