//! Flash attention on the GPU: `flash_attention.cu` compiled with NVRTC (one variant per head
//! width and element type, see `nvrtc`) and launched on the stream that owns the tensors'
//! memory.

use std::ffi::c_void;

use burn::tensor::{DType, Shape, Tensor, backend::Backend};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use cudarc::driver::result as driver;

use super::device::{DeviceContext, raw_buffer};
use super::nvrtc::{self, Function, KernelSpec};
use super::{CudaTensor, KernelError, as_cuda, from_cuda, is_half};

const SOURCE: &str = include_str!("flash_attention.cu");
/// Head widths the kernel is compiled for.
const HEAD_DIMS: [usize; 3] = [32, 64, 128];

/// One compiled variant of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    pub head_dim: usize,
    pub f16: bool,
    pub tiling: Tiling,
}

/// How the kernel tiles the work.
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

    /// `AVATAR_STUDIO_FLASH=m_tiles,warps,block_n` (e.g. `1,8,64`) when set and valid, else
    /// [`Tiling::DEFAULT`]; for comparing tilings with `bench`.
    pub fn from_env() -> Tiling {
        let parsed = std::env::var("AVATAR_STUDIO_FLASH").ok().and_then(|text| {
            let parts: Vec<usize> = text
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
        });
        parsed.unwrap_or(Tiling::DEFAULT)
    }
}

impl Variant {
    fn block_m(&self) -> usize {
        16 * self.tiling.warp_m_tiles * self.tiling.warps
    }

    fn shared_bytes(&self) -> usize {
        (self.block_m() + 4 * self.tiling.block_n) * self.head_dim * 2
    }
}

/// `softmax(q·kᵀ/√d)·v` for `[batch, len, heads, head_dim]` inputs, as `[batch, len_q,
/// heads·head_dim]`; `Unsupported` for cases the kernel does not cover.
pub fn attention<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
) -> Result<Tensor<B, 3>, KernelError> {
    let out = attention_cuda(
        as_cuda(q)?,
        as_cuda(k)?,
        as_cuda(v)?,
        None,
        Tiling::from_env(),
    )?;
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
        Tiling::from_env(),
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
    tiling: Tiling,
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
    let variant = Variant {
        head_dim,
        f16: q.dtype == DType::F16,
        tiling,
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
    let stride = |t: &CudaTensor, dim: usize| t.meta.strides()[dim] as i64;
    let mut args = LaunchArgs {
        q: qb.address,
        k: kb.address,
        v: vb.address,
        out: ob.address,
        len_q: len_q as i32,
        len_k1: len_k1 as i32,
        heads: heads as i32,
        q_strides: [stride(&q, 0), stride(&q, 1), stride(&q, 2)],
        k_strides: [stride(&k, 0), stride(&k, 1), stride(&k, 2)],
        v_strides: [stride(&v, 0), stride(&v, 1), stride(&v, 2)],
        scale_log2: std::f32::consts::LOG2_E / (head_dim as f32).sqrt(),
        k2: k2b.address,
        v2: v2b.address,
        len_k2: len_k2 as i32,
        k2_strides: [stride(&k2, 0), stride(&k2, 1), stride(&k2, 2)],
        v2_strides: [stride(&v2, 0), stride(&v2, 1), stride(&v2, 2)],
    };
    let mut params: Vec<*mut c_void> = vec![
        (&mut args.q) as *mut u64 as *mut c_void,
        (&mut args.k) as *mut u64 as *mut c_void,
        (&mut args.v) as *mut u64 as *mut c_void,
        (&mut args.out) as *mut u64 as *mut c_void,
        (&mut args.len_q) as *mut i32 as *mut c_void,
        (&mut args.len_k1) as *mut i32 as *mut c_void,
        (&mut args.heads) as *mut i32 as *mut c_void,
    ];
    for strides in [
        &mut args.q_strides,
        &mut args.k_strides,
        &mut args.v_strides,
    ] {
        for s in strides.iter_mut() {
            params.push(s as *mut i64 as *mut c_void);
        }
    }
    params.push((&mut args.scale_log2) as *mut f32 as *mut c_void);
    params.push((&mut args.k2) as *mut u64 as *mut c_void);
    params.push((&mut args.v2) as *mut u64 as *mut c_void);
    params.push((&mut args.len_k2) as *mut i32 as *mut c_void);
    for strides in [&mut args.k2_strides, &mut args.v2_strides] {
        for s in strides.iter_mut() {
            params.push(s as *mut i64 as *mut c_void);
        }
    }
    let grid = (
        len_q.div_ceil(variant.block_m()) as u32,
        heads as u32,
        batch as u32,
    );
    // SAFETY: the parameters match the kernel's signature in order and type; the buffers are
    // live allocations of the shapes and strides passed, held until the launch is enqueued.
    unsafe {
        driver::launch_kernel(
            function.0,
            grid,
            ((variant.tiling.warps * 32) as u32, 1, 1),
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

/// The loaded kernel for `variant` on GPU `device`.
fn function(
    device: usize,
    context: &DeviceContext,
    variant: Variant,
) -> Result<Function, KernelError> {
    nvrtc::function(
        device,
        context,
        &KernelSpec {
            source_name: "flash_attention.cu",
            source: SOURCE,
            options: vec![
                format!("-DHEAD_DIM={}", variant.head_dim),
                format!("-DELEM_F16={}", u8::from(variant.f16)),
                format!("-DWARP_M_TILES={}", variant.tiling.warp_m_tiles),
                format!("-DWARPS={}", variant.tiling.warps),
                format!("-DBLOCK_N={}", variant.tiling.block_n),
            ],
            entry: "flash_attention_forward",
            dynamic_shared_bytes: variant.shared_bytes(),
        },
    )
}
