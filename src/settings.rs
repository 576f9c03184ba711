//! `GenerationSettings`: every knob of a render (the LiveAvatar reference's flags, spec §6, plus
//! the studio's output choices), their serde form for presets and job files, and the validation
//! of every field with a message that names the field and says what to do.

pub mod presets;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Output frame rate of every LiveAvatar video (`cfg.sample_fps`).
pub const FPS: u32 = 25;
/// Output frames produced by one DiT block of 3 latent frames (spec §5.6).
pub const FRAMES_PER_BLOCK: u32 = 12;
/// The reference's `--infer_frames` value that its scripts use (spec §10.1.3).
pub const DEFAULT_FRAMES_PER_CLIP: u32 = 48;
/// The LiveAvatar LoRA is distilled for 4 steps and the single-GPU pipeline keeps one KV cache
/// per step, so more steps are neither useful nor supported (spec §6 `--sample_steps`).
pub const MAX_SAMPLE_STEPS: u32 = 4;
const MAX_FRAMES_PER_CLIP: u32 = 192;
const MAX_PROMPT_CHARS: usize = 8_000;
const MAX_VRAM_BUDGET_GB: f64 = 4_096.0;

/// The `--size` strings the reference accepts (`SIZE_CONFIGS`). A size only selects a maximum
/// pixel area; the aspect ratio of the output follows the portrait (spec §5.2).
pub const SIZE_CHOICES: [&str; 12] = [
    "720*1280", "1280*720", "480*832", "832*480", "704*1280", "1280*704", "1024*704", "704*1024",
    "720*400", "704*384", "688*368", "384*256",
];

/// A `W*H` size choice; only its area `W·H` matters for the render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SizeArea {
    pub width: u32,
    pub height: u32,
}

impl SizeArea {
    /// The maximum pixel area of the output frame.
    pub fn area(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Whether this is one of the reference's accepted sizes.
    pub fn is_supported(self) -> bool {
        let text = self.to_string();
        SIZE_CHOICES.contains(&text.as_str())
    }
}

impl fmt::Display for SizeArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}*{}", self.width, self.height)
    }
}

impl FromStr for SizeArea {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a size: write it as WIDTH*HEIGHT, e.g. 704*384");
        let (w, h) = text.trim().split_once(['*', 'x', 'X']).ok_or_else(bad)?;
        let width = w.trim().parse::<u32>().map_err(|_| bad())?;
        let height = h.trim().parse::<u32>().map_err(|_| bad())?;
        Ok(Self { width, height })
    }
}

/// How many clips to render: as many as the audio covers, or at most N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClipCount {
    #[default]
    Auto,
    AtMost(u32),
}

impl fmt::Display for ClipCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::AtMost(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for ClipCount {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        text.parse::<u32>()
            .map(Self::AtMost)
            .map_err(|_| format!("`{text}` is not a clip count: use a whole number or `auto`"))
    }
}

/// The noise seed: drawn at random when the render starts, or fixed for reproducible output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seed {
    #[default]
    Random,
    Fixed(u64),
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random => f.write_str("random"),
            Self::Fixed(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for Seed {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        // The reference spells "random" as a negative `--base_seed`.
        if text.eq_ignore_ascii_case("random") || text.starts_with('-') {
            return Ok(Self::Random);
        }
        text.parse::<u64>()
            .map(Self::Fixed)
            .map_err(|_| format!("`{text}` is not a seed: use a whole number or `random`"))
    }
}

/// Where the models run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The NVIDIA GPU(s) if a driver answers, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// CUDA device indices, e.g. `cuda:0` or `cuda:0,1`.
    Cuda(Vec<u32>),
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(ids) => {
                let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
                write!(f, "cuda:{}", ids.join(","))
            }
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = || format!("`{text}` is not a device: use `auto`, `cpu`, `cuda:0` or `cuda:0,1`");
        match text.to_ascii_lowercase().as_str() {
            "auto" => return Ok(Self::Auto),
            "cpu" => return Ok(Self::Cpu),
            "cuda" | "gpu" => return Ok(Self::Cuda(vec![0])),
            _ => {}
        }
        let list = text
            .strip_prefix("cuda:")
            .or_else(|| text.strip_prefix("CUDA:"))
            .ok_or_else(bad)?;
        let ids = list
            .split(',')
            .map(|id| id.trim().parse::<u32>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Cuda(ids))
    }
}

/// Where the sound starts relative to the picture in the written MP4 (spec §5.8, §10.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioSync {
    /// As the reference muxes it: the audio from t = 0, so the picture runs 3 frames (120 ms)
    /// ahead, because the first 3 generated frames are dropped.
    #[default]
    Reference,
    /// The audio shifted by the dropped frames, so output frame j meets the audio bucket that
    /// drove it.
    Aligned,
}

/// Every setting of one render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationSettings {
    /// Maximum output area as `W*H`; the aspect follows the portrait.
    #[serde(with = "as_text")]
    pub size: SizeArea,
    /// `auto` = as many clips as the audio lasts.
    #[serde(with = "as_text")]
    pub num_clips: ClipCount,
    /// Output frames per clip; a multiple of 12 (one DiT block).
    pub frames_per_clip: u32,
    /// Denoising steps per block (the LoRA is distilled for 4).
    pub sample_steps: u32,
    #[serde(with = "as_text")]
    pub seed: Seed,
    pub prompt: String,
    /// FP8 (e4m3) DiT linears on GPUs with fp8 tensor cores.
    pub fp8: bool,
    /// Decode each block as it is denoised (streaming VAE), which feeds the live preview.
    pub online_decode: bool,
    #[serde(with = "as_text")]
    pub devices: DeviceChoice,
    /// GPU memory the render may use, in GB; unset = what the GPU has free.
    pub vram_budget_gb: Option<f64>,
    /// Forces a memory placement; unset = the planner picks the fastest that fits.
    pub placement: Option<crate::memory::Placement>,
    /// Run the four denoising steps of four consecutive blocks as one DiT call (TPP's
    /// schedule on one GPU): the same frames, every weight read once per four block-steps,
    /// and the first frames three calls later.
    pub step_batched: bool,
    /// H.264 constant rate factor of the MP4 (0 = lossless, 51 = worst; 18 looks lossless).
    pub video_crf: u8,
    pub audio_sync: AudioSync,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            size: SizeArea {
                width: 704,
                height: 384,
            },
            num_clips: ClipCount::Auto,
            frames_per_clip: DEFAULT_FRAMES_PER_CLIP,
            sample_steps: MAX_SAMPLE_STEPS,
            seed: Seed::Random,
            prompt: String::new(),
            fp8: false,
            online_decode: true,
            devices: DeviceChoice::Auto,
            vram_budget_gb: None,
            placement: None,
            step_batched: false,
            video_crf: 18,
            audio_sync: AudioSync::Reference,
        }
    }
}

/// One invalid field and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "setting `{}`: {}", self.field, self.message)
    }
}

/// Every invalid field of a settings value, so a form can mark them all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SettingsError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.errors.iter().map(FieldError::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

impl SettingsError {
    /// The message for one field, if that field is invalid.
    pub fn for_field(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

impl GenerationSettings {
    /// Checks every field; all problems are reported together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let mut errors = Vec::new();
        let mut fail = |field: &'static str, message: String| {
            errors.push(FieldError { field, message });
        };
        if !self.size.is_supported() {
            fail(
                "size",
                format!(
                    "{} is not a supported size; choose one of {}",
                    self.size,
                    SIZE_CHOICES.join(", ")
                ),
            );
        }
        if self.num_clips == ClipCount::AtMost(0) {
            fail(
                "num_clips",
                "must be at least 1, or `auto` to follow the audio".into(),
            );
        }
        if self.frames_per_clip == 0
            || !self.frames_per_clip.is_multiple_of(FRAMES_PER_BLOCK)
            || self.frames_per_clip > MAX_FRAMES_PER_CLIP
        {
            fail(
                "frames_per_clip",
                format!(
                    "{} is not allowed; use a multiple of {FRAMES_PER_BLOCK} from \
                     {FRAMES_PER_BLOCK} to {MAX_FRAMES_PER_CLIP} (48 is what the model was tuned for)",
                    self.frames_per_clip
                ),
            );
        }
        if !(1..=MAX_SAMPLE_STEPS).contains(&self.sample_steps) {
            fail(
                "sample_steps",
                format!(
                    "{} is not allowed; use 1 to {MAX_SAMPLE_STEPS} (the LiveAvatar LoRA is distilled for 4)",
                    self.sample_steps
                ),
            );
        }
        let prompt_chars = self.prompt.chars().count();
        if prompt_chars > MAX_PROMPT_CHARS {
            fail(
                "prompt",
                format!("is {prompt_chars} characters long; keep it under {MAX_PROMPT_CHARS}"),
            );
        }
        if self.prompt.contains('\0') {
            fail("prompt", "contains a NUL character; remove it".into());
        }
        if let DeviceChoice::Cuda(ids) = &self.devices {
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if ids.is_empty() {
                fail("devices", "names no CUDA device; use e.g. `cuda:0`".into());
            } else if sorted.len() != ids.len() {
                fail("devices", format!("`{}` names a GPU twice", self.devices));
            }
        }
        if let Some(gb) = self.vram_budget_gb
            && !(gb.is_finite() && gb > 0.0 && gb <= MAX_VRAM_BUDGET_GB)
        {
            fail(
                "vram_budget_gb",
                format!("{gb} GB is not a budget; give a positive number of GB, e.g. 24"),
            );
        }
        if self.video_crf > 51 {
            fail(
                "video_crf",
                format!(
                    "{} is out of range; H.264 quality goes from 0 (lossless) to 51",
                    self.video_crf
                ),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SettingsError { errors })
        }
    }

    /// Latent frames one clip denoises (4 output frames per latent frame).
    pub fn latent_frames_per_clip(&self) -> u32 {
        self.frames_per_clip / 4
    }

    /// Reads settings from TOML text (a preset or job file); unknown keys are errors so that a
    /// typo does not silently fall back to a default.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }
}

/// Serde through `Display`/`FromStr`, so presets read `size = "704*384"`, `num_clips = "auto"`
/// and `seed = 42` the way users type them on the command line.
mod as_text {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Number(i64),
    }

    pub fn serialize<T: fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        let text = value.to_string();
        match text.parse::<i64>() {
            Ok(n) => s.serialize_i64(n),
            Err(_) => s.serialize_str(&text),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err = String>,
        D: Deserializer<'de>,
    {
        let text = match Repr::deserialize(d)? {
            Repr::Text(t) => t,
            Repr::Number(n) => n.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}
