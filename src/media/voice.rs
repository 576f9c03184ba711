//! A voice recording made ready for a render: decoded, checked to be long enough, resampled to
//! the model's 16 kHz, and placed on the video timeline.

use std::path::Path;

use super::audio::{DecodedAudio, load_audio};
use super::error::MediaError;
use super::resample::resample_mono;
use super::timeline::{AudioTimeline, ConvStack, MODEL_SAMPLE_RATE, min_voice_seconds};

#[derive(Debug, Clone)]
pub struct Voice {
    /// The recording at its own rate, for the MP4's sound track and the studio's waveform.
    pub original: DecodedAudio,
    /// Mono 16 kHz samples for wav2vec2.
    pub samples_16k: Vec<f32>,
    pub timeline: AudioTimeline,
}

/// Loads a voice file and derives its timeline for `frames_per_clip`.
pub fn load_voice(path: &Path, frames_per_clip: u32) -> Result<Voice, MediaError> {
    let original = load_audio(path)?;
    prepare_voice(path, original, frames_per_clip)
}

/// Validates and resamples decoded audio; `path` names it in errors.
pub fn prepare_voice(
    path: &Path,
    original: DecodedAudio,
    frames_per_clip: u32,
) -> Result<Voice, MediaError> {
    let seconds = original.duration_seconds();
    if seconds < min_voice_seconds() {
        return Err(MediaError::AudioTooShort {
            path: path.to_path_buf(),
            seconds,
            min_seconds: min_voice_seconds(),
        });
    }
    let samples_16k = resample_mono(&original.mono, original.sample_rate, MODEL_SAMPLE_RATE)?;
    let timeline = AudioTimeline::new(
        samples_16k.len() as u64,
        frames_per_clip,
        &ConvStack::xlsr(),
    );
    Ok(Voice {
        original,
        samples_16k,
        timeline,
    })
}
