//! KV caches of the streaming DiT: per denoising step and layer a ring holding the last
//! clip's worth of rotated keys and values, plus the shared cond (sink) cache holding the
//! un-rotated keys and the values of the reference and motion tokens.

use burn::tensor::{Tensor, backend::Backend};

use super::config::{DitConfig, Geometry};
use crate::kernels::host_tensor::{HostTensor, HostTensorError, Upload, copy_rows_on_device};

/// Moves a cached tensor out, leaving an empty placeholder that is overwritten right after.
fn take_tensor<B: Backend>(slot: &mut Tensor<B, 3>) -> Tensor<B, 3> {
    let placeholder = Tensor::empty([0, 0, 0], &slot.device());
    std::mem::replace(slot, placeholder)
}

/// Where the step rings live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvPlacement {
    /// On the device, as the reference keeps them.
    #[default]
    Device,
    /// In host RAM (page-locked on burn-cuda): each layer's attended window is copied in just
    /// ahead of use and the block's new keys / values are copied back out, so the device holds
    /// about two layers of a ring instead of all of them.
    Host,
}

/// A layer's window already on its way to the device.
struct Prefetch<B: Backend> {
    layer: usize,
    slot: RingSlot,
    tokens: usize,
    keys: Upload<B, 3>,
    values: Upload<B, 3>,
}

/// A layer window's device buffers: keys, values.
type WindowBuffers<B> = (Option<Tensor<B, 3>>, Option<Tensor<B, 3>>);

enum RingLayers<B: Backend> {
    Device {
        keys: Vec<Tensor<B, 3>>,
        values: Vec<Tensor<B, 3>>,
    },
    Host {
        keys: Vec<HostTensor<B>>,
        values: Vec<HostTensor<B>>,
        /// The next layer's window, copied while this layer computes.
        ahead: Option<Prefetch<B>>,
        /// Device buffers the windows are copied into, by layer parity (keys, values): one for
        /// the layer computing, one for the layer on its way.
        staging: [WindowBuffers<B>; 2],
    },
}

/// Rolling cache of one denoising step: per layer `[capacity, heads, head_dim]` keys / values.
pub struct RingCache<B: Backend> {
    layers: RingLayers<B>,
    capacity: usize,
}

impl<B: Backend> std::fmt::Debug for RingCache<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingCache")
            .field("capacity", &self.capacity)
            .field("placement", &self.placement())
            .finish()
    }
}

/// Where a streaming call writes and how much of the ring it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSlot {
    pub write_offset: usize,
    pub active_tokens: usize,
}

/// One `[capacity, heads, head_dim]` zero buffer per layer: the layout both caches share, so
/// attention can read them side by side.
fn zeroed_layers<B: Backend>(
    layers: usize,
    capacity: usize,
    heads: usize,
    head_dim: usize,
    device: &B::Device,
) -> Vec<Tensor<B, 3>> {
    (0..layers)
        .map(|_| Tensor::zeros([capacity, heads, head_dim], device))
        .collect()
}

impl<B: Backend> RingCache<B> {
    pub fn new(
        layers: usize,
        capacity: usize,
        heads: usize,
        head_dim: usize,
        device: &B::Device,
    ) -> Self {
        let empty = || zeroed_layers(layers, capacity, heads, head_dim, device);
        Self {
            layers: RingLayers::Device {
                keys: empty(),
                values: empty(),
            },
            capacity,
        }
    }

    /// A ring kept in host RAM ([`KvPlacement::Host`]), in the element type of the backend's
    /// float tensors.
    pub fn on_host(
        layers: usize,
        capacity: usize,
        heads: usize,
        head_dim: usize,
        device: &B::Device,
    ) -> Result<Self, HostTensorError> {
        let dtype = <B::FloatElem as burn::tensor::Element>::dtype();
        let empty = |what: &str| {
            (0..layers)
                .map(|layer| {
                    HostTensor::zeros(
                        vec![capacity, heads, head_dim],
                        dtype,
                        device,
                        &format!("the {what} cache of layer {layer}"),
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            layers: RingLayers::Host {
                keys: empty("key")?,
                values: empty("value")?,
                ahead: None,
                staging: Default::default(),
            },
            capacity,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Host RAM the ring holds (0 on the device).
    pub fn host_bytes(&self) -> usize {
        match &self.layers {
            RingLayers::Device { .. } => 0,
            RingLayers::Host { keys, values, .. } => {
                keys.iter().chain(values).map(HostTensor::bytes).sum()
            }
        }
    }

    pub fn placement(&self) -> KvPlacement {
        match self.layers {
            RingLayers::Device { .. } => KvPlacement::Device,
            RingLayers::Host { .. } => KvPlacement::Host,
        }
    }

    /// The reference's ring rule: once the global token offset reaches the capacity, writes
    /// wrap modulo the capacity and the whole ring is attended.
    pub fn slot(&self, current_start: usize, block_tokens: usize) -> RingSlot {
        if current_start >= self.capacity {
            RingSlot {
                write_offset: current_start % self.capacity,
                active_tokens: self.capacity,
            }
        } else {
            RingSlot {
                write_offset: current_start,
                active_tokens: current_start + block_tokens,
            }
        }
    }

    /// Stores the block's keys / values at `slot` and returns the attended window.
    pub fn write_and_read(
        &mut self,
        layer: usize,
        slot: RingSlot,
        keys: Tensor<B, 3>,
        values: Tensor<B, 3>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let [tokens, heads, head_dim] = keys.dims();
        let region = [
            slot.write_offset..slot.write_offset + tokens,
            0..heads,
            0..head_dim,
        ];
        match &mut self.layers {
            RingLayers::Device {
                keys: stored_keys,
                values: stored_values,
            } => {
                // Taking the stored tensors out leaves them uniquely owned, so backends can
                // write in place instead of copying the whole ring on every call.
                let k = take_tensor(&mut stored_keys[layer]).slice_assign(region.clone(), keys);
                let v = take_tensor(&mut stored_values[layer]).slice_assign(region, values);
                stored_keys[layer] = k.clone();
                stored_values[layer] = v.clone();
                (
                    k.narrow(0, 0, slot.active_tokens),
                    v.narrow(0, 0, slot.active_tokens),
                )
            }
            RingLayers::Host {
                keys: host_keys,
                values: host_values,
                ahead,
                staging,
            } => {
                let mut fetch = |host_keys: &mut Vec<HostTensor<B>>,
                                 host_values: &mut Vec<HostTensor<B>>,
                                 layer: usize| {
                    // The block's own rows are written on the device right after, so they
                    // need not travel.
                    let window = 0..slot.active_tokens;
                    let own = slot.write_offset..slot.write_offset + tokens;
                    let (key_buffer, value_buffer) = &mut staging[layer % 2];
                    let keys = host_keys[layer].upload_into(
                        window.clone(),
                        own.clone(),
                        key_buffer.take(),
                    );
                    let values = host_values[layer].upload_into(window, own, value_buffer.take());
                    // Only asynchronous copies write into a kept buffer; elsewhere keeping one
                    // would just stop the window from being written in place.
                    if host_keys[layer].is_pinned() {
                        *key_buffer = Some(keys.tensor().clone());
                        *value_buffer = Some(values.tensor().clone());
                    }
                    Prefetch {
                        layer,
                        slot,
                        tokens,
                        keys,
                        values,
                    }
                };
                let current = match ahead.take() {
                    Some(p) if p.layer == layer && p.slot == slot && p.tokens == tokens => p,
                    _ => fetch(host_keys, host_values, layer),
                };
                // Start the next layer's copy now, so it runs while this layer computes.
                if layer + 1 < host_keys.len() {
                    *ahead = Some(fetch(host_keys, host_values, layer + 1));
                }
                host_keys[layer].write_rows(slot.write_offset, keys.clone());
                host_values[layer].write_rows(slot.write_offset, values.clone());
                let place = |window: Tensor<B, 3>, rows: Tensor<B, 3>| {
                    // The window is a staging buffer the ring keeps: written in place.
                    if copy_rows_on_device(&window, slot.write_offset, &rows) {
                        window
                    } else {
                        window.slice_assign(region.clone(), rows)
                    }
                };
                let k = place(current.keys.wait(), keys);
                let v = place(current.values.wait(), values);
                (k, v)
            }
        }
    }
}

/// Cond (sink) cache shared by all steps: per layer un-rotated keys and values.
#[derive(Debug, Clone)]
pub struct CondCache<B: Backend> {
    keys: Vec<Tensor<B, 3>>,
    values: Vec<Tensor<B, 3>>,
    capacity: usize,
    len: usize,
}

impl<B: Backend> CondCache<B> {
    pub fn new(
        layers: usize,
        capacity: usize,
        heads: usize,
        head_dim: usize,
        device: &B::Device,
    ) -> Self {
        let empty = || zeroed_layers(layers, capacity, heads, head_dim, device);
        Self {
            keys: empty(),
            values: empty(),
            capacity,
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Valid tokens (`cond_end`): the running maximum of the sink lengths written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores a sink pass' keys / values of `layer` from slot 0.
    pub fn write(&mut self, layer: usize, keys: Tensor<B, 3>, values: Tensor<B, 3>) {
        let [tokens, heads, head_dim] = keys.dims();
        let tokens = tokens.min(self.capacity);
        let keys = keys.narrow(0, 0, tokens);
        let values = values.narrow(0, 0, tokens);
        let region = [0..tokens, 0..heads, 0..head_dim];
        self.keys[layer] = take_tensor(&mut self.keys[layer]).slice_assign(region.clone(), keys);
        self.values[layer] = take_tensor(&mut self.values[layer]).slice_assign(region, values);
        if layer == 0 {
            self.len = self.len.max(tokens);
        }
    }

    /// Un-rotated keys and values of the valid tokens of `layer`.
    pub fn read(&self, layer: usize) -> (Tensor<B, 3>, Tensor<B, 3>) {
        (
            self.keys[layer].clone().narrow(0, 0, self.len),
            self.values[layer].clone().narrow(0, 0, self.len),
        )
    }
}

/// All caches of one render: one ring per denoising step and one cond cache.
#[derive(Debug)]
pub struct KvCache<B: Backend> {
    pub steps: Vec<RingCache<B>>,
    pub cond: CondCache<B>,
}

impl<B: Backend> KvCache<B> {
    /// Allocates the caches for a video of `geometry`: rings of `clip_latent_frames` frames of
    /// tokens, a cond cache of exactly the ref + motion token count.
    pub fn new(
        config: &DitConfig,
        geometry: &Geometry,
        clip_latent_frames: usize,
        steps: usize,
        device: &B::Device,
    ) -> Self {
        let ring = clip_latent_frames * geometry.frame_tokens;
        let layers = config.num_layers;
        let (heads, head_dim) = (config.num_heads, config.head_dim());
        Self::with_rings(
            config,
            geometry,
            (0..steps)
                .map(|_| RingCache::new(layers, ring, heads, head_dim, device))
                .collect(),
            device,
        )
    }

    /// As [`Self::new`], with the step rings where `placement` says (the cond cache, read by
    /// every call, stays on the device).
    pub fn with_placement(
        config: &DitConfig,
        geometry: &Geometry,
        clip_latent_frames: usize,
        steps: usize,
        placement: KvPlacement,
        device: &B::Device,
    ) -> Result<Self, HostTensorError> {
        if placement == KvPlacement::Device {
            return Ok(Self::new(
                config,
                geometry,
                clip_latent_frames,
                steps,
                device,
            ));
        }
        let ring = clip_latent_frames * geometry.frame_tokens;
        let layers = config.num_layers;
        let (heads, head_dim) = (config.num_heads, config.head_dim());
        let rings = (0..steps)
            .map(|_| RingCache::on_host(layers, ring, heads, head_dim, device))
            .collect::<Result<_, _>>()?;
        Ok(Self::with_rings(config, geometry, rings, device))
    }

    /// The step rings given, and the cond cache of exactly the ref + motion token count.
    fn with_rings(
        config: &DitConfig,
        geometry: &Geometry,
        steps: Vec<RingCache<B>>,
        device: &B::Device,
    ) -> Self {
        Self {
            steps,
            cond: CondCache::new(
                config.num_layers,
                geometry.cond_tokens,
                config.num_heads,
                config.head_dim(),
                device,
            ),
        }
    }
}
