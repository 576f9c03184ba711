//! What this machine has, for the planner: each NVIDIA GPU's total and free memory (NVML) and
//! the host's RAM (`/proc/meminfo`). No driver means no GPUs, not an error.

use super::monitor::{GpuMemory, read_once};
use super::planner::GpuCapacity;

/// Host RAM assumed where `/proc/meminfo` cannot be read.
const FALLBACK_HOST_RAM: u64 = 16_000_000_000;

impl From<&GpuMemory> for GpuCapacity {
    /// What a render may use: what is free plus what this process already holds (models the
    /// engine keeps loaded between jobs).
    fn from(gpu: &GpuMemory) -> Self {
        Self {
            index: gpu.index,
            name: gpu.name.clone(),
            total_bytes: gpu.total,
            free_bytes: (gpu.free + gpu.this_process.unwrap_or(0)).min(gpu.total),
        }
    }
}

/// The NVIDIA GPUs the driver reports (the monitor's reading), as the planner sees them.
pub fn gpus() -> Vec<GpuCapacity> {
    nvml_wrapper::Nvml::init()
        .and_then(|nvml| read_once(&nvml))
        .map(|list| list.iter().map(GpuCapacity::from).collect())
        .unwrap_or_default()
}

/// Whether the GPU of NVML index `index` has FP8 tensor cores (compute capability 8.9 or later:
/// Ada, Hopper, Blackwell); false where NVML cannot say.
pub fn has_fp8_tensor_cores(index: u32) -> bool {
    nvml_wrapper::Nvml::init()
        .and_then(|nvml| {
            let device = nvml.device_by_index(index)?;
            device.cuda_compute_capability()
        })
        .is_ok_and(|cc| (cc.major, cc.minor) >= (8, 9))
}

/// Available host RAM in bytes, or an assumed 16 GB where it cannot be read.
pub fn available_host_ram() -> u64 {
    host_ram().map_or(FALLBACK_HOST_RAM, |(_, available)| available)
}

/// Host RAM `(total, available)` in bytes; `None` where `/proc/meminfo` cannot be read.
pub fn host_ram() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

/// `MemTotal` and `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:").unwrap_or(total);
    Some((total, available))
}
