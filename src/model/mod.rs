//! Models around the diffusion transformer: the Wan 2.1 causal VAE, the umT5 text encoder and
//! the wav2vec2 audio front-end, with their pre- and post-processing.

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
