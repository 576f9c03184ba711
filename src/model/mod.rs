//! The LiveAvatar models, generic over the burn backend. Pure math: weights arrive through the
//! loaders in `crate::weights`; nothing here touches files.
//!
//! The diffusion transformer, per render: `prepare_text` once, `KvCache::new` once (one ring
//! per denoising step plus the shared cond cache), `sink_prefill` into `cache.cond` (again
//! whenever the reference latent changes), then for every block and step `forward_block` with
//! `cache.steps[step]`, followed by the sampler's Euler update.
//!
//! Around it:
//! - video ↔ latents: [`vae::WanVae::from_file`], [`vae::WanVae::encode`],
//!   [`vae::WanVae::decode`], and [`vae::StreamDecoder`] for decoding across calls;
//! - text: [`text::PromptTokenizer`] (cleaning, 512-token padding) then
//!   [`t5::T5Encoder::encode_trimmed`];
//! - audio: [`wav2vec::Wav2Vec2::from_folder`] then [`audio_features::encode_audio`].

pub mod audio;
pub mod audio_features;
pub mod config;
pub mod dit;
pub mod error;
pub mod inventory;
pub mod kv_cache;
pub mod layer_stream;
pub mod layers;
pub mod motion;
pub mod nn;
pub mod rope;
pub mod t5;
pub mod text;
pub mod vae;
pub mod vae_blocks;
pub mod vae_cache;
pub mod vae_decoder;
pub mod vae_encoder;
pub mod wav2vec;

pub use config::{DitConfig, Geometry, InvalidConfig};
pub use dit::{DitModel, DitTrace, Numerics, StreamInput, TextContext};
pub use kv_cache::{CondCache, KvCache, KvPlacement, RingCache};
