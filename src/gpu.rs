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

/// Where compiled GPU kernels and autotune results are kept between runs:
/// `$AVATAR_STUDIO_CACHE_DIR`, else `$XDG_CACHE_HOME/avatar-studio`, else
/// `~/.cache/avatar-studio`; `None` when none of these is known.
pub fn kernel_cache_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env("AVATAR_STUDIO_CACHE_DIR")
        .or_else(|| from_env("XDG_CACHE_HOME").map(|d| d.join("avatar-studio")))
        .or_else(|| from_env("HOME").map(|d| d.join(".cache").join("avatar-studio")))
}

/// Keeps NVRTC-compiled kernels (PTX) and autotune choices on disk under `root`, so only the
/// first run on a machine pays for compiling and tuning them.
///
/// Out of the box cubecl compiles every kernel afresh in each process (its PTX cache is off)
/// and keeps autotune results under the `target/` folder of whatever Cargo project the working
/// directory is in. On an H200 the first render at demo size spent over nine minutes in that
/// compile-and-tune work before its first frame, and paid it again in the next process.
/// A `cubecl.toml` in the working directory and the `CUBECL_*` variables still apply; only an
/// unset PTX cache and the default autotune location are redirected. Call once, before the
/// first GPU operation; later calls (or a configuration cubecl has already read) are left alone.
pub fn configure_kernel_caches(root: &std::path::Path) {
    use cubecl_runtime::config::cache::CacheConfig;
    use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
    let storage = CubeClRuntimeConfig::storage();
    let mut slot = storage.lock();
    if slot.is_some() {
        return;
    }
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    if config.compilation.cache.is_none() {
        config.compilation.cache = Some(CacheConfig::File(root.join("kernels")));
    }
    if matches!(config.autotune.cache, CacheConfig::Target) {
        config.autotune.cache = CacheConfig::File(root.join("autotune"));
    }
    *slot = Some(std::sync::Arc::new(config));
}

/// [`configure_kernel_caches`] in [`kernel_cache_dir`]; returns that folder, or `None` (and
/// leaves cubecl's defaults) when no cache folder is known.
pub fn configure_user_kernel_caches() -> Option<std::path::PathBuf> {
    let dir = kernel_cache_dir()?;
    configure_kernel_caches(&dir);
    Some(dir)
}
