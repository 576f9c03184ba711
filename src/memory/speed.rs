//! The speed side of a plan: how long one block of 12 output frames takes for a placement,
//! from the work it does (DiT FLOPs from the shapes, bytes copied from host RAM, the VAE
//! decode) and throughput figures. The figures are the `bench` command's measurements when it
//! has run on this machine; until then they are stated assumptions, and the plan says which.

use super::footprint::ModelFootprint;
use super::plan::Placement;

/// Throughputs a plan's speed estimate rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedFigures {
    /// GEMM throughput of the DiT's linears on the GPU, TFLOP/s, bf16.
    pub gpu_tflops_bf16: f64,
    /// The same with FP8 linears.
    pub gpu_tflops_fp8: f64,
    /// Attention throughput on the GPU, TFLOP/s.
    pub gpu_attention_tflops: f64,
    /// A DiT call's time over the sum of its GEMM and attention times: the norms, RoPE,
    /// residual adds and cache copies between them.
    pub gpu_call_overhead: f64,
    /// Pinned host→device copy bandwidth, GB/s.
    pub host_to_device_gbps: f64,
    /// Streaming VAE decode of one 3-latent block at 384×704 on the GPU, seconds.
    pub gpu_vae_block_seconds: f64,
    /// Effective throughput of the CPU backend, TFLOP/s.
    pub cpu_tflops: f64,
    /// Where these numbers come from, printed with the plan.
    pub source: String,
}

impl Default for SpeedFigures {
    /// Measured with `avatar-studio bench` on an H100 (`docs/gpu-fast-path.md`): cuBLASLt runs
    /// the 14B GEMMs at 596–788 TFLOP/s in bf16 and 1055–1313 TFLOP/s with FP8 linears (their
    /// activations' quantisation included), the Hopper flash kernel attention at 588–672
    /// TFLOP/s (the mma.sync kernel other GPUs run reached 259–303 on the same H100); the
    /// 40-layer call took 208 ms in bf16 and 170 ms with FP8 linears, about 1.2 and 1.33 times
    /// what its GEMMs and attention alone would at those rates (the norms, RoPE, residuals,
    /// quantisation, audio injection, embedding and head; hence the 1.25 overhead). PCIe 4.0 ×16 pinned
    /// copies are assumed; the VAE block time was measured on an H200
    /// (`examples/vae_memory.rs`, 0.47 s).
    fn default() -> Self {
        Self {
            gpu_tflops_bf16: 700.0,
            gpu_tflops_fp8: 1200.0,
            gpu_attention_tflops: 640.0,
            gpu_call_overhead: 1.25,
            host_to_device_gbps: 25.0,
            gpu_vae_block_seconds: 0.47,
            cpu_tflops: 0.05,
            source: "figures measured on an H100, not on this machine".into(),
        }
    }
}

/// The work of one block.
pub struct BlockWork<'a> {
    pub footprint: &'a ModelFootprint,
    pub tokens_per_block: u64,
    pub keys_per_call: u64,
    pub steps: u64,
    pub fp8: bool,
    pub pixels: u64,
    pub on_gpu: bool,
    pub placement: Placement,
    /// What one call copies in of its step's ring cache over all layers, bytes.
    pub ring_bytes_per_step: u64,
}

/// Time and copies per block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockTiming {
    pub seconds: f64,
    /// Host→device bytes per block.
    pub copied_bytes: u64,
}

/// Reference decode size of `gpu_vae_block_seconds`.
const VAE_REFERENCE_PIXELS: f64 = 384.0 * 704.0;
/// Effective throughput assumed behind the measured GPU decode, to translate it to the CPU.
const VAE_REFERENCE_TFLOPS: f64 = 120.0;

impl SpeedFigures {
    /// FLOPs of one DiT call on `tokens` query tokens against `keys` keys: `(linears,
    /// attention)`.
    pub fn dit_call_flops(f: &ModelFootprint, tokens: u64, keys: u64) -> (f64, f64) {
        let layer_params: f64 = f.dit_layers.iter().map(|l| l.bf16 as f64 / 2.0).sum();
        let dim = f.dit_dim as f64;
        let layers = f.num_layers() as f64;
        let t = tokens as f64;
        (
            2.0 * t * layer_params,
            4.0 * t * keys as f64 * dim * layers + 4.0 * t * f.text_len as f64 * dim * layers,
        )
    }

    pub fn block_time(&self, w: &BlockWork<'_>) -> BlockTiming {
        let (linear_flops, attention_flops) =
            Self::dit_call_flops(w.footprint, w.tokens_per_block, w.keys_per_call);
        let call = if !w.on_gpu {
            (linear_flops + attention_flops) / (self.cpu_tflops.max(1e-9) * 1e12)
        } else {
            let gemm = if w.fp8 {
                self.gpu_tflops_fp8
            } else {
                self.gpu_tflops_bf16
            };
            (linear_flops / (gemm.max(1e-9) * 1e12)
                + attention_flops / (self.gpu_attention_tflops.max(1e-9) * 1e12))
                * self.gpu_call_overhead.max(1.0)
        };
        let bandwidth = self.host_to_device_gbps.max(1e-9) * 1e9;
        let kv_copy = if w.placement.kv_on_host() {
            w.ring_bytes_per_step * w.steps
        } else {
            0
        };
        let (dit_seconds, copied) = if w.placement.streams_layers() {
            // Steady state: one call per tick serves four blocks at four steps, so each block
            // costs one tick's compute share and one pass over the weights.
            let weights = w.footprint.dit_bytes(w.fp8);
            let compute = call * w.steps as f64;
            let copies = weights + kv_copy;
            (compute.max(copies as f64 / bandwidth), copies)
        } else {
            let compute = call * w.steps as f64;
            (compute.max(kv_copy as f64 / bandwidth), kv_copy)
        };
        let vae = if w.on_gpu {
            self.gpu_vae_block_seconds * w.pixels as f64 / VAE_REFERENCE_PIXELS
        } else {
            // The CPU decode is convolution-bound like the DiT: scale the measured GPU decode
            // by the throughput gap.
            self.gpu_vae_block_seconds * w.pixels as f64 / VAE_REFERENCE_PIXELS
                * (VAE_REFERENCE_TFLOPS / self.cpu_tflops.max(1e-9))
                * (w.footprint.vae_base_channels as f64 / 96.0).powi(2)
        };
        BlockTiming {
            seconds: dit_seconds + vae,
            copied_bytes: copied,
        }
    }
}
