//! The explicit per-convolution feature cache of the Wan 2.1 causal VAE.
//!
//! The reference walks its convolutions in a fixed order on every chunk and keeps, per causal
//! convolution, the last two frames of that convolution's *input* (`CACHE_T = 2`), so that the
//! next chunk sees the same temporal context a whole-sequence convolution would. Temporal
//! resample layers use their slot differently (the decoder's upsample starts in a `Rep` state,
//! the encoder's downsample keeps the last chunk). Slots are addressed by visiting order, which
//! is why a cursor is reset before each chunk.

use burn::tensor::{Tensor, backend::Backend};

/// Frames kept per causal convolution.
pub const CACHE_T: usize = 2;

/// What one cache slot holds.
#[derive(Debug, Clone)]
pub enum CacheEntry<B: Backend> {
    /// Decoder temporal upsample after its first chunk: the time convolution was skipped once
    /// and the next chunk must run it with zero history.
    Rep,
    /// Stored frames `[b, c, t<=2, h, w]`.
    Frames(Tensor<B, 5>),
}

/// The cache of one encoder or decoder, plus the visiting cursor of the current chunk.
#[derive(Debug, Clone)]
pub struct FeatCache<B: Backend> {
    slots: Vec<Option<CacheEntry<B>>>,
    cursor: usize,
}

impl<B: Backend> Default for FeatCache<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> FeatCache<B> {
    /// An empty cache: the next chunk is treated as the start of a sequence.
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            cursor: 0,
        }
    }

    /// Restarts the visiting order; call before each chunk.
    pub fn start_chunk(&mut self) {
        self.cursor = 0;
    }

    /// Forgets all cached frames.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.cursor = 0;
    }

    /// Number of slots filled so far.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether no slot holds anything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the entry of the next slot in visiting order and returns its index, so that the
    /// caller can store the replacement with [`FeatCache::put`].
    pub fn take_next(&mut self) -> (usize, Option<CacheEntry<B>>) {
        let idx = self.cursor;
        self.cursor += 1;
        if self.slots.len() <= idx {
            self.slots.resize(idx + 1, None);
        }
        (idx, self.slots[idx].take())
    }

    /// Stores `entry` in slot `idx`.
    pub fn put(&mut self, idx: usize, entry: CacheEntry<B>) {
        if self.slots.len() <= idx {
            self.slots.resize(idx + 1, None);
        }
        self.slots[idx] = Some(entry);
    }
}

/// The frames to remember for a causal convolution whose input is `x`: its last two frames,
/// or, if the chunk has a single frame, the previous cache's last frame followed by it.
pub fn next_cache_frames<B: Backend>(
    x: &Tensor<B, 5>,
    prev: Option<&Tensor<B, 5>>,
) -> Tensor<B, 5> {
    let t = x.dims()[2];
    let keep = t.min(CACHE_T);
    let tail = x.clone().narrow(2, t - keep, keep);
    match prev {
        Some(p) if keep < CACHE_T => {
            let pt = p.dims()[2];
            Tensor::cat(vec![p.clone().narrow(2, pt - 1, 1), tail], 2)
        }
        _ => tail,
    }
}
