//! Header-only validation of a DiT checkpoint folder (and optionally a LoRA file): which keys
//! are missing, unexpected or mis-shaped, parameter counts per component, and the sizes the
//! model takes in bf16 and with FP8 linears. No tensor data is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::lora::{ACCEPTED_SPELLINGS, parse_lora_key};
use super::{DitCheckpoint, LoraAdapter, SafetensorsFile, StoredDtype, WeightSet, WeightsError};
use crate::model::DitConfig;
use crate::model::dit::lora_target_count;
use crate::model::inventory::{Component, SizeSummary, parameter_inventory, size_summary};

/// A tensor whose stored shape differs from the one the config implies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShapeMismatch {
    pub key: String,
    pub expected: Vec<usize>,
    pub found: Vec<usize>,
}

/// What a LoRA file covers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoraReport {
    pub path: PathBuf,
    pub rank: usize,
    pub alpha: f32,
    pub pairs: usize,
    pub expected_pairs: usize,
    /// Adapted modules that are not LoRA targets of the model.
    pub unmatched_modules: Vec<String>,
    /// The key spellings the file uses (module path shown as `<module>`), one of spec §3.8's.
    pub spellings: Vec<String>,
    /// Stored keys that are not in any accepted LoRA spelling (for example a kohya
    /// `lora_down`, or a `base_layer.weight` that the reference would copy over the base).
    pub unrecognised_keys: Vec<String>,
}

/// The result of [`inspect`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectReport {
    pub folder: PathBuf,
    pub files: Vec<PathBuf>,
    pub config: DitConfig,
    pub tensors_stored: usize,
    pub tensors_expected: usize,
    /// Elements stored in the files.
    pub stored_parameters: u64,
    /// Bytes of tensor data stored, per safetensors dtype name.
    pub stored_bytes_by_dtype: BTreeMap<String, u64>,
    /// Expected parameters per component.
    pub component_parameters: BTreeMap<Component, u64>,
    /// Expected size in bf16 and with FP8 linears.
    pub expected: SizeSummary,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    pub mis_shaped: Vec<ShapeMismatch>,
    pub lora: Option<LoraReport>,
}

impl InspectReport {
    /// True when every expected tensor is present with its shape, nothing is extra, and the
    /// LoRA (if any) covers every target.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.mis_shaped.is_empty()
            && self.lora.as_ref().is_none_or(|l| {
                l.pairs >= l.expected_pairs
                    && l.unmatched_modules.is_empty()
                    && l.unrecognised_keys.is_empty()
            })
    }
}

fn dtype_name(dtype: StoredDtype) -> String {
    format!("{dtype:?}").to_lowercase()
}

/// Compares the headers of `weights` against the inventory of `config`.
pub fn inspect_weights(
    folder: &Path,
    files: Vec<PathBuf>,
    config: &DitConfig,
    weights: &WeightSet,
) -> Result<InspectReport, WeightsError> {
    let inventory = parameter_inventory(config);
    let mut component_parameters = BTreeMap::new();
    let mut missing = Vec::new();
    let mut mis_shaped = Vec::new();
    for spec in &inventory {
        *component_parameters.entry(spec.component).or_insert(0u64) += spec.elements();
        if !weights.contains(&spec.key) {
            missing.push(spec.key.clone());
            continue;
        }
        let info = weights.info(&spec.key)?;
        if info.shape != spec.shape {
            mis_shaped.push(ShapeMismatch {
                key: spec.key.clone(),
                expected: spec.shape.clone(),
                found: info.shape.clone(),
            });
        }
    }
    let expected_keys: std::collections::BTreeSet<&str> =
        inventory.iter().map(|s| s.key.as_str()).collect();
    let mut unexpected = Vec::new();
    let mut stored_parameters = 0u64;
    let mut stored_bytes_by_dtype = BTreeMap::new();
    let mut tensors_stored = 0;
    for key in weights.keys() {
        tensors_stored += 1;
        let info = weights.info(key)?;
        stored_parameters += info.num_elements() as u64;
        *stored_bytes_by_dtype
            .entry(dtype_name(info.dtype))
            .or_insert(0u64) += (info.end - info.begin) as u64;
        if !expected_keys.contains(key) {
            unexpected.push(key.to_string());
        }
    }
    Ok(InspectReport {
        folder: folder.to_path_buf(),
        files,
        config: config.clone(),
        tensors_stored,
        tensors_expected: inventory.len(),
        stored_parameters,
        stored_bytes_by_dtype,
        component_parameters,
        expected: size_summary(&inventory),
        missing,
        unexpected,
        mis_shaped,
        lora: None,
    })
}

/// Validates a checkpoint folder (sharded or single-file) and, if given, a LoRA file, from
/// safetensors headers only.
pub fn inspect(
    folder: impl AsRef<Path>,
    lora: Option<&Path>,
) -> Result<InspectReport, WeightsError> {
    let checkpoint = DitCheckpoint::open(folder.as_ref())?;
    let files = DitCheckpoint::weight_files(&checkpoint.folder)?;
    let mut report = inspect_weights(
        &checkpoint.folder,
        files,
        &checkpoint.config,
        &checkpoint.weights,
    )?;
    if let Some(path) = lora {
        report.lora = Some(inspect_lora(path, &checkpoint.config)?);
    }
    Ok(report)
}

/// `lora_alpha` of LA/liveavatar/configs/s2v_causal_sft.yaml (spec §3.8).
pub const REFERENCE_LORA_ALPHA: f32 = 64.0;

/// Which of the model's LoRA targets a file covers. A file in which no key has an accepted
/// spelling is an error that names its first key, rather than a report of zero pairs.
pub fn inspect_lora(path: &Path, config: &DitConfig) -> Result<LoraReport, WeightsError> {
    let header = SafetensorsFile::open(path)?;
    let mut spellings = std::collections::BTreeSet::new();
    let mut unrecognised_keys = Vec::new();
    for key in header.tensors().keys() {
        match parse_lora_key(key) {
            Some(k) => {
                spellings.insert(k.spelling);
            }
            None => unrecognised_keys.push(key.clone()),
        }
    }
    if spellings.is_empty() {
        return Err(WeightsError::Lora {
            path: path.to_path_buf(),
            reason: format!(
                "no key has a known LoRA spelling (first key `{}`); expected {ACCEPTED_SPELLINGS}",
                unrecognised_keys.first().map_or("<none>", String::as_str)
            ),
        });
    }
    // The reference takes alpha from its training config, not the file (spec §3.8), and the
    // released file's metadata is unverified (§13); without `lora_alpha` use that config's 64
    // rather than refusing a file the reference would load.
    let alpha = (!header.metadata().contains_key("lora_alpha")).then_some(REFERENCE_LORA_ALPHA);
    drop(header);
    let adapter = LoraAdapter::open(path, None, alpha)?;
    let targets: std::collections::BTreeSet<String> = parameter_inventory(config)
        .into_iter()
        .filter(|s| s.fp8 && !s.key.contains("injector_adain_layers"))
        .filter_map(|s| s.key.strip_suffix(".weight").map(str::to_string))
        .collect();
    let unmatched_modules = adapter
        .modules()
        .filter(|m| !targets.contains(*m))
        .map(str::to_string)
        .collect();
    Ok(LoraReport {
        path: path.to_path_buf(),
        rank: adapter.rank(),
        alpha: adapter.alpha(),
        pairs: adapter.len(),
        expected_pairs: lora_target_count(config),
        unmatched_modules,
        spellings: spellings.into_iter().collect(),
        unrecognised_keys,
    })
}
