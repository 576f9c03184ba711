//! Reading checkpoints into modules: safetensors (memory-mapped) and pickle-free `.pth` files,
//! the DiT's folder layouts, key maps onto the models, the LoRA merge applied while loading,
//! fp8 conversion, and header-only inspection reports.
//!
//! Two safetensors readers exist for now: `safetensors` (the DiT's, with sharded layouts) and
//! `st_reader` (behind the [`TensorSource`] view the encoders load through). They should become
//! one; until then both report through the same [`WeightsError`].

pub mod checkpoint;
pub mod dit_loader;
pub mod error;
pub mod folder_report;
pub mod fp8;
pub mod inspect;
pub mod keymap;
pub mod loader;
pub mod lora;
pub mod pth;
pub mod random;
pub mod report;
pub mod safetensors;
pub mod st_reader;

pub use checkpoint::{DitCheckpoint, WeightSet};
pub use dit_loader::{CheckpointSource, Fp8Stats, WeightFormat, load_dit, load_dit_as};
pub use error::WeightsError;
pub use loader::{TensorSource, open_checkpoint};
pub use lora::LoraAdapter;
pub use pth::PthFile;
pub use safetensors::{SafetensorsFile, StoredDtype, TensorInfo};
pub use st_reader::StFile;
