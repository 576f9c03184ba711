//! Loading DiT weights from safetensors checkpoints: file access, folder layouts, the key map
//! onto the model's modules and the LoRA merge applied while loading.

pub mod checkpoint;
pub mod dit_loader;
pub mod error;
pub mod fp8;
pub mod inspect;
pub mod lora;
pub mod safetensors;

pub use checkpoint::{DitCheckpoint, WeightSet};
pub use dit_loader::{CheckpointSource, load_dit};
pub use error::WeightsError;
pub use lora::LoraAdapter;
pub use safetensors::{SafetensorsFile, StoredDtype, TensorInfo};
