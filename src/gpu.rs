//! Process-wide settings of the NVIDIA (burn-cuda) backend.

/// Keeps f32 matrix products and convolutions in full f32 on the GPU when `enabled`.
///
/// Out of the box cubek-matmul rounds f32 operands to TF32 (10 mantissa bits) whenever it picks
/// a tensor-core kernel, and autotune picks those for most shapes: products then carry ~1e-3
/// relative error, a thousand times the reference's f32 spread, so f32 results could not be
/// held to the reference's tolerances. Strict mode makes tensor-core kernels unavailable for
/// f32 operands, so autotune chooses among the full-precision ones; bf16 and f16 work is
/// unaffected. The setting is global to the process; set it once, before the first GPU
/// operation. The autotune keys record it, so a kernel tuned under the other setting (also one
/// from the on-disk autotune cache) is never reused.
pub fn strict_f32_matmul(enabled: bool) {
    cubek_matmul::definition::set_f32_precision_strict(enabled);
}

/// Whether [`strict_f32_matmul`] is on.
pub fn is_strict_f32_matmul() -> bool {
    cubek_matmul::definition::f32_precision_strict()
}
