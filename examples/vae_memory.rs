//! Measures the Wan 2.1 VAE's streaming-decode working set at 384×704 on an NVIDIA GPU: the
//! released width (96) with seeded random weights, 3-latent blocks as the pipeline decodes
//! them, peak device memory sampled through NVML. Prints the shape-derived estimate beside it.
//!
//! `CUDARC_CUDA_VERSION=13000 cargo run --release --no-default-features --features cuda --example vae_memory -- [f32|f32-strict|bf16]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use avatar_studio::model::vae::{StreamDecoder, VaeConfig, WanVae};
use avatar_studio::weights::keymap::vae_keys;
use avatar_studio::weights::random::RandomWeights;
use burn::tensor::{Distribution, Tensor, backend::Backend};
use nvml_wrapper::Nvml;

const GB: f64 = 1e9;

/// Samples the GPU's used memory every millisecond until stopped; keeps the maximum.
struct PeakSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakSampler {
    fn start(nvml: Arc<Nvml>) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let Ok(device) = nvml.device_by_index(0) else {
                return;
            };
            while !s.load(Ordering::Relaxed) {
                if let Ok(info) = device.memory_info() {
                    p.fetch_max(info.used, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Self {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

fn used(nvml: &Nvml) -> u64 {
    nvml.device_by_index(0)
        .and_then(|d| d.memory_info())
        .map(|m| m.used)
        .unwrap_or(0)
}

fn measure<B: Backend>(label: &str, bytes_per_value: usize, nvml: Arc<Nvml>) {
    let device = B::Device::default();
    let config = VaeConfig::wan21();
    let before_weights = used(&nvml);
    let source = RandomWeights::new("random VAE weights", vae_keys(&config), 7);
    let vae = match WanVae::<B>::load(&source, config.clone(), &device) {
        Ok(vae) => vae,
        Err(e) => {
            eprintln!("{label}: cannot build the VAE: {e}");
            return;
        }
    };
    let (h, w) = (384 / 8, 704 / 8);
    let block = || {
        Tensor::<B, 5>::random(
            [1, config.z_dim, 3, h, w],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
    };
    let mut stream = StreamDecoder::new();
    // First block: a first-frame chunk plus two more (1 + 4 + 4 frames); it also fills the
    // allocator's pools and the autotune caches, so it is timed and measured on its own.
    let _ = B::sync(&device);
    let baseline = used(&nvml);
    let sampler = PeakSampler::start(Arc::clone(&nvml));
    let start = Instant::now();
    let first = stream.decode(&vae, block()).map(|t| t.dims());
    let _ = B::sync(&device);
    let first_ms = start.elapsed().as_secs_f64() * 1e3;
    let first_peak = sampler.finish();
    // The first block's pools also hold what autotune allocated while it benchmarked
    // candidate kernels; release every unused page so the steady blocks below show the
    // memory a block needs, not what tuning left behind.
    let before_cleanup = used(&nvml);
    B::memory_cleanup(&device);
    let _ = B::sync(&device);
    // Steady state: every later block gives 12 frames.
    let sampler = PeakSampler::start(Arc::clone(&nvml));
    let steady_base = used(&nvml);
    let start = Instant::now();
    let mut dims = None;
    for _ in 0..3 {
        dims = stream.decode(&vae, block()).map(|t| t.dims()).ok();
    }
    let _ = B::sync(&device);
    let steady_ms = start.elapsed().as_secs_f64() * 1e3 / 3.0;
    let steady_peak = sampler.finish();

    // From shapes: the decoder runs one latent frame (4 output frames) at a time; its widest
    // activations are the top level's 96 channels at full resolution over 4 frames, plus the
    // 2 cached frames a causal 3×3×3 conv pads with.
    let top = 96 * (4 + 2) * 386 * 706 * bytes_per_value;
    let mid = 192 * (4 + 2) * 194 * 354 * bytes_per_value;
    println!(
        "{label}: weights {:.2} GB on the GPU; first block {:?} in {first_ms:.0} ms, peak above \
         baseline {:.2} GB ({:.2} GB held after it, {:.2} GB after releasing unused pool pages); \
         steady block {:?} in {steady_ms:.0} ms, peak {:.2} GB above that ({:.2} GB over the \
         loaded weights); from shapes: one top-level activation {:.2} GB, one half-resolution \
         {:.2} GB",
        (baseline.saturating_sub(before_weights)) as f64 / GB,
        first,
        first_peak.saturating_sub(baseline) as f64 / GB,
        before_cleanup.saturating_sub(baseline) as f64 / GB,
        steady_base.saturating_sub(baseline) as f64 / GB,
        dims,
        steady_peak.saturating_sub(steady_base) as f64 / GB,
        steady_peak.saturating_sub(baseline) as f64 / GB,
        top as f64 / GB,
        mid as f64 / GB,
    );
}

fn main() {
    let nvml = match Nvml::init() {
        Ok(nvml) => Arc::new(nvml),
        Err(e) => {
            eprintln!("no NVIDIA driver: {e}");
            std::process::exit(2);
        }
    };
    if let Ok(d) = nvml.device_by_index(0) {
        println!("GPU: {}", d.name().unwrap_or_default());
    }
    let which = std::env::args().nth(1).unwrap_or_else(|| "f32".into());
    match which.as_str() {
        "bf16" => measure::<burn_cuda::Cuda<half::bf16, i32>>("bf16", 2, nvml),
        // f32 as the parity suites run it: no TF32 tensor-core kernels, so autotune chooses
        // among other convolution kernels, whose scratch memory differs.
        "f32-strict" => {
            avatar_studio::gpu::strict_f32_matmul(true);
            measure::<burn_cuda::Cuda<f32, i32>>("f32 (strict, no TF32)", 4, nvml)
        }
        _ => measure::<burn_cuda::Cuda<f32, i32>>("f32", 4, nvml),
    }
}
