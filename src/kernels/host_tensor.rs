//! Tensors parked in host RAM for one backend: what the placements that keep KV caches or DiT
//! blocks off the GPU hold there. On burn-cuda the bytes are page-locked and every copy runs on a copy stream
//! that overlaps the compute stream (`cuda::transfer`); elsewhere they are plain memory copied
//! by burn itself. When a GPU copy fails it is reported once and done the plain way instead,
//! so a render never depends on the fast path to be right.

use std::ops::Range;

use burn::tensor::{BasicOps, DType, Float, Int, Tensor, TensorData, TensorKind, backend::Backend};

/// Why a host tensor could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HostTensorError {
    #[error(
        "could not reserve {bytes} bytes of host RAM for {what}: free some RAM or pick a \
         placement that keeps it on the GPU"
    )]
    OutOfHostMemory { what: String, bytes: usize },
}

enum Storage {
    Plain(Vec<u8>),
    #[cfg(feature = "cuda")]
    Pinned(super::cuda::transfer::PinnedBuffer),
}

/// A `[rows, …]` tensor of backend `B` kept in host RAM, copied to and from the device a range
/// of rows at a time.
pub struct HostTensor<B: Backend> {
    shape: Vec<usize>,
    dtype: DType,
    storage: Storage,
    device: B::Device,
}

impl<B: Backend> std::fmt::Debug for HostTensor<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTensor")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("pinned", &self.is_pinned())
            .finish()
    }
}

/// The copy behind an [`Upload`]: burn's stream is ordered after it by [`Ready::wait`].
#[derive(Default)]
pub struct Ready {
    #[cfg(feature = "cuda")]
    done: Option<super::cuda::transfer::CopyDone>,
}

impl Ready {
    /// Orders every later kernel on the tensor's stream after the copy.
    pub fn wait(self) {
        #[cfg(feature = "cuda")]
        if let Some(done) = self.done
            && let Err(e) = done.wait()
        {
            report(&e.to_string());
            // The ordering could not be set up: wait for everything instead.
            let _ = cudarc::driver::result::ctx::synchronize();
        }
    }
}

/// An upload on its way: the tensor may be handed to kernels only after [`Upload::wait`] (or
/// the [`Ready::wait`] of its parts).
pub struct Upload<B: Backend, const D: usize, K: TensorKind<B> = Float> {
    tensor: Tensor<B, D, K>,
    ready: Ready,
}

impl<B: Backend, const D: usize, K: TensorKind<B>> Upload<B, D, K> {
    /// The device tensor, with every later kernel ordered after its copy.
    pub fn wait(self) -> Tensor<B, D, K> {
        self.ready.wait();
        self.tensor
    }

    /// The destination, not to be read by kernels before the wait.
    pub fn tensor(&self) -> &Tensor<B, D, K> {
        &self.tensor
    }

    /// The tensor and its copy apart, to wait for many copies at once.
    pub fn into_parts(self) -> (Tensor<B, D, K>, Ready) {
        (self.tensor, self.ready)
    }
}

/// Reports a failed fast copy once per message.
#[cfg(feature = "cuda")]
fn report(message: &str) {
    super::cuda::report_once(
        "asynchronous host copy unavailable, copying synchronously",
        message,
    );
}

fn plain_zeroed(bytes: usize, what: &str) -> Result<Vec<u8>, HostTensorError> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(bytes)
        .map_err(|_| HostTensorError::OutOfHostMemory {
            what: what.to_string(),
            bytes,
        })?;
    buffer.resize(bytes, 0);
    Ok(buffer)
}

impl<B: Backend> HostTensor<B> {
    /// A zeroed tensor of `shape` and `dtype` in host RAM, for copies with `device`. `what`
    /// names it in the error when the RAM is not there.
    pub fn zeros(
        shape: Vec<usize>,
        dtype: DType,
        device: &B::Device,
        what: &str,
    ) -> Result<Self, HostTensorError> {
        let bytes = shape.iter().product::<usize>() * dtype.size();
        let storage = Self::pinned(bytes, device)
            .map_or_else(|| plain_zeroed(bytes, what).map(Storage::Plain), Ok)?;
        Ok(Self {
            shape,
            dtype,
            storage,
            device: device.clone(),
        })
    }

    #[cfg(feature = "cuda")]
    fn pinned(bytes: usize, device: &B::Device) -> Option<Storage> {
        if !super::cuda::serves::<B>() {
            return None;
        }
        let gpu = super::cuda::gpu_index::<B>(device)?;
        match super::cuda::transfer::PinnedBuffer::zeroed(gpu, bytes) {
            Ok(buffer) => Some(Storage::Pinned(buffer)),
            Err(e) => {
                report(&format!("page-locked host memory: {e}"));
                None
            }
        }
    }

    #[cfg(not(feature = "cuda"))]
    fn pinned(_bytes: usize, _device: &B::Device) -> Option<Storage> {
        None
    }

    /// Whether the bytes are page-locked and copied asynchronously.
    pub fn is_pinned(&self) -> bool {
        match &self.storage {
            Storage::Plain(_) => false,
            #[cfg(feature = "cuda")]
            Storage::Pinned(_) => true,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    fn row_bytes(&self) -> usize {
        self.shape.iter().skip(1).product::<usize>() * self.dtype.size()
    }

    /// Bytes held in host RAM.
    pub fn bytes(&self) -> usize {
        self.rows() * self.row_bytes()
    }

    fn check_rows(&self, rows: &Range<usize>) {
        // Row ranges come from the cache's own bookkeeping, never from a file or a user.
        assert!(
            rows.start <= rows.end && rows.end <= self.rows(),
            "rows {rows:?} outside a host tensor of {} rows",
            self.rows()
        );
    }

    /// Starts copying `rows` to the device as a `[rows.len(), …]` float tensor. The rows in
    /// `skip` (a sub-range of `rows`, which the caller overwrites on the device before reading)
    /// need not be copied; the asynchronous path leaves them out.
    pub fn upload<const D: usize>(
        &mut self,
        rows: Range<usize>,
        skip: Range<usize>,
    ) -> Upload<B, D> {
        self.upload_into(rows, skip, None)
    }

    /// As [`Self::upload`], into `staging` when it is a device tensor of the right shape and
    /// the copy is asynchronous. A staging buffer reused this way never goes back to burn's
    /// allocator, whose pools fragment when hundreds of large copies a second churn through
    /// them; the caller must be done with its previous contents in stream order (its kernels
    /// enqueued), which every copy waits for.
    pub fn upload_into<const D: usize>(
        &mut self,
        rows: Range<usize>,
        skip: Range<usize>,
        staging: Option<Tensor<B, D>>,
    ) -> Upload<B, D> {
        #[cfg(feature = "cuda")]
        let to_cuda = |t: &Tensor<B, D>| super::cuda::as_cuda(t);
        #[cfg(not(feature = "cuda"))]
        let to_cuda = |_: &Tensor<B, D>| ();
        self.upload_as(rows, skip, staging, to_cuda)
    }

    /// Starts copying the whole tensor to the device as an integer tensor (FP8 codes), into
    /// `staging` as [`Self::upload_into`] does.
    pub fn upload_int_into<const D: usize>(
        &mut self,
        staging: Option<Tensor<B, D, Int>>,
    ) -> Upload<B, D, Int> {
        #[cfg(feature = "cuda")]
        let to_cuda = |t: &Tensor<B, D, Int>| super::cuda::as_cuda_int(t);
        #[cfg(not(feature = "cuda"))]
        let to_cuda = |_: &Tensor<B, D, Int>| ();
        let rows = 0..self.rows();
        self.upload_as(rows, 0..0, staging, to_cuda)
    }

    /// Starts copying the whole tensor to the device as a float tensor, into `staging` as
    /// [`Self::upload_into`] does.
    pub fn upload_all_into<const D: usize>(
        &mut self,
        staging: Option<Tensor<B, D>>,
    ) -> Upload<B, D> {
        let rows = 0..self.rows();
        self.upload_into(rows, 0..0, staging)
    }

    fn upload_as<const D: usize, K: TensorKind<B> + BasicOps<B>>(
        &mut self,
        rows: Range<usize>,
        skip: Range<usize>,
        staging: Option<Tensor<B, D, K>>,
        #[cfg(feature = "cuda")] to_cuda: impl Fn(
            &Tensor<B, D, K>,
        ) -> Result<
            super::cuda::CudaTensor,
            super::cuda::KernelError,
        >,
        #[cfg(not(feature = "cuda"))] _to_cuda: impl Fn(&Tensor<B, D, K>),
    ) -> Upload<B, D, K> {
        self.check_rows(&rows);
        assert_eq!(
            D,
            self.shape.len(),
            "upload of a {}-d host tensor as {D}-d",
            self.shape.len()
        );
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        let row_bytes = self.row_bytes();
        #[cfg(feature = "cuda")]
        if let Storage::Pinned(buffer) = &mut self.storage {
            let tensor = match staging {
                Some(buffer) if buffer.dims()[..] == shape[..] && buffer.dtype() == self.dtype => {
                    buffer
                }
                _ => Tensor::<B, D, K>::empty(shape.clone(), (&self.device, self.dtype)),
            };
            let skip = skip.start.clamp(rows.start, rows.end)..skip.end.clamp(rows.start, rows.end);
            let pieces: Vec<(usize, usize, usize)> = [rows.start..skip.start, skip.end..rows.end]
                .into_iter()
                .filter(|piece| !piece.is_empty())
                .map(|piece| {
                    (
                        piece.start * row_bytes,
                        (piece.start - rows.start) * row_bytes,
                        piece.len() * row_bytes,
                    )
                })
                .collect();
            match to_cuda(&tensor).and_then(|t| buffer.upload(&t, &pieces)) {
                Ok(done) => {
                    return Upload {
                        tensor,
                        ready: Ready { done: Some(done) },
                    };
                }
                Err(e) => report(&e.to_string()),
            }
        }
        let _ = skip;
        #[cfg(not(feature = "cuda"))]
        drop(staging);
        let bytes = self.host_bytes()[rows.start * row_bytes..rows.end * row_bytes].to_vec();
        let data = TensorData::from_bytes_vec(bytes, shape, self.dtype);
        Upload {
            tensor: Tensor::from_data(data, (&self.device, self.dtype)),
            ready: Ready::default(),
        }
    }

    /// A host copy of `tensor` (read back now, synchronously: for parking weights at load).
    pub fn from_tensor<const D: usize, K: TensorKind<B> + BasicOps<B>>(
        tensor: Tensor<B, D, K>,
        what: &str,
    ) -> Result<Self, HostTensorError> {
        let device = tensor.device();
        let data = tensor.into_data();
        let mut host = Self::zeros(data.shape.to_vec(), data.dtype, &device, what)?;
        host.host_bytes_mut().copy_from_slice(data.as_bytes());
        Ok(host)
    }

    /// Stores `tensor` (`[n, …]`, the same trailing shape) at rows `first_row..first_row + n`.
    /// On the GPU the copy runs behind the kernels that make `tensor` and this returns at once.
    pub fn write_rows<const D: usize>(&mut self, first_row: usize, tensor: Tensor<B, D>) {
        let n = tensor.dims()[0];
        self.check_rows(&(first_row..first_row + n));
        assert_eq!(
            &tensor.dims()[1..],
            &self.shape[1..],
            "rows of another shape written to a host tensor"
        );
        let tensor = if tensor.dtype() == self.dtype {
            tensor
        } else {
            tensor.cast(self.dtype)
        };
        let offset = first_row * self.row_bytes();
        #[cfg(feature = "cuda")]
        if let Storage::Pinned(buffer) = &mut self.storage {
            let started = super::cuda::as_cuda(&tensor).and_then(|t| buffer.download(t, offset));
            match started {
                Ok(()) => return,
                Err(e) => report(&e.to_string()),
            }
        }
        let data = tensor.into_data();
        let source = data.as_bytes();
        self.host_bytes_mut()[offset..offset + source.len()].copy_from_slice(source);
    }

    /// The bytes on the CPU, once every copy has finished. A GPU that cannot even finish its
    /// copies has failed for every other operation too: that ends the render as burn-cuda's
    /// own failures do, with a panic the engine reports (handing on zeros would make a wrong
    /// video without a word).
    fn host_bytes(&mut self) -> &[u8] {
        match &mut self.storage {
            Storage::Plain(bytes) => bytes,
            #[cfg(feature = "cuda")]
            Storage::Pinned(buffer) => buffer
                .bytes()
                .unwrap_or_else(|e| panic!("the GPU failed with host copies in flight: {e}")),
        }
    }

    fn host_bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.storage {
            Storage::Plain(bytes) => bytes,
            #[cfg(feature = "cuda")]
            Storage::Pinned(buffer) => buffer
                .bytes_mut()
                .unwrap_or_else(|e| panic!("the GPU failed with host copies in flight: {e}")),
        }
    }
}

/// Copies `src` (`[n, …]`) into rows `first_row..first_row + n` of `dst` on the device, in
/// place and in stream order, whoever else holds `dst`; `false` where this backend cannot (the
/// caller then uses `slice_assign`).
pub fn copy_rows_on_device<B: Backend, const D: usize>(
    dst: &Tensor<B, D>,
    first_row: usize,
    src: &Tensor<B, D>,
) -> bool {
    #[cfg(feature = "cuda")]
    {
        let row_bytes = src.dims()[1..].iter().product::<usize>() * src.dtype().size();
        let copied = super::cuda::as_cuda(dst).and_then(|d| {
            super::cuda::as_cuda(src)
                .and_then(|s| super::cuda::transfer::copy_on_stream(&d, first_row * row_bytes, s))
        });
        match copied {
            Ok(()) => true,
            Err(e) => {
                report(&e.to_string());
                false
            }
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (dst, first_row, src);
        false
    }
}
