//! Turns the user's device choice into a backend this build and machine can run. CUDA is
//! probed through NVML first: burn-cuda panics in its device thread when no driver answers.

use crate::pipeline::PipelineError;
use crate::settings::DeviceChoice;

/// Where a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedDevice {
    Cpu,
    Cuda(u32),
}

impl ResolvedDevice {
    pub fn name(self) -> String {
        match self {
            Self::Cpu => "cpu".into(),
            Self::Cuda(i) => format!("cuda:{i}"),
        }
    }

    /// The precision the models compute in there.
    pub fn precision(self) -> &'static str {
        match self {
            // Flex computes in f32, as the fixtures were made.
            Self::Cpu => "f32",
            Self::Cuda(_) => "bf16",
        }
    }
}

/// NVIDIA GPUs a driver reports (0 without a driver).
pub fn nvidia_gpu_count() -> u32 {
    nvml_wrapper::Nvml::init()
        .and_then(|nvml| nvml.device_count())
        .unwrap_or(0)
}

/// The device a job with `choice` runs on.
pub fn resolve(choice: &DeviceChoice) -> Result<ResolvedDevice, PipelineError> {
    match choice {
        DeviceChoice::Cpu => Ok(ResolvedDevice::Cpu),
        DeviceChoice::Auto => {
            if cfg!(feature = "cuda") && nvidia_gpu_count() > 0 {
                Ok(ResolvedDevice::Cuda(0))
            } else {
                Ok(ResolvedDevice::Cpu)
            }
        }
        DeviceChoice::Cuda(ids) => {
            let first = ids.first().copied().unwrap_or(0);
            if !cfg!(feature = "cuda") {
                return Err(PipelineError::Device(format!(
                    "--device cuda:{first}: this build has no CUDA support (build with \
                     `--features cuda`), or use --device cpu"
                )));
            }
            let count = nvidia_gpu_count();
            if first >= count {
                return Err(PipelineError::Device(format!(
                    "--device cuda:{first}: {} NVIDIA GPU{} found; use --device cpu or a \
                     smaller index",
                    count,
                    if count == 1 { "" } else { "s" }
                )));
            }
            if ids.len() > 1 {
                tracing::warn!(
                    "several GPUs were named; this version renders on cuda:{first} only"
                );
            }
            Ok(ResolvedDevice::Cuda(first))
        }
    }
}
