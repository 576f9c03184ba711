//! Builds the planner's question from what a render knows: the model's configs, the settings,
//! the frame size and audio length (when the inputs are loaded), and the machine's devices,
//! real or assumed.

use super::footprint::{ModelConfigs, ModelFootprint};
use super::planner::{Capabilities, GpuCapacity, PlanRequest, Target};
use super::speed::SpeedFigures;
use crate::settings::GenerationSettings;

/// What the render will run on.
#[derive(Debug, Clone, PartialEq)]
pub enum Hardware {
    /// This machine: NVML's GPUs (the render runs on `gpu`, none = the CPU) and
    /// `/proc/meminfo`.
    ThisMachine { gpu: Option<u32> },
    /// Assumed devices: GB per GPU (empty = CPU only) and GB of host RAM.
    Assumed { gpus_gb: Vec<f64>, host_ram_gb: f64 },
    /// Devices already read (the studio's live NVML readings); no GPU = the CPU renders.
    Known {
        gpus: Vec<GpuCapacity>,
        host_ram_bytes: u64,
    },
}

/// The planner's input for `settings` on a `width × height` frame.
pub fn plan_request(
    configs: &ModelConfigs,
    settings: &GenerationSettings,
    frame: (u32, u32),
    audio_seconds: Option<f64>,
    hardware: &Hardware,
) -> PlanRequest {
    let mut capabilities = Capabilities::current();
    let (gpus, host_ram_bytes) = match hardware {
        Hardware::ThisMachine { gpu } => {
            let mut gpus = match gpu {
                Some(_) => super::machine::gpus(),
                None => Vec::new(),
            };
            // The render device first: the planner renders on the first GPU it is given.
            if let Some(index) = gpu {
                gpus.sort_by_key(|g| g.index != *index);
            }
            // Older GPUs hold `--fp8` weights dequantised (see `Capabilities::fp8_storage`).
            capabilities.fp8_storage &= gpus
                .first()
                .is_some_and(|g| super::machine::has_fp8_tensor_cores(g.index));
            (gpus, super::machine::available_host_ram())
        }
        Hardware::Known {
            gpus,
            host_ram_bytes,
        } => (gpus.clone(), *host_ram_bytes),
        Hardware::Assumed {
            gpus_gb,
            host_ram_gb,
        } => {
            let gpus = gpus_gb
                .iter()
                .enumerate()
                .map(|(i, gb)| {
                    let bytes = (gb * 1e9) as u64;
                    GpuCapacity {
                        index: i as u32,
                        name: format!("assumed {gb} GB GPU"),
                        total_bytes: bytes,
                        free_bytes: bytes,
                    }
                })
                .collect();
            (gpus, (host_ram_gb * 1e9) as u64)
        }
    };
    // No GPU: the CPU renders.
    let target = if gpus.is_empty() {
        Target::Cpu
    } else {
        Target::Gpus(gpus)
    };
    PlanRequest {
        footprint: ModelFootprint::from_configs(configs),
        frame_width: frame.0,
        frame_height: frame.1,
        frames_per_clip: settings.frames_per_clip,
        sample_steps: settings.sample_steps,
        fp8_weights: settings.fp8,
        online_decode: settings.online_decode,
        step_batched: settings.step_batched,
        audio_seconds,
        target,
        host_ram_bytes,
        vram_budget_bytes: settings.vram_budget_gb.map(|gb| (gb * 1e9) as u64),
        placement: settings.placement,
        capabilities,
        speed: SpeedFigures::default(),
    }
}
