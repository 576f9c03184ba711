//! The command side of `bench --placement`: runs [`super::bench_placement`] on the chosen
//! device, reads this process's GPU memory through NVML afterwards, asks the planner what it
//! predicts for the same placement and stage, and prints both.

use std::io::Write as _;
use std::process::ExitCode;

use burn::tensor::backend::Backend;

use crate::cli::BenchArgs;
use crate::engine::device::ResolvedDevice;
use crate::memory::plan::gb;
use crate::memory::{Hardware, ModelConfigs, Placement, plan, plan_request};
use crate::settings::{GenerationSettings, SizeArea};

pub fn placement_command(
    args: &BenchArgs,
    placement: Placement,
    device: &ResolvedDevice,
    scale: usize,
) -> ExitCode {
    let size = match args.size.parse::<SizeArea>() {
        Ok(size) if size.width % 16 == 0 && size.height % 16 == 0 => size,
        Ok(size) => {
            eprintln!("error: --size {size}: both sides must be multiples of 16");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: --size: {e}");
            return ExitCode::from(2);
        }
    };
    let latent = (
        (size.height as usize / 8 / scale.min(4)).max(2),
        (size.width as usize / 8 / scale.min(4)).max(2),
    );
    let outcome = match device {
        ResolvedDevice::Cpu => run::<burn::backend::Flex>(
            &Default::default(),
            None,
            args,
            placement,
            scale,
            size,
            latent,
        ),
        #[cfg(feature = "cuda")]
        ResolvedDevice::Cuda(index) => {
            crate::gpu::configure_user_kernel_caches();
            run::<burn_cuda::Cuda<half::bf16, i32>>(
                &burn_cuda::CudaDevice::new(*index as usize),
                Some(*index),
                args,
                placement,
                scale,
                size,
                latent,
            )
        }
        #[cfg(not(feature = "cuda"))]
        ResolvedDevice::Cuda(_) => Err("this build has no CUDA support".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// This process's GPU memory, or the GPU's used memory when the driver lists no processes.
fn gpu_memory(gpu: u32) -> Option<(u64, u64)> {
    let nvml = nvml_wrapper::Nvml::init().ok()?;
    let gpus = crate::memory::monitor::read_once(&nvml).ok()?;
    let reading = gpus.into_iter().find(|g| g.index == gpu)?;
    Some((reading.this_process.unwrap_or(reading.used), reading.used))
}

fn run<B: Backend>(
    device: &B::Device,
    gpu: Option<u32>,
    args: &BenchArgs,
    placement: Placement,
    scale: usize,
    size: SizeArea,
    latent: (usize, usize),
) -> Result<(), String> {
    if args.fp8 && !crate::kernels::hot_ops::<B>().native_fp8(device) {
        return Err("--fp8 needs a GPU with FP8 tensor cores (compute capability 8.9+)".into());
    }
    let before = gpu.and_then(gpu_memory);
    let timer = |name: &str, flops: f64, calls: u32, f: &dyn Fn()| {
        super::bench::time::<B>(name, flops, device, calls, f)
    };
    let report = super::bench_placement::run::<B>(
        device,
        placement,
        args.fp8,
        args.step_batched,
        scale,
        latent,
        args.iters.clamp(1, 5),
        &timer,
    )?;
    let after = gpu.and_then(gpu_memory);
    #[cfg(feature = "cuda")]
    let pool = crate::kernels::cuda::pool_usage::<B>(device);
    #[cfg(not(feature = "cuda"))]
    let pool: Option<(u64, u64)> = None;
    let measured = match (before, after) {
        // The driver's per-process figure when it has one; else what the GPU's use grew by.
        (Some((_, used_before)), Some((this_process, used_after))) => {
            Some(if this_process != used_after {
                this_process
            } else {
                used_after.saturating_sub(used_before)
            })
        }
        _ => None,
    };
    // The planner's figures for the same stage (the released model's sizes: full scale only).
    let predicted = (scale == 1)
        .then(|| {
            let settings = GenerationSettings {
                fp8: args.fp8,
                placement: Some(placement),
                step_batched: args.step_batched || placement.streams_layers(),
                ..GenerationSettings::default()
            };
            let hardware = Hardware::ThisMachine { gpu };
            let plan = plan(&plan_request(
                &ModelConfigs::released(),
                &settings,
                (size.width, size.height),
                None,
                &hardware,
            ));
            plan.dit_stage()
        })
        .flatten();
    let mut out = std::io::stdout();
    if args.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::json!({
                "report": report,
                "measured_gpu_gb": measured.map(gb),
                "predicted_gpu_gb": predicted.as_ref().map(|(bytes, _)| gb(*bytes)),
                "pool_reserved_gb": pool.map(|(reserved, _)| gb(reserved)),
                "pool_in_use_gb": pool.map(|(_, in_use)| gb(in_use)),
            })
        );
        return Ok(());
    }
    let m = &report.timing;
    let _ = writeln!(
        out,
        "placement {} at {}{}: {:.1} ms per block (cold {:.1} ms) → {:.2} output frames/s from the \
         DiT alone; {:.2} GB from host RAM per block ({:.1} GB/s); {:.2} GB page-locked host RAM",
        report.placement,
        report.frame,
        if report.fp8 {
            ", FP8 linears"
        } else {
            ", bf16"
        },
        m.ms,
        m.cold_ms,
        report.dit_fps,
        report.host_to_device_gb_per_block,
        report.host_to_device_gb_per_block / (m.ms * 1e-3).max(1e-9),
        report.pinned_host_gb,
    );
    match (measured, &predicted) {
        (Some(measured), Some((predicted, parts))) => {
            let _ = writeln!(
                out,
                "GPU memory held: {:.2} GB measured (NVML), {:.2} GB predicted for the DiT stage \
                 ({:+.1} %)",
                gb(measured),
                gb(*predicted),
                (measured as f64 / *predicted as f64 - 1.0) * 100.0
            );
            for (name, bytes) in parts {
                let _ = writeln!(out, "    predicted {name:<26} {:>8.3} GB", gb(*bytes));
            }
        }
        (Some(measured), None) => {
            let _ = writeln!(
                out,
                "GPU memory held: {:.2} GB measured (NVML)",
                gb(measured)
            );
        }
        _ => {}
    }
    if let Some((reserved, in_use)) = pool {
        let _ = writeln!(
            out,
            "burn-cuda pool: {:.2} GB reserved from the driver, {:.2} GB held by live tensors \
             after the run",
            gb(reserved),
            gb(in_use)
        );
    }
    Ok(())
}
