//! `DitConfig`: the hyper-parameters of `CausalWanModel_S2V`, read from a checkpoint folder's
//! `config.json`. Fields that diffusers drops from that file (`text_dim`, `patch_size`, ...)
//! fall back to the class defaults, i.e. the Wan2.2-S2V-14B values.

use serde::{Deserialize, Serialize};

/// Model hyper-parameters. Defaults are the released 14B values (spec §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DitConfig {
    pub dim: usize,
    pub ffn_dim: usize,
    pub freq_dim: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub patch_size: [usize; 3],
    pub in_dim: usize,
    pub out_dim: usize,
    pub text_dim: usize,
    pub text_len: usize,
    pub eps: f64,
    pub audio_dim: usize,
    pub num_audio_token: usize,
    pub audio_inject_layers: Vec<usize>,
    pub cond_dim: usize,
    pub zero_timestep: bool,
    pub enable_adain: bool,
    pub adain_mode: String,
    pub enable_framepack: bool,
    pub framepack_drop_mode: String,
    /// wav2vec2 hidden states weighted by the audio encoder (layers + embedding output).
    pub audio_encoder_layers: usize,
    /// FramePack buckets, nearest first: latents packed 1×, 2× and 4×.
    pub framepack_buckets: [usize; 3],
    /// Pixel motion frames; also the audio prefix length per streaming call.
    pub motion_frames: usize,
    /// Latent frames per streaming call.
    pub frames_per_block: usize,
    /// Temporal RoPE position of the reference latent before any rolling.
    pub ref_rope_position: i64,
    /// Inclusive range the reference draws the per-call ref RoPE offset from
    /// (`random.randint(4, 30)`); the pipeline picks the value, the model takes it as input.
    pub ref_offset_range: [i64; 2],
    /// AdaLN epsilon inside the audio injector (diffusers default).
    pub adain_eps: f64,
    /// Epsilon of the audio encoder's LayerNorms.
    pub audio_encoder_eps: f64,
}

impl Default for DitConfig {
    fn default() -> Self {
        Self {
            dim: 5120,
            ffn_dim: 13824,
            freq_dim: 256,
            num_heads: 40,
            num_layers: 40,
            patch_size: [1, 2, 2],
            in_dim: 16,
            out_dim: 16,
            text_dim: 4096,
            text_len: 512,
            eps: 1e-6,
            audio_dim: 1024,
            num_audio_token: 4,
            audio_inject_layers: vec![0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39],
            cond_dim: 16,
            zero_timestep: true,
            enable_adain: true,
            adain_mode: "attn_norm".into(),
            enable_framepack: true,
            framepack_drop_mode: "padd".into(),
            audio_encoder_layers: 25,
            framepack_buckets: [1, 2, 16],
            motion_frames: 73,
            frames_per_block: 3,
            ref_rope_position: 30,
            ref_offset_range: [4, 30],
            adain_eps: 1e-5,
            audio_encoder_eps: 1e-6,
        }
    }
}

/// A config that violates a shape rule the model relies on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DiT config: {0}")]
pub struct InvalidConfig(pub String);

/// Token counts of one video size (latent grid `h × w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub latent_height: usize,
    pub latent_width: usize,
    pub patch_height: usize,
    pub patch_width: usize,
    /// Tokens per latent frame.
    pub frame_tokens: usize,
    pub motion_2x_tokens: usize,
    pub motion_4x_tokens: usize,
    /// Ref + FramePack tokens held by the cond (sink) cache.
    pub cond_tokens: usize,
}

impl DitConfig {
    /// Parses a `config.json` text; absent keys take the 14B defaults.
    pub fn from_json_str(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Checks the shape rules the model relies on.
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("dim", self.dim),
            ("ffn_dim", self.ffn_dim),
            ("freq_dim", self.freq_dim),
            ("in_dim", self.in_dim),
            ("out_dim", self.out_dim),
            ("text_dim", self.text_dim),
            ("text_len", self.text_len),
            ("audio_dim", self.audio_dim),
            ("num_audio_token", self.num_audio_token),
            ("cond_dim", self.cond_dim),
            ("audio_encoder_layers", self.audio_encoder_layers),
            ("patch height", self.patch_size[1]),
            ("patch width", self.patch_size[2]),
            ("first FramePack bucket", self.framepack_buckets[0]),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be positive"));
        }
        let mut layers = self.audio_inject_layers.clone();
        layers.sort_unstable();
        if layers.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!(
                "audio_inject_layers {:?} lists a layer twice",
                self.audio_inject_layers
            ));
        }
        if self.num_heads == 0 || !self.dim.is_multiple_of(self.num_heads) {
            return Err(format!(
                "dim {} is not a multiple of num_heads {}",
                self.dim, self.num_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!("head dim {} must be even", self.head_dim()));
        }
        if !self.dim.is_multiple_of(4) {
            return Err(format!(
                "dim {} must be a multiple of 4 (audio encoder)",
                self.dim
            ));
        }
        if let Some(&bad) = self
            .audio_inject_layers
            .iter()
            .find(|&&l| l >= self.num_layers)
        {
            return Err(format!(
                "audio inject layer {bad} >= num_layers {}",
                self.num_layers
            ));
        }
        if self.patch_size[0] != 1 {
            return Err("only a temporal patch size of 1 is supported".into());
        }
        if !self.zero_timestep {
            return Err("zero_timestep = false is not supported (the reference asserts)".into());
        }
        if !self.enable_adain || self.adain_mode != "attn_norm" {
            return Err("only enable_adain with adain_mode \"attn_norm\" is supported".into());
        }
        if !self.enable_framepack {
            return Err("enable_framepack = false is not supported".into());
        }
        if !self.freq_dim.is_multiple_of(2) || self.frames_per_block == 0 {
            return Err("freq_dim must be even and frames_per_block positive".into());
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.dim / self.num_heads
    }

    /// Values per patch token going out of the head.
    pub fn patch_volume(&self) -> usize {
        self.patch_size.iter().product()
    }

    /// Latent motion frames fed to FramePack (`(73 + 3) / 4 = 19`).
    pub fn latent_motion_frames(&self) -> usize {
        self.motion_frames.div_ceil(4)
    }

    /// Audio-injector index of transformer block `layer`, if it is injected.
    pub fn injector_index(&self, layer: usize) -> Option<usize> {
        self.audio_inject_layers.iter().position(|&l| l == layer)
    }

    /// Token counts for a latent grid of `latent_height × latent_width`.
    pub fn geometry(&self, latent_height: usize, latent_width: usize) -> Geometry {
        let patch_height = latent_height / self.patch_size[1];
        let patch_width = latent_width / self.patch_size[2];
        let frame_tokens = patch_height * patch_width;
        let motion_2x_tokens = (latent_height / 4) * (latent_width / 4);
        let motion_4x_tokens =
            (self.framepack_buckets[2] / 4) * (latent_height / 8) * (latent_width / 8);
        let cond_tokens = frame_tokens // reference latent
            + frame_tokens * self.framepack_buckets[0]
            + motion_2x_tokens * (self.framepack_buckets[1] / 2)
            + motion_4x_tokens;
        Geometry {
            latent_height,
            latent_width,
            patch_height,
            patch_width,
            frame_tokens,
            motion_2x_tokens,
            motion_4x_tokens,
            cond_tokens,
        }
    }
}
