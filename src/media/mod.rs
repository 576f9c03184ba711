//! Media in and out: portraits and voices decoded and prepared exactly as the reference
//! prepares them, and finished frames written as an MP4 (H.264 + AAC) or a PNG sequence + WAV.

pub mod audio;
pub mod error;
pub mod export;
pub mod frame;
pub mod geometry;
pub mod image;
pub mod output_path;
pub mod portrait;
pub mod resample;
pub mod soundtrack;
pub mod timeline;
#[cfg(feature = "video")]
pub mod video;
pub mod voice;

pub use error::MediaError;
