//! Run-time compilation of the crate's CUDA sources: NVRTC compiles each (source, options) for
//! the GPU's architecture once per machine — the PTX is kept under the kernel cache folder
//! next to cubecl's — and each GPU loads each kernel once per process.

use std::collections::HashMap;
use std::ffi::{CString, c_void};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

use cudarc::driver::result as driver;
use cudarc::driver::sys::{CUfunction, CUfunction_attribute};

use super::KernelError;
use super::device::DeviceContext;

/// A loaded kernel (a process-wide driver object).
#[derive(Debug, Clone, Copy)]
pub struct Function(pub CUfunction);
unsafe impl Send for Function {}

/// What to compile: a named source, its `-D` options and the entry point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelSpec {
    pub source_name: &'static str,
    pub source: &'static str,
    pub options: Vec<String>,
    pub entry: &'static str,
    /// Dynamic shared memory the launches use, when above the 48 KiB default.
    pub dynamic_shared_bytes: usize,
    /// Compiled for the GPU's architecture-specific features (`compute_90a`: wgmma,
    /// setmaxnreg), whose PTX runs on that architecture only.
    pub arch_specific: bool,
}

/// Grid and block sizes of a one-dimensional launch.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    pub grid: u32,
    pub block: u32,
}

/// A kernel parameter as `cuLaunchKernel` takes it.
pub fn arg<T>(value: &mut T) -> *mut c_void {
    value as *mut T as *mut c_void
}

/// Compiles (once) and launches `spec` on GPU `device`'s `stream`.
///
/// # Safety
/// `params` must match the kernel's signature in order and type and point at live buffers of
/// the sizes the kernel reads and writes, ordered by `stream`.
pub unsafe fn launch(
    device: usize,
    spec: &KernelSpec,
    geometry: Launch,
    stream: cudarc::driver::sys::CUstream,
    params: &mut [*mut c_void],
) -> Result<(), KernelError> {
    let context = DeviceContext::get(device)?;
    context.make_current()?;
    let f = function(device, context, spec)?;
    // SAFETY: forwarded from the caller.
    unsafe {
        driver::launch_kernel(
            f.0,
            (geometry.grid, 1, 1),
            (geometry.block, 1, 1),
            spec.dynamic_shared_bytes as u32,
            stream,
            params,
        )?;
    }
    Ok(())
}

/// The kernel `spec` on GPU `device`, compiled (or read from the disk cache) on first use.
pub fn function(
    device: usize,
    context: &DeviceContext,
    spec: &KernelSpec,
) -> Result<Function, KernelError> {
    static LOADED: Mutex<Option<HashMap<(usize, KernelSpec), Function>>> = Mutex::new(None);
    let mut loaded = LOADED
        .lock()
        .map_err(|_| KernelError::Burn("kernel table poisoned".into()))?;
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some(f) = loaded.get(&(device, spec.clone())) {
        return Ok(*f);
    }
    let ptx = ptx_for(context.capability, spec)?;
    let ptx = CString::new(ptx).map_err(|e| KernelError::Compile(e.to_string()))?;
    let name = CString::new(spec.entry).map_err(|e| KernelError::Compile(e.to_string()))?;
    // SAFETY: `ptx` is NUL-terminated PTX text; the module stays loaded for the process.
    let f = unsafe {
        let module = driver::module::load_data(ptx.as_ptr() as *const c_void)?;
        let f = driver::module::get_function(module, name)?;
        if spec.dynamic_shared_bytes > 48 * 1024 {
            driver::function::set_function_attribute(
                f,
                CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                spec.dynamic_shared_bytes as i32,
            )?;
        }
        f
    };
    loaded.insert((device, spec.clone()), Function(f));
    Ok(Function(f))
}

/// PTX for `spec` on a GPU of compute capability `capability`: from the disk cache when a
/// previous run compiled it, else from NVRTC (and then stored).
fn ptx_for(capability: (i32, i32), spec: &KernelSpec) -> Result<String, KernelError> {
    let arch = match (spec.arch_specific, capability) {
        (true, (9, 0)) => "compute_90a",
        (true, _) => {
            return Err(KernelError::Unsupported(format!(
                "{} is written for Hopper (sm_90) only",
                spec.source_name
            )));
        }
        (false, _) => arch_name(capability),
    };
    let mut options = spec.options.clone();
    options.push("-std=c++17".to_string());
    let cache_file = cache_path(arch, spec.source_name, spec.source, &options);
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
        spec.source,
        cudarc::nvrtc::CompileOptions {
            arch: Some(arch),
            options,
            name: Some(spec.source_name.into()),
            ..Default::default()
        },
    )
    .map_err(|e| KernelError::Compile(format!("{}: {e:?}", spec.source_name)))?
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

/// The virtual architecture to compile for: the GPU's own where listed, else the newest
/// listed below it (PTX runs on later GPUs through the driver's JIT).
fn arch_name(capability: (i32, i32)) -> &'static str {
    match capability {
        (8, 0) => "compute_80",
        (8, 6) => "compute_86",
        (8, 7) => "compute_87",
        (8, 9) => "compute_89",
        (8, _) => "compute_80",
        (major, _) if major < 8 => "compute_75",
        _ => "compute_90",
    }
}

fn cache_path(arch: &str, name: &str, source: &str, options: &[String]) -> Option<PathBuf> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut hasher);
    options.hash(&mut hasher);
    let digest = hasher.finish();
    let stem = name.trim_end_matches(".cu");
    crate::gpu::kernel_cache_dir().map(|dir| {
        dir.join("nvrtc")
            .join(format!("{stem}-{arch}-{digest:016x}.ptx"))
    })
}
