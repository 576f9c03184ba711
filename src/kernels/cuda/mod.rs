//! [`HotOps`] on NVIDIA GPUs: cuBLASLt for the dense layers ([`gemm`]) and a flash-attention
//! kernel compiled with NVRTC ([`flash`]), both enqueued on the stream burn-cuda uses for the
//! tensors' memory, reading and writing burn-cuda's own buffers — no copies and no syncs.
//! Where a kernel cannot serve a call (an element type or head width it does not cover, or a
//! CUDA library missing on this machine) the call runs in plain burn instead; a real failure is
//! reported once on stderr.

mod device;
pub mod flash;
pub mod fp8;
pub mod fused;
pub mod gemm;
mod nvrtc;
pub mod transfer;

use std::any::{Any, TypeId};
use std::collections::HashSet;
use std::sync::Mutex;

use burn::tensor::{DType, Int, Tensor, TensorPrimitive, backend::Backend};
use burn_cubecl::tensor::CubeTensor;
use cubecl_cuda::CudaRuntime;

use super::fallback::BurnKernels;
use super::{Activation, Fp8Matrix, HotOps, linear_fp8_each};

pub use device::DeviceContext;

/// burn-cuda's memory pool on `device`: `(bytes reserved from the driver, bytes held by live
/// tensors)`; `None` for another backend.
pub fn pool_usage<B: Backend>(device: &B::Device) -> Option<(u64, u64)> {
    let probe = as_cuda(&Tensor::<B, 1>::zeros([1], device)).ok()?;
    let usage = probe.client.memory_usage().ok()?;
    Some((usage.bytes_reserved, usage.bytes_in_use))
}

/// Runs `task` on burn-cuda's device thread for `device` (directly for another backend).
///
/// burn-cuda executes its work on a thread of its own, and every call that needs an answer
/// from it (a buffer's address for a CUDA kernel, a memory reading) is a blocking round trip
/// to that thread: the hot ops make several per layer, some 4 000 per 40-layer DiT call, and
/// while the caller waits on them the GPU runs dry. Inside `task` such calls run at once, on
/// the device thread itself. A panic inside `task` is re-raised here.
pub fn on_device_thread<B: Backend, R: Send + 'static>(
    device: &B::Device,
    task: impl FnOnce() -> R + Send,
) -> R {
    let Some(index) = cuda_index::<B>(device) else {
        return task();
    };
    let client =
        <CudaRuntime as cubecl_runtime::runtime::Runtime>::client(&cubecl_cuda::CudaDevice {
            index,
        });
    match client.exclusive(task) {
        Ok(result) => result,
        Err(e) => panic!("a task on burn-cuda's device thread failed: {e:?}"),
    }
}

/// The GPU index of a burn-cuda device; `None` for another backend's device.
pub fn gpu_index<B: Backend>(device: &B::Device) -> Option<usize> {
    cuda_index::<B>(device)
}

/// A burn-cuda float tensor.
pub(crate) type CudaTensor = CubeTensor<CudaRuntime>;

/// Why a CUDA kernel did not run a call.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The kernel does not cover this case; plain burn runs it, silently.
    #[error("not covered by the CUDA kernel: {0}")]
    Unsupported(String),
    #[error("CUDA driver: {0}")]
    Driver(#[from] cudarc::driver::DriverError),
    #[error("cuBLASLt: {0:?}")]
    Cublas(cudarc::cublaslt::result::CublasError),
    #[error("NVRTC could not compile the kernel: {0}")]
    Compile(String),
    #[error("burn-cuda: {0}")]
    Burn(String),
    #[error("{0} is not installed (or not on the library path); plain burn runs this operation")]
    MissingLibrary(&'static str),
}

impl From<cudarc::cublaslt::result::CublasError> for KernelError {
    fn from(e: cudarc::cublaslt::result::CublasError) -> Self {
        KernelError::Cublas(e)
    }
}

/// The CUDA implementation of [`HotOps`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CudaKernels;

/// Whether `B`'s tensors are burn-cuda tensors, which [`CudaKernels`] works on.
pub fn serves<B: Backend>() -> bool {
    TypeId::of::<B::FloatTensorPrimitive>() == TypeId::of::<CudaTensor>()
}

/// The burn-cuda tensor inside `t` (a cheap handle copy); `Unsupported` for another backend.
pub(crate) fn as_cuda<B: Backend, const D: usize>(
    t: &Tensor<B, D>,
) -> Result<CudaTensor, KernelError> {
    let primitive: Box<dyn Any> = Box::new(t.clone().into_primitive().tensor());
    primitive
        .downcast::<CudaTensor>()
        .map(|t| *t)
        .map_err(|_| KernelError::Unsupported("not a burn-cuda tensor".into()))
}

/// Wraps a burn-cuda tensor as a tensor of backend `B`; `Unsupported` if `B` is not burn-cuda.
pub(crate) fn from_cuda<B: Backend, const D: usize>(
    t: CudaTensor,
) -> Result<Tensor<B, D>, KernelError> {
    let primitive: Box<dyn Any> = Box::new(t);
    primitive
        .downcast::<B::FloatTensorPrimitive>()
        .map(|p| Tensor::from_primitive(TensorPrimitive::Float(*p)))
        .map_err(|_| KernelError::Unsupported("backend mismatch".into()))
}

/// The burn-cuda tensor inside an integer tensor `t`; `Unsupported` for another backend.
pub(crate) fn as_cuda_int<B: Backend, const D: usize>(
    t: &Tensor<B, D, Int>,
) -> Result<CudaTensor, KernelError> {
    let primitive: Box<dyn Any> = Box::new(t.clone().into_primitive());
    primitive
        .downcast::<CudaTensor>()
        .map(|t| *t)
        .map_err(|_| KernelError::Unsupported("not a burn-cuda tensor".into()))
}

/// Wraps a burn-cuda tensor as an integer tensor of backend `B`.
pub(crate) fn from_cuda_int<B: Backend, const D: usize>(
    t: CudaTensor,
) -> Result<Tensor<B, D, Int>, KernelError> {
    let primitive: Box<dyn Any> = Box::new(t);
    primitive
        .downcast::<B::IntTensorPrimitive>()
        .map(|p| Tensor::from_primitive(*p))
        .map_err(|_| KernelError::Unsupported("backend mismatch".into()))
}

/// The GPU index of a burn-cuda device; `None` for another backend's device.
fn cuda_index<B: Backend>(device: &B::Device) -> Option<usize> {
    (device as &dyn Any)
        .downcast_ref::<cubecl_cuda::CudaDevice>()
        .map(|d| d.index)
}

/// Reports a kernel failure once per distinct message; unsupported cases stay quiet.
fn report(error: &KernelError) {
    if matches!(error, KernelError::Unsupported(_)) {
        return;
    }
    report_once(
        "GPU kernel unavailable, using plain burn",
        &error.to_string(),
    );
}

/// Starts (`on`) or stops the CUDA profiler's capture on GPU `device`, so that `nsys profile
/// --capture-range=cudaProfilerApi` records only what runs in between.
pub fn profiler_capture(device: usize, on: bool) -> Result<(), KernelError> {
    DeviceContext::get(device)?.make_current()?;
    // SAFETY: plain driver calls on the current context.
    unsafe {
        if on {
            cudarc::driver::sys::cuProfilerStart().result()?;
        } else {
            cudarc::driver::sys::cuProfilerStop().result()?;
        }
    }
    Ok(())
}

/// Prints `note: {what}: {message}` the first time this pair is seen in the process: a fast
/// path that fails falls back on every call, and one line says it.
pub(crate) fn report_once(what: &str, message: &str) {
    static SEEN: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);
    let Ok(mut seen) = SEEN.lock() else { return };
    if seen
        .get_or_insert_with(HashSet::new)
        .insert((what.to_string(), message.to_string()))
    {
        eprintln!("note: {what}: {message}");
    }
}

/// `result`, or — when the kernel could not serve the call — `plain_burn()`, after reporting why.
fn or_plain_burn<T>(result: Result<T, KernelError>, plain_burn: impl FnOnce() -> T) -> T {
    result.unwrap_or_else(|e| {
        report(&e);
        plain_burn()
    })
}

/// The `-DELEM` code of `elem.cuh` for `dtype`.
pub(crate) fn elem_code(dtype: DType) -> Result<u8, KernelError> {
    match dtype {
        DType::BF16 => Ok(0),
        DType::F16 => Ok(1),
        DType::F32 => Ok(2),
        other => Err(KernelError::Unsupported(format!("{other:?} elements"))),
    }
}

/// A small parameter tensor (a bias, a norm's weight) in the activations' element type.
pub(crate) fn in_dtype<B: Backend, const D: usize>(
    t: &Tensor<B, D>,
    dtype: DType,
) -> Result<CudaTensor, KernelError> {
    let t = if t.dtype() == dtype {
        t.clone()
    } else {
        t.clone().cast(dtype)
    };
    as_cuda(&t)
}

/// `t` with unit-stride, densely packed rows (copied if it is not).
pub(crate) fn dense(t: CudaTensor) -> CudaTensor {
    if t.is_contiguous() {
        t
    } else {
        burn_cubecl::kernel::into_contiguous(t)
    }
}

/// The element types the kernels handle.
pub(crate) fn is_half(dtype: DType) -> bool {
    matches!(dtype, DType::BF16 | DType::F16)
}

impl<B: Backend> HotOps<B> for CudaKernels {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn linear(
        &self,
        x: Tensor<B, 2>,
        weight_t: &Tensor<B, 2>,
        bias: Option<&Tensor<B, 1>>,
        activation: Activation,
    ) -> Tensor<B, 2> {
        or_plain_burn(gemm::linear(&x, weight_t, bias, activation), || {
            BurnKernels.linear(x, weight_t, bias, activation)
        })
    }

    fn native_fp8(&self, device: &B::Device) -> bool {
        // SAFETY: probing for the library does not touch any CUDA state.
        let cublas = unsafe { cudarc::cublaslt::sys::is_culib_present() };
        cublas && cuda_index::<B>(device).is_some_and(fp8::has_fp8_tensor_cores)
    }

    fn quantize_fp8(&self, weight: Tensor<B, 2>) -> Fp8Matrix<B> {
        let on_gpu = as_cuda(&weight)
            .and_then(|w| fp8::quantize(w, fp8::Product::Bf16))
            .and_then(|(codes, scales)| {
                Ok(Fp8Matrix {
                    codes: from_cuda_int(codes)?,
                    scales: from_cuda(scales)?,
                })
            });
        or_plain_burn(on_gpu, || BurnKernels.quantize_fp8(weight))
    }

    fn linear_fp8(
        &self,
        x: Tensor<B, 2>,
        weight: &Fp8Matrix<B>,
        bias: Option<&Tensor<B, 1>>,
        activation: Activation,
    ) -> Tensor<B, 2> {
        let on_gpu = gemm::linear_fp8(&x, weight, bias, activation).or_else(|e| {
            report(&e);
            gemm::linear_fp8_decoded(&x, weight, bias, activation)
        });
        or_plain_burn(on_gpu, || {
            BurnKernels.linear_fp8(x, weight, bias, activation)
        })
    }

    fn linears_fp8(
        &self,
        x: Tensor<B, 2>,
        layers: &[(&Fp8Matrix<B>, Option<&Tensor<B, 1>>)],
    ) -> Vec<Tensor<B, 2>> {
        match gemm::linears_fp8(&x, layers) {
            Ok(outputs) => outputs,
            Err(e) => {
                report(&e);
                linear_fp8_each(self, x, layers)
            }
        }
    }

    fn attention(&self, q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 3> {
        or_plain_burn(flash::attention(&q, &k, &v), || {
            BurnKernels.attention(q, k, v)
        })
    }

    fn attention_segments(
        &self,
        q: Tensor<B, 4>,
        first: (Tensor<B, 4>, Tensor<B, 4>),
        second: (Tensor<B, 4>, Tensor<B, 4>),
    ) -> Tensor<B, 3> {
        or_plain_burn(
            flash::attention_segments(&q, (&first.0, &first.1), (&second.0, &second.1)),
            || BurnKernels.attention_segments(q, first, second),
        )
    }

    fn modulated_layer_norm(
        &self,
        x: Tensor<B, 3>,
        scale: Tensor<B, 3>,
        shift: Tensor<B, 3>,
        eps: f64,
    ) -> Tensor<B, 3> {
        or_plain_burn(fused::modulated_layer_norm(&x, &scale, &shift, eps), || {
            BurnKernels.modulated_layer_norm(x, scale, shift, eps)
        })
    }

    fn affine_layer_norm(
        &self,
        x: Tensor<B, 2>,
        weight: &Tensor<B, 1>,
        bias: &Tensor<B, 1>,
        eps: f64,
    ) -> Tensor<B, 2> {
        or_plain_burn(fused::affine_layer_norm(&x, weight, bias, eps), || {
            BurnKernels.affine_layer_norm(x, weight, bias, eps)
        })
    }

    fn rms_norm(&self, x: Tensor<B, 2>, weight: &Tensor<B, 1>, eps: f64) -> Tensor<B, 2> {
        or_plain_burn(fused::rms_norm(&x, weight, eps), || {
            BurnKernels.rms_norm(x, weight, eps)
        })
    }

    fn rope(&self, x: Tensor<B, 3>, cos: &Tensor<B, 2>, sin: &Tensor<B, 2>) -> Tensor<B, 3> {
        or_plain_burn(fused::rope(&x, cos, sin), || BurnKernels.rope(x, cos, sin))
    }

    fn gated_residual(&self, x: Tensor<B, 3>, y: Tensor<B, 3>, gate: Tensor<B, 3>) -> Tensor<B, 3> {
        or_plain_burn(fused::gated_residual(&x, &y, &gate), || {
            BurnKernels.gated_residual(x, y, gate)
        })
    }
}
