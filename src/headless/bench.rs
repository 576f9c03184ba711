//! `avatar-studio bench`: times the DiT's hot kernels as this build runs them — the three GEMM
//! shapes of a 14B block and attention at the streaming call's 3168 queries against 15312 keys
//! and at 12672:12672 — so they can be set beside PyTorch's (`../shared/bench/torch_dit.py`)
//! measured in the same command. The first call of each shape (kernel compilation and autotune)
//! is reported apart from the warm mean. Then, unless `--kernels-only`, one DiT layer at
//! 3168:15312 and the whole 40-layer streaming call at 704×384 with random 14B weights
//! (`bench_model`). `--kernels burn` times plain burn instead of the CUDA kernels. `--fp8` adds
//! the FP8 GEMMs (activation quantisation included) and the layer and call with FP8 linears.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use crate::cli::BenchArgs;
use crate::engine::device::{ResolvedDevice, resolve};
use crate::kernels::{Activation, hot_ops};

/// Heads and head width of the 14B DiT.
const HEADS: usize = 40;
const HEAD_DIM: usize = 128;

/// One timed kernel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measurement {
    pub name: String,
    /// The first call, compilation and autotune included.
    pub cold_ms: f64,
    /// Mean of the timed calls after two warm-up calls.
    pub ms: f64,
    pub tflops: f64,
    /// For a whole streaming call: the output frames per second one GPU could sustain at this
    /// speed (12 frames per 4 calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_fps: Option<f64>,
    /// Bytes copied from host RAM per call (GB), for the placements that keep caches there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_to_device_gb: Option<f64>,
}

pub fn bench_command(args: &BenchArgs) -> ExitCode {
    if let Some(choice) = args.kernels {
        crate::kernels::set_kernel_choice(choice.into());
    }
    let device = match resolve(&args.device) {
        Ok(device) => device,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let scale = if args.small { 8 } else { 1 };
    let iters = args.iters.max(1);
    if let Some(placement) = args.placement {
        return super::bench_placement_report::placement_command(args, placement, &device, scale);
    }
    // A closed pipe (`bench | head`) is not worth a panic.
    let print = |m: &Measurement| {
        let mut out = std::io::stdout();
        let _ = if args.json {
            writeln!(out, "{}", serde_json::json!(m))
        } else {
            writeln!(
                out,
                "{:<28} {:>10.3} ms {:>9.2} TFLOP/s   (cold {:.1} ms){}{}",
                m.name,
                m.ms,
                m.tflops,
                m.cold_ms,
                m.output_fps
                    .map(|fps| format!("   → {fps:.1} output frames/s"))
                    .unwrap_or_default(),
                m.host_to_device_gb
                    .map(|gb| format!(
                        ", {gb:.2} GB from host RAM ({:.1} GB/s)",
                        gb / (m.ms * 1e-3)
                    ))
                    .unwrap_or_default()
            )
        };
    };
    if !args.json {
        let _ = writeln!(
            std::io::stdout(),
            "bench on {} ({}), {} timed calls, {} kernels",
            device.name(),
            device.precision(),
            iters,
            kernels_name(&device)
        );
    }
    let plan = Plan {
        scale,
        iters,
        with_model: !args.kernels_only,
        fp8: args.fp8,
    };
    let outcome = match device {
        ResolvedDevice::Cpu => run::<burn::backend::Flex>(&Default::default(), plan, &print),
        #[cfg(feature = "cuda")]
        ResolvedDevice::Cuda(index) => {
            crate::gpu::configure_user_kernel_caches();
            run::<burn_cuda::Cuda<half::bf16, i32>>(
                &burn_cuda::CudaDevice::new(index as usize),
                plan,
                &print,
            )
        }
        #[cfg(not(feature = "cuda"))]
        ResolvedDevice::Cuda(_) => {
            eprintln!("error: this build has no CUDA support (build with `--features cuda`)");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// What to time.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Sizes divided by this (1: the 14B shapes).
    scale: usize,
    iters: u32,
    /// Also one DiT layer and the whole streaming call.
    with_model: bool,
    /// Also the FP8 GEMMs, and the model with FP8 linears.
    fp8: bool,
}

/// Times every kernel on `device`.
fn run<B: Backend>(
    device: &B::Device,
    plan: Plan,
    print: &dyn Fn(&Measurement),
) -> Result<(), String> {
    let Plan {
        scale,
        iters,
        with_model,
        fp8,
    } = plan;
    let ops = hot_ops::<B>();
    if fp8 && !ops.native_fp8(device) {
        return Err(format!(
            "--fp8 needs FP8 GEMMs, which the {} kernels do not have on this device (an NVIDIA \
             GPU of compute capability 8.9 or later — Ada, Hopper, Blackwell — with cuBLASLt); \
             drop --fp8",
            ops.name()
        ));
    }
    for (m, k, n) in [(8192, 8192, 8192), (12672, 5120, 13824), (3168, 5120, 5120)] {
        let (m, k, n) = (m / scale, k / scale, n / scale);
        let a = Tensor::<B, 2>::random([m, k], Distribution::Normal(0.0, 1.0), device);
        // Stored `[out, in]` and used transposed, as the DiT's layers keep their weights.
        let w_t =
            Tensor::<B, 2>::random([n, k], Distribution::Normal(0.0, 1.0), device).transpose();
        let flops = 2.0 * (m * k * n) as f64;
        print(&time::<B>(
            &format!("gemm_{m}x{k}x{n}"),
            flops,
            device,
            iters * 4,
            || {
                let _ = ops.linear(a.clone(), &w_t, None, Activation::None);
            },
        ));
        if fp8 {
            // The activation's quantisation is part of every FP8 layer, so it is timed too.
            let w8 = ops.quantize_fp8(w_t.clone().transpose());
            print(&time::<B>(
                &format!("gemm_fp8_{m}x{k}x{n}"),
                flops,
                device,
                iters * 4,
                || {
                    let _ = ops.linear_fp8(a.clone(), &w8, None, Activation::None);
                },
            ));
        }
    }
    let heads = (HEADS / scale).max(1);
    for (queries, keys) in [(3168, 15312), (12672, 12672)] {
        let (queries, keys) = (queries / scale, keys / scale);
        let random = |len: usize| {
            Tensor::<B, 4>::random(
                [1, len, heads, HEAD_DIM],
                Distribution::Normal(0.0, 1.0),
                device,
            )
        };
        let (q, k, v) = (random(queries), random(keys), random(keys));
        let flops = 4.0 * (queries * keys * heads * HEAD_DIM) as f64;
        print(&time::<B>(
            &format!("attn_{queries}:{keys}"),
            flops,
            device,
            iters,
            || {
                let _ = ops.attention(q.clone(), k.clone(), v.clone());
            },
        ));
    }
    if with_model {
        let timer = |name: &str, flops: f64, calls: u32, f: &dyn Fn()| {
            time::<B>(name, flops, device, calls, f)
        };
        super::bench_model::run::<B>(device, scale, iters, false, &timer, print);
        if fp8 {
            super::bench_model::run::<B>(device, scale, iters, true, &timer, print);
        }
    }
    Ok(())
}

/// The implementation `bench` times on `device`.
fn kernels_name(device: &ResolvedDevice) -> &'static str {
    match device {
        ResolvedDevice::Cpu => hot_ops::<burn::backend::Flex>().name(),
        #[cfg(feature = "cuda")]
        ResolvedDevice::Cuda(_) => hot_ops::<burn_cuda::Cuda<half::bf16, i32>>().name(),
        #[cfg(not(feature = "cuda"))]
        ResolvedDevice::Cuda(_) => "none",
    }
}

/// For kernel work: when `AVATAR_STUDIO_PROFILE` names this measurement and it runs on a CUDA
/// GPU, its timed calls are the CUDA profiler's capture range (`nsys profile
/// --capture-range=cudaProfilerApi`); otherwise nothing.
fn profiler_capture<B: Backend>(name: &str, device: &B::Device) -> impl Fn(bool) {
    let wanted = std::env::var("AVATAR_STUDIO_PROFILE").is_ok_and(|n| n == name);
    #[cfg(feature = "cuda")]
    let gpu = crate::kernels::cuda::gpu_index::<B>(device).filter(|_| wanted);
    #[cfg(not(feature = "cuda"))]
    let _ = (wanted, device);
    move |on: bool| {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = gpu
            && let Err(e) = crate::kernels::cuda::profiler_capture(gpu, on)
        {
            eprintln!("AVATAR_STUDIO_PROFILE: {e}");
        }
        #[cfg(not(feature = "cuda"))]
        let _ = on;
    }
}

/// Cold call, two warm-ups, then the mean of `iters` calls, each batch ended by a device sync.
pub(crate) fn time<B: Backend>(
    name: &str,
    flops: f64,
    device: &B::Device,
    iters: u32,
    call: impl Fn(),
) -> Measurement {
    let sync = || {
        let _ = B::sync(device);
    };
    let start = Instant::now();
    call();
    sync();
    let cold_ms = start.elapsed().as_secs_f64() * 1e3;
    call();
    call();
    sync();
    let capture = profiler_capture::<B>(name, device);
    capture(true);
    let start = Instant::now();
    for _ in 0..iters {
        call();
    }
    sync();
    let ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(iters);
    capture(false);
    Measurement {
        name: name.to_string(),
        cold_ms,
        ms,
        tflops: flops / (ms * 1e-3) / 1e12,
        output_fps: None,
        host_to_device_gb: None,
    }
}
