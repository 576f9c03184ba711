//! The LiveAvatar S2V diffusion transformer, generic over the burn backend. Pure math: weights
//! arrive through a `layers::ParameterSource` (see `crate::weights`); nothing here touches files.

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
