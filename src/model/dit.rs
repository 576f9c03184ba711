//! The causal S2V diffusion transformer (`CausalWanModel_S2V`): embeddings, the zero-timestep
//! modulation, attention blocks over [ring cache + cond cache], audio injection, the head and
//! unpatchify, with the two inference entry points (sink prefill and streaming call).

use burn::tensor::activation::{gelu_approximate, silu};
use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::audio::{AudioInjector, AudioTokens, CausalAudioEncoder};
use super::config::{DitConfig, Geometry, InvalidConfig};
use super::kv_cache::{CondCache, RingCache};
use super::layer_stream::{ParameterSlot, ParkedBlocks};
use super::layers::{
    AffineLayerNorm, Linear, ParameterSource, PatchConv3d, RmsNorm, attention, layer_norm,
    round_to_bf16,
};
use super::motion::{FramePack, motion_rope_groups};
use super::rope::{RopeGroup, RopeTable};
use crate::kernels::host_tensor::HostTensorError;
use crate::kernels::hot_ops;
use crate::kernels::on_device_thread;

/// Reference precision quirks that a float32 run reproduces (both on for parity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numerics {
    /// Round the norm3 (cross-attention LayerNorm) input and output to bf16.
    pub round_norm3_bf16: bool,
    /// Round RoPE cos / sin to f16 (the reference's complex-half buffer).
    pub round_rope_fp16: bool,
}

impl Default for Numerics {
    fn default() -> Self {
        Self {
            round_norm3_bf16: true,
            round_rope_fp16: true,
        }
    }
}

/// Per-layer cross-attention keys / values of the text context (constant for a video).
#[derive(Debug, Clone)]
pub struct TextContext<B: Backend> {
    /// `[text_len, dim]`: the output of `text_embedding`.
    pub embedded: Tensor<B, 2>,
    layers: Vec<(Tensor<B, 4>, Tensor<B, 4>)>,
}

/// Timestep conditioning of one call.
#[derive(Debug, Clone)]
pub struct TimeConditioning<B: Backend> {
    /// `[2·frames, dim]` `time_embedding` output: real t rows, then t = 0 rows.
    pub embedding: Tensor<B, 2>,
    /// `[2, frames, 6, dim]` projected modulation: slot 0 real t, slot 1 t = 0.
    pub projection: Tensor<B, 4>,
}

/// Inputs of one streaming call (one block of latent frames at one denoising step).
#[derive(Debug, Clone)]
pub struct StreamInput<B: Backend> {
    /// `[in_dim, frames, h, w]` noisy latents.
    pub latents: Tensor<B, 4>,
    /// The timestep fed to the model (same for every frame of the block).
    pub timestep: f32,
    /// `[cond_dim, frames, h, w]` pose condition (zeros without a pose video).
    pub cond_states: Tensor<B, 4>,
    /// `[audio_layers, audio_dim, video_frames]` wav2vec2 features of the block's video frames.
    pub audio: Tensor<B, 3>,
    /// Global token offset of the block: `block_index · frames · frame_tokens`.
    pub current_start: usize,
    /// The per-call reference RoPE offset (`random.randint(4, 30)` in the reference).
    pub ref_offset: i64,
}

/// What the transformer layers of one streaming call share (see
/// [`DitModel::stream_layer_inputs`]).
#[derive(Debug, Clone)]
pub struct StreamLayerInputs<B: Backend> {
    rope: RopeTable<B>,
    cond_rope: RopeTable<B>,
    time: TimeConditioning<B>,
    /// `[frames, 6, dim]`
    modulation: Tensor<B, 3>,
    current_start: usize,
}

/// One streaming call's input made ready for the transformer ([`DitModel::embed_call`]).
struct EmbeddedCall<B: Backend> {
    /// `[tokens, dim]` hidden states entering the first layer.
    hidden: Tensor<B, 2>,
    audio: AudioTokens<B>,
    layer_inputs: StreamLayerInputs<B>,
    /// The patch grid, for unpatchify.
    grid: [usize; 3],
    frames: usize,
}

/// Intermediate activations of one call (`[tokens, dim]` each), for debugging and parity.
#[derive(Debug, Clone, Default)]
pub struct DitTrace<B: Backend> {
    /// Hidden state entering block 0.
    pub block_input: Option<Tensor<B, 2>>,
    /// Output of every transformer block, before audio injection.
    pub block_outputs: Vec<Tensor<B, 2>>,
    /// Hidden state after each block's audio injection (equal to the block output where the
    /// block is not injected). Empty for the sink.
    pub after_audio: Vec<Tensor<B, 2>>,
    /// Head output `[tokens, patch values]` before unpatchify (streaming calls only).
    pub head: Option<Tensor<B, 2>>,
}

/// One transformer block.
#[derive(Debug, Clone)]
pub struct DitBlock<B: Backend> {
    /// `[6, dim]`
    pub modulation: Tensor<B, 2>,
    pub self_q: Linear<B>,
    pub self_k: Linear<B>,
    pub self_v: Linear<B>,
    pub self_o: Linear<B>,
    pub self_norm_q: RmsNorm<B>,
    pub self_norm_k: RmsNorm<B>,
    pub cross_q: Linear<B>,
    pub cross_k: Linear<B>,
    pub cross_v: Linear<B>,
    pub cross_o: Linear<B>,
    pub cross_norm_q: RmsNorm<B>,
    pub cross_norm_k: RmsNorm<B>,
    pub norm3: AffineLayerNorm<B>,
    pub ffn_in: Linear<B>,
    pub ffn_out: Linear<B>,
}

/// Model-wide values every block call needs.
#[derive(Debug, Clone, Copy)]
struct BlockSettings {
    heads: usize,
    numerics: Numerics,
    eps: f64,
}

/// What self-attention attends to in a block call.
enum SelfAttentionMode<'a, B: Backend> {
    /// Sink prefill: cond tokens attend to each other; their K / V go to the cond cache.
    Sink {
        rope: &'a RopeTable<B>,
        cond: &'a mut CondCache<B>,
    },
    /// Streaming: the block attends to the ring (itself included) and the re-rotated cond keys.
    Stream {
        rope: &'a RopeTable<B>,
        cond_rope: &'a RopeTable<B>,
        ring: &'a mut RingCache<B>,
        cond: &'a CondCache<B>,
        current_start: usize,
    },
}

impl<B: Backend> DitBlock<B> {
    fn load<S: ParameterSource<B>>(
        src: &S,
        config: &DitConfig,
        index: usize,
    ) -> Result<Self, S::Error> {
        let d = config.dim;
        let p = format!("blocks.{index}");
        let eps = config.eps;
        Ok(Self {
            modulation: src
                .tensor::<3>(&format!("{p}.modulation"), [1, 6, d])?
                .reshape([6, d]),
            self_q: Linear::load(src, &format!("{p}.self_attn.q"), d, d)?,
            self_k: Linear::load(src, &format!("{p}.self_attn.k"), d, d)?,
            self_v: Linear::load(src, &format!("{p}.self_attn.v"), d, d)?,
            self_o: Linear::load(src, &format!("{p}.self_attn.o"), d, d)?,
            self_norm_q: RmsNorm::load(src, &format!("{p}.self_attn.norm_q"), d, eps)?,
            self_norm_k: RmsNorm::load(src, &format!("{p}.self_attn.norm_k"), d, eps)?,
            cross_q: Linear::load(src, &format!("{p}.cross_attn.q"), d, d)?,
            cross_k: Linear::load(src, &format!("{p}.cross_attn.k"), d, d)?,
            cross_v: Linear::load(src, &format!("{p}.cross_attn.v"), d, d)?,
            cross_o: Linear::load(src, &format!("{p}.cross_attn.o"), d, d)?,
            cross_norm_q: RmsNorm::load(src, &format!("{p}.cross_attn.norm_q"), d, eps)?,
            cross_norm_k: RmsNorm::load(src, &format!("{p}.cross_attn.norm_k"), d, eps)?,
            norm3: AffineLayerNorm::load(src, &format!("{p}.norm3"), d, eps)?,
            ffn_in: Linear::load(src, &format!("{p}.ffn.0"), d, config.ffn_dim)?,
            ffn_out: Linear::load(src, &format!("{p}.ffn.2"), config.ffn_dim, d)?,
        })
    }

    /// Every parameter tensor, always in the same order: layer streaming parks a block by
    /// visiting it and restores it by visiting a copy of its skeleton.
    pub fn for_each_tensor(&mut self, visit: &mut dyn FnMut(ParameterSlot<'_, B>)) {
        visit(ParameterSlot::Matrix(&mut self.modulation));
        for linear in [
            &mut self.self_q,
            &mut self.self_k,
            &mut self.self_v,
            &mut self.self_o,
            &mut self.cross_q,
            &mut self.cross_k,
            &mut self.cross_v,
            &mut self.cross_o,
            &mut self.ffn_in,
            &mut self.ffn_out,
        ] {
            linear.for_each_tensor(visit);
        }
        for norm in [
            &mut self.self_norm_q,
            &mut self.self_norm_k,
            &mut self.cross_norm_q,
            &mut self.cross_norm_k,
        ] {
            visit(ParameterSlot::Vector(&mut norm.weight));
        }
        visit(ParameterSlot::Vector(&mut self.norm3.weight));
        visit(ParameterSlot::Vector(&mut self.norm3.bias));
    }

    /// Self-attention over `x`, whose tokens are split into `modes.len()` equal runs: each run
    /// is one block call with its own RoPE, cache and keys (a step-batched call has several);
    /// the projections run once over all of them.
    fn self_attention(
        &self,
        layer: usize,
        x: Tensor<B, 2>,
        heads: usize,
        modes: &mut [SelfAttentionMode<'_, B>],
    ) -> Tensor<B, 2> {
        let [tokens, dim] = x.dims();
        let head_dim = dim / heads;
        let [q_all, k_all, v_all] =
            Linear::forward_shared(x, [&self.self_q, &self.self_k, &self.self_v]);
        let q_all = self.self_norm_q.forward(q_all);
        let k_all = self.self_norm_k.forward(k_all);
        let runs = modes.len().max(1);
        let run_tokens = tokens / runs;
        let mut outputs = Vec::with_capacity(runs);
        for (index, mode) in modes.iter_mut().enumerate() {
            let run = |t: &Tensor<B, 2>| {
                let t = if runs == 1 {
                    t.clone()
                } else {
                    t.clone().narrow(0, index * run_tokens, run_tokens)
                };
                t.reshape([run_tokens, heads, head_dim])
            };
            let (q, k, v) = (run(&q_all), run(&k_all), run(&v_all));
            let out = match mode {
                SelfAttentionMode::Sink { rope, cond } => {
                    cond.write(layer, k.clone(), v.clone());
                    attention(
                        rope.apply(q).unsqueeze_dim(0),
                        rope.apply(k).unsqueeze_dim(0),
                        v.unsqueeze_dim(0),
                    )
                }
                SelfAttentionMode::Stream {
                    rope,
                    cond_rope,
                    ring,
                    cond,
                    current_start,
                } => {
                    let slot = ring.slot(*current_start, run_tokens);
                    let (ring_k, ring_v) = ring.write_and_read(layer, slot, rope.apply(k), v);
                    let (cond_k, cond_v) = cond.read(layer);
                    // The ring and the cond tokens are attended as one sequence, read in place.
                    hot_ops::<B>().attention_segments(
                        rope.apply(q).unsqueeze_dim(0),
                        (ring_k.unsqueeze_dim(0), ring_v.unsqueeze_dim(0)),
                        (
                            cond_rope.apply(cond_k).unsqueeze_dim(0),
                            cond_v.unsqueeze_dim(0),
                        ),
                    )
                }
            };
            outputs.push(out.reshape([run_tokens, dim]));
        }
        let out = if outputs.len() == 1 {
            outputs.remove(0)
        } else {
            Tensor::cat(outputs, 0)
        };
        self.self_o.forward(out)
    }

    fn cross_attention(
        &self,
        x: Tensor<B, 2>,
        heads: usize,
        text: &(Tensor<B, 4>, Tensor<B, 4>),
    ) -> Tensor<B, 2> {
        let [tokens, dim] = x.dims();
        let q = self.cross_norm_q.forward(self.cross_q.forward(x)).reshape([
            1,
            tokens,
            heads,
            dim / heads,
        ]);
        let out = attention(q, text.0.clone(), text.1.clone());
        self.cross_o.forward(out.reshape([tokens, dim]))
    }

    /// `x` is `[tokens, dim]` split into `groups` equal runs of tokens; `modulation` is
    /// `[groups, 6, dim]` (the time part, added to the block's own modulation).
    fn forward(
        &self,
        layer: usize,
        x: Tensor<B, 2>,
        modulation: Tensor<B, 3>,
        text: &(Tensor<B, 4>, Tensor<B, 4>),
        settings: BlockSettings,
        modes: &mut [SelfAttentionMode<'_, B>],
    ) -> Tensor<B, 2> {
        let BlockSettings {
            heads,
            numerics,
            eps,
        } = settings;
        let [tokens, dim] = x.dims();
        let groups = modulation.dims()[0];
        let per_group = tokens / groups;
        let m = modulation + self.modulation.clone().unsqueeze_dim(0);
        let chunk = |j: usize| m.clone().narrow(1, j, 1);
        let grouped = |t: Tensor<B, 2>| t.reshape([groups, per_group, dim]);
        let flat = |t: Tensor<B, 3>| t.reshape([tokens, dim]);

        let ops = hot_ops::<B>();
        let normed = ops.modulated_layer_norm(grouped(x.clone()), chunk(1), chunk(0), eps);
        let y = self.self_attention(layer, flat(normed), heads, modes);
        let x = ops.gated_residual(grouped(x), grouped(y), chunk(2));

        let norm3_in = if numerics.round_norm3_bf16 {
            round_to_bf16(x.clone())
        } else {
            x.clone()
        };
        let norm3_out = self.norm3.forward(norm3_in);
        let norm3_out = if numerics.round_norm3_bf16 {
            round_to_bf16(norm3_out)
        } else {
            norm3_out
        };
        let x = x + grouped(self.cross_attention(flat(norm3_out), heads, text));

        let normed = ops.modulated_layer_norm(x.clone(), chunk(4), chunk(3), eps);
        let y = self.ffn_out.forward(
            self.ffn_in
                .forward_activated(normed, crate::kernels::Activation::GeluTanh),
        );
        flat(ops.gated_residual(x, y, chunk(5)))
    }
}

/// The whole DiT.
#[derive(Debug, Clone)]
pub struct DitModel<B: Backend> {
    pub config: DitConfig,
    pub numerics: Numerics,
    pub patch_embedding: PatchConv3d<B>,
    pub cond_encoder: PatchConv3d<B>,
    pub text_embedding_in: Linear<B>,
    pub text_embedding_out: Linear<B>,
    pub time_embedding_in: Linear<B>,
    pub time_embedding_out: Linear<B>,
    pub time_projection: Linear<B>,
    /// The transformer blocks on the device (empty when they are parked in host RAM).
    pub blocks: Vec<DitBlock<B>>,
    /// The blocks in host RAM, copied in one at a time (the layer-streaming placements).
    pub parked: Option<std::sync::Arc<ParkedBlocks<B>>>,
    pub head: Linear<B>,
    /// `[2, dim]`: shift, scale.
    pub head_modulation: Tensor<B, 2>,
    /// `[3, dim]`: 0 noisy, 1 reference, 2 motion.
    pub cond_mask: Tensor<B, 2>,
    pub audio_encoder: CausalAudioEncoder<B>,
    pub audio_injectors: Vec<AudioInjector<B>>,
    pub frame_pack: FramePack<B>,
}

const MASK_NOISY: usize = 0;
const MASK_REF: usize = 1;
const MASK_MOTION: usize = 2;

impl<B: Backend> DitModel<B> {
    /// Builds the model from `src`. The config is validated first; file-backed sources are in
    /// `crate::weights` (`load_dit`, `DitCheckpoint::load_model`).
    pub fn from_source<S>(config: &DitConfig, src: &S) -> Result<Self, S::Error>
    where
        S: ParameterSource<B>,
        S::Error: From<InvalidConfig>,
    {
        let blocks = (0..config.num_layers)
            .map(|i| DitBlock::load(src, config, i))
            .collect::<Result<_, _>>()?;
        Self::with_blocks(config, src, blocks, None)
    }

    /// As [`Self::from_source`], with the transformer blocks parked in host RAM as they load
    /// (layer streaming): the device never holds more than one of them at load, and two while
    /// the model runs.
    pub fn from_source_streaming<S>(config: &DitConfig, src: &S) -> Result<Self, S::Error>
    where
        S: ParameterSource<B>,
        S::Error: From<InvalidConfig> + From<HostTensorError>,
    {
        config.validate().map_err(InvalidConfig)?;
        let parked = ParkedBlocks::park_each(
            (0..config.num_layers).map(|i| DitBlock::load(src, config, i)),
        )?;
        Self::with_blocks(config, src, Vec::new(), Some(std::sync::Arc::new(parked)))
    }

    fn with_blocks<S>(
        config: &DitConfig,
        src: &S,
        blocks: Vec<DitBlock<B>>,
        parked: Option<std::sync::Arc<ParkedBlocks<B>>>,
    ) -> Result<Self, S::Error>
    where
        S: ParameterSource<B>,
        S::Error: From<InvalidConfig>,
    {
        config.validate().map_err(InvalidConfig)?;
        let d = config.dim;
        let model = Self {
            config: config.clone(),
            numerics: Numerics::default(),
            patch_embedding: PatchConv3d::load(
                src,
                "patch_embedding",
                config.in_dim,
                d,
                config.patch_size,
            )?,
            cond_encoder: PatchConv3d::load(
                src,
                "cond_encoder",
                config.cond_dim,
                d,
                config.patch_size,
            )?,
            text_embedding_in: Linear::load(src, "text_embedding.0", config.text_dim, d)?,
            text_embedding_out: Linear::load(src, "text_embedding.2", d, d)?,
            time_embedding_in: Linear::load(src, "time_embedding.0", config.freq_dim, d)?,
            time_embedding_out: Linear::load(src, "time_embedding.2", d, d)?,
            time_projection: Linear::load(src, "time_projection.1", d, 6 * d)?,
            blocks,
            parked,
            head: Linear::load(src, "head.head", d, config.out_dim * config.patch_volume())?,
            head_modulation: src
                .tensor::<3>("head.modulation", [1, 2, d])?
                .reshape([2, d]),
            cond_mask: src.tensor::<2>("trainable_cond_mask.weight", [3, d])?,
            audio_encoder: CausalAudioEncoder::load(src, config)?,
            audio_injectors: (0..config.audio_inject_layers.len())
                .map(|j| AudioInjector::load(src, config, j))
                .collect::<Result<_, _>>()?,
            frame_pack: FramePack::load(src, config)?,
        };
        Ok(model)
    }

    /// The hyper-parameters the model was built with.
    pub fn config(&self) -> &DitConfig {
        &self.config
    }

    /// Transformer blocks, on the device or parked.
    pub fn num_layers(&self) -> usize {
        self.parked.as_ref().map_or(self.blocks.len(), |p| p.len())
    }

    /// Whether the blocks live in host RAM and stream in per call.
    pub fn streams_layers(&self) -> bool {
        self.parked.is_some()
    }

    /// Runs `each` on every transformer block in order, threading `state` (the hidden states)
    /// through: the resident blocks, or the parked ones copied in one ahead of use.
    fn fold_blocks<T>(&self, state: T, mut each: impl FnMut(usize, &DitBlock<B>, T) -> T) -> T {
        match &self.parked {
            Some(parked) => parked.fold(state, each),
            None => self
                .blocks
                .iter()
                .enumerate()
                .fold(state, |state, (layer, block)| each(layer, block, state)),
        }
    }

    /// Runs `each` on every transformer block in order.
    fn for_each_block(&self, mut each: impl FnMut(usize, &DitBlock<B>)) {
        self.fold_blocks((), |layer, block, ()| each(layer, block));
    }

    pub fn with_numerics(mut self, numerics: Numerics) -> Self {
        self.numerics = numerics;
        self
    }

    fn device(&self) -> B::Device {
        self.cond_mask.device()
    }

    fn heads(&self) -> usize {
        self.config.num_heads
    }

    fn block_settings(&self) -> BlockSettings {
        BlockSettings {
            heads: self.heads(),
            numerics: self.numerics,
            eps: self.config.eps,
        }
    }

    /// Embeds the text context (`[tokens, text_dim]`, zero-padded to `text_len`; longer
    /// contexts are cut) and precomputes every layer's cross-attention keys / values.
    pub fn prepare_text(&self, context: Tensor<B, 2>) -> TextContext<B> {
        let [tokens, text_dim] = context.dims();
        let text_len = self.config.text_len;
        let kept = tokens.min(text_len);
        let context = context.narrow(0, 0, kept);
        let padded = if kept < text_len {
            Tensor::cat(
                vec![
                    context,
                    Tensor::zeros([text_len - kept, text_dim], &self.device()),
                ],
                0,
            )
        } else {
            context
        };
        let embedded = self
            .text_embedding_out
            .forward(gelu_approximate(self.text_embedding_in.forward(padded)));
        let heads = self.heads();
        let head_dim = self.config.head_dim();
        let mut layers = Vec::with_capacity(self.num_layers());
        self.for_each_block(|_, block| {
            let k = block
                .cross_norm_k
                .forward(block.cross_k.forward(embedded.clone()))
                .reshape([1, text_len, heads, head_dim]);
            let v = block
                .cross_v
                .forward(embedded.clone())
                .reshape([1, text_len, heads, head_dim]);
            layers.push((k, v));
        });
        TextContext { embedded, layers }
    }

    /// Sinusoid (cos first, float64) → time embedding → projection, for `timesteps` followed
    /// by as many zero timesteps (the zero-timestep slot).
    pub fn time_conditioning(&self, timesteps: &[f32]) -> TimeConditioning<B> {
        let frames = timesteps.len();
        let freq_dim = self.config.freq_dim;
        let half = freq_dim / 2;
        let mut values = Vec::with_capacity(2 * frames * freq_dim);
        let all: Vec<f64> = timesteps
            .iter()
            .map(|&t| f64::from(t))
            .chain(std::iter::repeat_n(0.0, frames))
            .collect();
        for &t in &all {
            let angles: Vec<f64> = (0..half)
                .map(|k| t * 10000f64.powf(-(k as f64) / half as f64))
                .collect();
            values.extend(angles.iter().map(|a| a.cos() as f32));
            values.extend(angles.iter().map(|a| a.sin() as f32));
        }
        let sinusoid = Tensor::<B, 2>::from_data(
            TensorData::new(values, [2 * frames, freq_dim]),
            &self.device(),
        );
        let embedding = self
            .time_embedding_out
            .forward(silu(self.time_embedding_in.forward(sinusoid)));
        let dim = self.config.dim;
        let projection = self
            .time_projection
            .forward(silu(embedding.clone()))
            .reshape([2, frames, 6, dim]);
        TimeConditioning {
            embedding,
            projection,
        }
    }

    /// RoPE groups of the cond sequence `[ref, post, 2x, 4x]` with the ref rolled by `roll`.
    fn cond_rope_groups(&self, geometry: &Geometry, roll: i64) -> Vec<RopeGroup> {
        let hp = geometry.patch_height as i64;
        let wp = geometry.patch_width as i64;
        let ref_t = self.config.ref_rope_position;
        let reference = RopeGroup {
            start: [ref_t, 0, 0],
            end: [ref_t + 1, hp, wp],
            range: [1, hp, wp],
        }
        .rolled(roll);
        let motion = motion_rope_groups(
            self.config.framepack_buckets,
            geometry.latent_height,
            geometry.latent_width,
            self.config.patch_size,
        );
        std::iter::once(reference).chain(motion).collect()
    }

    /// RoPE table of the cond tokens for a given ref roll.
    pub fn cond_rope(&self, geometry: &Geometry, roll: i64) -> RopeTable<B> {
        RopeTable::new(
            &self.cond_rope_groups(geometry, roll),
            self.config.head_dim(),
            self.numerics.round_rope_fp16,
            &self.device(),
        )
    }

    /// RoPE table of a streaming block starting at absolute latent frame `first_frame`.
    pub fn block_rope(&self, geometry: &Geometry, first_frame: i64, frames: usize) -> RopeTable<B> {
        let hp = geometry.patch_height as i64;
        let wp = geometry.patch_width as i64;
        let f = frames as i64;
        let group = RopeGroup {
            start: [0, 0, 0],
            end: [f, hp, wp],
            range: [f, hp, wp],
        }
        .rolled(first_frame);
        RopeTable::new(
            &[group],
            self.config.head_dim(),
            self.numerics.round_rope_fp16,
            &self.device(),
        )
    }

    /// Temporal roll of the ref position for a call at latent frame `frame` with offset `rd`:
    /// `max(0, F − (ref_position − rd))`.
    pub fn ref_roll(&self, frame: i64, ref_offset: i64) -> i64 {
        (frame - (self.config.ref_rope_position - ref_offset)).max(0)
    }

    /// The cond token sequence `[ref, post, 2x, 4x]` (`[tokens, dim]`) before the blocks.
    pub fn cond_tokens(
        &self,
        ref_latents: Tensor<B, 4>,
        motion_latents: Tensor<B, 4>,
    ) -> Tensor<B, 2> {
        let (reference, _) = self.patch_embedding.forward(ref_latents);
        let reference = reference + self.cond_mask.clone().narrow(0, MASK_REF, 1);
        let motion = self.frame_pack.forward(motion_latents)
            + self.cond_mask.clone().narrow(0, MASK_MOTION, 1);
        Tensor::cat(vec![reference, motion], 0)
    }

    /// Sink prefill: runs the ref (`[C, 1, h, w]`) and motion (`[C, T_m, h, w]`) tokens through
    /// every block at t = 0 and stores their un-rotated keys and values in `cond`. Returns the
    /// hidden states after the last block.
    pub fn sink_prefill(
        &self,
        cond: &mut CondCache<B>,
        text: &TextContext<B>,
        ref_latents: Tensor<B, 4>,
        motion_latents: Tensor<B, 4>,
    ) -> Tensor<B, 2> {
        self.sink_prefill_traced(cond, text, ref_latents, motion_latents, None)
    }

    /// [`Self::sink_prefill`] that also records the block input and outputs into `trace`.
    pub fn sink_prefill_traced(
        &self,
        cond: &mut CondCache<B>,
        text: &TextContext<B>,
        ref_latents: Tensor<B, 4>,
        motion_latents: Tensor<B, 4>,
        mut trace: Option<&mut DitTrace<B>>,
    ) -> Tensor<B, 2> {
        let [_, _, h, w] = ref_latents.dims();
        let geometry = self.config.geometry(h, w);
        let x = self.cond_tokens(ref_latents, motion_latents);
        let rope = self.cond_rope(&geometry, 0);
        let time = self.time_conditioning(&[0.0]);
        // Every cond token takes the t = 0 slot of frame 0.
        let modulation =
            time.projection
                .narrow(0, 1, 1)
                .narrow(1, 0, 1)
                .reshape([1, 6, self.config.dim]);
        if let Some(trace) = trace.as_deref_mut() {
            trace.block_input = Some(x.clone());
        }
        self.fold_blocks(x, |layer, block, x| {
            let out = block.forward(
                layer,
                x,
                modulation.clone(),
                &text.layers[layer],
                self.block_settings(),
                &mut [SelfAttentionMode::Sink {
                    rope: &rope,
                    cond: &mut *cond,
                }],
            );
            if let Some(trace) = trace.as_deref_mut() {
                trace.block_outputs.push(out.clone());
            }
            out
        })
    }

    /// One streaming call: denoising velocity `[out_dim, frames, h, w]` of the block, reading
    /// the cond cache and writing this block's keys / values into `ring`.
    pub fn forward_block(
        &self,
        input: StreamInput<B>,
        ring: &mut RingCache<B>,
        cond: &CondCache<B>,
        text: &TextContext<B>,
    ) -> Tensor<B, 4> {
        let device = input.latents.device();
        on_device_thread::<B, _>(&device, || {
            self.forward_block_traced(input, ring, cond, text, None)
        })
    }

    /// [`Self::forward_block`] that also records intermediate activations into `trace`.
    pub fn forward_block_traced(
        &self,
        input: StreamInput<B>,
        ring: &mut RingCache<B>,
        cond: &CondCache<B>,
        text: &TextContext<B>,
        mut trace: Option<&mut DitTrace<B>>,
    ) -> Tensor<B, 4> {
        let call = self.embed_call(input);
        let x = call.hidden.clone();
        if let Some(trace) = trace.as_deref_mut() {
            trace.block_input = Some(x.clone());
        }
        let x = self.fold_blocks(x, |layer, block, x| {
            let mut x = self.stream_layer_of(block, layer, x, &call.layer_inputs, ring, cond, text);
            if let Some(trace) = trace.as_deref_mut() {
                trace.block_outputs.push(x.clone());
            }
            if let Some(index) = self.config.injector_index(layer) {
                x = x.clone() + self.audio_injectors[index].forward(x, &call.audio);
            }
            if let Some(trace) = trace.as_deref_mut() {
                trace.after_audio.push(x.clone());
            }
            x
        });
        let head = self.call_head(x, &call);
        if let Some(trace) = trace {
            trace.head = Some(head.clone());
        }
        self.unpatchify(head, call.grid)
    }

    /// The parts of one streaming call before the transformer: its tokens (patches, pose and
    /// the noisy-latent mask), audio tokens and what every layer shares.
    fn embed_call(&self, input: StreamInput<B>) -> EmbeddedCall<B> {
        let [_, frames, h, w] = input.latents.dims();
        let geometry = self.config.geometry(h, w);
        let (tokens, grid) = self.patch_embedding.forward(input.latents);
        let (pose, _) = self.cond_encoder.forward(input.cond_states);
        EmbeddedCall {
            hidden: tokens + pose + self.cond_mask.clone().narrow(0, MASK_NOISY, 1),
            audio: self.audio_encoder.tokens(input.audio),
            layer_inputs: self.stream_layer_inputs(
                &geometry,
                frames,
                input.timestep,
                input.current_start,
                input.ref_offset,
            ),
            grid,
            frames,
        }
    }

    /// The head on the call's final hidden states `x`, before unpatchify.
    fn call_head(&self, x: Tensor<B, 2>, call: &EmbeddedCall<B>) -> Tensor<B, 2> {
        let head_time = call
            .layer_inputs
            .time
            .embedding
            .clone()
            .narrow(0, 0, call.frames);
        self.head_forward(x, head_time)
    }

    /// Several streaming calls through the transformer together: each call keeps its own
    /// input, RoPE, timestep and ring (in the step-batched schedule these are consecutive
    /// blocks at different denoising steps, each with its step's ring), while every linear
    /// layer runs once over all their tokens, so each weight is read once for all of them.
    /// Returns each call's velocity, in order, equal to what [`Self::forward_block`] gives for
    /// that call alone. Calls of different sizes run one after another.
    pub fn forward_blocks(
        &self,
        calls: Vec<(StreamInput<B>, &mut RingCache<B>)>,
        cond: &CondCache<B>,
        text: &TextContext<B>,
    ) -> Vec<Tensor<B, 4>> {
        let same_size = calls
            .windows(2)
            .all(|pair| pair[0].0.latents.dims() == pair[1].0.latents.dims());
        if calls.len() <= 1 || !same_size {
            return calls
                .into_iter()
                .map(|(input, ring)| self.forward_block(input, ring, cond, text))
                .collect();
        }
        let device = calls[0].0.latents.device();
        on_device_thread::<B, _>(&device, || self.forward_blocks_together(calls, cond, text))
    }

    /// [`Self::forward_blocks`] for two or more calls of one size.
    fn forward_blocks_together(
        &self,
        calls: Vec<(StreamInput<B>, &mut RingCache<B>)>,
        cond: &CondCache<B>,
        text: &TextContext<B>,
    ) -> Vec<Tensor<B, 4>> {
        let (embedded, mut rings): (Vec<EmbeddedCall<B>>, Vec<_>) = calls
            .into_iter()
            .map(|(input, ring)| (self.embed_call(input), ring))
            .unzip();
        let run_tokens = embedded[0].hidden.dims()[0];
        let runs = embedded.len();
        let x = Tensor::cat(embedded.iter().map(|c| c.hidden.clone()).collect(), 0);
        let modulation = Tensor::cat(
            embedded
                .iter()
                .map(|c| c.layer_inputs.modulation.clone())
                .collect(),
            0,
        );
        let x = self.fold_blocks(x, |layer, block, x| {
            let mut modes: Vec<SelfAttentionMode<'_, B>> = rings
                .iter_mut()
                .zip(&embedded)
                .map(|(ring, call)| SelfAttentionMode::Stream {
                    rope: &call.layer_inputs.rope,
                    cond_rope: &call.layer_inputs.cond_rope,
                    ring: &mut **ring,
                    cond,
                    current_start: call.layer_inputs.current_start,
                })
                .collect();
            let x = block.forward(
                layer,
                x,
                modulation.clone(),
                &text.layers[layer],
                self.block_settings(),
                &mut modes,
            );
            match self.config.injector_index(layer) {
                Some(index) => {
                    let injected = (0..runs)
                        .map(|run| {
                            let part = x.clone().narrow(0, run * run_tokens, run_tokens);
                            part.clone()
                                + self.audio_injectors[index].forward(part, &embedded[run].audio)
                        })
                        .collect();
                    Tensor::cat(injected, 0)
                }
                None => x,
            }
        });
        embedded
            .iter()
            .enumerate()
            .map(|(run, call)| {
                let part = x.clone().narrow(0, run * run_tokens, run_tokens);
                self.unpatchify(self.call_head(part, call), call.grid)
            })
            .collect()
    }

    /// What every transformer layer of one streaming call shares: RoPE tables, the timestep
    /// modulation and where the block sits in the video.
    pub fn stream_layer_inputs(
        &self,
        geometry: &Geometry,
        frames: usize,
        timestep: f32,
        current_start: usize,
        ref_offset: i64,
    ) -> StreamLayerInputs<B> {
        let first_frame = (current_start / geometry.frame_tokens) as i64;
        let time = self.time_conditioning(&vec![timestep; frames]);
        let modulation =
            time.projection
                .clone()
                .narrow(0, 0, 1)
                .reshape([frames, 6, self.config.dim]);
        StreamLayerInputs {
            rope: self.block_rope(geometry, first_frame, frames),
            cond_rope: self.cond_rope(geometry, self.ref_roll(first_frame, ref_offset)),
            time,
            modulation,
            current_start,
        }
    }

    /// Transformer layer `layer` of a streaming call on hidden states `x` (`[tokens, dim]`),
    /// without the audio injection that follows some layers. `forward_block` runs these in
    /// turn; `bench` times one alone (on a resident model: a parked one copies every block in
    /// to reach it).
    pub fn stream_layer(
        &self,
        layer: usize,
        x: Tensor<B, 2>,
        inputs: &StreamLayerInputs<B>,
        ring: &mut RingCache<B>,
        cond: &CondCache<B>,
        text: &TextContext<B>,
    ) -> Tensor<B, 2> {
        match self.blocks.get(layer) {
            Some(block) => self.stream_layer_of(block, layer, x, inputs, ring, cond, text),
            None => self
                .fold_blocks(Some(x), |index, block, x| match x {
                    Some(x) if index == layer => {
                        // Only the one layer is computed; the others are passed over.
                        Some(self.stream_layer_of(block, layer, x, inputs, ring, cond, text))
                    }
                    other => other,
                })
                .unwrap_or_else(|| Tensor::zeros([0, self.config.dim], &self.device())),
        }
    }

    /// Transformer layer `layer` (its block given) of a streaming call.
    #[allow(clippy::too_many_arguments)]
    fn stream_layer_of(
        &self,
        block: &DitBlock<B>,
        layer: usize,
        x: Tensor<B, 2>,
        inputs: &StreamLayerInputs<B>,
        ring: &mut RingCache<B>,
        cond: &CondCache<B>,
        text: &TextContext<B>,
    ) -> Tensor<B, 2> {
        block.forward(
            layer,
            x,
            inputs.modulation.clone(),
            &text.layers[layer],
            self.block_settings(),
            &mut [SelfAttentionMode::Stream {
                rope: &inputs.rope,
                cond_rope: &inputs.cond_rope,
                ring,
                cond,
                current_start: inputs.current_start,
            }],
        )
    }

    /// Head: per-frame shift / scale from `head.modulation + e`, then the output linear.
    fn head_forward(&self, x: Tensor<B, 2>, time_embedding: Tensor<B, 2>) -> Tensor<B, 2> {
        let [tokens, dim] = x.dims();
        let frames = time_embedding.dims()[0];
        let modulation =
            self.head_modulation.clone().unsqueeze_dim::<3>(0) + time_embedding.unsqueeze_dim(1);
        let shift = modulation.clone().narrow(1, 0, 1);
        let scale = modulation.narrow(1, 1, 1);
        let normed = layer_norm(x.reshape([frames, tokens / frames, dim]), self.config.eps)
            * (scale + 1.0)
            + shift;
        self.head
            .forward(normed)
            .reshape([tokens, self.config.out_dim * self.config.patch_volume()])
    }

    /// `[tokens, pt·ph·pw·C]` → `[C, F·pt, hp·ph, wp·pw]` (einsum `fhwpqrc->cfphqwr`).
    fn unpatchify(&self, y: Tensor<B, 2>, grid: [usize; 3]) -> Tensor<B, 4> {
        let [pt, ph, pw] = self.config.patch_size;
        let c = self.config.out_dim;
        let [f, hp, wp] = grid;
        y.reshape([f, hp, wp, pt, ph, pw, c])
            .permute([6, 0, 3, 1, 4, 2, 5])
            .reshape([c, f * pt, hp * ph, wp * pw])
    }
}

/// Number of linears the LiveAvatar LoRA targets (`q, k, v, o, ffn.0, ffn.2`).
pub fn lora_target_count(config: &DitConfig) -> usize {
    config.num_layers * 10 + config.audio_inject_layers.len() * 4
}
