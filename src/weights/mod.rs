//! Checkpoint readers for the encoder-side models (VAE, umT5, wav2vec2).
//!
//! Every reader exposes the same [`TensorSource`] view: a set of named tensors whose shape is
//! known up front and whose values are converted to f32 only when a model asks for them, so
//! a multi-gigabyte checkpoint is never held twice in memory.

pub mod error;
pub mod keymap;
pub mod loader;
pub mod pth;
pub mod report;
pub mod st_reader;

pub use error::WeightError;
pub use loader::{TensorSource, open_checkpoint};
pub use pth::PthFile;
pub use st_reader::StFile;
