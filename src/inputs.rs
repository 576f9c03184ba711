//! The inputs of one render checked together before any model loads: the portrait prepared at
//! the frame size the settings give, the voice on its timeline, and what the render will make.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::media::MediaError;
use crate::media::portrait::{PreparedPortrait, load_portrait};
use crate::media::timeline::DROPPED_LEAD_FRAMES;
use crate::media::voice::{Voice, load_voice};
use crate::settings::{FPS, GenerationSettings, SettingsError};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// A portrait and a voice, ready for the pipeline.
#[derive(Debug, Clone)]
pub struct RenderInputs {
    pub image_path: PathBuf,
    pub audio_path: PathBuf,
    pub portrait: PreparedPortrait,
    pub voice: Voice,
    pub settings: GenerationSettings,
}

/// What a render of these inputs will produce, for the CLI and the studio to show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSummary {
    pub image: PathBuf,
    pub source_width: u32,
    pub source_height: u32,
    pub width: u32,
    pub height: u32,
    pub audio: PathBuf,
    pub audio_sample_rate: u32,
    pub audio_channels: u16,
    pub audio_seconds: f64,
    pub clips_covered: u32,
    pub clips: u32,
    /// Frames the model makes (`frames_per_clip · clips − 3`).
    pub frames_generated: u64,
    /// Frames the video file keeps: it ends with the voice, as the reference's mux does.
    pub frames: u64,
    pub video_seconds: f64,
}

impl RenderInputs {
    /// Validates the settings, then loads and checks both files.
    pub fn load(
        image: &Path,
        audio: &Path,
        settings: GenerationSettings,
    ) -> Result<Self, InputError> {
        settings.validate()?;
        let portrait = load_portrait(image, settings.size.area())?;
        let voice = load_voice(audio, settings.frames_per_clip)?;
        Ok(Self {
            image_path: image.to_path_buf(),
            audio_path: audio.to_path_buf(),
            portrait,
            voice,
            settings,
        })
    }

    /// Clips this render makes (the requested count capped by the audio).
    pub fn clips(&self) -> u32 {
        self.voice.timeline.clips_to_render(self.settings.num_clips)
    }

    pub fn summary(&self) -> InputSummary {
        let clips = self.clips();
        let frames = self
            .voice
            .timeline
            .frames_in_file(clips, self.settings.audio_sync);
        InputSummary {
            image: self.image_path.clone(),
            source_width: self.portrait.source_width,
            source_height: self.portrait.source_height,
            width: self.portrait.width(),
            height: self.portrait.height(),
            audio: self.audio_path.clone(),
            audio_sample_rate: self.voice.original.sample_rate,
            audio_channels: self.voice.original.source_channels,
            audio_seconds: self.voice.original.duration_seconds(),
            clips_covered: self.voice.timeline.clips_covered,
            clips,
            frames_generated: self.voice.timeline.output_frames(clips),
            frames,
            video_seconds: frames as f64 / f64::from(FPS),
        }
    }
}

impl std::fmt::Display for InputSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "portrait  {} ({}×{}) → frames of {}×{}",
            self.image.display(),
            self.source_width,
            self.source_height,
            self.width,
            self.height
        )?;
        writeln!(
            f,
            "voice     {} ({:.2} s, {} Hz, {} channel{}) covers {} clip{}",
            self.audio.display(),
            self.audio_seconds,
            self.audio_sample_rate,
            self.audio_channels,
            if self.audio_channels == 1 { "" } else { "s" },
            self.clips_covered,
            if self.clips_covered == 1 { "" } else { "s" }
        )?;
        write!(
            f,
            "render    {} clip{} → {} frames generated (the first {DROPPED_LEAD_FRAMES} dropped); \
             the video keeps {} frames at {FPS} fps ({:.2} s, ending with the voice)",
            self.clips,
            if self.clips == 1 { "" } else { "s" },
            self.frames_generated,
            self.frames,
            self.video_seconds
        )
    }
}
