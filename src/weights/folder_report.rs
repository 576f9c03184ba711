//! Header-only validation of a whole `Wan2.2-S2V-14B` checkpoint folder (spec §4.1): the DiT
//! shards and their index, the umT5 encoder, the VAE, the wav2vec2 folder and the tokenizer,
//! plus an optional LoRA. This is what `avatar-studio inspect` prints; the CLI only formats it.
//! No tensor data is read, so a 40 GB folder is checked in well under a second.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint::{DitCheckpoint, WeightSet, read_index};
use super::inspect::{InspectReport, ShapeMismatch, inspect_lora, inspect_weights};
use super::report::{ComponentReport, t5_report, vae_report, wav2vec_report};
use super::{SafetensorsFile, WeightsError};
use crate::model::t5::T5Config;
use crate::model::vae::VaeConfig;

/// The umT5-XXL encoder's file in the folder.
pub const T5_FILE: &str = "models_t5_umt5-xxl-enc-bf16.pth";
/// The Wan 2.1 VAE's file in the folder.
pub const VAE_FILE: &str = "Wan2.1_VAE.pth";
/// The tokenizer folder and the file the text front-end reads from it.
pub const TOKENIZER_DIR: &str = "google/umt5-xxl";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The Hugging Face wav2vec2 folder.
pub const WAV2VEC_DIR: &str = "wav2vec2-large-xlsr-53-english";
const DIT_INDEX: &str = "diffusion_pytorch_model.safetensors.index.json";
const DIT_SINGLE: &str = "diffusion_pytorch_model.safetensors";

/// Sizes of the encoders, which the folder does not describe (the reference hard-codes them).
/// The defaults are the released umT5-XXL and Wan 2.1 VAE; a JSON file
/// `{"t5": {...}, "vae": {...}}` may override them for smaller variants and tests.
#[derive(Debug, Clone, Deserialize)]
pub struct EncoderConfigs {
    pub t5: T5Config,
    pub vae: VaeConfig,
}

impl Default for EncoderConfigs {
    fn default() -> Self {
        Self {
            t5: T5Config::umt5_xxl(),
            vae: VaeConfig::wan21(),
        }
    }
}

impl EncoderConfigs {
    /// Reads an override file.
    pub fn from_file(path: &Path) -> Result<Self, WeightsError> {
        let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| WeightsError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// One file on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    pub path: PathBuf,
    pub present: bool,
    pub bytes: u64,
}

impl FileEntry {
    fn of(path: &Path) -> Self {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file());
        Self {
            path: path.to_path_buf(),
            present: meta.is_some(),
            bytes: meta.map_or(0, |m| m.len()),
        }
    }
}

/// An encoder component (T5, VAE, wav2vec2) or the tokenizer, flattened for text and JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentSummary {
    pub name: String,
    pub ready: bool,
    pub files: Vec<FileEntry>,
    pub tensors: usize,
    pub parameters: u64,
    pub tensor_bytes: u64,
    pub missing: Vec<String>,
    pub mis_shaped: Vec<ShapeMismatch>,
    /// Stored tensors the loader does not read (reported, not an error: the T5 file of some
    /// releases carries extra tensors that are harmless).
    pub unused: Vec<String>,
    pub error: Option<String>,
}

impl ComponentSummary {
    fn from_report(r: &ComponentReport) -> Self {
        let (tensors, parameters, tensor_bytes) = r.checkpoint.as_ref().map_or((0, 0, 0), |c| {
            (
                c.tensors.len(),
                c.parameters() as u64,
                c.tensor_bytes() as u64,
            )
        });
        Self {
            name: r.component.clone(),
            ready: r.is_ready(),
            files: r
                .files
                .iter()
                .map(|f| FileEntry {
                    path: f.path.clone(),
                    present: f.present,
                    bytes: f.bytes,
                })
                .collect(),
            tensors,
            parameters,
            tensor_bytes,
            missing: r.missing.iter().map(|m| m.key.clone()).collect(),
            mis_shaped: r
                .wrong_shape
                .iter()
                .map(|(e, found)| ShapeMismatch {
                    key: e.key.clone(),
                    expected: e.shape.clone(),
                    found: found.clone(),
                })
                .collect(),
            unused: r.unused.clone(),
            error: r.error.clone(),
        }
    }

    /// The weight file (the last listed file of every encoder report).
    fn weight_file(&self) -> Option<&Path> {
        self.files.last().map(|f| f.path.as_path())
    }
}

/// The DiT part: index, shards and the key comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DitSection {
    /// The index file, when the folder uses the sharded layout.
    pub index: Option<PathBuf>,
    pub shards: Vec<FileEntry>,
    /// Shards that are listed but absent, or present but unreadable, with the reason.
    pub shard_errors: Vec<(PathBuf, String)>,
    /// Keys the index maps to a shard that does not hold them, and keys a shard holds that the
    /// index does not list.
    pub index_mismatches: Vec<String>,
    /// The comparison with the config's inventory (absent when `config.json` is unusable).
    pub report: Option<InspectReport>,
    /// Why the DiT could not be examined at all.
    pub error: Option<String>,
}

/// Everything `inspect` found in a checkpoint folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FolderReport {
    pub folder: PathBuf,
    pub complete: bool,
    pub dit: DitSection,
    pub t5: ComponentSummary,
    pub vae: ComponentSummary,
    pub wav2vec2: ComponentSummary,
    pub tokenizer: ComponentSummary,
    /// The LoRA's coverage (inside `dit.report.lora`) or why it could not be read.
    pub lora_error: Option<String>,
    /// One line per problem, each naming the file and, where it applies, the key.
    pub problems: Vec<String>,
}

/// Inspects the checkpoint folder `folder` (and `lora`, if given) from headers only.
pub fn inspect_folder(
    folder: &Path,
    lora: Option<&Path>,
    encoders: &EncoderConfigs,
) -> Result<FolderReport, WeightsError> {
    if !folder.is_dir() {
        return Err(WeightsError::Layout {
            path: folder.to_path_buf(),
            reason: "not a folder".into(),
        });
    }
    let mut dit = inspect_dit(folder);
    let mut lora_error = None;
    if let (Some(path), Some(report)) = (lora, dit.report.as_mut()) {
        match inspect_lora(path, &report.config) {
            Ok(l) => report.lora = Some(l),
            Err(e) => lora_error = Some(e.to_string()),
        }
    } else if let Some(path) = lora {
        lora_error = Some(format!(
            "{}: LoRA not checked: the DiT config is unusable",
            path.display()
        ));
    }
    let t5 = ComponentSummary::from_report(&t5_report(folder.join(T5_FILE), None, &encoders.t5));
    let vae = ComponentSummary::from_report(&vae_report(folder.join(VAE_FILE), &encoders.vae));
    let wav2vec_dir = folder.join(WAV2VEC_DIR);
    let wav2vec2 = if wav2vec_dir.is_dir() {
        ComponentSummary::from_report(&wav2vec_report(&wav2vec_dir))
    } else {
        missing_folder("wav2vec2", &wav2vec_dir)
    };
    let tokenizer = tokenizer_summary(&folder.join(TOKENIZER_DIR));
    let mut report = FolderReport {
        folder: folder.to_path_buf(),
        complete: false,
        dit,
        t5,
        vae,
        wav2vec2,
        tokenizer,
        lora_error,
        problems: Vec::new(),
    };
    report.problems = problems(&report);
    report.complete = report.problems.is_empty();
    Ok(report)
}

fn missing_folder(name: &str, dir: &Path) -> ComponentSummary {
    ComponentSummary {
        name: name.to_string(),
        ready: false,
        files: vec![FileEntry::of(dir)],
        tensors: 0,
        parameters: 0,
        tensor_bytes: 0,
        missing: Vec::new(),
        mis_shaped: Vec::new(),
        unused: Vec::new(),
        error: Some(format!("{}: folder missing", dir.display())),
    }
}

/// The tokenizer is checked for presence and for being a JSON object with a `model` (what the
/// `tokenizers` crate needs first); loading it fully would cost seconds on the real file.
fn tokenizer_summary(dir: &Path) -> ComponentSummary {
    let path = dir.join(TOKENIZER_FILE);
    let entry = FileEntry::of(&path);
    let error = if !entry.present {
        Some(format!("{}: file missing", path.display()))
    } else {
        match std::fs::read(&path) {
            Err(e) => Some(format!("{}: cannot read: {e}", path.display())),
            Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Err(e) => Some(format!("{}: invalid JSON: {e}", path.display())),
                Ok(v) if v.get("model").is_none() => {
                    Some(format!("{}: no `model` entry", path.display()))
                }
                Ok(_) => None,
            },
        }
    };
    ComponentSummary {
        name: "tokenizer".into(),
        ready: error.is_none(),
        files: vec![entry],
        tensors: 0,
        parameters: 0,
        tensor_bytes: 0,
        missing: Vec::new(),
        mis_shaped: Vec::new(),
        unused: Vec::new(),
        error,
    }
}

/// Unlike [`DitCheckpoint::open`], a missing or broken shard does not stop the inspection: the
/// other shards are still compared, so one run lists every problem.
fn inspect_dit(folder: &Path) -> DitSection {
    let mut section = DitSection {
        index: None,
        shards: Vec::new(),
        shard_errors: Vec::new(),
        index_mismatches: Vec::new(),
        report: None,
        error: None,
    };
    let index_path = folder.join(DIT_INDEX);
    let weight_map = if index_path.is_file() {
        section.index = Some(index_path.clone());
        match read_index(&index_path) {
            Ok(m) => Some(m),
            Err(e) => {
                section.error = Some(e.to_string());
                return section;
            }
        }
    } else {
        None
    };
    let paths: Vec<PathBuf> = match &weight_map {
        Some(map) => map
            .values()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|n| folder.join(n))
            .collect(),
        None if folder.join(DIT_SINGLE).is_file() => vec![folder.join(DIT_SINGLE)],
        None => {
            section.error = Some(format!(
                "{}: neither {DIT_INDEX} nor {DIT_SINGLE} found",
                folder.display()
            ));
            return section;
        }
    };
    let mut readable = Vec::new();
    for path in &paths {
        let entry = FileEntry::of(path);
        if !entry.present {
            section
                .shard_errors
                .push((path.clone(), "file missing".into()));
        } else {
            // Opening parses the header and checks every tensor's offsets against the file
            // length, which is how a truncated download shows up.
            match SafetensorsFile::open(path) {
                Ok(file) => {
                    if let Some(map) = &weight_map {
                        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                        for key in file.tensors().keys() {
                            if map.get(key) != name.as_ref() {
                                section.index_mismatches.push(format!(
                                    "{}: tensor `{key}` is not listed for this file in {DIT_INDEX}",
                                    path.display()
                                ));
                            }
                        }
                        for (key, shard) in map {
                            if Some(shard) == name.as_ref() && !file.tensors().contains_key(key) {
                                section.index_mismatches.push(format!(
                                    "{}: tensor `{key}` is listed in {DIT_INDEX} but not stored",
                                    path.display()
                                ));
                            }
                        }
                    }
                    readable.push(path.clone());
                }
                Err(e) => section.shard_errors.push((path.clone(), e.to_string())),
            }
        }
        section.shards.push(entry);
    }
    let config = match DitCheckpoint::read_config(folder) {
        Ok(c) => c,
        Err(e) => {
            section.error = Some(e.to_string());
            return section;
        }
    };
    match WeightSet::open(&readable).and_then(|w| inspect_weights(folder, readable, &config, &w)) {
        Ok(mut report) => {
            report.files = paths;
            section.report = Some(report);
        }
        Err(e) => section.error = Some(e.to_string()),
    }
    section
}

fn problems(r: &FolderReport) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &r.dit.error {
        out.push(format!("DiT: {e}"));
    }
    for (path, reason) in &r.dit.shard_errors {
        out.push(format!("DiT shard {}: {reason}", path.display()));
    }
    out.extend(r.dit.index_mismatches.iter().map(|m| format!("DiT: {m}")));
    if let Some(d) = &r.dit.report {
        // Read the index once for all missing keys rather than per key.
        let index = r.dit.index.as_ref().and_then(|p| read_index(p).ok());
        // Where a key should live: its shard from the index, else the index or single file.
        let location = |key: &str| match (&index, &r.dit.index) {
            (Some(map), _) if map.contains_key(key) => r.folder.join(&map[key]),
            (_, Some(index_path)) => index_path.clone(),
            (_, None) => r.folder.join(DIT_SINGLE),
        };
        for key in &d.missing {
            out.push(format!(
                "DiT {}: missing tensor `{key}`",
                location(key).display()
            ));
        }
        for key in &d.unexpected {
            out.push(format!(
                "DiT {}: unexpected tensor `{key}`",
                location(key).display()
            ));
        }
        for m in &d.mis_shaped {
            out.push(format!(
                "DiT {}: tensor `{}` has shape {:?}, expected {:?}",
                location(&m.key).display(),
                m.key,
                m.found,
                m.expected
            ));
        }
        if let Some(l) = &d.lora {
            let p = l.path.display();
            if l.pairs < l.expected_pairs {
                out.push(format!(
                    "LoRA {p}: {} A/B pairs, the model has {} targets",
                    l.pairs, l.expected_pairs
                ));
            }
            for m in &l.unmatched_modules {
                out.push(format!(
                    "LoRA {p}: module `{m}` is not a LoRA target of the DiT"
                ));
            }
            for k in &l.unrecognised_keys {
                out.push(format!(
                    "LoRA {p}: key `{k}` has no accepted LoRA spelling ({})",
                    super::lora::ACCEPTED_SPELLINGS
                ));
            }
        }
    }
    if let Some(e) = &r.lora_error {
        out.push(format!("LoRA: {e}"));
    }
    for c in [&r.t5, &r.vae, &r.wav2vec2, &r.tokenizer] {
        out.extend(component_problems(c));
    }
    out
}

fn component_problems(c: &ComponentSummary) -> Vec<String> {
    let mut out = Vec::new();
    for f in c.files.iter().filter(|f| !f.present) {
        out.push(format!("{} {}: file missing", c.name, f.path.display()));
    }
    if let Some(e) = &c.error
        && c.files.iter().all(|f| f.present)
    {
        out.push(format!("{}: {e}", c.name));
    }
    let file = c
        .weight_file()
        .map_or_else(String::new, |p| p.display().to_string());
    for key in &c.missing {
        out.push(format!("{} {file}: missing tensor `{key}`", c.name));
    }
    for m in &c.mis_shaped {
        out.push(format!(
            "{} {file}: tensor `{}` has shape {:?}, expected {:?}",
            c.name, m.key, m.found, m.expected
        ));
    }
    out
}

/// Decimal GB as the spec quotes sizes, with the exact byte count for small checkpoints.
fn gb(bytes: u64) -> String {
    format!("{:.2} GB ({bytes} bytes)", bytes as f64 / 1e9)
}

impl FolderReport {
    /// A person-readable report; long key lists are cut after `limit` lines each.
    pub fn to_text(&self) -> String {
        let limit = 20;
        let mut out = format!("checkpoint folder {}\n", self.folder.display());
        out.push_str("DiT:\n");
        if let Some(index) = &self.dit.index {
            out.push_str(&format!("  index {}\n", index.display()));
        }
        for s in &self.dit.shards {
            let state = if s.present {
                format!("{} bytes", s.bytes)
            } else {
                "MISSING".into()
            };
            out.push_str(&format!("  shard {}: {state}\n", s.path.display()));
        }
        if let Some(d) = &self.dit.report {
            out.push_str(&format!(
                "  {} of {} expected tensors stored, {} parameters stored\n",
                d.tensors_stored, d.tensors_expected, d.stored_parameters
            ));
            out.push_str(&format!(
                "  expected {} parameters: {} in bf16, {} with FP8 linears ({} layers, {} weights)\n",
                d.expected.parameters,
                gb(d.expected.bf16_bytes),
                gb(d.expected.fp8_bytes),
                d.expected.fp8_layers,
                d.expected.fp8_weight_elements
            ));
            for (dtype, bytes) in &d.stored_bytes_by_dtype {
                out.push_str(&format!("  stored {dtype}: {bytes} bytes\n"));
            }
            if let Some(l) = &d.lora {
                out.push_str(&format!(
                    "  LoRA {}: {} of {} pairs, rank {}, alpha {}, spelling {}\n",
                    l.path.display(),
                    l.pairs,
                    l.expected_pairs,
                    l.rank,
                    l.alpha,
                    l.spellings.join(", ")
                ));
            }
        }
        for c in [&self.t5, &self.vae, &self.wav2vec2, &self.tokenizer] {
            let state = if c.ready { "ready" } else { "NOT READY" };
            out.push_str(&format!("{}: {state}\n", c.name));
            for f in &c.files {
                let s = if f.present {
                    format!("{} bytes", f.bytes)
                } else {
                    "MISSING".into()
                };
                out.push_str(&format!("  file {}: {s}\n", f.path.display()));
            }
            if c.tensors > 0 {
                out.push_str(&format!(
                    "  {} tensors, {} parameters, {} tensor bytes\n",
                    c.tensors, c.parameters, c.tensor_bytes
                ));
            }
            if !c.unused.is_empty() {
                out.push_str(&format!("  {} stored tensors unused\n", c.unused.len()));
            }
        }
        if self.problems.is_empty() {
            out.push_str("complete: every component present with the expected keys and shapes\n");
        } else {
            out.push_str(&format!("{} problem(s):\n", self.problems.len()));
            for p in self.problems.iter().take(limit) {
                out.push_str(&format!("  {p}\n"));
            }
            if self.problems.len() > limit {
                out.push_str(&format!(
                    "  ... and {} more (see --json)\n",
                    self.problems.len() - limit
                ));
            }
        }
        out
    }

    /// One line for the `error:` message: the count and the first problem.
    pub fn summary_line(&self) -> Option<String> {
        let first = self.problems.first()?;
        Some(match self.problems.len() {
            1 => format!("checkpoint incomplete: {first}"),
            n => format!("checkpoint incomplete, {n} problems; first: {first}"),
        })
    }
}
