//! `plan`: the single authority on memory placement. A pure function of the model's footprint,
//! the render settings, the devices' memory and the host's RAM: it predicts, stage by stage,
//! what each device holds (spec §7.5), picks the fastest placement that fits, estimates the
//! speed, and when nothing fits names the settings that would. It loads nothing and touches no
//! GPU, so the studio can call it on every slider move and `plan --assume-gpus` can answer for
//! hardware the user does not have.

use std::collections::BTreeMap;

use super::footprint::ModelFootprint;
use super::plan::{DevicePlan, MemoryPlan, Placement, StagePlacement, Suggestion};
use super::speed::SpeedFigures;

/// A GPU the plan may use.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuCapacity {
    pub index: u32,
    pub name: String,
    pub total_bytes: u64,
    /// Free now (or the total, for an assumed GPU).
    pub free_bytes: u64,
}

/// Where the render's models run.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The first GPU renders (the single-GPU pipeline); the rest are listed idle.
    Gpus(Vec<GpuCapacity>),
    /// Flex on the CPU: everything in host RAM, in f32.
    Cpu,
}

/// What this version of the pipeline can run.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    pub placements: Vec<Placement>,
    /// Whether the text and audio encoders (umT5, wav2vec2) can be dropped from the GPU once the
    /// prompt and the voice are encoded, when the plan needs their room.
    pub releases_encoders: bool,
    /// Whether attention runs as a fused kernel that never materialises the score matrix.
    pub fused_attention: bool,
    /// Whether `--fp8` weights are held in e4m3 on the GPU and multiplied by FP8 GEMMs (`cuda`
    /// builds on GPUs with FP8 tensor cores); otherwise they are quantised for the reference's
    /// numerics but held, and multiplied, in bf16.
    pub fp8_storage: bool,
}

impl Capabilities {
    /// This build: the DiT stays resident for the whole render (and, with the encoders,
    /// between jobs), or, when it does not fit, its blocks stay in host RAM and stream in one
    /// ahead of use; its step KV caches stay on the GPU or, when they do not fit, in host RAM
    /// streamed per layer. On NVIDIA GPUs (`cuda` builds) attention is the flash kernel of
    /// `kernels::cuda`, KV copies are asynchronous from page-locked memory, and `--fp8` weights
    /// stay e4m3 (on GPUs that have FP8 tensor cores, which the request checks); elsewhere
    /// attention materialises its scores a few heads at a time.
    pub fn current() -> Self {
        Self {
            placements: vec![
                Placement::Resident,
                Placement::KvOnHost,
                Placement::LayerStreaming,
                Placement::LayerStreamingKvOnHost,
            ],
            releases_encoders: true,
            fused_attention: cfg!(feature = "cuda"),
            fp8_storage: cfg!(feature = "cuda"),
        }
    }

    /// Everything the planner knows how to place, for `plan --all-placements` questions.
    pub fn everything() -> Self {
        Self {
            placements: Placement::ALL.to_vec(),
            releases_encoders: true,
            fused_attention: true,
            fp8_storage: true,
        }
    }
}

/// Largest score matrix the attention materialises at once (elements), mirrored from
/// `model::layers::attention`.
const MAX_SCORE_ELEMENTS: u64 = 1 << 28;
/// CUDA context, cuBLAS/NVRTC modules and the like, outside burn's pools.
const CUDA_CONTEXT_BYTES: u64 = 600_000_000;
/// What burn-cuda holds beyond the working set whatever the model: its memory pools' first
/// pages, loaded kernels, autotune buffers. Measured on an H200 with the demo model at 384×256:
/// 2.06 GB held (NVML, this process) against 0.77 GB predicted without this term.
const GPU_RUNTIME_BYTES: u64 = 1_300_000_000;
/// burn's memory pools keep freed pages for reuse; share of the working set they add.
const ALLOCATOR_SLACK: f64 = 0.02;
/// What the allocator still holds in the clip loop from the stages before it, beyond what they
/// left alive: the pages of the reference encode (73 frames through the VAE encoder) that share
/// room with the latents it made, and the loading's part-used pages.
pub(crate) const CARRY_OVER: &str = "allocator carry-over";

fn add_carry_over(parts: &mut Parts, vae_encode: u64) {
    let weights: u64 = parts
        .iter()
        .filter(|(name, _)| name.ends_with("weights"))
        .map(|(_, bytes)| *bytes)
        .sum();
    parts.insert(
        CARRY_OVER.into(),
        vae_encode + (weights as f64 * LOADING_CARRY_OVER) as u64,
    );
}

/// What a DiT call really holds on the GPU over the live tensors counted below: temporaries of
/// unfused burn ops, FP8 copies of activations, and pool pages the churn of a call leaves
/// reserved. Fitted with `bench --placement` on an H100 at 14B sizes, together with the 2 %
/// slack above, over eight configurations (resident, kv-host, layer streaming and both, bf16
/// and FP8, sequential and step-batched, 704×384 and 384×256): every prediction within 5 % of
/// NVML (`docs/memory-placements.md`). With the earlier flat 8 % and no such factor, the
/// step-batched host-RAM placements held 45 % more than predicted.
const GPU_ACTIVATION_CHURN: f64 = 3.3;
/// Share of the weights on the GPU that stays reserved beyond them: pages the loading's
/// conversions (FP8 codes, transposes, blocks on their way to host RAM) left holding a weight
/// beside free room the allocator cannot hand back. With [`add_carry_over`]'s reference-encode
/// term, fitted on an H100 at 14B sizes over three whole renders at 704×384 (layer streaming
/// with host KV caches and FP8, kv-host in bf16, resident FP8), which held 2.0, 4.2 and over
/// 3.2 GB more than the stage's own parts.
const LOADING_CARRY_OVER: f64 = 0.05;
/// The process itself on the host: binary, decoded inputs, encoder queues.
const HOST_BASE_BYTES: u64 = 1_000_000_000;
/// Audio length assumed when the plan is made without an audio file.
pub const DEFAULT_AUDIO_SECONDS: f64 = 60.0;

/// Everything the planner looks at.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub footprint: ModelFootprint,
    pub frame_width: u32,
    pub frame_height: u32,
    pub frames_per_clip: u32,
    pub sample_steps: u32,
    pub fp8_weights: bool,
    pub online_decode: bool,
    /// The step-batched schedule: four blocks per DiT call (layer streaming always uses it).
    pub step_batched: bool,
    pub audio_seconds: Option<f64>,
    pub target: Target,
    pub host_ram_bytes: u64,
    pub vram_budget_bytes: Option<u64>,
    /// `Some` forces a placement.
    pub placement: Option<Placement>,
    pub capabilities: Capabilities,
    pub speed: SpeedFigures,
}

/// Sizes of one render's tensors, from the frame size and the model.
#[derive(Debug, Clone, Copy)]
struct Shapes {
    tokens_per_block: u64,
    ring_tokens: u64,
    cond_tokens: u64,
    /// Pixels of one output frame.
    pixels: u64,
}

impl Shapes {
    fn of(r: &PlanRequest) -> Self {
        let lat_h = (r.frame_height / 8) as usize;
        let lat_w = (r.frame_width / 8) as usize;
        let g = r.footprint.dit_config.geometry(lat_h, lat_w);
        let fsl = g.frame_tokens as u64;
        let latent_frames_per_clip = u64::from(r.frames_per_clip / 4).max(1);
        Self {
            tokens_per_block: fsl * r.footprint.frames_per_block as u64,
            ring_tokens: fsl * latent_frames_per_clip,
            cond_tokens: g.cond_tokens as u64,
            pixels: u64::from(r.frame_width) * u64::from(r.frame_height),
        }
    }

    fn keys_per_call(&self) -> u64 {
        self.ring_tokens + self.cond_tokens
    }
}

/// Component bytes by name, for one stage on one device.
type Parts = BTreeMap<String, u64>;

fn total(parts: &Parts) -> u64 {
    parts.values().sum()
}

/// The planner.
pub fn plan(request: &PlanRequest) -> MemoryPlan {
    // Keeping the encoders loaded spares the next render their reload, so they are released
    // only when nothing fits with them.
    let release_options: &[bool] = if request.capabilities.releases_encoders {
        &[false, true]
    } else {
        &[false]
    };
    let last_resort = *release_options.last().unwrap_or(&false);
    let (placement, releases, forced) = match request.placement {
        Some(p) => {
            let releases = release_options
                .iter()
                .copied()
                .find(|&releases| evaluate(request, p, releases).fits)
                .unwrap_or(last_resort);
            (p, releases, true)
        }
        None => {
            // The fastest placement that fits, each with the encoders kept if it fits so; on a
            // tie the earlier (simpler, more exact) placement.
            let fitting = request
                .capabilities
                .placements
                .iter()
                .filter_map(|&p| {
                    release_options.iter().find_map(|&releases| {
                        let plan = evaluate(request, p, releases);
                        plan.fits.then_some((p, releases, plan.expected_fps))
                    })
                })
                .fold(
                    None::<(Placement, bool, f64)>,
                    |best, candidate| match best {
                        Some((_, _, fps)) if fps >= candidate.2 => best,
                        _ => Some(candidate),
                    },
                );
            let (placement, releases) = fitting.map_or_else(
                || {
                    (
                        request
                            .capabilities
                            .placements
                            .first()
                            .copied()
                            .unwrap_or(Placement::Resident),
                        last_resort,
                    )
                },
                |(p, releases, _)| (p, releases),
            );
            (placement, releases, false)
        }
    };
    let mut plan = evaluate(request, placement, releases);
    plan.forced = forced;
    if !plan.can_start() {
        plan.suggestions = suggestions(request);
        plan.verdict = verdict(&plan);
    }
    plan
}

fn verdict(plan: &MemoryPlan) -> String {
    let d = plan.render_device();
    if !plan.fits {
        let what = if d.index.is_some() {
            "GPU memory"
        } else {
            "host RAM"
        };
        format!(
            "{} needs {:.1} GB of {what} at its peak ({}) but {:.1} GB is usable on {}",
            plan.strategy.name(),
            super::plan::gb(d.predicted_peak_bytes),
            d.peak_stage,
            super::plan::gb(d.usable_bytes),
            d.name
        )
    } else {
        format!(
            "the {} placement is not in this version of the pipeline yet",
            plan.strategy.name()
        )
    }
}

/// Settings changes that would fit, each tried alone and then together, first with what this
/// version can run and then with the placements still to come.
fn suggestions(request: &PlanRequest) -> Vec<Suggestion> {
    let mut variants: Vec<(String, PlanRequest)> = Vec::new();
    if let Some(forced) = request.placement {
        let mut r = request.clone();
        r.placement = None;
        variants.push((format!("no --placement (not {})", forced.name()), r));
    }
    let on_gpu = matches!(request.target, Target::Gpus(ref g) if !g.is_empty());
    if !request.fp8_weights && on_gpu {
        let mut r = request.clone();
        r.fp8_weights = true;
        variants.push(("--fp8".into(), r));
    }
    if !request.online_decode {
        let mut r = request.clone();
        r.online_decode = true;
        variants.push(("--enable-online-decode".into(), r));
    }
    let area = u64::from(request.frame_width) * u64::from(request.frame_height);
    for (size, w, h) in [("688*368", 688u32, 368u32), ("384*256", 384, 256)] {
        if u64::from(w) * u64::from(h) < area {
            let mut r = request.clone();
            // Keep the orientation of the current frame.
            (r.frame_width, r.frame_height) = if request.frame_width >= request.frame_height {
                (w, h)
            } else {
                (h, w)
            };
            variants.push((format!("--size {size}"), r.clone()));
            if !request.fp8_weights && on_gpu {
                r.fp8_weights = true;
                variants.push((format!("--size {size} --fp8"), r));
            }
        }
    }
    // Placements still to come are judged as the finished pipeline will run them.
    let mut future = request.clone();
    future.capabilities = Capabilities::everything();
    for (_, v) in &mut variants {
        let mut later = v.clone();
        later.capabilities = Capabilities::everything();
        *v = later;
    }
    let mut out: Vec<Suggestion> = Vec::new();
    for available in [true, false] {
        for (change, variant) in &variants {
            let variant = &PlanRequest {
                capabilities: if available {
                    request.capabilities.clone()
                } else {
                    Capabilities::everything()
                },
                ..variant.clone()
            };
            for &placement in &Placement::ALL {
                let is_available = request.capabilities.placements.contains(&placement);
                if is_available != available {
                    continue;
                }
                let p = evaluate(variant, placement, variant.capabilities.releases_encoders);
                if p.fits {
                    out.push(Suggestion {
                        change: change.clone(),
                        placement,
                        predicted_peak_bytes: p.render_device().predicted_peak_bytes,
                        available,
                    });
                    break;
                }
            }
        }
        if request.placement.is_none() || !available {
            // The current settings with a placement still to come.
            for &placement in &Placement::ALL {
                if request.capabilities.placements.contains(&placement) != available {
                    continue;
                }
                let p = evaluate(&future, placement, true);
                if p.fits && !available {
                    out.push(Suggestion {
                        change: format!("--placement {}", placement.name()),
                        placement,
                        predicted_peak_bytes: p.render_device().predicted_peak_bytes,
                        available,
                    });
                    break;
                }
            }
        }
        if out.iter().any(|s| s.available) {
            break;
        }
    }
    out.truncate(4);
    out
}

/// The plan for one placement, with the encoders released after their stage if `releases`.
fn evaluate(r: &PlanRequest, placement: Placement, releases: bool) -> MemoryPlan {
    let shapes = Shapes::of(r);
    let f = &r.footprint;
    let on_gpu = matches!(r.target, Target::Gpus(ref g) if !g.is_empty());
    // On the CPU, Flex computes in f32; on the GPU, bf16.
    let act_bytes: u64 = if on_gpu { 2 } else { 4 };
    let weight_scale: u64 = if on_gpu { 1 } else { 2 };
    let fp8 = r.fp8_weights && on_gpu && r.capabilities.fp8_storage;
    let layers = f.num_layers() as u64;
    let dim = f.dit_dim as u64;
    let steps = u64::from(r.sample_steps.max(1));
    let audio_seconds = r.audio_seconds.unwrap_or(DEFAULT_AUDIO_SECONDS);

    // Weights.
    let dit_resident = f.dit_bytes(fp8) * weight_scale;
    let dit_streaming = (f.dit_shared.get(fp8) + 2 * f.largest_layer(fp8)) * weight_scale;
    let dit_on_device = if placement.streams_layers() {
        dit_streaming
    } else {
        dit_resident
    };
    let dit_on_host = if placement.streams_layers() {
        f.dit_bytes(fp8)
    } else {
        0
    };

    // KV caches (spec §7.2): one ring per step, one shared cond cache.
    let kv_elem: u64 = if matches!(placement, Placement::ResidentKvFp8) {
        1
    } else {
        act_bytes
    };
    let ring_per_layer = 2 * shapes.ring_tokens * dim * kv_elem;
    let cond_all = 2 * shapes.cond_tokens * dim * act_bytes * layers;
    let rings_all = ring_per_layer * layers * steps;
    // DiT activations per call (the step-batched schedule runs four blocks per call).
    let batch = if placement.streams_layers() || r.step_batched {
        4
    } else {
        1
    };
    let (kv_device, kv_host) = if placement.kv_on_host() {
        // Per block in the call, two layers of its step's ring on the device (the one being
        // attended and the next one on its way), the rest in pinned host RAM.
        (2 * batch.min(steps) * ring_per_layer + cond_all, rings_all)
    } else {
        (rings_all + cond_all, 0)
    };
    let n = shapes.tokens_per_block * batch;
    let keys = shapes.keys_per_call();
    let ffn = f.dit_ffn_dim as u64;
    let heads = f.dit_heads.max(1) as u64;
    let scores = if r.capabilities.fused_attention {
        0
    } else {
        let per_head = (n * keys).max(1);
        let heads_at_once = (MAX_SCORE_ELEMENTS / per_head).clamp(1, heads);
        // scores, softmax output and the exp temporary.
        3 * heads_at_once * per_head * act_bytes
    };
    let live_activations = 8 * n * dim * act_bytes // residual, norms, modulation, q, k, v, out
        + 2 * keys * dim * act_bytes * 2 // keys and values with the cond tokens, rotated copy
        + 2 * n * ffn * act_bytes;
    // The factor was fitted with the flash kernel; materialised scores are counted as they are.
    let dit_activations = if on_gpu {
        (live_activations as f64 * GPU_ACTIVATION_CHURN) as u64 + scores
    } else {
        live_activations + scores
    };

    // VAE working sets, anchored on the streaming decode measured on an H200 (3.36 GB above
    // the weights for a 3-latent block at 384×704, 96 channels): ≈ 65 full-resolution planes.
    let plane = f.vae_base_channels as u64 * shapes.pixels * act_bytes;
    let vae_stream_decode = 65 * plane;
    let vae_deferred_decode = 80 * plane;
    let vae_encode = 40 * plane;

    // Encoders' activations.
    let t5_activations =
        f.text_len as u64 * (f.t5_ffn_dim as u64 * 3 + f.t5_dim as u64 * 8) * act_bytes;
    let audio_frames = (audio_seconds * 50.0) as u64;
    let w2v_activations =
        (f.wav2vec_layers as u64 + 1) * audio_frames * f.wav2vec_hidden as u64 * 4
            + 16 * audio_frames * audio_frames.min(4096) * act_bytes;

    let t5_w = f.t5_bytes * weight_scale;
    let w2v_w = f.wav2vec_bytes * weight_scale;
    let venc_w = f.vae_encoder_bytes * weight_scale;
    let vdec_w = f.vae_decoder_bytes * weight_scale;

    // Every network is loaded before the first stage. Released encoders leave after the
    // prompt stage; everything else stays, and each stage adds its own working set.
    let encoders_loaded = |stage_index: usize| !releases || stage_index <= 2;
    let stage = |stage_index: usize, own: &[(&str, u64)]| -> Parts {
        let mut resident = vec![
            ("DiT weights", dit_on_device),
            ("VAE encoder weights", venc_w),
            ("VAE decoder weights", vdec_w),
        ];
        if encoders_loaded(stage_index) {
            resident.extend([("umT5 weights", t5_w), ("wav2vec2 weights", w2v_w)]);
        }
        resident
            .iter()
            .chain(own)
            .map(|&(name, bytes)| (name.to_string(), bytes))
            .collect()
    };
    let mut in_host_ram = Vec::new();
    if placement.streams_layers() {
        in_host_ram.push("DiT layers".to_string());
    }
    if placement.kv_on_host() {
        in_host_ram.push("KV caches".to_string());
    }

    let mut stages: Vec<(String, Parts, Vec<String>)> = vec![
        (
            "1 audio features".into(),
            stage(
                1,
                &[
                    ("wav2vec2 weights", w2v_w),
                    ("wav2vec2 activations", w2v_activations),
                ],
            ),
            vec![],
        ),
        (
            "2 prompt".into(),
            stage(
                2,
                &[("umT5 weights", t5_w), ("umT5 activations", t5_activations)],
            ),
            vec![],
        ),
        (
            "3 reference encode".into(),
            stage(
                3,
                &[
                    ("VAE encoder weights", venc_w),
                    ("VAE encode working set", vae_encode),
                ],
            ),
            vec![],
        ),
    ];
    let mut blocks = stage(
        4,
        &[
            ("DiT weights", dit_on_device),
            ("KV caches", kv_device),
            ("DiT activations", dit_activations),
        ],
    );
    if r.online_decode {
        blocks.insert("VAE decoder weights".into(), vdec_w);
        blocks.insert("VAE decode working set".into(), vae_stream_decode);
    }
    if on_gpu {
        add_carry_over(&mut blocks, vae_encode);
    }
    stages.push(("4-5 prefill and blocks".into(), blocks, in_host_ram.clone()));
    if !r.online_decode {
        let mut decode = stage(
            6,
            &[
                ("VAE decoder weights", vdec_w),
                ("VAE encoder weights", venc_w),
                ("VAE decode working set", vae_deferred_decode),
            ],
        );
        // Each clip is decoded inside the clip loop, beside the DiT's caches.
        decode.insert("KV caches".into(), kv_device);
        if on_gpu {
            add_carry_over(&mut decode, vae_encode);
        }
        stages.push(("6 clip decode".into(), decode, in_host_ram));
    }

    // The device-wide overheads.
    let finish = |parts: &mut Parts| {
        let working = total(parts);
        parts.insert(
            "allocator reserve".into(),
            (working as f64 * ALLOCATOR_SLACK) as u64,
        );
        if on_gpu {
            parts.insert("CUDA context".into(), CUDA_CONTEXT_BYTES);
            parts.insert("GPU runtime pools".into(), GPU_RUNTIME_BYTES);
        }
    };
    for (_, parts, _) in &mut stages {
        finish(parts);
    }
    let (peak_index, _) = stages
        .iter()
        .enumerate()
        .max_by_key(|(_, (_, p, _))| total(p))
        .unwrap_or((0, &stages[0]));
    let (peak_stage, peak_parts, _) = stages[peak_index].clone();
    let peak = total(&peak_parts);

    // Host RAM: pinned streaming buffers, the process, and on the CPU everything.
    let mut host_parts = Parts::new();
    host_parts.insert("process and inputs".into(), HOST_BASE_BYTES);
    if dit_on_host > 0 {
        host_parts.insert("pinned DiT layers".into(), dit_on_host);
    }
    if kv_host > 0 {
        host_parts.insert("pinned KV caches".into(), kv_host);
    }
    let host_usable = r.host_ram_bytes;
    let mut devices = Vec::new();
    let device_label;
    match &r.target {
        Target::Gpus(gpus) if !gpus.is_empty() => {
            device_label = format!("cuda:{}", gpus[0].index);
            for (i, g) in gpus.iter().enumerate() {
                let usable = r
                    .vram_budget_bytes
                    .map_or(g.free_bytes, |b| b.min(g.free_bytes));
                devices.push(DevicePlan {
                    index: Some(g.index),
                    name: format!("cuda:{} {}", g.index, g.name),
                    total_bytes: g.total_bytes,
                    usable_bytes: usable,
                    predicted_peak_bytes: if i == 0 { peak } else { 0 },
                    peak_stage: if i == 0 {
                        peak_stage.clone()
                    } else {
                        "idle".into()
                    },
                    components: if i == 0 {
                        peak_parts.clone()
                    } else {
                        Parts::new()
                    },
                });
            }
        }
        _ => {
            device_label = "cpu".into();
            for (k, v) in &peak_parts {
                host_parts.insert(k.clone(), *v);
            }
        }
    }
    let host_peak = total(&host_parts);
    let host = DevicePlan {
        index: None,
        name: "host RAM".into(),
        total_bytes: r.host_ram_bytes,
        usable_bytes: host_usable,
        predicted_peak_bytes: host_peak,
        peak_stage: if on_gpu {
            "whole render".into()
        } else {
            peak_stage.clone()
        },
        components: host_parts,
    };
    let fits = devices.iter().all(DevicePlan::fits) && host.fits();

    // Speed.
    let timing = r.speed.block_time(&super::speed::BlockWork {
        footprint: f,
        tokens_per_block: shapes.tokens_per_block,
        keys_per_call: keys,
        steps,
        fp8,
        pixels: shapes.pixels,
        on_gpu,
        placement,
        // Once the ring is full a call copies it all in but the block's own rows, which it
        // writes on the device (and copies out, in the other direction of the link).
        ring_bytes_per_step: ring_per_layer
            * layers
            * shapes.ring_tokens.saturating_sub(shapes.tokens_per_block)
            / shapes.ring_tokens.max(1),
    });
    let frames_per_block = (f.frames_per_block * 4) as f64;
    let expected_fps = if timing.seconds > 0.0 {
        frames_per_block / timing.seconds
    } else {
        0.0
    };

    let stage_rows = stages
        .iter()
        .map(|(name, parts, host)| StagePlacement {
            stage: name.clone(),
            device_bytes: total(parts),
            on_device: parts
                .iter()
                .filter(|(k, v)| **v > 0 && k.ends_with("weights"))
                .map(|(k, _)| k.trim_end_matches(" weights").to_string())
                .chain(
                    parts
                        .get("KV caches")
                        .filter(|v| **v > 0)
                        .map(|_| "KV caches".to_string()),
                )
                .collect(),
            on_host: host.clone(),
            components: parts.clone(),
        })
        .collect();

    MemoryPlan {
        fits,
        strategy: placement,
        releases_encoders: releases,
        strategy_available: r.capabilities.placements.contains(&placement),
        forced: false,
        device_label,
        frame_width: r.frame_width,
        frame_height: r.frame_height,
        tokens_per_block: shapes.tokens_per_block as usize,
        keys_per_call: keys as usize,
        weights: if fp8 {
            "FP8 linears".into()
        } else if on_gpu {
            "bf16".into()
        } else {
            "f32 (CPU)".into()
        },
        expected_fps,
        speed_source: if on_gpu {
            r.speed.source.clone()
        } else {
            // The CPU throughput is a guess until `bench` has run on this machine.
            "assumed figures, not measured on this machine".into()
        },
        host_to_device_bytes_per_frame: (timing.copied_bytes as f64 / frames_per_block) as u64,
        devices,
        host,
        stages: stage_rows,
        suggestions: Vec::new(),
        verdict: String::new(),
    }
}
