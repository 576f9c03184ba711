//! The sound track written beside the frames: the voice at the output rate, shifted for the
//! chosen sync, and cut or padded to exactly the video's length as frames arrive.

use crate::settings::{AudioSync, FPS};

use super::audio::DecodedAudio;
use super::error::MediaError;
use super::resample::resample_mono;
use super::timeline::DROPPED_LEAD_FRAMES;

/// Output audio rate: AAC frames of 1024 samples last 21 ms here, finer than one video frame.
pub const OUTPUT_SAMPLE_RATE: u32 = 48_000;

/// Mono samples at [`OUTPUT_SAMPLE_RATE`], starting at video time 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Soundtrack {
    samples: Vec<f32>,
}

impl Soundtrack {
    /// Builds the track for a voice. With [`AudioSync::Aligned`] the audio that drove the
    /// dropped lead frames is skipped, so frame j plays with the sound that made it.
    pub fn from_voice(voice: &DecodedAudio, sync: AudioSync) -> Result<Self, MediaError> {
        let mut samples = resample_mono(&voice.mono, voice.sample_rate, OUTPUT_SAMPLE_RATE)?;
        if sync == AudioSync::Aligned {
            let skip = samples_for_frames(u64::from(DROPPED_LEAD_FRAMES)) as usize;
            samples.drain(..skip.min(samples.len()));
        }
        Ok(Self { samples })
    }

    pub fn from_samples(samples: Vec<f32>) -> Self {
        Self { samples }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Samples `[start, end)` of the track, silence past its end.
    pub fn span(&self, start: u64, end: u64) -> Vec<f32> {
        (start..end)
            .map(|i| self.samples.get(i as usize).copied().unwrap_or(0.0))
            .collect()
    }
}

/// Output samples up to the end of video frame `frames` (exclusive).
pub fn samples_for_frames(frames: u64) -> u64 {
    frames * u64::from(OUTPUT_SAMPLE_RATE) / u64::from(FPS)
}
