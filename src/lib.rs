//! Avatar Studio: turns a portrait, a voice recording and a prompt into a talking-avatar video
//! with the LiveAvatar model. The binary in `main.rs` is a thin front end over this library.

pub mod cli;
pub mod engine;
#[cfg(feature = "cuda")]
pub mod gpu;
pub mod headless;
pub mod inputs;
pub mod kernels;
pub mod media;
pub mod memory;
pub mod model;
pub mod pipeline;
pub mod rng;
pub mod sampler;
pub mod settings;
#[cfg(feature = "gui")]
pub mod ui;
pub mod weights;
