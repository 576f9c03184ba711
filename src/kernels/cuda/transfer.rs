//! Page-locked host buffers and the copies between them and burn-cuda's memory, enqueued on a
//! copy stream of their own so they run while the compute stream works. Ordering with burn's
//! stream goes through events in both directions:
//! - an upload first waits for everything already enqueued on burn's stream (the destination
//!   was just allocated from burn's pool and its previous user may still be running), and
//!   burn's stream waits for the upload only when the tensor is first needed ([`CopyDone`]);
//! - a download waits for the kernels that made its source, and the source tensor is kept
//!   alive until the copy has finished, so burn cannot hand its memory to another kernel early.

use std::collections::VecDeque;
use std::sync::Mutex;

use cudarc::driver::result::{event, stream};
use cudarc::driver::sys::{self, CUevent, CUstream};

use super::device::{DeviceContext, raw_buffer};
use super::{CudaTensor, KernelError, dense};

/// An event recorded on `stream` now.
fn record_on(stream_handle: CUstream) -> Result<CUevent, KernelError> {
    let event = event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)?;
    // SAFETY: the event was just created; the stream is burn-cuda's or the copy stream, both
    // alive for the life of the process.
    unsafe { event::record(event, stream_handle)? };
    Ok(event)
}

/// Makes `waiter` wait for `event`, then releases the event (the driver keeps it until done).
fn wait_and_release(waiter: CUstream, event: CUevent) -> Result<(), KernelError> {
    // SAFETY: both handles are alive; destroying a pending event is allowed and deferred.
    unsafe {
        let waited = stream::wait_event(
            waiter,
            event,
            sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
        );
        event::destroy(event)?;
        waited?;
    }
    Ok(())
}

/// An upload in flight: burn's stream has not yet been told to wait for it.
#[derive(Debug)]
pub struct CopyDone {
    event: CUevent,
    compute: CUstream,
    context: &'static DeviceContext,
}

// Driver handles, usable from any thread of the process.
unsafe impl Send for CopyDone {}

impl CopyDone {
    /// Orders every later kernel on the tensor's stream after the copy.
    pub fn wait(self) -> Result<(), KernelError> {
        let done = std::mem::ManuallyDrop::new(self);
        done.context.make_current()?;
        wait_and_release(done.compute, done.event)
    }
}

impl Drop for CopyDone {
    fn drop(&mut self) {
        // An upload dropped unused must still finish before burn reuses its destination.
        let _ = self.context.make_current();
        let _ = wait_and_release(self.compute, self.event);
    }
}

/// A download in flight and the tensor it reads.
struct Download {
    event: CUevent,
    _source: CudaTensor,
}

// The event is a process-wide driver handle; the tensor is a burn-cuda handle.
unsafe impl Send for Download {}

/// Every download in flight, oldest first. One queue for all buffers, reaped at every copy, so
/// a source tensor goes back to burn's pool as soon as its copy is done rather than when its
/// own buffer is next written (a render writes each of its hundreds of buffers once per call).
static DOWNLOADS: Mutex<VecDeque<Download>> = Mutex::new(VecDeque::new());

/// Downloads whose source tensors may be held at once. The host enqueues work far ahead of the
/// GPU, so without a bound it would hold a whole call's worth of sources (gigabytes at 14B
/// sizes); past it the host waits for the oldest copy (one layer of a step-batched call; the
/// GPU keeps the work already enqueued).
const MAX_DOWNLOADS_IN_FLIGHT: usize = 8;

fn downloads() -> std::sync::MutexGuard<'static, VecDeque<Download>> {
    // The queue holds whole entries only: a panic elsewhere cannot leave one half-made.
    DOWNLOADS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Releases the source tensors of finished downloads.
fn reap_downloads() -> Result<(), KernelError> {
    let mut queue = downloads();
    while let Some(front) = queue.front() {
        // SAFETY: the event is alive until destroyed here.
        match unsafe { event::query(front.event) } {
            Ok(()) => {
                if let Some(done) = queue.pop_front() {
                    // SAFETY: completed, destroyed once.
                    unsafe { event::destroy(done.event)? };
                }
            }
            Err(e) if e.0 == sys::cudaError_enum::CUDA_ERROR_NOT_READY => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Page-locked host memory of one GPU's copies.
pub struct PinnedBuffer {
    ptr: *mut u8,
    len: usize,
    context: &'static DeviceContext,
}

// The buffer is owned memory; the handles are process-wide driver objects.
unsafe impl Send for PinnedBuffer {}
unsafe impl Sync for PinnedBuffer {}

impl std::fmt::Debug for PinnedBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedBuffer")
            .field("len", &self.len)
            .finish()
    }
}

impl PinnedBuffer {
    /// `len` zeroed bytes of page-locked host memory for copies with GPU `gpu`.
    pub fn zeroed(gpu: usize, len: usize) -> Result<Self, KernelError> {
        let context = DeviceContext::get(gpu)?;
        context.make_current()?;
        let len_alloc = len.max(1);
        // SAFETY: a plain allocation; the memory is zeroed below before anything reads it.
        let ptr = unsafe {
            cudarc::driver::result::malloc_host(len_alloc, sys::CU_MEMHOSTALLOC_PORTABLE)?
        } as *mut u8;
        // SAFETY: `ptr` points at `len_alloc` writable bytes just allocated.
        unsafe { std::ptr::write_bytes(ptr, 0, len_alloc) };
        Ok(Self { ptr, len, context })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, bytes: usize) -> Result<(), KernelError> {
        if offset.checked_add(bytes).is_none_or(|end| end > self.len) {
            return Err(KernelError::Unsupported(format!(
                "copy of {bytes} bytes at {offset} outside a {}-byte host buffer",
                self.len
            )));
        }
        Ok(())
    }

    /// Copies `pieces` (`(host offset, offset in dst, bytes)`) into `dst` on the copy stream,
    /// after the work already enqueued on `dst`'s stream. Burn's stream does not wait for the
    /// copy until [`CopyDone::wait`].
    pub fn upload(
        &mut self,
        dst: &CudaTensor,
        pieces: &[(usize, usize, usize)],
    ) -> Result<CopyDone, KernelError> {
        self.context.make_current()?;
        reap_downloads()?;
        let copy = self.context.copy_stream()?;
        let target = raw_buffer(dst)?;
        let dst_bytes = dst.meta.shape.num_elements() * dst.dtype.size();
        for &(src, at, bytes) in pieces {
            self.check(src, bytes)?;
            if at + bytes > dst_bytes {
                return Err(KernelError::Unsupported(format!(
                    "upload of {bytes} bytes at {at} outside a {dst_bytes}-byte tensor"
                )));
            }
        }
        wait_and_release(copy, record_on(target.stream)?)?;
        for &(src, at, bytes) in pieces {
            // SAFETY: both ranges were checked above; the host memory outlives the copy (the
            // buffer synchronises the copy stream before it is freed) and `dst` is kept alive
            // by the caller until `CopyDone` has ordered burn's stream after the copy.
            unsafe {
                sys::cuMemcpyHtoDAsync_v2(
                    target.address + at as u64,
                    self.ptr.add(src) as *const _,
                    bytes,
                    copy,
                )
                .result()?;
            }
        }
        Ok(CopyDone {
            event: record_on(copy)?,
            compute: target.stream,
            context: self.context,
        })
    }

    /// Copies `src` into the buffer at `offset` on the copy stream, after the kernels that
    /// make `src`; returns at once.
    pub fn download(&mut self, src: CudaTensor, offset: usize) -> Result<(), KernelError> {
        self.context.make_current()?;
        reap_downloads()?;
        let copy = self.context.copy_stream()?;
        let src = dense(src);
        let bytes = src.meta.shape.num_elements() * src.dtype.size();
        self.check(offset, bytes)?;
        let source = raw_buffer(&src)?;
        wait_and_release(copy, record_on(source.stream)?)?;
        // SAFETY: the range was checked; `src` stays alive in the download queue until the
        // event recorded after the copy has completed.
        unsafe {
            sys::cuMemcpyDtoHAsync_v2(self.ptr.add(offset) as *mut _, source.address, bytes, copy)
                .result()?;
        }
        let event = record_on(copy)?;
        let mut queue = downloads();
        queue.push_back(Download {
            event,
            _source: src,
        });
        while queue.len() > MAX_DOWNLOADS_IN_FLIGHT {
            if let Some(oldest) = queue.pop_front() {
                // SAFETY: the event is alive until destroyed here, once.
                unsafe {
                    event::synchronize(oldest.event)?;
                    event::destroy(oldest.event)?;
                }
            }
        }
        Ok(())
    }

    /// Waits for every copy from or to this buffer.
    pub fn synchronize(&mut self) -> Result<(), KernelError> {
        self.context.make_current()?;
        let copy = self.context.copy_stream()?;
        // SAFETY: the copy stream is alive for the life of the process.
        unsafe { stream::synchronize(copy)? };
        reap_downloads()
    }

    /// The bytes, once every copy has finished (the fallback path reads them on the CPU).
    pub fn bytes(&mut self) -> Result<&[u8], KernelError> {
        self.synchronize()?;
        // SAFETY: `ptr` holds `len` initialised bytes and no copy is writing them.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }

    /// The bytes for writing on the CPU, once every copy has finished.
    pub fn bytes_mut(&mut self) -> Result<&mut [u8], KernelError> {
        self.synchronize()?;
        // SAFETY: as `bytes`, and `&mut self` makes this the only view.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) })
    }
}

impl Drop for PinnedBuffer {
    fn drop(&mut self) {
        // The memory may only go once no copy reads or writes it.
        if self.synchronize().is_err() {
            // SAFETY: a context-wide wait is the last resort before freeing.
            let _ = cudarc::driver::result::ctx::synchronize();
        }
        // SAFETY: allocated by `malloc_host`, freed once, no copy in flight.
        let _ = unsafe { cudarc::driver::result::free_host(self.ptr as *mut _) };
    }
}

/// Copies `src` into `dst` at byte `offset` on the tensors' own stream (after the kernels that
/// make `src`, before any later one that reads `dst`).
pub fn copy_on_stream(dst: &CudaTensor, offset: usize, src: CudaTensor) -> Result<(), KernelError> {
    let src = dense(src);
    let bytes = src.meta.shape.num_elements() * src.dtype.size();
    let dst_bytes = dst.meta.shape.num_elements() * dst.dtype.size();
    if !dst.is_contiguous() || offset + bytes > dst_bytes || src.dtype != dst.dtype {
        return Err(KernelError::Unsupported(format!(
            "a {bytes}-byte copy at {offset} into a {dst_bytes}-byte tensor"
        )));
    }
    DeviceContext::get(dst.device.index)?.make_current()?;
    let target = raw_buffer(dst)?;
    let source = raw_buffer(&src)?;
    if target.stream != source.stream {
        return Err(KernelError::Unsupported("tensors on two streams".into()));
    }
    // SAFETY: both ranges lie inside live tensors; on their shared stream the copy runs after
    // the work that made `src` and before any later reuse of either buffer.
    unsafe {
        sys::cuMemcpyDtoDAsync_v2(
            target.address + offset as u64,
            source.address,
            bytes,
            target.stream,
        )
        .result()?;
    }
    Ok(())
}
