//! Live GPU memory readings through NVML: used, free and total per GPU, and this process's own
//! share, sampled a few times per second on a thread of its own. Without an NVIDIA driver the
//! monitor says so once and stops; that is a normal state for a CPU-only machine, not an error.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;
use serde::Serialize;

/// One GPU's memory at one moment, in bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuMemory {
    pub index: u32,
    pub name: String,
    pub total: u64,
    pub used: u64,
    pub free: u64,
    /// What this process holds on the GPU, when the driver reports it.
    pub this_process: Option<u64>,
}

impl GpuMemory {
    pub fn used_fraction(&self) -> f32 {
        if self.total == 0 {
            0.0
        } else {
            (self.used as f64 / self.total as f64) as f32
        }
    }
}

/// What the monitor knows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum MemoryReadings {
    /// No reading has arrived yet.
    Starting,
    Gpus(Vec<GpuMemory>),
    /// NVML is not available: no NVIDIA driver (or no GPU). Carries the reason for a tooltip.
    NoNvidiaGpu(String),
}

/// Reads every GPU once.
pub fn read_once(nvml: &Nvml) -> Result<Vec<GpuMemory>, nvml_wrapper::error::NvmlError> {
    let pid = std::process::id();
    let count = nvml.device_count()?;
    let mut gpus = Vec::with_capacity(count as usize);
    for index in 0..count {
        let device = nvml.device_by_index(index)?;
        let memory = device.memory_info()?;
        // Process listings are optional extras: some drivers and containers refuse them.
        let this_process = device
            .running_compute_processes()
            .ok()
            .and_then(|processes| {
                processes
                    .iter()
                    .filter(|p| p.pid == pid)
                    .map(|p| match p.used_gpu_memory {
                        UsedGpuMemory::Used(bytes) => Some(bytes),
                        UsedGpuMemory::Unavailable => None,
                    })
                    .sum::<Option<u64>>()
            });
        gpus.push(GpuMemory {
            index,
            name: device.name().unwrap_or_else(|_| format!("GPU {index}")),
            total: memory.total,
            used: memory.used,
            free: memory.free,
            this_process,
        });
    }
    Ok(gpus)
}

/// A sampling thread; it stops when the monitor is dropped.
pub struct MemoryMonitor {
    latest: Arc<Mutex<MemoryReadings>>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MemoryMonitor {
    /// Starts sampling every `interval`; `on_reading` runs after each new reading (the studio
    /// passes a repaint request).
    pub fn start(interval: Duration, on_reading: impl Fn() + Send + 'static) -> Self {
        let latest = Arc::new(Mutex::new(MemoryReadings::Starting));
        let (stop, stopped) = channel::<()>();
        let shared = Arc::clone(&latest);
        let thread = std::thread::Builder::new()
            .name("nvml-monitor".into())
            .spawn(move || sample(&shared, &stopped, interval, on_reading))
            .ok();
        Self {
            latest,
            stop: Some(stop),
            thread,
        }
    }

    pub fn latest(&self) -> MemoryReadings {
        self.latest
            .lock()
            .map(|r| r.clone())
            .unwrap_or(MemoryReadings::Starting)
    }
}

fn sample(
    latest: &Mutex<MemoryReadings>,
    stopped: &Receiver<()>,
    interval: Duration,
    on_reading: impl Fn(),
) {
    let publish = |readings: MemoryReadings| {
        if let Ok(mut slot) = latest.lock() {
            *slot = readings;
        }
        on_reading();
    };
    let nvml = match Nvml::init() {
        Ok(nvml) => nvml,
        Err(e) => return publish(MemoryReadings::NoNvidiaGpu(e.to_string())),
    };
    loop {
        match read_once(&nvml) {
            Ok(gpus) if gpus.is_empty() => {
                return publish(MemoryReadings::NoNvidiaGpu(
                    "the driver reports no GPU".into(),
                ));
            }
            Ok(gpus) => publish(MemoryReadings::Gpus(gpus)),
            Err(e) => return publish(MemoryReadings::NoNvidiaGpu(e.to_string())),
        }
        if stopped.recv_timeout(interval).is_ok() {
            return;
        }
    }
}

impl Drop for MemoryMonitor {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread out of its wait.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
