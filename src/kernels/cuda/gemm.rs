//! Dense layers through cuBLASLt: bf16/f16 in and out with f32 accumulation (f32 in strict
//! f32 mode, TF32 otherwise, as burn-cuda's own matmul does), and FP8 e4m3 weights with
//! per-tensor scales on GPUs with FP8 tensor cores; bias and GELU-tanh fused as epilogues,
//! enqueued on the stream that owns the tensors' memory. Matmul descriptors and the
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
use super::{CudaTensor, KernelError, as_cuda, as_cuda_int, fp8, from_cuda, in_dtype};
use crate::kernels::{Activation, Fp8Matrix};

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

/// The element types of one problem: the inputs', the output's (and bias's), and whether the
/// inputs are FP8 codes scaled per tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Types {
    inputs: sys::cudaDataType,
    output: sys::cudaDataType,
    fp8: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PlanKey {
    types: Types,
    strict: bool,
    a: Operand,
    b: Operand,
    m: u64,
    n: u64,
    epilogue: u8,
}

/// Algorithms asked of the heuristic per problem: the first that runs is kept (cuBLASLt can
/// offer one that then refuses the call, e.g. for some FP8 problems).
const CANDIDATE_ALGOS: usize = 8;

/// A matmul descriptor, its layouts and the heuristic's algorithms, best first, for one
/// problem; once one has run, only it is kept.
struct Plan {
    desc: sys::cublasLtMatmulDesc_t,
    a: sys::cublasLtMatrixLayout_t,
    b: sys::cublasLtMatrixLayout_t,
    d: sys::cublasLtMatrixLayout_t,
    algos: Vec<sys::cublasLtMatmulAlgo_t>,
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

fn cublas_dtype(dtype: DType) -> Result<sys::cudaDataType, KernelError> {
    match dtype {
        DType::BF16 => Ok(sys::cudaDataType::CUDA_R_16BF),
        DType::F16 => Ok(sys::cudaDataType::CUDA_R_16F),
        DType::F32 => Ok(sys::cudaDataType::CUDA_R_32F),
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
    let data_type = cublas_dtype(x.dtype)?;
    let [m, k] = x.meta.shape().dims::<2>();
    let [k_w, n] = w.meta.shape().dims::<2>();
    if k != k_w || m == 0 || n == 0 || k == 0 {
        return Err(KernelError::Unsupported(format!(
            "shapes [{m}, {k}]·[{k_w}, {n}]"
        )));
    }
    let (x, b_operand) = rows_operand(x);
    let (w, a_operand) = weight_operand(w);
    let problem = Problem {
        types: Types {
            inputs: data_type,
            output: data_type,
            fp8: false,
        },
        a: a_operand,
        b: b_operand,
        m,
        n,
        activation,
    };
    let out = enqueue(problem, &w, &x, bias, None, &x)?;
    // Keep the inputs alive until the product is enqueued.
    drop((x, w));
    Ok(out)
}

/// `activation(x·Wᵀ + bias)` with an FP8 weight: `x` is quantised to e4m3 per tensor on the
/// GPU, then one cuBLASLt FP8 GEMM (f32 accumulation with Hopper's fast accumulation, as the
/// reference's `_scaled_mm(use_fast_accum=True)`) applies both scales and writes `x`'s type.
pub fn linear_fp8<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Fp8Matrix<B>,
    bias: Option<&Tensor<B, 1>>,
    activation: Activation,
) -> Result<Tensor<B, 2>, KernelError> {
    let mut outputs = fp8_gemms(x, &[(weight, bias)], activation)?;
    outputs
        .pop()
        .ok_or_else(|| KernelError::Unsupported("no FP8 layer".into()))
}

/// [`linear_fp8`] of one `x` through several layers (no activation), `x` quantised once.
pub fn linears_fp8<B: Backend>(
    x: &Tensor<B, 2>,
    layers: &[(&Fp8Matrix<B>, Option<&Tensor<B, 1>>)],
) -> Result<Vec<Tensor<B, 2>>, KernelError> {
    fp8_gemms(x, layers, Activation::None)
}

/// Quantises `x` once, then runs one FP8 GEMM per layer. Every layer is checked before
/// anything is enqueued, so an error leaves nothing half done.
fn fp8_gemms<B: Backend>(
    x: &Tensor<B, 2>,
    layers: &[(&Fp8Matrix<B>, Option<&Tensor<B, 1>>)],
    activation: Activation,
) -> Result<Vec<Tensor<B, 2>>, KernelError> {
    let x = as_cuda(x)?;
    if !matches!(x.dtype, DType::BF16 | DType::F16) {
        return Err(KernelError::Unsupported(format!("{:?} FP8 GEMM", x.dtype)));
    }
    let [m, k] = x.meta.shape().dims::<2>();
    let output = cublas_dtype(x.dtype)?;
    let mut prepared = Vec::with_capacity(layers.len());
    for (weight, bias) in layers {
        let codes = as_cuda_int(&weight.codes)?;
        let weight_scales = as_cuda(&weight.scales)?;
        if codes.dtype != DType::U8 || weight_scales.dtype != DType::F32 {
            return Err(KernelError::Unsupported("FP8 weight not on the GPU".into()));
        }
        let bias = bias.map(|b| in_dtype(b, x.dtype)).transpose()?;
        let [n, k_w] = codes.meta.shape().dims::<2>();
        // cuBLASLt's FP8 kernels want 16-byte aligned rows of A and B.
        if k != k_w
            || m == 0
            || n == 0
            || !k.is_multiple_of(16)
            || !n.is_multiple_of(8)
            || !codes.is_contiguous()
        {
            return Err(KernelError::Unsupported(format!(
                "FP8 shapes [{m}, {k}]·[{n}, {k_w}]ᵀ"
            )));
        }
        prepared.push((codes, weight_scales, bias, n));
    }
    let (x_codes, x_scales) = fp8::quantize(x.clone(), fp8::Product::OwnType)?;
    let mut outputs = Vec::with_capacity(prepared.len());
    for (codes, weight_scales, bias, n) in prepared {
        // Column-major: the `[n, k]` codes are `k × n` used transposed, `x`'s are `k × m`.
        let problem = Problem {
            types: Types {
                inputs: sys::cudaDataType::CUDA_R_8F_E4M3,
                output,
                fp8: true,
            },
            a: Operand {
                rows: k as u64,
                cols: n as u64,
                ld: k as i64,
                transposed: true,
            },
            b: Operand {
                rows: k as u64,
                cols: m as u64,
                ld: k as i64,
                transposed: false,
            },
            m,
            n,
            activation,
        };
        let out = enqueue(
            problem,
            &codes,
            &x_codes,
            bias,
            Some((&weight_scales, &x_scales)),
            &x,
        )?;
        drop((codes, weight_scales));
        outputs.push(from_cuda(out)?);
    }
    drop((x, x_codes, x_scales));
    Ok(outputs)
}

/// [`linear_fp8`] for the layers cuBLASLt's FP8 kernels do not take (e.g. an input width that
/// is not a multiple of 16): the activation is quantised per tensor and both operands decoded
/// to `x`'s type on the GPU, then multiplied as a bf16/f16 linear. The same FP8 values enter the
/// product, each rounded once to `x`'s type.
pub fn linear_fp8_decoded<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Fp8Matrix<B>,
    bias: Option<&Tensor<B, 1>>,
    activation: Activation,
) -> Result<Tensor<B, 2>, KernelError> {
    let xc = as_cuda(x)?;
    if !matches!(xc.dtype, DType::BF16 | DType::F16) {
        return Err(KernelError::Unsupported(format!(
            "{:?} FP8 linear",
            xc.dtype
        )));
    }
    let dtype = xc.dtype;
    let (x_codes, x_scales) = fp8::quantize(xc, fp8::Product::OwnType)?;
    let x_decoded = fp8::dequantize(x_codes, &x_scales, dtype)?;
    let w_decoded = fp8::dequantize(
        as_cuda_int(&weight.codes)?,
        &as_cuda(&weight.scales)?,
        dtype,
    )?;
    let bias = bias.map(|b| in_dtype(b, dtype)).transpose()?;
    // The `[n, k]` weight through its transposed view, as the dense layers keep theirs.
    let w_decoded: Tensor<B, 2> = from_cuda(w_decoded)?;
    let out = linear_cuda(
        x_decoded,
        as_cuda(&w_decoded.transpose())?,
        bias,
        activation,
    )?;
    from_cuda(out)
}

/// One GEMM `D = op(A)·B (+ bias, activation)` in cuBLASLt's column-major terms, `D` being `n × m`.
#[derive(Debug, Clone, Copy)]
struct Problem {
    types: Types,
    a: Operand,
    b: Operand,
    m: usize,
    n: usize,
    activation: Activation,
}

/// Enqueues `problem` on the stream of the output's memory; the output is a new `[m, n]`
/// tensor of `like`'s element type. `scales` are the FP8 scale tensors of A and B (`1/s` at
/// index 0).
fn enqueue(
    problem: Problem,
    a: &CudaTensor,
    b: &CudaTensor,
    bias: Option<CudaTensor>,
    scales: Option<(&CudaTensor, &CudaTensor)>,
    like: &CudaTensor,
) -> Result<CudaTensor, KernelError> {
    let bias = match bias {
        Some(b) if b.meta.strides()[0] != 1 => Some(into_contiguous(b)),
        other => other,
    };
    let strict = crate::gpu::is_strict_f32_matmul();
    let context = DeviceContext::get(like.device.index)?;
    context.make_current()?;
    // SAFETY: probing for the library does not touch any CUDA state.
    if !unsafe { sys::is_culib_present() } {
        return Err(KernelError::MissingLibrary("cuBLASLt (libcublasLt)"));
    }

    let out = empty_device_contiguous_dtype(
        like.client.clone(),
        like.device.clone(),
        Shape::new([problem.m, problem.n]),
        like.dtype,
    );
    let a_buf = raw_buffer(a)?;
    let b_buf = raw_buffer(b)?;
    let out_buf = raw_buffer(&out)?;
    let bias_buf = bias.as_ref().map(raw_buffer).transpose()?;
    // `1/s` opens each scale tensor.
    let scale_pointers = match scales {
        Some((sa, sb)) => Some((raw_buffer(sa)?.address, raw_buffer(sb)?.address)),
        None => None,
    };
    let stream = out_buf.stream;

    let epilogue = match (bias_buf.is_some(), problem.activation) {
        (false, Activation::None) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_DEFAULT,
        (true, Activation::None) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS,
        (false, Activation::GeluTanh) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_GELU,
        (true, Activation::GeluTanh) => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_GELU_BIAS,
    };
    let key = PlanKey {
        types: problem.types,
        strict,
        a: problem.a,
        b: problem.b,
        m: problem.m as u64,
        n: problem.n as u64,
        epilogue: epilogue as u8,
    };

    let mut states = states()
        .lock()
        .map_err(|_| KernelError::Burn("cuBLASLt state poisoned".into()))?;
    let state = match states.entry(like.device.index) {
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
            e.insert(make_plan(handle, &key, epilogue, scale_pointers)?)
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
        if let Some((a_scale, b_scale)) = scale_pointers {
            set_scale_pointers(plan.desc, a_scale, b_scale)?;
        }
        let alpha: f32 = 1.0;
        let beta: f32 = 0.0;
        // With beta = 0 C is never read. FP8 kernels refuse C = D (in place), as PyTorch's
        // `_scaled_mm` avoids by passing no C; the others take it.
        let c_pointer = if problem.types.fp8 {
            std::ptr::null()
        } else {
            out_buf.address as *const c_void
        };
        let mut last = Err(KernelError::Unsupported("no cuBLASLt algorithm".into()));
        for (index, algo) in plan.algos.iter().enumerate() {
            last = lt::matmul(
                handle,
                plan.desc,
                (&alpha) as *const f32 as *const c_void,
                (&beta) as *const f32 as *const c_void,
                a_buf.address as *const c_void,
                plan.a,
                b_buf.address as *const c_void,
                plan.b,
                c_pointer,
                plan.d,
                out_buf.address as *mut c_void,
                plan.d,
                algo,
                workspace as *mut c_void,
                WORKSPACE_BYTES,
                stream as sys::cudaStream_t,
            )
            .map_err(KernelError::from);
            match &last {
                Ok(()) => {
                    if plan.algos.len() > 1 {
                        let chosen = plan.algos[index];
                        plan.algos = vec![chosen];
                    }
                    break;
                }
                Err(KernelError::Cublas(e))
                    if e.0 == sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED => {}
                Err(_) => break,
            }
        }
        last?;
    }
    drop(states);
    drop(bias);
    Ok(out)
}

/// The heuristic's best algorithms for `plan`, best first (at least one, or an error).
///
/// # Safety
/// `plan`'s handles and `pref` must be live.
unsafe fn candidate_algos(
    handle: sys::cublasLtHandle_t,
    plan: &Plan,
    pref: sys::cublasLtMatmulPreference_t,
) -> Result<Vec<sys::cublasLtMatmulAlgo_t>, lt::CublasError> {
    // SAFETY: an all-zero result is plain data the call overwrites.
    let mut results: [sys::cublasLtMatmulHeuristicResult_t; CANDIDATE_ALGOS] =
        unsafe { std::mem::zeroed() };
    let mut returned = 0i32;
    // SAFETY: forwarded from the caller; `results` has room for CANDIDATE_ALGOS entries.
    unsafe {
        sys::cublasLtMatmulAlgoGetHeuristic(
            handle,
            plan.desc,
            plan.a,
            plan.b,
            plan.d,
            plan.d,
            pref,
            CANDIDATE_ALGOS as i32,
            results.as_mut_ptr(),
            &mut returned,
        )
        .result()?;
    }
    let algos: Vec<_> = results
        .iter()
        .take(returned.max(0) as usize)
        .filter(|r| r.state == sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS)
        .map(|r| r.algo)
        .collect();
    if algos.is_empty() {
        return Err(lt::CublasError(
            sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED,
        ));
    }
    Ok(algos)
}

/// Points a matmul descriptor at the FP8 scales (`1/s`) of A and B.
///
/// # Safety
/// `desc` must be a live descriptor.
unsafe fn set_scale_pointers(
    desc: sys::cublasLtMatmulDesc_t,
    a_scale: u64,
    b_scale: u64,
) -> Result<(), KernelError> {
    // SAFETY: forwarded from the caller; the values are device addresses.
    unsafe {
        set_desc(
            desc,
            sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
            &a_scale,
        )?;
        set_desc(
            desc,
            sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
            &b_scale,
        )
    }
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

/// Builds the plan for `key`. `scales` are this call's FP8 scale pointers: they are set before
/// the heuristic runs, since an algorithm chosen without them may not take them.
fn make_plan(
    handle: sys::cublasLtHandle_t,
    key: &PlanKey,
    epilogue: sys::cublasLtEpilogue_t,
    scales: Option<(u64, u64)>,
) -> Result<Plan, KernelError> {
    let Types {
        inputs,
        output,
        fp8,
    } = key.types;
    let compute = if inputs == sys::cudaDataType::CUDA_R_32F && !key.strict {
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
        algos: Vec::new(),
    };
    plan.a = lt::create_matrix_layout(inputs, key.a.rows, key.a.cols, key.a.ld)?;
    plan.b = lt::create_matrix_layout(inputs, key.b.rows, key.b.cols, key.b.ld)?;
    plan.d = lt::create_matrix_layout(output, key.n, key.m, key.n as i64)?;
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
            let bias_type = output as u32;
            set_desc(
                plan.desc,
                sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                &bias_type,
            )?;
        }
        if fp8 {
            let fast_accumulation: i8 = 1;
            set_desc(
                plan.desc,
                sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_FAST_ACCUM,
                &fast_accumulation,
            )?;
        }
        if let Some((a_scale, b_scale)) = scales {
            set_scale_pointers(plan.desc, a_scale, b_scale)?;
        }
        let pref = lt::create_matmul_pref()?;
        let workspace = WORKSPACE_BYTES;
        let heuristic = lt::set_matmul_pref_attribute(
            pref,
            sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
            (&workspace) as *const usize as *const c_void,
            std::mem::size_of::<usize>(),
        )
        .and_then(|()| candidate_algos(handle, &plan, pref));
        let _ = lt::destroy_matmul_pref(pref);
        plan.algos = heuristic?;
    }
    Ok(plan)
}
