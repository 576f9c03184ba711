//! The LiveAvatar S2V diffusion transformer, generic over the burn backend. Pure math: weights
//! arrive through a `layers::ParameterSource` (see `crate::weights`); nothing here touches files.
//!
//! Per render: `prepare_text` once, `KvCache::new` once (one ring per denoising step plus the
//! shared cond cache), `sink_prefill` into `cache.cond` (again whenever the reference latent
//! changes), then for every block and step `forward_block` with `cache.steps[step]`, followed
//! by the sampler's Euler update.

pub mod audio;
pub mod config;
pub mod dit;
pub mod inventory;
pub mod kv_cache;
pub mod layers;
pub mod motion;
pub mod rope;

pub use config::{DitConfig, Geometry, InvalidConfig};
pub use dit::{DitModel, DitTrace, Numerics, StreamInput, TextContext};
pub use kv_cache::{CondCache, KvCache, RingCache};
