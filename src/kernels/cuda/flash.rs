//! Flash attention on the GPU: `flash_attention.cu` compiled with NVRTC for the GPU's
//! architecture (one variant per head width and element type), kept on disk next to cubecl's
//! kernels so only the first run on a machine compiles it, and launched on the stream that
//! owns the tensors' memory.

use std::collections::HashMap;
use std::ffi::{CString, c_void};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

use burn::tensor::{DType, Shape, Tensor, backend::Backend};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use cudarc::driver::result as driver;
use cudarc::driver::sys::{CUfunction, CUfunction_attribute};

use super::device::{DeviceContext, raw_buffer};
use super::{CudaTensor, KernelError, as_cuda, from_cuda, is_half};

const SOURCE: &str = include_str!("flash_attention.cu");
const ENTRY: &str = "flash_attention_forward";
const WARPS: usize = 4;
const BLOCK_N: usize = 64;
/// Head widths the kernel is compiled for.
const HEAD_DIMS: [usize; 3] = [32, 64, 128];

/// One compiled variant of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    pub head_dim: usize,
    pub f16: bool,
    /// 16-row query tiles per warp.
    pub warp_m_tiles: usize,
}

impl Variant {
    fn block_m(&self) -> usize {
        16 * self.warp_m_tiles * WARPS
    }

    fn shared_bytes(&self) -> usize {
        (self.block_m() + 4 * BLOCK_N) * self.head_dim * 2
    }
}

/// Query tiles per warp: `AVATAR_STUDIO_FLASH_M_TILES` (1 or 2) when set, else 2.
fn warp_m_tiles() -> usize {
    match std::env::var("AVATAR_STUDIO_FLASH_M_TILES").as_deref() {
        Ok("1") => 1,
        _ => 2,
    }
}

#[derive(Clone, Copy)]
struct Function(CUfunction);
// A loaded kernel is a process-wide driver object.
unsafe impl Send for Function {}

/// `softmax(q·kᵀ/√d)·v` for `[batch, len, heads, head_dim]` inputs, as `[batch, len_q,
/// heads·head_dim]`; `Unsupported` for cases the kernel does not cover.
pub fn attention<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
) -> Result<Tensor<B, 3>, KernelError> {
    let (Some(q), Some(k), Some(v)) = (as_cuda(q), as_cuda(k), as_cuda(v)) else {
        return Err(KernelError::Unsupported("not burn-cuda tensors".into()));
    };
    let out = attention_cuda(q, k, v, warp_m_tiles())?;
    from_cuda(out).ok_or_else(|| KernelError::Unsupported("backend mismatch".into()))
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
    warp_m_tiles: usize,
) -> Result<CudaTensor, KernelError> {
    let [batch, len_q, heads, head_dim] = q.meta.shape().dims::<4>();
    let [k_batch, len_k, k_heads, k_dim] = k.meta.shape().dims::<4>();
    if k.meta.shape() != v.meta.shape() || k_batch != batch || k_heads != heads || k_dim != head_dim
    {
        return Err(KernelError::Unsupported("mismatched q/k/v shapes".into()));
    }
    if !is_half(q.dtype) || k.dtype != q.dtype || v.dtype != q.dtype {
        return Err(KernelError::Unsupported(format!("{:?} attention", q.dtype)));
    }
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
        warp_m_tiles,
    };
    let (q, k, v) = (aligned(q), aligned(k), aligned(v));
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
    if [qb.address, kb.address, vb.address, ob.address]
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
        len_k: len_k as i32,
        heads: heads as i32,
        q_strides: [stride(&q, 0), stride(&q, 1), stride(&q, 2)],
        k_strides: [stride(&k, 0), stride(&k, 1), stride(&k, 2)],
        v_strides: [stride(&v, 0), stride(&v, 1), stride(&v, 2)],
        scale_log2: std::f32::consts::LOG2_E / (head_dim as f32).sqrt(),
    };
    let mut params: Vec<*mut c_void> = vec![
        (&mut args.q) as *mut u64 as *mut c_void,
        (&mut args.k) as *mut u64 as *mut c_void,
        (&mut args.v) as *mut u64 as *mut c_void,
        (&mut args.out) as *mut u64 as *mut c_void,
        (&mut args.len_q) as *mut i32 as *mut c_void,
        (&mut args.len_k) as *mut i32 as *mut c_void,
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
            ((WARPS * 32) as u32, 1, 1),
            variant.shared_bytes() as u32,
            ob.stream,
            &mut params,
        )?;
    }
    drop((q, k, v));
    Ok(out)
}

struct LaunchArgs {
    q: u64,
    k: u64,
    v: u64,
    out: u64,
    len_q: i32,
    len_k: i32,
    heads: i32,
    q_strides: [i64; 3],
    k_strides: [i64; 3],
    v_strides: [i64; 3],
    scale_log2: f32,
}

/// The loaded kernel for `variant` on GPU `device`, compiling (or reading from the disk cache)
/// on first use.
fn function(
    device: usize,
    context: &DeviceContext,
    variant: Variant,
) -> Result<Function, KernelError> {
    static LOADED: Mutex<Option<HashMap<(usize, Variant), Function>>> = Mutex::new(None);
    let mut loaded = LOADED
        .lock()
        .map_err(|_| KernelError::Burn("kernel table poisoned".into()))?;
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some(f) = loaded.get(&(device, variant)) {
        return Ok(*f);
    }
    let ptx = ptx_for(context.capability, variant)?;
    let ptx = CString::new(ptx).map_err(|e| KernelError::Compile(e.to_string()))?;
    let name = CString::new(ENTRY).map_err(|e| KernelError::Compile(e.to_string()))?;
    // SAFETY: `ptx` is NUL-terminated PTX text; the module stays loaded for the process.
    let f = unsafe {
        let module = driver::module::load_data(ptx.as_ptr() as *const c_void)?;
        let f = driver::module::get_function(module, name)?;
        driver::function::set_function_attribute(
            f,
            CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            variant.shared_bytes() as i32,
        )?;
        f
    };
    loaded.insert((device, variant), Function(f));
    Ok(Function(f))
}

/// PTX for `variant` on a GPU of compute capability `capability`: from the disk cache when a
/// previous run compiled it, else from NVRTC (and then stored).
fn ptx_for(capability: (i32, i32), variant: Variant) -> Result<String, KernelError> {
    let arch = arch_name(capability);
    let options = vec![
        format!("-DHEAD_DIM={}", variant.head_dim),
        format!("-DELEM_F16={}", u8::from(variant.f16)),
        format!("-DWARP_M_TILES={}", variant.warp_m_tiles),
        "-std=c++17".to_string(),
    ];
    let cache_file = cache_path(arch, &options);
    if let Some(path) = &cache_file
        && let Ok(ptx) = std::fs::read_to_string(path)
    {
        return Ok(ptx);
    }
    // SAFETY: probing for the library does not touch any CUDA state.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(KernelError::MissingLibrary("NVRTC (libnvrtc)"));
    }
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(
        SOURCE,
        cudarc::nvrtc::CompileOptions {
            arch: Some(arch),
            options: options.clone(),
            name: Some("flash_attention.cu".into()),
            ..Default::default()
        },
    )
    .map_err(|e| KernelError::Compile(format!("{e:?}")))?
    .to_src();
    if let Some(path) = cache_file {
        // A cache that cannot be written only costs the next run a compile.
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&path, &ptx);
    }
    Ok(ptx)
}

/// The virtual architecture to compile for: the GPU's own where NVRTC knows it, else the
/// newest listed below it (PTX runs on later GPUs through the driver's JIT).
fn arch_name(capability: (i32, i32)) -> &'static str {
    match capability {
        (8, 0) => "compute_80",
        (8, 6) => "compute_86",
        (8, 7) => "compute_87",
        (8, 9) => "compute_89",
        (8, _) => "compute_80",
        _ => "compute_90",
    }
}

fn cache_path(arch: &str, options: &[String]) -> Option<PathBuf> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    SOURCE.hash(&mut hasher);
    options.hash(&mut hasher);
    let digest = hasher.finish();
    crate::gpu::kernel_cache_dir().map(|dir| {
        dir.join("flash-attention")
            .join(format!("{arch}-{digest:016x}.ptx"))
    })
}
