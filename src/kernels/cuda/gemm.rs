//! Dense layers through cuBLASLt: bf16/f16 in and out with f32 accumulation (f32 in strict
//! f32 mode, TF32 otherwise, as burn-cuda's own matmul does), bias and GELU-tanh fused as
//! epilogues, enqueued on the stream that owns the tensors' memory. Matmul descriptors and the
//! algorithm cuBLASLt's heuristic picks are cached per problem.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

use burn::tensor::{DType, Shape, Tensor, backend::Backend};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use cudarc::cublaslt::result as lt;
use cudarc::cublaslt::sys;

use super::device::{DeviceContext, raw_buffer};
use super::{CudaTensor, KernelError, as_cuda, from_cuda};
use crate::kernels::Activation;

/// cuBLASLt's recommended workspace on Hopper (it asks for 4 MiB on older GPUs).
const WORKSPACE_BYTES: usize = 32 << 20;
/// Cached problems per GPU before the cache is cleared (shapes vary little within a render).
const MAX_CACHED_PLANS: usize = 512;

/// `activation(x·weight_t + bias)` on the GPU; `Unsupported` for anything but burn-cuda
/// tensors of one float type.
pub fn linear<B: Backend>(
    x: &Tensor<B, 2>,
    weight_t: &Tensor<B, 2>,
    bias: Option<&Tensor<B, 1>>,
    activation: Activation,
) -> Result<Tensor<B, 2>, KernelError> {
    let bias = bias.map(as_cuda).transpose()?;
    let out = linear_cuda(as_cuda(x)?, as_cuda(weight_t)?, bias, activation)?;
    from_cuda(out)
}

/// How one operand sits in memory, in cuBLASLt's column-major terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Operand {
    rows: u64,
    cols: u64,
    ld: i64,
    transposed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PlanKey {
    dtype: u8,
    strict: bool,
    a: Operand,
    b: Operand,
    m: u64,
    n: u64,
    epilogue: u8,
}

/// A matmul descriptor, its layouts and the chosen algorithm for one problem.
struct Plan {
    desc: sys::cublasLtMatmulDesc_t,
    a: sys::cublasLtMatrixLayout_t,
    b: sys::cublasLtMatrixLayout_t,
    d: sys::cublasLtMatrixLayout_t,
    algo: sys::cublasLtMatmulAlgo_t,
}

impl Drop for Plan {
    fn drop(&mut self) {
        // SAFETY: each handle was created for this plan and is destroyed once.
        unsafe {
            let _ = lt::destroy_matrix_layout(self.a);
            let _ = lt::destroy_matrix_layout(self.b);
            let _ = lt::destroy_matrix_layout(self.d);
            let _ = lt::destroy_matmul_desc(self.desc);
        }
    }
}

/// One cuBLASLt handle per GPU, its workspaces (one per stream, so concurrent streams never
/// share one) and the plan cache.
struct GemmState {
    handle: sys::cublasLtHandle_t,
    workspaces: HashMap<usize, u64>,
    plans: HashMap<PlanKey, Plan>,
}

// The cuBLASLt handle and descriptors are plain driver objects; the state is only touched
// under its mutex.
unsafe impl Send for GemmState {}

fn states() -> &'static Mutex<HashMap<usize, GemmState>> {
    static STATES: std::sync::OnceLock<Mutex<HashMap<usize, GemmState>>> =
        std::sync::OnceLock::new();
    STATES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn cublas_dtype(dtype: DType) -> Result<(sys::cudaDataType, u8), KernelError> {
    match dtype {
        DType::BF16 => Ok((sys::cudaDataType::CUDA_R_16BF, 1)),
        DType::F16 => Ok((sys::cudaDataType::CUDA_R_16F, 2)),
        DType::F32 => Ok((sys::cudaDataType::CUDA_R_32F, 3)),
        other => Err(KernelError::Unsupported(format!("{other:?} GEMM"))),
    }
}

/// `x` `[m, k]` row-major as cuBLASLt's B operand (`k × m` column-major), copying it into a
/// contiguous buffer when its rows are not unit-stride.
fn rows_operand(x: CudaTensor) -> (CudaTensor, Operand) {
    let [m, k] = x.meta.shape().dims::<2>();
    let strides = x.meta.strides().to_vec();
    let x = if strides[1] == 1 && (m == 1 || strides[0] >= k) {
        x
    } else {
        into_contiguous(x)
    };
    let ld = if m == 1 { k } else { x.meta.strides()[0] };
    let operand = Operand {
        rows: k as u64,
        cols: m as u64,
        ld: ld.max(1) as i64,
        transposed: false,
    };
    (x, operand)
}

/// `weight_t` `[k, n]` as cuBLASLt's A operand (`n × k` after its op): a row-major `[k, n]`
/// is `n × k` column-major as stored; the transposed view of a row-major `[n, k]` weight (how
/// the layers keep it) is `k × n` column-major, used transposed.
fn weight_operand(w: CudaTensor) -> (CudaTensor, Operand) {
    let [k, n] = w.meta.shape().dims::<2>();
    let strides = w.meta.strides().to_vec();
    if strides[0] == 1 && n > 1 && strides[1] >= k {
        let ld = strides[1];
        return (
            w,
            Operand {
                rows: k as u64,
                cols: n as u64,
                ld: ld as i64,
                transposed: true,
            },
        );
    }
    let w = if strides[1] == 1 && (k == 1 || strides[0] >= n) {
        w
    } else {
        into_contiguous(w)
    };
    let ld = if k == 1 { n } else { w.meta.strides()[0] };
    (
        w,
        Operand {
            rows: n as u64,
            cols: k as u64,
            ld: ld.max(1) as i64,
            transposed: false,
        },
    )
}

fn linear_cuda(
    x: CudaTensor,
    w: CudaTensor,
    bias: Option<CudaTensor>,
    activation: Activation,
) -> Result<CudaTensor, KernelError> {
    if x.dtype != w.dtype || bias.as_ref().is_some_and(|b| b.dtype != x.dtype) {
        return Err(KernelError::Unsupported("mixed element types".into()));
    }
    let (data_type, dtype_tag) = cublas_dtype(x.dtype)?;
    let [m, k] = x.meta.shape().dims::<2>();
    let [k_w, n] = w.meta.shape().dims::<2>();
    if k != k_w || m == 0 || n == 0 || k == 0 {
        return Err(KernelError::Unsupported(format!(
            "shapes [{m}, {k}]·[{k_w}, {n}]"
        )));
    }
    let bias = match bias {
        Some(b) if b.meta.strides()[0] != 1 => Some(into_contiguous(b)),
        other => other,
    };
    let strict = crate::gpu::is_strict_f32_matmul();
    let (x, b_operand) = rows_operand(x);
    let (w, a_operand) = weight_operand(w);
    let context = DeviceContext::get(x.device.index)?;
    context.make_current()?;
    // SAFETY: probing for the library does not touch any CUDA state.
    if !unsafe { sys::is_culib_present() } {
        return Err(KernelError::MissingLibrary("cuBLASLt (libcublasLt)"));
    }

    let out = empty_device_contiguous_dtype(
        x.client.clone(),
        x.device.clone(),
        Shape::new([m, n]),
        x.dtype,
    );
    let x_buf = raw_buffer(&x)?;
    let w_buf = raw_buffer(&w)?;
    let out_buf = raw_buffer(&out)?;
    let bias_buf = bias.as_ref().map(raw_buffer).transpose()?;
    let stream = out_buf.stream;

    let epilogue = match (bias_buf.is_some(), activation) {
        (false, Activation::None) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_DEFAULT,
        (true, Activation::None) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS,
        (false, Activation::GeluTanh) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_GELU,
        (true, Activation::GeluTanh) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_GELU_BIAS,
    };
    let key = PlanKey {
        dtype: dtype_tag,
        strict,
        a: a_operand,
        b: b_operand,
        m: m as u64,
        n: n as u64,
        epilogue: epilogue as u8,
    };

    let mut states = states()
        .lock()
        .map_err(|_| KernelError::Burn("cuBLASLt state poisoned".into()))?;
    let state = match states.entry(x.device.index) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(GemmState {
            handle: lt::create_handle()?,
            workspaces: HashMap::new(),
            plans: HashMap::new(),
        }),
    };
    let workspace = match state.workspaces.get(&(stream as usize)) {
        Some(&ptr) => ptr,
        None => {
            // SAFETY: a plain device allocation in the current context, kept for the process.
            let ptr = unsafe { cudarc::driver::result::malloc_sync(WORKSPACE_BYTES)? };
            state.workspaces.insert(stream as usize, ptr);
            ptr
        }
    };
    if state.plans.len() >= MAX_CACHED_PLANS && !state.plans.contains_key(&key) {
        state.plans.clear();
    }
    let handle = state.handle;
    let plan = match state.plans.entry(key) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(make_plan(handle, &key, data_type, epilogue)?)
        }
    };

    // SAFETY: every pointer is a live device allocation of the right size (the tensors are
    // held until this returns and their memory is reused only after work enqueued on `stream`);
    // the descriptors belong to `plan`.
    unsafe {
        if let Some(bias_buf) = bias_buf {
            set_desc(
                plan.desc,
                sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                &bias_buf.address,
            )?;
        }
        let alpha: f32 = 1.0;
        let beta: f32 = 0.0;
        lt::matmul(
            handle,
            plan.desc,
            (&alpha) as *const f32 as *const c_void,
            (&beta) as *const f32 as *const c_void,
            w_buf.address as *const c_void,
            plan.a,
            x_buf.address as *const c_void,
            plan.b,
            out_buf.address as *const c_void,
            plan.d,
            out_buf.address as *mut c_void,
            plan.d,
            &plan.algo,
            workspace as *mut c_void,
            WORKSPACE_BYTES,
            stream as sys::cudaStream_t,
        )?;
    }
    drop(states);
    // Keep the inputs alive until the product is enqueued.
    drop((x, w, bias));
    Ok(out)
}

/// Sets one attribute of a matmul descriptor to `value`.
///
/// # Safety
/// `desc` must be a live descriptor and `T` the type cuBLASLt expects for `attribute`.
unsafe fn set_desc<T>(
    desc: sys::cublasLtMatmulDesc_t,
    attribute: sys::cublasLtMatmulDescAttributes_t,
    value: &T,
) -> Result<(), KernelError> {
    // SAFETY: forwarded from the caller; `value` outlives the call, which copies it.
    unsafe {
        lt::set_matmul_desc_attribute(
            desc,
            attribute,
            value as *const T as *const c_void,
            std::mem::size_of::<T>(),
        )?;
    }
    Ok(())
}

fn make_plan(
    handle: sys::cublasLtHandle_t,
    key: &PlanKey,
    data_type: sys::cudaDataType,
    epilogue: sys::cublasLtEpilogue_t,
) -> Result<Plan, KernelError> {
    let compute = if data_type == sys::cudaDataType::CUDA_R_32F && !key.strict {
        sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
    } else {
        sys::cublasComputeType_t::CUBLAS_COMPUTE_32F
    };
    let desc = lt::create_matmul_desc(compute, sys::cudaDataType::CUDA_R_32F)?;
    // From here on `plan` owns every handle, so an error below frees them.
    let mut plan = Plan {
        desc,
        a: std::ptr::null_mut(),
        b: std::ptr::null_mut(),
        d: std::ptr::null_mut(),
        // SAFETY: an all-zero algorithm is a valid placeholder until the heuristic fills it.
        algo: unsafe { std::mem::zeroed() },
    };
    plan.a = lt::create_matrix_layout(data_type, key.a.rows, key.a.cols, key.a.ld)?;
    plan.b = lt::create_matrix_layout(data_type, key.b.rows, key.b.cols, key.b.ld)?;
    plan.d = lt::create_matrix_layout(data_type, key.n, key.m, key.n as i64)?;
    // cublasOperation_t: 0 = N, 1 = T.
    let trans_a: i32 = i32::from(key.a.transposed);
    let trans_b: i32 = 0;
    // SAFETY: attribute values are plain integers of the sizes cuBLASLt expects.
    unsafe {
        set_desc(
            plan.desc,
            sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
            &trans_a,
        )?;
        set_desc(
            plan.desc,
            sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSB,
            &trans_b,
        )?;
        let epilogue_value = epilogue as u32;
        set_desc(
            plan.desc,
            sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_EPILOGUE,
            &epilogue_value,
        )?;
        if matches!(
            epilogue,
            sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS
                | sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_GELU_BIAS
        ) {
            let bias_type = data_type as u32;
            set_desc(
                plan.desc,
                sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                &bias_type,
            )?;
        }
        let pref = lt::create_matmul_pref()?;
        let workspace = WORKSPACE_BYTES;
        let heuristic = lt::set_matmul_pref_attribute(
            pref,
            sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
            (&workspace) as *const usize as *const c_void,
            std::mem::size_of::<usize>(),
        )
        .and_then(|()| {
            lt::get_matmul_algo_heuristic(handle, plan.desc, plan.a, plan.b, plan.d, plan.d, pref)
        });
        let _ = lt::destroy_matmul_pref(pref);
        plan.algo = heuristic?.algo;
    }
    Ok(plan)
}
