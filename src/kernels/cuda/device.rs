//! The CUDA context of each GPU as seen from the calling thread, and the device address and
//! stream of a burn-cuda tensor's memory.

use std::collections::HashMap;
use std::sync::Mutex;

use cudarc::driver::result as driver;
use cudarc::driver::sys::{CUcontext, CUdevice_attribute, CUstream};

use super::{CudaTensor, KernelError};

/// The primary context of one GPU (the one burn-cuda uses) and what the kernels need to know
/// about the GPU.
#[derive(Debug)]
pub struct DeviceContext {
    context: CUcontext,
    /// Compute capability, e.g. `(9, 0)` for Hopper.
    pub capability: (i32, i32),
    /// The stream host↔device copies run on (made on first use), beside burn's compute stream.
    copy_stream: std::sync::OnceLock<usize>,
}

// The context handle is a process-wide driver object, usable from any thread.
unsafe impl Send for DeviceContext {}
unsafe impl Sync for DeviceContext {}

impl DeviceContext {
    /// The context of GPU `index`, retained once per process.
    pub fn get(index: usize) -> Result<&'static DeviceContext, KernelError> {
        static CONTEXTS: Mutex<Option<HashMap<usize, &'static DeviceContext>>> = Mutex::new(None);
        let mut contexts = CONTEXTS
            .lock()
            .map_err(|_| KernelError::Burn("device table poisoned".into()))?;
        let contexts = contexts.get_or_insert_with(HashMap::new);
        if let Some(found) = contexts.get(&index) {
            return Ok(found);
        }
        driver::init()?;
        let ordinal = i32::try_from(index)
            .map_err(|_| KernelError::Unsupported(format!("GPU index {index}")))?;
        let device = driver::device::get(ordinal)?;
        // SAFETY: `device` is a valid handle from `device::get`; the primary context is the
        // one burn-cuda retains, and it is retained here for the life of the process.
        let (context, capability) = unsafe {
            let major = driver::device::get_attribute(
                device,
                CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
            )?;
            let minor = driver::device::get_attribute(
                device,
                CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
            )?;
            (driver::primary_ctx::retain(device)?, (major, minor))
        };
        let leaked: &'static DeviceContext = Box::leak(Box::new(DeviceContext {
            context,
            capability,
            copy_stream: std::sync::OnceLock::new(),
        }));
        contexts.insert(index, leaked);
        Ok(leaked)
    }

    /// Makes this context current on the calling thread (cheap when it already is).
    pub fn make_current(&self) -> Result<(), KernelError> {
        // SAFETY: the context was retained in `get` and is never released.
        unsafe { driver::ctx::set_current(self.context)? };
        Ok(())
    }

    /// The GPU's copy stream: non-blocking, so copies overlap burn's kernels; it lives for the
    /// rest of the process, as the context does.
    pub fn copy_stream(&self) -> Result<CUstream, KernelError> {
        if let Some(&handle) = self.copy_stream.get() {
            return Ok(handle as CUstream);
        }
        self.make_current()?;
        let created = driver::stream::create(driver::stream::StreamKind::NonBlocking)?;
        match self.copy_stream.set(created as usize) {
            Ok(()) => Ok(created),
            Err(_) => {
                // Another thread made one first: use that one.
                // SAFETY: `created` was made above and nothing has used it.
                unsafe { driver::stream::destroy(created)? };
                self.copy_stream
                    .get()
                    .map(|&handle| handle as CUstream)
                    .ok_or_else(|| KernelError::Burn("copy stream lost".into()))
            }
        }
    }
}

/// Where a tensor's elements live: the device address of its first element (view offset
/// included) and the stream that orders work on that memory.
#[derive(Debug, Clone, Copy)]
pub struct RawBuffer {
    pub address: u64,
    pub stream: CUstream,
}

/// The [`RawBuffer`] of `tensor`. The address stays valid while `tensor` (or another handle to
/// its memory) is alive; work enqueued on the stream runs after every kernel already enqueued
/// on that memory, and before any later reuse of it.
pub fn raw_buffer(tensor: &CudaTensor) -> Result<RawBuffer, KernelError> {
    let resource = tensor
        .client
        .get_resource(tensor.handle.clone())
        .map_err(|e| KernelError::Burn(format!("{e:?}")))?;
    let resource = resource.resource();
    Ok(RawBuffer {
        address: resource.ptr,
        stream: resource.stream,
    })
}
