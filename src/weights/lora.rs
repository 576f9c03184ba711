//! LoRA adapters (PEFT layout) merged into base weights at load time: `W + (alpha/r)·B·A`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{FloatDType, Tensor, backend::Backend};

use super::{SafetensorsFile, WeightsError};

/// Prefixes that the PEFT wrappers or other exporters put in front of module paths.
const KEY_PREFIXES: [&str; 2] = ["base_model.model.", "diffusion_model."];
/// Suffixes of the A / B matrices: PEFT with adapter name "default", or without.
const A_SUFFIXES: [&str; 2] = [".lora_A.default.weight", ".lora_A.weight"];
const B_SUFFIXES: [&str; 2] = [".lora_B.default.weight", ".lora_B.weight"];

/// The stored keys of one adapted module.
#[derive(Debug, Clone)]
struct LoraPair {
    a_key: String,
    b_key: String,
}

/// A LoRA file, indexed by the module path it adapts (e.g. `blocks.3.self_attn.q`).
#[derive(Debug)]
pub struct LoraAdapter {
    file: SafetensorsFile,
    pairs: BTreeMap<String, LoraPair>,
    rank: usize,
    alpha: f32,
}

/// Which matrix of a pair a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoraMatrix {
    A,
    B,
}

/// A stored key split into the module it adapts and the spelling around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraKey {
    pub module: String,
    pub matrix: LoraMatrix,
    /// The key with the module path replaced by `<module>` (e.g.
    /// `base_model.model.<module>.lora_A.default.weight`), so reports can say which of the
    /// spec §3.8 spellings a file uses.
    pub spelling: String,
}

/// The key spellings this reader accepts, for error messages.
pub const ACCEPTED_SPELLINGS: &str = "`<module>.lora_A.weight` / `<module>.lora_A.default.weight` \
     (and lora_B), optionally prefixed by `base_model.model.` or `diffusion_model.`";

/// Splits `key` if it uses one of the accepted LoRA spellings; `None` for anything else.
pub fn parse_lora_key(key: &str) -> Option<LoraKey> {
    let prefix = KEY_PREFIXES
        .iter()
        .find(|p| key.starts_with(*p))
        .copied()
        .unwrap_or("");
    let rest = &key[prefix.len()..];
    let find = |suffixes: &[&'static str; 2]| {
        suffixes
            .iter()
            .find_map(|s| rest.strip_suffix(s).map(|m| (m, *s)))
    };
    let (module, suffix, matrix) = if let Some((m, s)) = find(&A_SUFFIXES) {
        (m, s, LoraMatrix::A)
    } else {
        let (m, s) = find(&B_SUFFIXES)?;
        (m, s, LoraMatrix::B)
    };
    // An empty module path (a key that is only a suffix) adapts nothing.
    if module.is_empty() {
        return None;
    }
    Some(LoraKey {
        module: module.to_string(),
        matrix,
        spelling: format!("{prefix}<module>{suffix}"),
    })
}

impl LoraAdapter {
    /// Opens a LoRA file. `rank` / `alpha` fall back to the file's metadata (`lora_rank`,
    /// `lora_alpha`) and the rank finally to the A matrices' first dimension.
    pub fn open(
        path: impl AsRef<Path>,
        rank: Option<usize>,
        alpha: Option<f32>,
    ) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let file = SafetensorsFile::open(path)?;
        let lora_error = |reason: String| WeightsError::Lora {
            path: path.to_path_buf(),
            reason,
        };
        let mut a_keys = BTreeMap::new();
        let mut b_keys = BTreeMap::new();
        for key in file.tensors().keys() {
            match parse_lora_key(key) {
                Some(LoraKey {
                    module,
                    matrix: LoraMatrix::A,
                    ..
                }) => {
                    a_keys.insert(module, key.clone());
                }
                Some(LoraKey {
                    module,
                    matrix: LoraMatrix::B,
                    ..
                }) => {
                    b_keys.insert(module, key.clone());
                }
                None => {}
            }
        }
        let mut pairs = BTreeMap::new();
        for (module, a_key) in a_keys {
            let b_key = b_keys
                .remove(&module)
                .ok_or_else(|| lora_error(format!("`{a_key}` has no matching lora_B")))?;
            pairs.insert(module, LoraPair { a_key, b_key });
        }
        if let Some((module, _)) = b_keys.into_iter().next() {
            return Err(lora_error(format!(
                "module `{module}` has lora_B but no lora_A"
            )));
        }
        let metadata_number = |name: &str| file.metadata().get(name).map(|s| s.trim().to_string());
        let file_rank = match metadata_number("lora_rank") {
            Some(text) => Some(text.parse::<usize>().map_err(|_| {
                lora_error(format!("metadata lora_rank `{text}` is not an integer"))
            })?),
            None => None,
        };
        let stored_rank = match pairs.values().next() {
            Some(pair) => file.info(&pair.a_key)?.shape.first().copied(),
            None => None,
        };
        let rank = rank
            .or(file_rank)
            .or(stored_rank)
            .ok_or_else(|| lora_error("no LoRA pairs and no rank given".into()))?;
        let file_alpha = match metadata_number("lora_alpha") {
            Some(text) => Some(text.parse::<f32>().map_err(|_| {
                lora_error(format!("metadata lora_alpha `{text}` is not a number"))
            })?),
            None => None,
        };
        let alpha = alpha
            .or(file_alpha)
            .ok_or_else(|| lora_error("alpha is neither in the file metadata nor given".into()))?;
        if rank == 0 {
            return Err(lora_error("rank 0".into()));
        }
        for (module, pair) in &pairs {
            let a = file.info(&pair.a_key)?;
            let b = file.info(&pair.b_key)?;
            if a.shape.len() != 2 || b.shape.len() != 2 || a.shape[0] != rank || b.shape[1] != rank
            {
                return Err(lora_error(format!(
                    "`{module}`: A {:?} / B {:?} do not have rank {rank}",
                    a.shape, b.shape
                )));
            }
        }
        Ok(Self {
            file,
            pairs,
            rank,
            alpha,
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn alpha(&self) -> f32 {
        self.alpha
    }

    /// `alpha / rank`, the factor applied to `B·A`.
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }

    /// Every key stored in the file, LoRA or not.
    pub fn stored_keys(&self) -> impl Iterator<Item = &str> {
        self.file.tensors().keys().map(String::as_str)
    }

    /// Module paths that the file adapts.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.pairs.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `weight + scale·B·A` for `module` (weight in PyTorch `[out, in]` order), or `None` when
    /// the file does not adapt that module.
    pub fn merge<B: Backend>(
        &self,
        module: &str,
        weight: Tensor<B, 2>,
        device: &B::Device,
    ) -> Result<Option<Tensor<B, 2>>, WeightsError> {
        let Some(pair) = self.pairs.get(module) else {
            return Ok(None);
        };
        let [out_features, in_features] = weight.dims();
        let a: Tensor<B, 2> = self.file.tensor(&pair.a_key, device)?;
        let b: Tensor<B, 2> = self.file.tensor(&pair.b_key, device)?;
        if a.dims() != [self.rank, in_features] || b.dims() != [out_features, self.rank] {
            return Err(WeightsError::Shape {
                path: self.path_buf(),
                key: pair.a_key.clone(),
                found: [a.dims().to_vec(), b.dims().to_vec()].concat(),
                expected: vec![self.rank, in_features, out_features, self.rank],
            });
        }
        // PEFT keeps adapters in f32 and rounds the merged sum once to the base dtype.
        let dtype = weight.dtype();
        let f32 = FloatDType::F32;
        let delta = b.cast(f32).matmul(a.cast(f32)).mul_scalar(self.scale());
        Ok(Some((weight.cast(f32) + delta).cast(dtype)))
    }

    fn path_buf(&self) -> PathBuf {
        self.file.path().to_path_buf()
    }
}
