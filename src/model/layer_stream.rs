//! DiT blocks parked in host RAM for the layer-streaming placements. Each block's parameters
//! live in (page-locked, on burn-cuda) host memory; while one block computes, the next one is
//! copied in on the copy stream, so the device holds two blocks instead of all forty. Blocks are
//! parked one at a time as they load, so the whole DiT is never on the device at once.

use std::sync::Mutex;

use burn::tensor::{Int, Tensor, backend::Backend};

use super::dit::DitBlock;
use crate::kernels::host_tensor::{HostTensor, HostTensorError, Ready};

/// One parameter of a block, as [`DitBlock::for_each_tensor`] hands it out.
pub enum ParameterSlot<'a, B: Backend> {
    Vector(&'a mut Tensor<B, 1>),
    Matrix(&'a mut Tensor<B, 2>),
    /// A dense weight kept transposed (`[in, out]`, a view of the stored `[out, in]`): parked
    /// as `[out, in]` and transposed back on the way in, so the GEMMs see the same layout.
    Transposed(&'a mut Tensor<B, 2>),
    /// FP8 codes.
    Codes(&'a mut Tensor<B, 2, Int>),
}

/// A block whose parameters are in host RAM: a skeleton holding one-element placeholders, and
/// the parameters in the skeleton's visiting order.
struct ParkedBlock<B: Backend> {
    skeleton: DitBlock<B>,
    parameters: Vec<HostTensor<B>>,
}

/// A device buffer a parameter is copied into, kept for the block two places later (blocks
/// share their parameters' shapes), so the copies never go through burn's allocator.
#[derive(Clone)]
enum Staged<B: Backend> {
    Vector(Tensor<B, 1>),
    Matrix(Tensor<B, 2>),
    Codes(Tensor<B, 2, Int>),
}

/// The matrix in a staging slot, if it holds one.
fn matrix<B: Backend>(staged: Option<Staged<B>>) -> Option<Tensor<B, 2>> {
    match staged {
        Some(Staged::Matrix(buffer)) => Some(buffer),
        _ => None,
    }
}

/// One staging buffer per parameter of a block, in visiting order.
type Staging<B> = Vec<Option<Staged<B>>>;

/// A block on its way to the device.
pub struct PendingBlock<B: Backend> {
    block: DitBlock<B>,
    copies: Vec<Ready>,
}

impl<B: Backend> PendingBlock<B> {
    /// The block, with every later kernel ordered after its copies.
    pub fn wait(self) -> DitBlock<B> {
        for copy in self.copies {
            copy.wait();
        }
        self.block
    }
}

impl<B: Backend> ParkedBlock<B> {
    fn park(mut block: DitBlock<B>, index: usize) -> Result<Self, HostTensorError> {
        let device = block.modulation.device();
        let vector = Tensor::<B, 1>::zeros([1], &device);
        let matrix = vector.clone().reshape([1, 1]);
        let codes = Tensor::<B, 1, Int>::zeros([1], &device).reshape([1, 1]);
        let what = format!("DiT block {index}");
        let mut parameters = Vec::new();
        let mut failure = None;
        block.for_each_tensor(&mut |slot| {
            if failure.is_some() {
                return;
            }
            let parked = match slot {
                ParameterSlot::Vector(t) => {
                    HostTensor::from_tensor(std::mem::replace(t, vector.clone()), &what)
                }
                ParameterSlot::Matrix(t) => {
                    HostTensor::from_tensor(std::mem::replace(t, matrix.clone()), &what)
                }
                ParameterSlot::Transposed(t) => {
                    HostTensor::from_tensor(std::mem::replace(t, matrix.clone()).transpose(), &what)
                }
                ParameterSlot::Codes(t) => {
                    HostTensor::from_tensor(std::mem::replace(t, codes.clone()), &what)
                }
            };
            match parked {
                Ok(host) => parameters.push(host),
                Err(e) => failure = Some(e),
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(Self {
                skeleton: block,
                parameters,
            }),
        }
    }

    /// Starts copying the block in, into the buffers of `staging` (which keeps the ones used).
    fn upload(&mut self, staging: &mut Staging<B>) -> PendingBlock<B> {
        let mut block = self.skeleton.clone();
        let mut copies = Vec::with_capacity(self.parameters.len());
        staging.resize(self.parameters.len(), None);
        let mut parameters = self.parameters.iter_mut().zip(staging.iter_mut());
        block.for_each_tensor(&mut |slot| {
            // The skeleton was visited in this same order when it was parked.
            let Some((host, buffer)) = parameters.next() else {
                return;
            };
            let reused = buffer.take();
            // Only asynchronous copies write into a kept buffer.
            let keep = host.is_pinned();
            match slot {
                ParameterSlot::Vector(t) => {
                    let reuse = match reused {
                        Some(Staged::Vector(b)) => Some(b),
                        _ => None,
                    };
                    let (tensor, copy) = host.upload_all_into::<1>(reuse).into_parts();
                    if keep {
                        *buffer = Some(Staged::Vector(tensor.clone()));
                    }
                    *t = tensor;
                    copies.push(copy);
                }
                ParameterSlot::Matrix(t) => {
                    let (tensor, copy) = host.upload_all_into::<2>(matrix(reused)).into_parts();
                    if keep {
                        *buffer = Some(Staged::Matrix(tensor.clone()));
                    }
                    *t = tensor;
                    copies.push(copy);
                }
                ParameterSlot::Transposed(t) => {
                    // Parked as `[out, in]`: staged so, used transposed.
                    let (tensor, copy) = host.upload_all_into::<2>(matrix(reused)).into_parts();
                    if keep {
                        *buffer = Some(Staged::Matrix(tensor.clone()));
                    }
                    *t = tensor.transpose();
                    copies.push(copy);
                }
                ParameterSlot::Codes(t) => {
                    let reuse = match reused {
                        Some(Staged::Codes(b)) => Some(b),
                        _ => None,
                    };
                    let (tensor, copy) = host.upload_int_into::<2>(reuse).into_parts();
                    if keep {
                        *buffer = Some(Staged::Codes(tensor.clone()));
                    }
                    *t = tensor;
                    copies.push(copy);
                }
            }
        });
        PendingBlock { block, copies }
    }

    fn bytes(&self) -> usize {
        self.parameters.iter().map(HostTensor::bytes).sum()
    }
}

/// The parked blocks and the two sets of staging buffers they alternate between (one for the
/// block computing, one for the block on its way).
struct Parked<B: Backend> {
    blocks: Vec<ParkedBlock<B>>,
    staging: [Staging<B>; 2],
}

/// All blocks of a DiT in host RAM.
pub struct ParkedBlocks<B: Backend> {
    blocks: Mutex<Parked<B>>,
    count: usize,
    bytes: usize,
}

impl<B: Backend> std::fmt::Debug for ParkedBlocks<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedBlocks")
            .field("count", &self.count)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl<B: Backend> ParkedBlocks<B> {
    /// Parks `blocks` as they come (each leaves the device before the next is made).
    pub fn park_each<E: From<HostTensorError>>(
        blocks: impl Iterator<Item = Result<DitBlock<B>, E>>,
    ) -> Result<Self, E> {
        let mut parked = Vec::new();
        for (index, block) in blocks.enumerate() {
            parked.push(ParkedBlock::park(block?, index)?);
        }
        let bytes = parked.iter().map(ParkedBlock::bytes).sum();
        Ok(Self {
            count: parked.len(),
            bytes,
            blocks: Mutex::new(Parked {
                blocks: parked,
                staging: Default::default(),
            }),
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Host RAM the parked parameters take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Runs `each` on every block in order, threading `state` through; block `i + 1` copies in
    /// while block `i` computes.
    pub fn fold<T>(&self, mut state: T, mut each: impl FnMut(usize, &DitBlock<B>, T) -> T) -> T {
        // A panic in an earlier call (an out-of-memory the engine caught) leaves the blocks
        // as they were: the host copies are never modified after parking.
        let mut parked = self
            .blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Parked { blocks, staging } = &mut *parked;
        // Block `i` copies into staging set `i % 2`, which block `i − 2` used: its kernels are
        // enqueued by then, and every copy waits for what is enqueued.
        let mut next = blocks.first_mut().map(|b| b.upload(&mut staging[0]));
        for index in 0..blocks.len() {
            let Some(current) = next.take() else {
                break;
            };
            let current = current.wait();
            next = blocks
                .get_mut(index + 1)
                .map(|b| b.upload(&mut staging[(index + 1) % 2]));
            state = each(index, &current, state);
        }
        state
    }
}
