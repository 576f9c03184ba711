//! Flash attention on the GPU: `flash_attention_sm90.cu` on Hopper at head width 128 (the
//! DiT's), `flash_attention.cu` everywhere else from sm_80, both compiled with NVRTC (one
//! variant per head width, element type and tiling, see `nvrtc`) and launched on the stream
//! that owns the tensors' memory.

use std::ffi::c_void;
use std::sync::OnceLock;

use burn::tensor::{DType, Shape, Tensor, backend::Backend};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use cudarc::driver::result as driver;
use cudarc::driver::sys::{
    CUtensorMap, CUtensorMapDataType, CUtensorMapFloatOOBfill, CUtensorMapInterleave,
    CUtensorMapL2promotion, CUtensorMapSwizzle,
};

use super::device::{DeviceContext, raw_buffer};
use super::nvrtc::{self, Function, KernelSpec, arg};
use super::{CudaTensor, KernelError, as_cuda, from_cuda, is_half};

/// Each kernel after the definitions both share.
const SOURCE: &str = concat!(
    include_str!("flash_common.cuh"),
    include_str!("flash_attention.cu")
);
const HOPPER_SOURCE: &str = concat!(
    include_str!("flash_common.cuh"),
    include_str!("flash_attention_sm90.cu")
);
/// Head widths the mma.sync kernel is compiled for.
const HEAD_DIMS: [usize; 3] = [32, 64, 128];
/// The Hopper kernel's one head width, block of query rows, threads and shared memory (two
/// stages of K and V tiles of 128 keys, the query tile, nine mbarriers, and 1 KB to align the
/// tiles to the 128-byte swizzle's 1024-byte pattern).
const HOPPER_HEAD_DIM: usize = 128;
const HOPPER_BLOCK_M: usize = 128;
const HOPPER_THREADS: usize = 384;
const HOPPER_SHARED_BYTES: usize = 5 * 128 * 128 * 2 + 9 * 8 + 1024;

/// Which kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `flash_attention.cu`: warp-level mma.sync, every NVIDIA GPU from sm_80.
    MmaSync(Tiling),
    /// `flash_attention_sm90.cu`: warp-specialised warpgroup MMA (FlashAttention-3's design),
    /// Hopper only, head width 128.
    Hopper,
}

impl Kernel {
    /// The kernel for a GPU of compute capability `capability` at `head_dim`: the Hopper one
    /// where it applies, unless `AVATAR_STUDIO_FLASH` names an mma.sync tiling (`m_tiles,warps,
    /// block_n`, e.g. `2,8,64`) or `mma` (the default tiling), for comparing them with `bench`.
    pub fn choose(capability: (i32, i32), head_dim: usize) -> Kernel {
        // Read once: this runs for every attention call.
        static REQUESTED: OnceLock<Option<String>> = OnceLock::new();
        let requested = REQUESTED.get_or_init(|| std::env::var("AVATAR_STUDIO_FLASH").ok());
        let forced_mma = requested.as_deref().map(str::trim) == Some("mma");
        match Tiling::parse(requested.as_deref()) {
            Some(tiling) => Kernel::MmaSync(tiling),
            None if capability == (9, 0) && head_dim == HOPPER_HEAD_DIM && !forced_mma => {
                Kernel::Hopper
            }
            None => Kernel::MmaSync(Tiling::DEFAULT),
        }
    }
}

/// One compiled variant of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    pub head_dim: usize,
    pub f16: bool,
    pub kernel: Kernel,
}

/// How the mma.sync kernel tiles the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tiling {
    /// 16-row query tiles per warp.
    pub warp_m_tiles: usize,
    /// Warps per block.
    pub warps: usize,
    /// Keys per tile.
    pub block_n: usize,
}

impl Tiling {
    /// Measured fastest on an H100 at the streaming call's 3168:15312 (293 TFLOP/s, against
    /// 277 for 4 warps and 226–233 for one query tile per warp; `docs/gpu-fast-path.md`).
    pub const DEFAULT: Tiling = Tiling {
        warp_m_tiles: 2,
        warps: 8,
        block_n: 64,
    };

    /// `m_tiles,warps,block_n` (e.g. `1,8,64`) when valid.
    fn parse(text: Option<&str>) -> Option<Tiling> {
        let parts: Vec<usize> = text?
            .split(',')
            .map(|p| p.trim().parse().ok())
            .collect::<Option<_>>()?;
        match parts[..] {
            [m @ (1 | 2), w @ (4 | 8), n @ (64 | 128)] => Some(Tiling {
                warp_m_tiles: m,
                warps: w,
                block_n: n,
            }),
            _ => None,
        }
    }
}

impl Variant {
    fn block_m(&self) -> usize {
        match self.kernel {
            Kernel::MmaSync(tiling) => 16 * tiling.warp_m_tiles * tiling.warps,
            Kernel::Hopper => HOPPER_BLOCK_M,
        }
    }

    fn threads(&self) -> usize {
        match self.kernel {
            Kernel::MmaSync(tiling) => tiling.warps * 32,
            Kernel::Hopper => HOPPER_THREADS,
        }
    }

    fn shared_bytes(&self) -> usize {
        match self.kernel {
            Kernel::MmaSync(tiling) => (self.block_m() + 4 * tiling.block_n) * self.head_dim * 2,
            Kernel::Hopper => HOPPER_SHARED_BYTES,
        }
    }
}

/// `softmax(q·kᵀ/√d)·v` for `[batch, len, heads, head_dim]` inputs, as `[batch, len_q,
/// heads·head_dim]`; `Unsupported` for cases the kernel does not cover.
pub fn attention<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
) -> Result<Tensor<B, 3>, KernelError> {
    let out = attention_cuda(as_cuda(q)?, as_cuda(k)?, as_cuda(v)?, None, None)?;
    from_cuda(out)
}

/// [`attention`] over keys and values in two segments along the sequence, read in place.
pub fn attention_segments<B: Backend>(
    q: &Tensor<B, 4>,
    first: (&Tensor<B, 4>, &Tensor<B, 4>),
    second: (&Tensor<B, 4>, &Tensor<B, 4>),
) -> Result<Tensor<B, 3>, KernelError> {
    let out = attention_cuda(
        as_cuda(q)?,
        as_cuda(first.0)?,
        as_cuda(first.1)?,
        Some((as_cuda(second.0)?, as_cuda(second.1)?)),
        None,
    )?;
    from_cuda(out)
}

/// [`attention_segments`] (or [`attention`], without `second`) through the kernel named
/// instead of the one [`Kernel::choose`] picks, for comparing the kernels on one GPU.
pub fn attention_with_kernel<B: Backend>(
    q: &Tensor<B, 4>,
    first: (&Tensor<B, 4>, &Tensor<B, 4>),
    second: Option<(&Tensor<B, 4>, &Tensor<B, 4>)>,
    kernel: Kernel,
) -> Result<Tensor<B, 3>, KernelError> {
    let second = match second {
        Some((k2, v2)) => Some((as_cuda(k2)?, as_cuda(v2)?)),
        None => None,
    };
    let out = attention_cuda(
        as_cuda(q)?,
        as_cuda(first.0)?,
        as_cuda(first.1)?,
        second,
        Some(kernel),
    )?;
    from_cuda(out)
}

/// Makes the head dimension unit-stride and every row 16-byte aligned (the kernel copies rows
/// in 16-byte pieces), copying only when the tensor is not already so.
fn aligned(t: CudaTensor) -> CudaTensor {
    let strides = t.meta.strides().to_vec();
    let ok = strides[3] == 1 && strides[..3].iter().all(|s| s % 8 == 0);
    if ok { t } else { into_contiguous(t) }
}

pub(crate) fn attention_cuda(
    q: CudaTensor,
    k: CudaTensor,
    v: CudaTensor,
    second: Option<(CudaTensor, CudaTensor)>,
    kernel: Option<Kernel>,
) -> Result<CudaTensor, KernelError> {
    let [batch, len_q, heads, head_dim] = q.meta.shape().dims::<4>();
    let len_k1 = k.meta.shape().dims::<4>()[1];
    let fits = |k: &CudaTensor, v: &CudaTensor| {
        let [b, _, h, d] = k.meta.shape().dims::<4>();
        k.meta.shape() == v.meta.shape()
            && b == batch
            && h == heads
            && d == head_dim
            && k.dtype == q.dtype
            && v.dtype == q.dtype
    };
    if !fits(&k, &v) || second.as_ref().is_some_and(|(k2, v2)| !fits(k2, v2)) {
        return Err(KernelError::Unsupported("mismatched q/k/v shapes".into()));
    }
    if !is_half(q.dtype) {
        return Err(KernelError::Unsupported(format!("{:?} attention", q.dtype)));
    }
    let len_k2 = second
        .as_ref()
        .map_or(0, |(k2, _)| k2.meta.shape().dims::<4>()[1]);
    let len_k = len_k1 + len_k2;
    if !HEAD_DIMS.contains(&head_dim) || len_k == 0 || len_q == 0 {
        return Err(KernelError::Unsupported(format!("head width {head_dim}")));
    }
    let context = DeviceContext::get(q.device.index)?;
    if context.capability.0 < 8 {
        return Err(KernelError::Unsupported("GPU older than sm_80".into()));
    }
    let kernel = kernel.unwrap_or_else(|| Kernel::choose(context.capability, head_dim));
    if kernel == Kernel::Hopper && (context.capability != (9, 0) || head_dim != HOPPER_HEAD_DIM) {
        return Err(KernelError::Unsupported(format!(
            "the Hopper attention kernel at head width {head_dim} on sm_{}{}",
            context.capability.0, context.capability.1
        )));
    }
    let variant = Variant {
        head_dim,
        f16: q.dtype == DType::F16,
        kernel,
    };
    let (q, k, v) = (aligned(q), aligned(k), aligned(v));
    // Without a second segment the first stands in for it (zero rows, never read).
    let (k2, v2) = match second {
        Some((k2, v2)) => (aligned(k2), aligned(v2)),
        None => (k.clone(), v.clone()),
    };
    context.make_current()?;
    let function = function(q.device.index, context, variant)?;

    let out = empty_device_contiguous_dtype(
        q.client.clone(),
        q.device.clone(),
        Shape::new([batch, len_q, heads * head_dim]),
        q.dtype,
    );
    let (qb, kb, vb, ob) = (
        raw_buffer(&q)?,
        raw_buffer(&k)?,
        raw_buffer(&v)?,
        raw_buffer(&out)?,
    );
    let (k2b, v2b) = (raw_buffer(&k2)?, raw_buffer(&v2)?);
    if [
        qb.address,
        kb.address,
        vb.address,
        ob.address,
        k2b.address,
        v2b.address,
    ]
    .iter()
    .any(|a| a % 16 != 0)
    {
        return Err(KernelError::Unsupported(
            "unaligned attention operand".into(),
        ));
    }
    let scale_log2 = std::f32::consts::LOG2_E / (head_dim as f32).sqrt();
    let grid = (
        len_q.div_ceil(variant.block_m()) as u32,
        heads as u32,
        batch as u32,
    );
    let stride = |t: &CudaTensor, dim: usize| t.meta.strides()[dim] as i64;
    let strides = |t: &CudaTensor| [stride(t, 0), stride(t, 1), stride(t, 2)];
    // The arguments live in whichever of these the kernel takes; `params` points into it.
    let (mut hopper, mut mma) = (None, None);
    let mut params = match variant.kernel {
        Kernel::Hopper => hopper
            .insert(HopperArgs {
                maps: [
                    tensor_map(&q, qb.address)?,
                    tensor_map(&k, kb.address)?,
                    tensor_map(&v, vb.address)?,
                    tensor_map(&k2, k2b.address)?,
                    tensor_map(&v2, v2b.address)?,
                ],
                out: ob.address,
                len_q: len_q as i32,
                len_k1: len_k1 as i32,
                len_k2: len_k2 as i32,
                heads: heads as i32,
                scale_log2,
            })
            .params(),
        Kernel::MmaSync(_) => mma
            .insert(LaunchArgs {
                q: qb.address,
                k: kb.address,
                v: vb.address,
                out: ob.address,
                len_q: len_q as i32,
                len_k1: len_k1 as i32,
                heads: heads as i32,
                q_strides: strides(&q),
                k_strides: strides(&k),
                v_strides: strides(&v),
                scale_log2,
                k2: k2b.address,
                v2: v2b.address,
                len_k2: len_k2 as i32,
                k2_strides: strides(&k2),
                v2_strides: strides(&v2),
            })
            .params(),
    };
    // SAFETY: the parameters match the kernel's signature in order and type; the buffers (and
    // the tensor maps describing them) are live allocations of the shapes and strides given,
    // held until the launch is enqueued; the TMA reads the maps from the launch's own copy.
    unsafe {
        driver::launch_kernel(
            function.0,
            grid,
            (variant.threads() as u32, 1, 1),
            variant.shared_bytes() as u32,
            ob.stream,
            &mut params,
        )?;
    }
    drop((q, k, v, k2, v2));
    Ok(out)
}

struct LaunchArgs {
    q: u64,
    k: u64,
    v: u64,
    out: u64,
    len_q: i32,
    len_k1: i32,
    heads: i32,
    q_strides: [i64; 3],
    k_strides: [i64; 3],
    v_strides: [i64; 3],
    scale_log2: f32,
    k2: u64,
    v2: u64,
    len_k2: i32,
    k2_strides: [i64; 3],
    v2_strides: [i64; 3],
}

impl LaunchArgs {
    /// Pointers to the arguments in `flash_attention.cu`'s parameter order.
    fn params(&mut self) -> Vec<*mut c_void> {
        let mut params = vec![
            arg(&mut self.q),
            arg(&mut self.k),
            arg(&mut self.v),
            arg(&mut self.out),
            arg(&mut self.len_q),
            arg(&mut self.len_k1),
            arg(&mut self.heads),
        ];
        for strides in [
            &mut self.q_strides,
            &mut self.k_strides,
            &mut self.v_strides,
        ] {
            params.extend(strides.iter_mut().map(arg));
        }
        params.extend([
            arg(&mut self.scale_log2),
            arg(&mut self.k2),
            arg(&mut self.v2),
            arg(&mut self.len_k2),
        ]);
        for strides in [&mut self.k2_strides, &mut self.v2_strides] {
            params.extend(strides.iter_mut().map(arg));
        }
        params
    }
}

struct HopperArgs {
    maps: [CUtensorMap; 5],
    out: u64,
    len_q: i32,
    len_k1: i32,
    len_k2: i32,
    heads: i32,
    scale_log2: f32,
}

impl HopperArgs {
    /// Pointers to the arguments in `flash_attention_sm90.cu`'s parameter order.
    fn params(&mut self) -> Vec<*mut c_void> {
        let mut params: Vec<_> = self.maps.iter_mut().map(arg).collect();
        params.extend([
            arg(&mut self.out),
            arg(&mut self.len_q),
            arg(&mut self.len_k1),
            arg(&mut self.len_k2),
            arg(&mut self.heads),
            arg(&mut self.scale_log2),
        ]);
        params
    }
}

/// The TMA's description of a `[batch, tokens, heads, 128]` tensor at `address`, dimensions
/// ordered (head width, heads, tokens, batch), boxes of 64 columns × 1 head × 128 tokens in the
/// 128-byte swizzle (the Hopper kernel's half tiles). Tokens past the end read as zeros.
fn tensor_map(t: &CudaTensor, address: u64) -> Result<CUtensorMap, KernelError> {
    let [batch, tokens, heads, width] = t.meta.shape().dims::<4>();
    let strides = t.meta.strides();
    let elem = t.dtype.size() as u64;
    // A dimension of one element is never stepped along; give it the packed stride, so that a
    // stride the TMA refuses (zero, for a broadcast) does not matter.
    let stride = |dim: usize, size: usize, packed: u64| {
        if size == 1 {
            packed
        } else {
            strides[dim] as u64 * elem
        }
    };
    let head_stride = stride(2, heads, width as u64 * elem);
    let token_stride = stride(1, tokens, heads as u64 * head_stride);
    let batch_stride = stride(0, batch, tokens as u64 * token_stride);
    let dims = [width as u64, heads as u64, tokens as u64, batch as u64];
    let global_strides = [head_stride, token_stride, batch_stride];
    let boxes = [64u32, 1, 128, 1];
    let element_strides = [1u32; 4];
    let data_type = if t.dtype == DType::F16 {
        CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT16
    } else {
        CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
    };
    let mut map = std::mem::MaybeUninit::<CUtensorMap>::zeroed();
    // SAFETY: every array has the rank's length; the address is a live device allocation of
    // the described extent (16-byte aligned, checked by the caller).
    unsafe {
        cudarc::driver::sys::cuTensorMapEncodeTiled(
            map.as_mut_ptr(),
            data_type,
            4,
            address as *mut c_void,
            dims.as_ptr(),
            global_strides.as_ptr(),
            boxes.as_ptr(),
            element_strides.as_ptr(),
            CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
        .result()
        .map_err(|e| KernelError::Unsupported(format!("a TMA tensor map for attention: {e}")))?;
        Ok(map.assume_init())
    }
}

/// The loaded kernel for `variant` on GPU `device`.
fn function(
    device: usize,
    context: &DeviceContext,
    variant: Variant,
) -> Result<Function, KernelError> {
    let mut options = vec![
        format!("-DHEAD_DIM={}", variant.head_dim),
        format!("-DELEM_F16={}", u8::from(variant.f16)),
    ];
    let (source_name, source) = match variant.kernel {
        Kernel::MmaSync(tiling) => {
            options.extend([
                format!("-DWARP_M_TILES={}", tiling.warp_m_tiles),
                format!("-DWARPS={}", tiling.warps),
                format!("-DBLOCK_N={}", tiling.block_n),
            ]);
            ("flash_attention.cu", SOURCE)
        }
        Kernel::Hopper => ("flash_attention_sm90.cu", hopper_source()),
    };
    nvrtc::function(
        device,
        context,
        &KernelSpec {
            source_name,
            source,
            options,
            entry: "flash_attention_forward",
            dynamic_shared_bytes: variant.shared_bytes(),
            arch_specific: variant.kernel == Kernel::Hopper,
        },
    )
}

/// The Hopper kernel's source: the built-in one, unless kernel development points
/// `AVATAR_STUDIO_FLASH_SOURCE` at another `.cu` file (read once, and put after
/// `flash_common.cuh` as the built-in one is), so that variants can be
/// compared on a GPU machine without rebuilding.
fn hopper_source() -> &'static str {
    static CHOSEN: OnceLock<&'static str> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        std::env::var_os("AVATAR_STUDIO_FLASH_SOURCE")
            .and_then(|path| match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let source = format!("{}{text}", include_str!("flash_common.cuh"));
                    Some(&*Box::leak(source.into_boxed_str()))
                }
                Err(e) => {
                    eprintln!(
                        "AVATAR_STUDIO_FLASH_SOURCE: cannot read {}: {e}; using the built-in \
                         kernel",
                        path.to_string_lossy()
                    );
                    None
                }
            })
            .unwrap_or(HOPPER_SOURCE)
    })
}
