//! The generation procedure: portrait, voice and prompt in; frames out, block by block or clip
//! by clip, through hooks the engine turns into events and file writes. Deterministic for a
//! seed: every random input comes from [`randomness::Randomness`].
//!
//! Order of work ([`render::render`]): audio features (they fix the clip count), text context,
//! reference and motion latents, then the clip loop with its KV caches and the decoder of the
//! chosen [`request::DecodeMode`].

pub mod conditions;
pub mod demo;
pub mod error;
pub mod frames;
pub mod models;
pub mod random_models;
pub mod randomness;
pub mod releasable;
pub mod render;
pub mod request;

pub use error::PipelineError;
pub use models::{ModelOrigin, ModelSpec, Models};
pub use randomness::{Randomness, SeededRandomness};
pub use render::{Flow, FrameChunk, RenderHooks, RenderOutcome, RenderShape, Stage, render};
pub use request::{DecodeMode, Portrait, PromptInput, RenderRequest};
