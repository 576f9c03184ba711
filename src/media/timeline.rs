//! The 25 fps timeline of a voice: how many wav2vec2 frames, 30 fps feature frames and clips
//! the reference derives from a recording's length (spec §3.4), so the studio can show the clip
//! count before any model loads and the pipeline can size its loops.

use crate::settings::{AudioSync, ClipCount, FPS, FRAMES_PER_BLOCK};

/// Sample rate the audio encoder takes.
pub const MODEL_SAMPLE_RATE: u32 = 16_000;
/// The reference drops the first frames of the first clip (spec §5.6, §10.1.4).
pub const DROPPED_LEAD_FRAMES: u32 = 3;

/// The wav2vec2 convolutional feature encoder's (kernel, stride) pairs; the frame count of its
/// output sets the feature timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvStack {
    pub layers: Vec<(u32, u32)>,
}

impl ConvStack {
    /// wav2vec2 XLSR-53 large: kernels 10,3,3,3,3,2,2 and strides 5,2,2,2,2,2,2 (320 samples
    /// per frame, 50 frames per second at 16 kHz).
    pub fn xlsr() -> Self {
        Self {
            layers: vec![(10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2)],
        }
    }

    /// Output frames for `samples` input samples (unpadded valid convolutions).
    pub fn output_frames(&self, samples: u64) -> u64 {
        self.layers.iter().fold(samples, |len, &(kernel, stride)| {
            let (k, s) = (u64::from(kernel), u64::from(stride));
            if len < k { 0 } else { (len - k) / s + 1 }
        })
    }
}

/// Where a recording lands on the video timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioTimeline {
    pub samples_16k: u64,
    /// wav2vec2 frames at 50 per second (`T50`).
    pub encoder_frames: u64,
    /// Features after the 50 → 30 fps resampling (`T30`).
    pub feature_frames_30fps: u64,
    pub frames_per_clip: u32,
    /// Clips the features are bucketed into (`nr`); the last is padded with zero features.
    pub clips_covered: u32,
}

impl AudioTimeline {
    pub fn new(samples_16k: u64, frames_per_clip: u32, conv: &ConvStack) -> Self {
        let encoder_frames = conv.output_frames(samples_16k);
        // `int(T50 / 50 * 30)` in the reference.
        let feature_frames_30fps = (encoder_frames as f64 / 50.0 * 30.0) as u64;
        // `nr = int(T30 / (frames · 30/25)) + 1`.
        let per_clip_30fps = f64::from(frames_per_clip) * 30.0 / f64::from(FPS);
        let clips_covered = (feature_frames_30fps as f64 / per_clip_30fps) as u32 + 1;
        Self {
            samples_16k,
            encoder_frames,
            feature_frames_30fps,
            frames_per_clip,
            clips_covered,
        }
    }

    pub fn duration_seconds(&self) -> f64 {
        self.samples_16k as f64 / f64::from(MODEL_SAMPLE_RATE)
    }

    /// Clips a render makes: the requested count, capped by what the audio covers.
    pub fn clips_to_render(&self, requested: ClipCount) -> u32 {
        match requested {
            ClipCount::Auto => self.clips_covered,
            ClipCount::AtMost(n) => n.min(self.clips_covered),
        }
    }

    /// Frames of the finished video for `clips` clips: `frames·n − 3`.
    pub fn output_frames(&self, clips: u32) -> u64 {
        (u64::from(self.frames_per_clip) * u64::from(clips))
            .saturating_sub(u64::from(DROPPED_LEAD_FRAMES))
    }

    /// Frames the video file keeps: the reference muxes with `-shortest`, so the picture ends
    /// with the voice when the last (zero-padded) clip runs past it (spec §10.1.5). With
    /// [`AudioSync::Aligned`] the sound starts 3 frames into the recording, so it ends sooner.
    pub fn frames_in_file(&self, clips: u32, sync: AudioSync) -> u64 {
        let lead = match sync {
            AudioSync::Reference => 0,
            AudioSync::Aligned => u64::from(DROPPED_LEAD_FRAMES),
        };
        // Frames that start before the sound ends: ceil(samples · fps / rate).
        let voice_frames =
            (self.samples_16k * u64::from(FPS)).div_ceil(u64::from(MODEL_SAMPLE_RATE));
        self.output_frames(clips)
            .min(voice_frames.saturating_sub(lead))
    }
}

/// The shortest recording that drives at least one block of video.
pub fn min_voice_seconds() -> f64 {
    f64::from(FRAMES_PER_BLOCK) / f64::from(FPS)
}
