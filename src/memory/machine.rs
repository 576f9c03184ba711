//! What this machine has, for the planner: each NVIDIA GPU's total and free memory (NVML) and
//! the host's RAM (`/proc/meminfo`). No driver means no GPUs, not an error.

use nvml_wrapper::enums::device::UsedGpuMemory;

use super::planner::GpuCapacity;

/// The NVIDIA GPUs the driver reports, with the memory a render may use now: what is free
/// plus what this process already holds (models the engine keeps loaded between jobs).
pub fn gpus() -> Vec<GpuCapacity> {
    let Ok(nvml) = nvml_wrapper::Nvml::init() else {
        return Vec::new();
    };
    let pid = std::process::id();
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .filter_map(|index| {
            let device = nvml.device_by_index(index).ok()?;
            let info = device.memory_info().ok()?;
            let ours: u64 = device
                .running_compute_processes()
                .map(|list| {
                    list.iter()
                        .filter(|p| p.pid == pid)
                        .map(|p| match p.used_gpu_memory {
                            UsedGpuMemory::Used(bytes) => bytes,
                            UsedGpuMemory::Unavailable => 0,
                        })
                        .sum()
                })
                .unwrap_or(0);
            Some(GpuCapacity {
                index,
                name: device.name().unwrap_or_else(|_| "NVIDIA GPU".into()),
                total_bytes: info.total,
                free_bytes: (info.free + ours).min(info.total),
            })
        })
        .collect()
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
