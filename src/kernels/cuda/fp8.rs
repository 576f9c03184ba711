//! FP8 (e4m3fn) quantisation on the GPU (`fp8.cu`): the reference's per-tensor scheme (spec
//! §3.9), used for the DiT's linear weights at load time and for every activation that enters an
//! FP8 GEMM. The scale stays on the device (`[1/s, max|x|]` in f32), so quantising never waits
//! for the host.

use burn::tensor::{DType, Shape};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use cudarc::driver::result as driver;

use super::device::{DeviceContext, raw_buffer};
use super::nvrtc::{self, KernelSpec, Launch, arg};
use super::{CudaTensor, KernelError, dense, elem_code};

/// `fp8.cu` after the element-type definitions it shares with the other pointwise source.
const SOURCE: &str = concat!(include_str!("elem.cuh"), include_str!("fp8.cu"));
const THREADS: u32 = 256;
/// Enough blocks to fill any current GPU; the kernels loop over the rest.
const MAX_BLOCKS: usize = 4096;

/// Whether GPU `device` has FP8 tensor cores (Ada, Hopper and later: compute capability 8.9+).
pub fn has_fp8_tensor_cores(device: usize) -> bool {
    fp8_context(device).is_ok()
}

/// The context of GPU `device` if it has FP8 tensor cores; `Unsupported` otherwise.
fn fp8_context(device: usize) -> Result<&'static DeviceContext, KernelError> {
    let context = DeviceContext::get(device)?;
    if context.capability < (8, 9) {
        return Err(KernelError::Unsupported(
            "FP8 needs compute capability 8.9 or later".into(),
        ));
    }
    Ok(context)
}

/// How the scaled values are rounded before the e4m3 cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// In the tensor's own type (an activation: torch computes `x·s` in `x`'s type).
    OwnType,
    /// In bf16 (a weight: the reference's weights are bf16 whatever type this build holds).
    Bf16,
}

/// `x`'s e4m3 codes (same shape, one byte each, row-major) and its scales `[1/s, max|x|]` (f32).
pub fn quantize(x: CudaTensor, product: Product) -> Result<(CudaTensor, CudaTensor), KernelError> {
    let elem = elem_code(x.dtype)?;
    let device = x.device.index;
    let context = fp8_context(device)?;
    let n = x.meta.shape().num_elements();
    if n == 0 {
        return Err(KernelError::Unsupported("empty tensor".into()));
    }
    let x = dense(x);
    let shape = x.meta.shape().clone();
    let codes = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), shape, DType::U8);
    let scales = empty_device_contiguous_dtype(
        x.client.clone(),
        x.device.clone(),
        Shape::new([2]),
        DType::F32,
    );
    let (xb, cb, sb) = (raw_buffer(&x)?, raw_buffer(&codes)?, raw_buffer(&scales)?);
    let per_vector = 16 / x.dtype.size();
    let mut vector = i32::from(xb.address.is_multiple_of(16) && n.is_multiple_of(per_vector));
    let work = if vector == 1 { n / per_vector } else { n };
    let geometry = Launch {
        grid: work.div_ceil(THREADS as usize).clamp(1, MAX_BLOCKS) as u32,
        block: THREADS,
    };
    let spec = |entry| KernelSpec {
        source_name: "fp8.cu",
        source: SOURCE,
        options: vec![format!("-DELEM={elem}")],
        entry,
        dynamic_shared_bytes: 0,
        arch_specific: false,
    };
    let (mut xp, mut cp, mut sp) = (xb.address, cb.address, sb.address);
    let mut n_arg = n as i64;
    let mut bf16_product = i32::from(product == Product::Bf16);
    context.make_current()?;
    // SAFETY: the buffers are live allocations ordered by `sb.stream` (burn-cuda uses one stream
    // per device and thread): `x` holds `n` elements, `codes` `n` bytes, `scales` two floats; the
    // parameters match `absmax` and `quantize_e4m3` in order and type.
    unsafe {
        driver::memset_d8_async(sb.address + 4, 0, 4, sb.stream)?;
        nvrtc::launch(
            device,
            &spec("absmax"),
            geometry,
            sb.stream,
            &mut [
                arg(&mut xp),
                arg(&mut n_arg),
                arg(&mut vector),
                arg(&mut sp),
            ],
        )?;
        nvrtc::launch(
            device,
            &spec("quantize_e4m3"),
            geometry,
            sb.stream,
            &mut [
                arg(&mut xp),
                arg(&mut n_arg),
                arg(&mut vector),
                arg(&mut bf16_product),
                arg(&mut sp),
                arg(&mut cp),
            ],
        )?;
    }
    drop(x);
    Ok((codes, scales))
}

/// The values e4m3 `codes` stand for (`decode(code) · scales[0]`), as a tensor of `dtype` of
/// the same shape.
pub fn dequantize(
    codes: CudaTensor,
    scales: &CudaTensor,
    dtype: DType,
) -> Result<CudaTensor, KernelError> {
    let elem = elem_code(dtype)?;
    let device = codes.device.index;
    fp8_context(device)?;
    if codes.dtype != DType::U8 || scales.dtype != DType::F32 {
        return Err(KernelError::Unsupported("not FP8 codes and scales".into()));
    }
    let n = codes.meta.shape().num_elements();
    if n == 0 {
        return Err(KernelError::Unsupported("empty tensor".into()));
    }
    let codes = dense(codes);
    let out = empty_device_contiguous_dtype(
        codes.client.clone(),
        codes.device.clone(),
        codes.meta.shape().clone(),
        dtype,
    );
    let (cb, sb, ob) = (raw_buffer(&codes)?, raw_buffer(scales)?, raw_buffer(&out)?);
    let (mut cp, mut sp, mut op) = (cb.address, sb.address, ob.address);
    let mut n_arg = n as i64;
    let spec = KernelSpec {
        source_name: "fp8.cu",
        source: SOURCE,
        options: vec![format!("-DELEM={elem}")],
        entry: "decode_e4m3",
        dynamic_shared_bytes: 0,
        arch_specific: false,
    };
    let geometry = Launch {
        grid: n.div_ceil(THREADS as usize).clamp(1, MAX_BLOCKS) as u32,
        block: THREADS,
    };
    // SAFETY: `codes` holds `n` bytes, `scales` two floats and `out` `n` elements, all live and
    // ordered by `ob.stream`; the parameters match `decode_e4m3` in order and type.
    unsafe {
        nvrtc::launch(
            device,
            &spec,
            geometry,
            ob.stream,
            &mut [arg(&mut cp), arg(&mut n_arg), arg(&mut sp), arg(&mut op)],
        )?;
    }
    drop(codes);
    Ok(out)
}
