//! The fused DiT steps of `fused.cu` on burn-cuda tensors: LayerNorm with modulation or affine
//! parameters, RMSNorm, RoPE and the gated residual add, each one kernel on the stream that owns
//! the tensors' memory.

use std::ffi::c_void;

use burn::tensor::{Shape, Tensor, backend::Backend};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;

use super::device::{DeviceContext, RawBuffer, raw_buffer};
use super::nvrtc::{self, KernelSpec, Launch, arg};
use super::{CudaTensor, KernelError, as_cuda, dense, elem_code, from_cuda, in_dtype};

/// `fused.cu` after the element-type definitions it shares with the other pointwise source.
const SOURCE: &str = concat!(include_str!("elem.cuh"), include_str!("fused.cu"));
/// Threads per row of the row kernels, and the widest row they take (`fused.cu`).
const ROW_THREADS: u32 = 128;
const MAX_ROW: usize = 128 * 48;
const POINTWISE_THREADS: u32 = 256;

fn output(like: &CudaTensor, shape: Shape) -> CudaTensor {
    empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), shape, like.dtype)
}

/// Elements each thread moves per 16-byte access: `16 / element size` when every address is
/// 16-byte aligned and every length or stride in `multiples` is a multiple of it, else 1.
fn vector_width(like: &CudaTensor, addresses: &[u64], multiples: &[i64]) -> usize {
    let width = 16 / like.dtype.size();
    let aligned = addresses.iter().all(|a| a.is_multiple_of(16))
        && multiples.iter().all(|m| m % width as i64 == 0);
    if aligned { width } else { 1 }
}

fn launch(
    like: &CudaTensor,
    entry: &'static str,
    vec: usize,
    geometry: Launch,
    out: &RawBuffer,
    params: &mut [*mut c_void],
) -> Result<(), KernelError> {
    let context = DeviceContext::get(like.device.index)?;
    if context.capability.0 < 7 {
        return Err(KernelError::Unsupported("GPU older than sm_70".into()));
    }
    let spec = KernelSpec {
        source_name: "fused.cu",
        source: SOURCE,
        options: vec![
            format!("-DELEM={}", elem_code(like.dtype)?),
            format!("-DVEC={vec}"),
        ],
        entry,
        dynamic_shared_bytes: 0,
        arch_specific: false,
    };
    // SAFETY: the callers pass parameters matching the kernel's signature in order and type,
    // pointing at live buffers of the sizes the kernel reads and writes.
    unsafe { nvrtc::launch(like.device.index, &spec, geometry, out.stream, params) }
}

/// Rows of `x` (`[rows, dim]` once flattened) normalised, then scaled / shifted per group of
/// `rows_per_group` rows (`modulation`: scale and shift views `[groups, 1, dim]`) and/or by
/// an affine weight and bias.
fn layer_norm_rows(
    x: CudaTensor,
    modulation: Option<(CudaTensor, CudaTensor)>,
    affine: Option<(CudaTensor, CudaTensor)>,
    rows_per_group: usize,
    eps: f64,
) -> Result<CudaTensor, KernelError> {
    let shape = x.meta.shape().clone();
    let dim = *shape.last().unwrap_or(&0);
    let rows = shape.num_elements() / dim.max(1);
    if dim == 0 || dim > MAX_ROW || rows == 0 || rows_per_group == 0 {
        return Err(KernelError::Unsupported(format!("layer norm over {dim}")));
    }
    let x = dense(x);
    let out = output(&x, shape);
    let (xb, ob) = (raw_buffer(&x)?, raw_buffer(&out)?);
    let mut scale = 0u64;
    let mut shift = 0u64;
    let mut group_stride = 0i64;
    let mut keep = Vec::new();
    if let Some((sc, sh)) = modulation {
        let strides = sc.meta.strides().to_vec();
        if sc.meta.strides() != sh.meta.strides() || strides.last() != Some(&1) {
            return Err(KernelError::Unsupported("modulation layout".into()));
        }
        group_stride = strides[0] as i64;
        scale = raw_buffer(&sc)?.address;
        shift = raw_buffer(&sh)?.address;
        keep.push(sc);
        keep.push(sh);
    }
    let (mut weight, mut bias) = (0u64, 0u64);
    if let Some((w, b)) = affine {
        let (w, b) = (dense(w), dense(b));
        weight = raw_buffer(&w)?.address;
        bias = raw_buffer(&b)?.address;
        keep.push(w);
        keep.push(b);
    }
    let (mut xp, mut op) = (xb.address, ob.address);
    let vec = vector_width(
        &x,
        &[xp, op, scale, shift, weight, bias],
        &[dim as i64, group_stride],
    );
    let mut dim_arg = dim as i32;
    let mut rpg = rows_per_group as i32;
    let mut eps = eps as f32;
    launch(
        &x,
        "layer_norm_modulate",
        vec,
        Launch {
            grid: rows as u32,
            block: ROW_THREADS,
        },
        &ob,
        &mut [
            arg(&mut xp),
            arg(&mut op),
            arg(&mut scale),
            arg(&mut shift),
            arg(&mut group_stride),
            arg(&mut weight),
            arg(&mut bias),
            arg(&mut dim_arg),
            arg(&mut rpg),
            arg(&mut eps),
        ],
    )?;
    drop((x, keep));
    Ok(out)
}

/// `LN(x)·(1 + scale) + shift` for `x` `[groups, per_group, dim]`, `scale` / `shift`
/// `[groups, 1, dim]`.
pub fn modulated_layer_norm<B: Backend>(
    x: &Tensor<B, 3>,
    scale: &Tensor<B, 3>,
    shift: &Tensor<B, 3>,
    eps: f64,
) -> Result<Tensor<B, 3>, KernelError> {
    let [groups, per_group, dim] = x.dims();
    if scale.dims() != [groups, 1, dim] || shift.dims() != [groups, 1, dim] {
        return Err(KernelError::Unsupported("modulation shape".into()));
    }
    let xc = as_cuda(x)?;
    elem_code(xc.dtype)?;
    let sc = in_dtype(scale, xc.dtype)?;
    let sh = in_dtype(shift, xc.dtype)?;
    from_cuda(layer_norm_rows(xc, Some((sc, sh)), None, per_group, eps)?)
}

/// `LN(x)·weight + bias` over the last dimension of `x` `[rows, dim]`.
pub fn affine_layer_norm<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Tensor<B, 1>,
    bias: &Tensor<B, 1>,
    eps: f64,
) -> Result<Tensor<B, 2>, KernelError> {
    let xc = as_cuda(x)?;
    elem_code(xc.dtype)?;
    let rows = x.dims()[0].max(1);
    let w = in_dtype(weight, xc.dtype)?;
    let b = in_dtype(bias, xc.dtype)?;
    from_cuda(layer_norm_rows(xc, None, Some((w, b)), rows, eps)?)
}

/// `x · rsqrt(mean(x²) + eps) · weight` over the last dimension of `x` `[rows, dim]`.
pub fn rms_norm<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Tensor<B, 1>,
    eps: f64,
) -> Result<Tensor<B, 2>, KernelError> {
    let [rows, dim] = x.dims();
    if dim == 0 || dim > MAX_ROW || rows == 0 {
        return Err(KernelError::Unsupported(format!("RMSNorm over {dim}")));
    }
    let xc = dense(as_cuda(x)?);
    elem_code(xc.dtype)?;
    let w = dense(in_dtype(weight, xc.dtype)?);
    let out = output(&xc, Shape::new([rows, dim]));
    let (xb, wb, ob) = (raw_buffer(&xc)?, raw_buffer(&w)?, raw_buffer(&out)?);
    let (mut xp, mut op, mut wp) = (xb.address, ob.address, wb.address);
    let vec = vector_width(&xc, &[xp, op, wp], &[dim as i64]);
    let mut dim_arg = dim as i32;
    let mut eps = eps as f32;
    launch(
        &xc,
        "rms_norm",
        vec,
        Launch {
            grid: rows as u32,
            block: ROW_THREADS,
        },
        &ob,
        &mut [
            arg(&mut xp),
            arg(&mut op),
            arg(&mut wp),
            arg(&mut dim_arg),
            arg(&mut eps),
        ],
    )?;
    drop((xc, w));
    from_cuda(out)
}

/// Rotates the interleaved channel pairs of `x` `[tokens, heads, head_dim]` by `cos` / `sin`
/// `[tokens, head_dim / 2]`.
pub fn rope<B: Backend>(
    x: &Tensor<B, 3>,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
) -> Result<Tensor<B, 3>, KernelError> {
    let [tokens, heads, head_dim] = x.dims();
    let pairs = head_dim / 2;
    if head_dim % 2 != 0 || cos.dims() != [tokens, pairs] || sin.dims() != [tokens, pairs] {
        return Err(KernelError::Unsupported("RoPE shapes".into()));
    }
    let total = tokens * heads * pairs;
    if total == 0 {
        return Err(KernelError::Unsupported("empty RoPE".into()));
    }
    let xc = as_cuda(x)?;
    elem_code(xc.dtype)?;
    let xc = if xc.meta.strides()[2] == 1 {
        xc
    } else {
        into_contiguous(xc)
    };
    let c = dense(in_dtype(cos, xc.dtype)?);
    let s = dense(in_dtype(sin, xc.dtype)?);
    let out = output(&xc, Shape::new([tokens, heads, head_dim]));
    let (xb, cb, sb, ob) = (
        raw_buffer(&xc)?,
        raw_buffer(&c)?,
        raw_buffer(&s)?,
        raw_buffer(&out)?,
    );
    let (mut xp, mut op, mut cp, mut sp) = (xb.address, ob.address, cb.address, sb.address);
    let (mut t, mut h, mut p) = (tokens as i32, heads as i32, pairs as i32);
    let mut token_stride = xc.meta.strides()[0] as i64;
    let mut head_stride = xc.meta.strides()[1] as i64;
    let vec = vector_width(
        &xc,
        &[xp, op],
        &[token_stride, head_stride, head_dim as i64],
    );
    let threads = total / (vec / 2).max(1);
    launch(
        &xc,
        "rope_apply",
        vec,
        Launch {
            grid: threads.div_ceil(POINTWISE_THREADS as usize) as u32,
            block: POINTWISE_THREADS,
        },
        &ob,
        &mut [
            arg(&mut xp),
            arg(&mut op),
            arg(&mut cp),
            arg(&mut sp),
            arg(&mut t),
            arg(&mut h),
            arg(&mut p),
            arg(&mut token_stride),
            arg(&mut head_stride),
        ],
    )?;
    drop((xc, c, s));
    from_cuda(out)
}

/// `x + y · gate` for `x`, `y` `[groups, per_group, dim]` and `gate` `[groups, 1, dim]`.
pub fn gated_residual<B: Backend>(
    x: &Tensor<B, 3>,
    y: &Tensor<B, 3>,
    gate: &Tensor<B, 3>,
) -> Result<Tensor<B, 3>, KernelError> {
    let [groups, per_group, dim] = x.dims();
    if y.dims() != x.dims() || gate.dims() != [groups, 1, dim] {
        return Err(KernelError::Unsupported("gated residual shapes".into()));
    }
    let total = groups * per_group * dim;
    if total == 0 {
        return Err(KernelError::Unsupported("empty residual".into()));
    }
    let xc = dense(as_cuda(x)?);
    elem_code(xc.dtype)?;
    let yc = as_cuda(y)?;
    if yc.dtype != xc.dtype {
        return Err(KernelError::Unsupported("mixed element types".into()));
    }
    let yc = dense(yc);
    let g = in_dtype(gate, xc.dtype)?;
    if g.meta.strides()[2] != 1 {
        return Err(KernelError::Unsupported("gate layout".into()));
    }
    let out = output(&xc, Shape::new([groups, per_group, dim]));
    let (xb, yb, gb, ob) = (
        raw_buffer(&xc)?,
        raw_buffer(&yc)?,
        raw_buffer(&g)?,
        raw_buffer(&out)?,
    );
    let (mut xp, mut yp, mut gp, mut op) = (xb.address, yb.address, gb.address, ob.address);
    let mut gate_stride = g.meta.strides()[0] as i64;
    let vec = vector_width(&xc, &[xp, yp, gp, op], &[dim as i64, gate_stride]);
    let mut total_arg = total as i64;
    let mut dim_arg = dim as i32;
    let mut rpg = per_group as i32;
    launch(
        &xc,
        "gated_add",
        vec,
        Launch {
            grid: (total / vec).div_ceil(POINTWISE_THREADS as usize) as u32,
            block: POINTWISE_THREADS,
        },
        &ob,
        &mut [
            arg(&mut xp),
            arg(&mut yp),
            arg(&mut gp),
            arg(&mut gate_stride),
            arg(&mut op),
            arg(&mut total_arg),
            arg(&mut dim_arg),
            arg(&mut rpg),
        ],
    )?;
    drop((xc, yc, g));
    from_cuda(out)
}
