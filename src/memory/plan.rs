//! The planner's answer: the placement it chose, what each device will hold at its peak
//! (component by component), whether that fits, the expected speed, and, when it does not fit,
//! the settings that would. Serialises to the JSON that `plan --json` prints and that the
//! engine's first event carries; renders as the text `plan` and `generate` print.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Where the DiT weights and KV caches live during the clip loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Every DiT layer and every step's KV cache on the GPU: the fastest.
    Resident,
    /// As resident, with the step KV caches stored in FP8 (half their size).
    ResidentKvFp8,
    /// DiT resident; the step KV caches in pinned host RAM, streamed to the GPU per layer.
    KvOnHost,
    /// DiT layers in pinned host RAM, copied just ahead of use (two buffers), with the four
    /// steps of four blocks batched into one call so each copied layer serves four blocks.
    LayerStreaming,
    /// Layer streaming with the KV caches in pinned host RAM too: the smallest GPU footprint.
    LayerStreamingKvOnHost,
}

impl Placement {
    /// From fastest to smallest.
    pub const ALL: [Placement; 5] = [
        Self::Resident,
        Self::ResidentKvFp8,
        Self::KvOnHost,
        Self::LayerStreaming,
        Self::LayerStreamingKvOnHost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Resident => "resident",
            Self::ResidentKvFp8 => "resident-kv-fp8",
            Self::KvOnHost => "kv-host",
            Self::LayerStreaming => "layer-streaming",
            Self::LayerStreamingKvOnHost => "layer-streaming-kv-host",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Resident => "all DiT layers and KV caches on the GPU",
            Self::ResidentKvFp8 => "all DiT layers on the GPU, KV caches in FP8",
            Self::KvOnHost => "DiT on the GPU, KV caches in host RAM streamed per layer",
            Self::LayerStreaming => "DiT layers streamed from host RAM, four blocks per call",
            Self::LayerStreamingKvOnHost => {
                "DiT layers and KV caches streamed from host RAM, four blocks per call"
            }
        }
    }

    pub fn streams_layers(self) -> bool {
        matches!(self, Self::LayerStreaming | Self::LayerStreamingKvOnHost)
    }

    pub fn kv_on_host(self) -> bool {
        matches!(self, Self::KvOnHost | Self::LayerStreamingKvOnHost)
    }
}

impl std::str::FromStr for Placement {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        Self::ALL
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "`{text}` is not a placement: use one of {}",
                    names.join(", ")
                )
            })
    }
}

/// One device's predicted peak, by component (bytes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DevicePlan {
    /// GPU index; `None` for the CPU (host RAM).
    pub index: Option<u32>,
    pub name: String,
    pub total_bytes: u64,
    /// What the plan may use: free memory, or the VRAM budget when that is smaller.
    pub usable_bytes: u64,
    pub predicted_peak_bytes: u64,
    /// The stage at which the peak happens.
    pub peak_stage: String,
    /// The components alive at the peak.
    pub components: BTreeMap<String, u64>,
}

impl DevicePlan {
    pub fn fits(&self) -> bool {
        self.predicted_peak_bytes <= self.usable_bytes
    }
}

/// Where each network lives at each stage (spec §7.5's stage table).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StagePlacement {
    pub stage: String,
    /// Bytes on the render device during the stage.
    pub device_bytes: u64,
    pub on_device: Vec<String>,
    pub on_host: Vec<String>,
    /// What the device holds during the stage, by component (bytes).
    pub components: BTreeMap<String, u64>,
}

/// A settings change that would make the render fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// What to change, as the user would say it (e.g. `--fp8`).
    pub change: String,
    pub placement: Placement,
    pub predicted_peak_bytes: u64,
    /// Whether this version can run that placement now.
    pub available: bool,
}

/// The planner's answer for one render.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryPlan {
    pub fits: bool,
    pub strategy: Placement,
    /// Whether the text and audio encoders leave the GPU once the prompt and the voice are
    /// encoded (only when the render would not fit with them; the next render reloads them).
    pub releases_encoders: bool,
    /// Whether this version of the pipeline can run `strategy`.
    pub strategy_available: bool,
    pub forced: bool,
    pub device_label: String,
    pub frame_width: u32,
    pub frame_height: u32,
    pub tokens_per_block: usize,
    pub keys_per_call: usize,
    pub weights: String,
    /// Output frames per second the render should reach.
    pub expected_fps: f64,
    /// Where the speed figures come from (measured by `bench`, or assumed).
    pub speed_source: String,
    /// Bytes copied host→device per output frame (layer or KV streaming), 0 when resident.
    pub host_to_device_bytes_per_frame: u64,
    pub devices: Vec<DevicePlan>,
    pub host: DevicePlan,
    pub stages: Vec<StagePlacement>,
    pub suggestions: Vec<Suggestion>,
    /// Why it does not fit (or cannot run), in one line; empty when it does.
    pub verdict: String,
}

pub const GB: f64 = 1e9;

pub fn gb(bytes: u64) -> f64 {
    bytes as f64 / GB
}

impl MemoryPlan {
    /// The device the render runs on.
    pub fn render_device(&self) -> &DevicePlan {
        self.devices.first().unwrap_or(&self.host)
    }

    /// The placement in words, for where the render runs.
    pub fn placement_text(&self) -> &'static str {
        if self.devices.is_empty() {
            "every model in host RAM (CPU)"
        } else {
            self.strategy.describe()
        }
    }

    /// What the plan predicts the GPU holds while the DiT runs, without the VAE: the DiT's
    /// weights, KV caches and activations in the block stage, the allocator's reserve on them,
    /// the CUDA context and runtime pools — what `bench --placement` allocates, so the two can
    /// be compared. `(bytes, the parts)`; `None` for a CPU plan.
    pub fn dit_stage(&self) -> Option<(u64, Vec<(String, u64)>)> {
        const DIT_PARTS: [&str; 3] = ["DiT weights", "KV caches", "DiT activations"];
        const FIXED_PARTS: [&str; 2] = ["CUDA context", "GPU runtime pools"];
        const RESERVE: &str = "allocator reserve";
        if self.devices.is_empty() {
            return None;
        }
        let stage = self.stages.iter().find(|s| s.stage.starts_with("4-5"))?;
        let part = |name: &str| stage.components.get(name).copied().unwrap_or(0);
        let dit: u64 = DIT_PARTS.iter().map(|n| part(n)).sum();
        let fixed: u64 = FIXED_PARTS.iter().map(|n| part(n)).sum();
        let working: u64 = stage
            .components
            .iter()
            .filter(|(n, _)| {
                n.as_str() != RESERVE
                    && n.as_str() != super::planner::CARRY_OVER
                    && !FIXED_PARTS.contains(&n.as_str())
            })
            .map(|(_, b)| *b)
            .sum();
        // The reserve in proportion to the parts the DiT allocates.
        let reserve = (part(RESERVE) as f64 * dit as f64 / working.max(1) as f64) as u64;
        let parts = DIT_PARTS
            .iter()
            .chain(&FIXED_PARTS)
            .map(|n| (n.to_string(), part(n)))
            .chain(std::iter::once((
                "allocator reserve (share)".to_string(),
                reserve,
            )))
            .collect();
        Some((dit + fixed + reserve, parts))
    }

    /// Whether the render can start: it fits and this version can run the placement.
    pub fn can_start(&self) -> bool {
        self.fits && self.strategy_available
    }

    /// One line for logs and progress bars.
    pub fn summary_line(&self) -> String {
        let d = self.render_device();
        format!(
            "plan: {} on {} — peak {:.1} of {:.1} GB usable, {}, about {:.1} output frames/s{}",
            self.strategy.name(),
            self.device_label,
            gb(d.predicted_peak_bytes),
            gb(d.usable_bytes),
            self.weights,
            self.expected_fps,
            if self.can_start() {
                ""
            } else {
                " — does not fit"
            }
        )
    }

    /// The full text `plan` prints.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "placement: {} ({}){}",
            self.strategy.name(),
            self.placement_text(),
            if self.forced { ", forced" } else { "" }
        );
        if self.releases_encoders {
            let _ = writeln!(
                out,
                "umT5 and wav2vec2 leave the GPU once the prompt and the voice are encoded \
                 (the next render loads them again)"
            );
        }
        let _ = writeln!(
            out,
            "frame {}×{}: {} tokens per block, {} keys per attention call; DiT weights {}",
            self.frame_width,
            self.frame_height,
            self.tokens_per_block,
            self.keys_per_call,
            self.weights
        );
        for d in self.devices.iter().chain(std::iter::once(&self.host)) {
            let _ = writeln!(
                out,
                "{}: predicted peak {:.2} GB of {:.2} GB usable ({:.2} GB total), at {} — {}",
                d.name,
                gb(d.predicted_peak_bytes),
                gb(d.usable_bytes),
                gb(d.total_bytes),
                d.peak_stage,
                if d.fits() { "fits" } else { "does NOT fit" }
            );
            let mut parts: Vec<_> = d.components.iter().filter(|(_, b)| **b > 0).collect();
            parts.sort_by(|a, b| b.1.cmp(a.1));
            for (name, bytes) in parts {
                let _ = writeln!(out, "    {name:<28} {:>8.3} GB", gb(*bytes));
            }
        }
        let _ = writeln!(out, "stages on {}:", self.device_label);
        for s in &self.stages {
            let _ = writeln!(
                out,
                "    {:<22} {:>8.2} GB  on device: {}{}",
                s.stage,
                gb(s.device_bytes),
                s.on_device.join(", "),
                if s.on_host.is_empty() {
                    String::new()
                } else {
                    format!("; in host RAM: {}", s.on_host.join(", "))
                }
            );
        }
        let _ = writeln!(
            out,
            "expected speed: {:.2} output frames/s ({}){}",
            self.expected_fps,
            self.speed_source,
            if self.host_to_device_bytes_per_frame > 0 {
                format!(
                    "; {:.2} GB host→device per output frame",
                    gb(self.host_to_device_bytes_per_frame)
                )
            } else {
                String::new()
            }
        );
        if self.can_start() {
            let _ = writeln!(out, "fits: yes");
        } else {
            let _ = writeln!(out, "fits: no — {}", self.verdict);
            if self.suggestions.is_empty() {
                let _ = writeln!(
                    out,
                    "    no smaller size, FP8 or placement tried fits this hardware"
                );
            }
            for s in &self.suggestions {
                let _ = writeln!(
                    out,
                    "    would fit: {} ({}, peak {:.1} GB){}",
                    s.change,
                    s.placement.name(),
                    gb(s.predicted_peak_bytes),
                    if s.available {
                        ""
                    } else {
                        " — not in this version yet"
                    }
                );
            }
        }
        out
    }

    /// The JSON `plan --json` prints: sizes in GB, one object per GPU.
    pub fn to_json(&self) -> serde_json::Value {
        let round = |bytes: u64| (gb(bytes) * 1000.0).round() / 1000.0;
        let device = |d: &DevicePlan| {
            let components: serde_json::Map<_, _> = d
                .components
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::json!(round(*v))))
                .collect();
            serde_json::json!({
                "index": d.index,
                "name": d.name,
                "total_gb": round(d.total_bytes),
                "usable_gb": round(d.usable_bytes),
                "predicted_peak_gb": round(d.predicted_peak_bytes),
                "peak_stage": d.peak_stage,
                "fits": d.fits(),
                "components": components,
            })
        };
        let stages: Vec<_> = self
            .stages
            .iter()
            .map(|s| {
                serde_json::json!({
                    "stage": s.stage,
                    "device_gb": round(s.device_bytes),
                    "on_device": s.on_device,
                    "on_host": s.on_host,
                })
            })
            .collect();
        let suggestions: Vec<_> = self
            .suggestions
            .iter()
            .map(|s| {
                serde_json::json!({
                    "change": s.change,
                    "placement": s.placement.name(),
                    "predicted_peak_gb": round(s.predicted_peak_bytes),
                    "available": s.available,
                })
            })
            .collect();
        serde_json::json!({
            "fits": self.can_start(),
            "memory_fits": self.fits,
            "strategy": self.strategy.name(),
            "releases_encoders": self.releases_encoders,
            "strategy_available": self.strategy_available,
            "forced": self.forced,
            "device": self.device_label,
            "frame": {"width": self.frame_width, "height": self.frame_height},
            "tokens_per_block": self.tokens_per_block,
            "keys_per_call": self.keys_per_call,
            "weights": self.weights,
            "expected_fps": (self.expected_fps * 1000.0).round() / 1000.0,
            "speed_source": self.speed_source,
            "host_to_device_gb_per_frame": round(self.host_to_device_bytes_per_frame),
            "devices": self.devices.iter().map(device).collect::<Vec<_>>(),
            "host": device(&self.host),
            "stages": stages,
            "suggestions": suggestions,
            "verdict": self.verdict,
        })
    }
}
