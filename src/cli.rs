//! Command-line definitions (clap): the subcommands, and the settings flags every render-related
//! command shares. The flags also accept the LiveAvatar reference's spellings (`--num_clip`,
//! `--sample_steps`, `--infer_frames`, `--base_seed`, `--enable_online_decode`, ...) so existing
//! scripts port by changing the program name.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::presets::built_in_presets;
use crate::settings::{AudioSync, ClipCount, DeviceChoice, GenerationSettings, Seed, SizeArea};

#[derive(Debug, Parser)]
#[command(
    name = "avatar-studio",
    version,
    about = "Talking-avatar videos from a portrait and a voice, on your own GPU.",
    long_about = "Avatar Studio turns a portrait, a voice recording and an optional prompt into a \
                  talking-avatar video with the LiveAvatar model. Without a subcommand it opens \
                  the studio window."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Portrait and voice files to open in the studio (what a file manager's "Open with"
    /// passes).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a portrait, a voice and settings, and show what the render will be: frame size,
    /// audio length, clips and frames. Loads no model.
    Check(CheckArgs),
    /// Validate a checkpoint folder (ckpt/Wan2.2-S2V-14B) from file headers only: components
    /// found, parameter counts and sizes, and every missing, extra or mis-shaped tensor. Loads
    /// no tensor data.
    Inspect(InspectArgs),
    /// Render a talking-avatar video from a portrait and a voice (or many, with --batch),
    /// clip by clip, into an MP4 (H.264 + AAC) or a PNG sequence + WAV. Without --model it
    /// uses the built-in demo weights (a tiny random model: the video is noise).
    Generate(Box<GenerateArgs>),
    /// Show the memory plan of a render before running it: where each network and cache
    /// lives, the predicted peak per GPU by component, whether it fits, the expected speed, and
    /// what would fit when it does not. Answers for assumed hardware too (--assume-gpus).
    /// Without --model it plans the released Wan2.2-S2V-14B. Exit code 0 when it fits, 1 when
    /// it does not.
    Plan(Box<PlanArgs>),
    /// Time the DiT's hot kernels at the 14B shapes (bf16 on an NVIDIA GPU): its three GEMM
    /// shapes and attention at 3168:15312 and 12672:12672 keys, with the first (cold) call
    /// reported apart from the warm mean. On the CPU, `--small` divides every size by 8.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where to run: auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Timed calls after the warm-up.
    #[arg(long, default_value_t = 10)]
    pub iters: u32,
    /// Every size divided by 8 (for the CPU backend and quick checks).
    #[arg(long)]
    pub small: bool,
    /// One JSON object per measurement on stdout.
    #[arg(long)]
    pub json: bool,
    /// Which implementation of the hot ops to time: the fastest this build has for the device
    /// (`fast`, the default) or plain burn (`burn`).
    #[arg(long, value_enum)]
    pub kernels: Option<KernelsArg>,
    /// Time the GEMMs and attention only, not the DiT layer and the 40-layer call (which need
    /// about 45 GB of GPU memory at full size).
    #[arg(long)]
    pub kernels_only: bool,
    /// Also time FP8 linears: the FP8 GEMMs (activation quantisation included) and the layer
    /// and streaming call with FP8 weights (GPUs with FP8 tensor cores: Ada, Hopper, Blackwell).
    #[arg(long)]
    pub fp8: bool,
    /// Instead of the kernels, time the DiT's steady state under one memory placement
    /// (resident, kv-host, layer-streaming, layer-streaming-kv-host): whole blocks with random
    /// 14B weights, the GPU memory this process then holds (NVML) beside the planner's
    /// prediction, and the bytes copied from host RAM.
    #[arg(long)]
    pub placement: Option<crate::memory::Placement>,
    /// Frame size for `--placement`, as WIDTH*HEIGHT.
    #[arg(long, default_value = "704*384")]
    pub size: String,
    /// With `--placement`: time the step-batched schedule (four blocks per call) even where the
    /// placement does not need it (layer streaming always uses it).
    #[arg(long)]
    pub step_batched: bool,
}

/// `bench --kernels` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelsArg {
    Fast,
    Burn,
}

impl From<KernelsArg> for crate::kernels::KernelChoice {
    fn from(arg: KernelsArg) -> Self {
        match arg {
            KernelsArg::Fast => crate::kernels::KernelChoice::Fast,
            KernelsArg::Burn => crate::kernels::KernelChoice::Burn,
        }
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Portrait image: plans the frame size it gives (with --audio). Without it, --size is
    /// taken as width*height.
    #[arg(long, requires = "audio")]
    pub image: Option<PathBuf>,
    /// Voice recording: plans for its length (with --image).
    #[arg(long, requires = "image")]
    pub audio: Option<PathBuf>,
    /// The checkpoint folder whose config.json sizes the model.
    #[arg(long, alias = "ckpt_dir", alias = "ckpt-dir")]
    pub model: Option<PathBuf>,
    /// Plan the built-in demo model instead.
    #[arg(long, conflicts_with = "model")]
    pub demo: bool,
    /// Encoder sizes as JSON (see `generate --encoders`).
    #[arg(long, value_name = "FILE")]
    pub encoders: Option<PathBuf>,
    /// Plan for these GPUs instead of this machine's: GB per GPU, e.g. 24,24,24,24.
    #[arg(long = "assume-gpus", value_delimiter = ',', num_args = 1..)]
    pub assume_gpus: Option<Vec<f64>>,
    /// Plan for this much host RAM (GB) instead of this machine's.
    #[arg(long = "assume-host-ram")]
    pub assume_host_ram: Option<f64>,
    /// Print the plan as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Portrait image (PNG, JPEG, WebP or BMP).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Voice recording (WAV, MP3, FLAC, OGG/Vorbis or M4A/AAC).
    #[arg(long)]
    pub audio: Option<PathBuf>,
    /// Output MP4 (default: output/<date>_<time>_<steps>step_<prompt>.mp4).
    #[arg(long, alias = "save_file", alias = "save-file")]
    pub out: Option<PathBuf>,
    /// Write PNG frames and audio.wav into this folder instead of an MP4.
    #[arg(long = "png-dir", conflicts_with = "out")]
    pub png_dir: Option<PathBuf>,
    /// The Wan2.2-S2V-14B checkpoint folder.
    #[arg(long, alias = "ckpt_dir", alias = "ckpt-dir")]
    pub model: Option<PathBuf>,
    /// The LiveAvatar LoRA (liveavatar.safetensors), merged into the DiT at load.
    #[arg(long, alias = "lora_path_dmd", alias = "lora-path-dmd")]
    pub lora: Option<PathBuf>,
    /// Use the built-in demo weights (the default without --model): a tiny model with random
    /// weights, for trying the whole path without the download.
    #[arg(long)]
    pub demo: bool,
    /// Random weights at the released 14B sizes, drawn on the GPU: a whole render's real
    /// memory and speed without the download (the video is noise). For `plan` checks and
    /// benchmarks.
    #[arg(long = "random-weights", conflicts_with_all = ["model", "demo", "lora"])]
    pub random_weights: bool,
    /// Encoder sizes as JSON `{"t5": {...}, "vae": {...}}`, for folders whose encoders are not
    /// the released umT5-XXL and Wan 2.1 VAE.
    #[arg(long, value_name = "FILE")]
    pub encoders: Option<PathBuf>,
    /// Print one JSON event per line on stdout instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    /// Render every [[job]] of this TOML file (image, audio, prompt, out, seed) in one process.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["image", "audio", "out", "png_dir"])]
    pub batch: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(flatten)]
    pub compat: ReferenceFlags,
}

/// Flags of the reference script that have no effect here, accepted so its launch scripts run
/// unchanged. Those that would change the result if honoured are checked.
#[derive(Debug, Args, Default)]
pub struct ReferenceFlags {
    #[arg(long, hide = true)]
    pub task: Option<String>,
    #[arg(long = "sample_solver", alias = "sample-solver", hide = true)]
    pub sample_solver: Option<String>,
    /// Memory placement is planned, not switched by hand.
    #[arg(long = "offload_model", alias = "offload-model", hide = true)]
    pub offload_model: Option<String>,
    #[arg(long = "offload_kv_cache", alias = "offload-kv-cache", hide = true)]
    pub offload_kv_cache: bool,
    #[arg(long = "t5_cpu", alias = "t5-cpu", hide = true)]
    pub t5_cpu: bool,
    /// The reference ignores it too (no classifier-free guidance in the causal pipeline).
    #[arg(long = "sample_guide_scale", alias = "sample-guide-scale", hide = true)]
    pub sample_guide_scale: Option<f64>,
    /// The reference hard-codes the shift to 3.
    #[arg(long = "sample_shift", alias = "sample-shift", hide = true)]
    pub sample_shift: Option<f64>,
    #[arg(long = "load_lora", alias = "load-lora", hide = true)]
    pub load_lora: bool,
    /// Rank and alpha are read from the LoRA file itself.
    #[arg(long = "training_config", alias = "training-config", hide = true)]
    pub training_config: Option<PathBuf>,
    #[arg(
        long = "convert_model_dtype",
        alias = "convert-model-dtype",
        hide = true
    )]
    pub convert_model_dtype: bool,
    #[arg(long = "num_gpus_dit", alias = "num-gpus-dit", hide = true)]
    pub num_gpus_dit: Option<u32>,
    #[arg(
        long = "enable_vae_parallel",
        alias = "enable-vae-parallel",
        hide = true
    )]
    pub enable_vae_parallel: bool,
    #[arg(long = "frame_num", alias = "frame-num", hide = true)]
    pub frame_num: Option<u32>,
    #[arg(long = "start_from_ref", alias = "start-from-ref", hide = true)]
    pub start_from_ref: bool,
}

impl ReferenceFlags {
    /// Refuses values that would silently render something else than the script asked for.
    pub fn check(&self) -> Result<(), String> {
        if let Some(task) = &self.task
            && task != "s2v-14B"
        {
            return Err(format!(
                "--task {task}: only s2v-14B (LiveAvatar) is implemented"
            ));
        }
        if let Some(solver) = &self.sample_solver
            && solver != "euler"
        {
            return Err(format!(
                "--sample_solver {solver}: only euler is implemented (as in the reference)"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The checkpoint folder (DiT shards and config.json, models_t5_umt5-xxl-enc-bf16.pth,
    /// Wan2.1_VAE.pth, wav2vec2-large-xlsr-53-english/, google/umt5-xxl/).
    #[arg(long)]
    pub model: PathBuf,
    /// Also check a LoRA file (liveavatar.safetensors) against the DiT's targets.
    #[arg(long)]
    pub lora: Option<PathBuf>,
    /// Encoder sizes as JSON `{"t5": {...}, "vae": {...}}`, for folders whose encoders are not
    /// the released umT5-XXL and Wan 2.1 VAE.
    #[arg(long, value_name = "FILE")]
    pub encoders: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Portrait image (PNG, JPEG, WebP or BMP).
    #[arg(long)]
    pub image: PathBuf,
    /// Voice recording (WAV, MP3, FLAC, OGG/Vorbis or M4A/AAC).
    #[arg(long)]
    pub audio: PathBuf,
    /// Also check that this output file can be written.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// The generation settings as flags. Unset flags keep the preset's (or the default) value.
#[derive(Debug, Args, Default)]
pub struct SettingsArgs {
    /// Start from a built-in preset: "quick preview", "standard", "high quality", "long video".
    #[arg(long)]
    pub preset: Option<String>,
    /// Maximum frame area as W*H (the aspect follows the portrait), e.g. 704*384.
    #[arg(long)]
    pub size: Option<SizeArea>,
    /// How many clips: a number, or "auto" for as many as the audio lasts.
    #[arg(long = "num-clip", alias = "num_clip", alias = "num-clips")]
    pub num_clips: Option<ClipCount>,
    /// Output frames per clip (a multiple of 12; 48 is what the model was tuned for).
    #[arg(
        long = "frames-per-clip",
        alias = "infer_frames",
        alias = "infer-frames"
    )]
    pub frames_per_clip: Option<u32>,
    /// Denoising steps per block (1-4; the LiveAvatar LoRA is distilled for 4).
    #[arg(long = "sample-steps", alias = "sample_steps")]
    pub sample_steps: Option<u32>,
    /// Noise seed: a number, or "random" (a negative number also means random).
    #[arg(
        long,
        alias = "base_seed",
        alias = "base-seed",
        allow_hyphen_values = true
    )]
    pub seed: Option<Seed>,
    /// Text prompt describing the scene and the speaker.
    #[arg(long)]
    pub prompt: Option<String>,
    /// FP8 DiT linears (GPUs with fp8 tensor cores).
    #[arg(long)]
    pub fp8: bool,
    /// Decode each block as soon as it is denoised (streaming).
    #[arg(
        long = "online-decode",
        alias = "enable_online_decode",
        alias = "enable-online-decode"
    )]
    pub online_decode: bool,
    /// Decode all clips after the last one, as the reference's default single-GPU mode does.
    #[arg(long = "deferred-decode", conflicts_with = "online_decode")]
    pub deferred_decode: bool,
    /// auto, cpu, cuda:N or cuda:N,M.
    #[arg(long = "device", alias = "devices")]
    pub devices: Option<DeviceChoice>,
    /// GPU memory the render may use, in GB.
    #[arg(long = "vram-budget", alias = "vram_budget")]
    pub vram_budget_gb: Option<f64>,
    /// Memory placement: resident, resident-kv-fp8, kv-host, layer-streaming or
    /// layer-streaming-kv-host (default: the fastest that fits, as `plan` shows).
    #[arg(long)]
    pub placement: Option<crate::memory::Placement>,
    /// Denoise four consecutive blocks together, each at its own step, in one DiT call (the
    /// same frames; larger GPU products, and each streamed weight serves four blocks).
    #[arg(long = "step-batched", alias = "step_batched")]
    pub step_batched: bool,
    /// H.264 quality: 0 (lossless) to 51 (worst); 18 looks lossless.
    #[arg(long)]
    pub crf: Option<u8>,
    /// Sound placement: "reference" (as the reference muxes it) or "aligned".
    #[arg(long = "audio-sync", value_parser = parse_audio_sync)]
    pub audio_sync: Option<AudioSync>,
}

fn parse_audio_sync(text: &str) -> Result<AudioSync, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "reference" => Ok(AudioSync::Reference),
        "aligned" => Ok(AudioSync::Aligned),
        _ => Err(format!(
            "`{text}` is not a sync mode: use `reference` or `aligned`"
        )),
    }
}

impl SettingsArgs {
    /// The settings these flags describe, validated.
    pub fn resolve(&self) -> Result<GenerationSettings, String> {
        let mut settings = match &self.preset {
            None => GenerationSettings::default(),
            Some(name) => built_in_presets()
                .into_iter()
                .find(|p| {
                    p.name
                        .eq_ignore_ascii_case(name.replace(['-', '_'], " ").trim())
                })
                .map(|p| p.settings)
                .ok_or_else(|| {
                    let names: Vec<String> = built_in_presets()
                        .into_iter()
                        .map(|p| format!("\"{}\"", p.name))
                        .collect();
                    format!(
                        "there is no preset `{name}`; choose one of {}",
                        names.join(", ")
                    )
                })?,
        };
        if let Some(v) = self.size {
            settings.size = v;
        }
        if let Some(v) = self.num_clips {
            settings.num_clips = v;
        }
        if let Some(v) = self.frames_per_clip {
            settings.frames_per_clip = v;
        }
        if let Some(v) = self.sample_steps {
            settings.sample_steps = v;
        }
        if let Some(v) = self.seed {
            settings.seed = v;
        }
        if let Some(v) = &self.prompt {
            settings.prompt = v.clone();
        }
        if self.fp8 {
            settings.fp8 = true;
        }
        if self.online_decode {
            settings.online_decode = true;
        }
        if self.deferred_decode {
            settings.online_decode = false;
        }
        if let Some(v) = &self.devices {
            settings.devices = v.clone();
        }
        if let Some(p) = self.placement {
            settings.placement = Some(p);
        }
        if self.step_batched {
            settings.step_batched = true;
        }
        if let Some(v) = self.vram_budget_gb {
            settings.vram_budget_gb = Some(v);
        }
        if let Some(v) = self.crf {
            settings.video_crf = v;
        }
        if let Some(v) = self.audio_sync {
            settings.audio_sync = v;
        }
        settings.validate().map_err(|e| e.to_string())?;
        Ok(settings)
    }
}
