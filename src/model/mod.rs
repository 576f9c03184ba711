//! Models around the diffusion transformer: the Wan 2.1 causal VAE, the umT5 text encoder and
//! the wav2vec2 audio front-end, with their pre- and post-processing.
//!
//! Entry points:
//! - video ↔ latents: [`vae::WanVae::from_file`], [`vae::WanVae::encode`],
//!   [`vae::WanVae::decode`], and [`vae::StreamDecoder`] for decoding across calls;
//! - text: [`text::PromptTokenizer`] (cleaning, 512-token padding) then
//!   [`t5::T5Encoder::encode_trimmed`];
//! - audio: [`wav2vec::Wav2Vec2::from_folder`] then [`audio_features::encode_audio`].

pub mod audio_features;
pub mod error;
pub mod nn;
pub mod t5;
pub mod text;
pub mod vae;
pub mod vae_blocks;
pub mod vae_cache;
pub mod vae_decoder;
pub mod vae_encoder;
pub mod wav2vec;
