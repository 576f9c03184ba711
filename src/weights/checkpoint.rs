//! Checkpoint folder layouts: one `diffusion_pytorch_model.safetensors`, or shards listed by
//! `diffusion_pytorch_model.safetensors.index.json`, plus `config.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, backend::Backend};

use super::{SafetensorsFile, TensorInfo, WeightsError};
use crate::model::config::DitConfig;

const SINGLE_FILE: &str = "diffusion_pytorch_model.safetensors";
const INDEX_FILE: &str = "diffusion_pytorch_model.safetensors.index.json";
const CONFIG_FILE: &str = "config.json";

/// Several safetensors files seen as one key space (the shards of one checkpoint).
#[derive(Debug)]
pub struct WeightSet {
    files: Vec<SafetensorsFile>,
    owner: BTreeMap<String, usize>,
}

impl WeightSet {
    /// Opens every file; a key present in two files is an error.
    pub fn open(paths: &[PathBuf]) -> Result<Self, WeightsError> {
        let mut files = Vec::with_capacity(paths.len());
        let mut owner = BTreeMap::new();
        for path in paths {
            let file = SafetensorsFile::open(path)?;
            let index = files.len();
            for key in file.tensors().keys() {
                if let Some(previous) = owner.insert(key.clone(), index) {
                    let first: &SafetensorsFile = &files[previous];
                    return Err(WeightsError::Layout {
                        path: path.clone(),
                        reason: format!(
                            "tensor `{key}` is also stored in {}",
                            first.path().display()
                        ),
                    });
                }
            }
            files.push(file);
        }
        Ok(Self { files, owner })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.owner.keys().map(String::as_str)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.owner.contains_key(key)
    }

    /// A description of where the set lives, for error messages.
    pub fn location(&self) -> PathBuf {
        match self.files.as_slice() {
            [one] => one.path().to_path_buf(),
            [first, ..] => first.path().parent().unwrap_or(first.path()).to_path_buf(),
            [] => PathBuf::from("<no files>"),
        }
    }

    /// The file holding `key`.
    pub fn file_of(&self, key: &str) -> Result<&SafetensorsFile, WeightsError> {
        self.owner
            .get(key)
            .map(|&i| &self.files[i])
            .ok_or_else(|| WeightsError::MissingKey {
                path: self.location(),
                key: key.to_string(),
            })
    }

    pub fn info(&self, key: &str) -> Result<&TensorInfo, WeightsError> {
        self.file_of(key)?.info(key)
    }

    /// Loads `key` as an f32 tensor, checking that its shape is `expected`.
    pub fn tensor<B: Backend, const D: usize>(
        &self,
        key: &str,
        expected: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>, WeightsError> {
        let file = self.file_of(key)?;
        let info = file.info(key)?;
        if info.shape != expected {
            return Err(WeightsError::Shape {
                path: file.path().to_path_buf(),
                key: key.to_string(),
                found: info.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        file.tensor(key, device)
    }
}

/// A DiT checkpoint folder: its config and its weights.
#[derive(Debug)]
pub struct DitCheckpoint {
    pub folder: PathBuf,
    pub config: DitConfig,
    pub weights: WeightSet,
}

impl DitCheckpoint {
    /// Opens a folder in either the sharded or the single-file layout.
    pub fn open(folder: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let folder = folder.as_ref().to_path_buf();
        let config = Self::read_config(&folder)?;
        let files = Self::weight_files(&folder)?;
        let weights = WeightSet::open(&files)?;
        Ok(Self {
            folder,
            config,
            weights,
        })
    }

    /// The safetensors files of a folder, from its index when there is one.
    pub fn weight_files(folder: &Path) -> Result<Vec<PathBuf>, WeightsError> {
        let index_path = folder.join(INDEX_FILE);
        if index_path.is_file() {
            let shards: BTreeSet<String> = read_index(&index_path)?.into_values().collect();
            let files: Vec<PathBuf> = shards.iter().map(|s| folder.join(s)).collect();
            for file in &files {
                if !file.is_file() {
                    return Err(WeightsError::Layout {
                        path: index_path.clone(),
                        reason: format!("listed shard {} is missing", file.display()),
                    });
                }
            }
            return Ok(files);
        }
        let single = folder.join(SINGLE_FILE);
        if single.is_file() {
            return Ok(vec![single]);
        }
        Err(WeightsError::Layout {
            path: folder.to_path_buf(),
            reason: format!("neither {INDEX_FILE} nor {SINGLE_FILE} found"),
        })
    }

    pub fn config_path(folder: &Path) -> PathBuf {
        folder.join(CONFIG_FILE)
    }

    /// Reads and validates `<folder>/config.json`; keys it lacks take the 14B class defaults.
    pub fn read_config(folder: &Path) -> Result<DitConfig, WeightsError> {
        let path = Self::config_path(folder);
        let text = std::fs::read_to_string(&path).map_err(|source| WeightsError::Io {
            path: path.clone(),
            source,
        })?;
        let config = DitConfig::from_json_str(&text).map_err(|e| WeightsError::Json {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|reason| WeightsError::Layout { path, reason })?;
        Ok(config)
    }
}

impl DitCheckpoint {
    /// Builds the DiT from this checkpoint, merging `lora` if given.
    pub fn load_model<B: Backend>(
        &self,
        lora: Option<&super::LoraAdapter>,
        device: &B::Device,
    ) -> Result<crate::model::DitModel<B>, WeightsError> {
        super::load_dit(&self.config, &self.weights, lora, device)
    }
}

/// The index's `weight_map` (key → shard file name).
pub(crate) fn read_index(path: &Path) -> Result<BTreeMap<String, String>, WeightsError> {
    let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| WeightsError::Json {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| WeightsError::Layout {
            path: path.to_path_buf(),
            reason: "no `weight_map` object".into(),
        })?;
    let mut out = BTreeMap::new();
    for (key, shard) in map {
        let name = shard
            .as_str()
            .filter(|n| !n.contains('/') && !n.contains('\\') && !n.contains(".."))
            .ok_or_else(|| WeightsError::Layout {
                path: path.to_path_buf(),
                reason: format!("`weight_map.{key}` is not a plain file name"),
            })?;
        out.insert(key.clone(), name.to_string());
    }
    Ok(out)
}
