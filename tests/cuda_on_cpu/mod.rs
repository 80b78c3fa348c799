//! graphc's CUDA C kernels compiled unchanged by the host's C++ compiler and run on the CPU
//! (`shim.h` supplies CUDA's device vocabulary and runs a grid thread by thread), so that the
//! tests run the kernels' own source, not a second implementation of them, without a GPU.

use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_void, CString};
use std::path::Path;
use std::process::Command;

use graphc_runtime::cuda::codegen::KernelSource;
use graphc_runtime::cuda::{entry_points, hand_written};

/// `cuda_on_cpu_launch` of shim.h.
type LaunchFn = unsafe extern "C" fn(*const c_char, u32, u32, c_int, *mut *mut c_void) -> c_int;

/// The hand-written kernels and some generated ones, compiled into a loaded library.
pub struct CpuKernels {
    launch: LaunchFn,
    /// Kernels that wait at `__syncthreads`, whose threads run as fibers.
    cooperative: HashSet<String>,
    // Declared last: dropped after `launch`, which points into it.
    _library: libloading::Library,
    _dir: tempfile::TempDir,
}

impl CpuKernels {
    /// The hand-written kernels and `generated` in one translation unit, compiled by `$CXX`
    /// (default `g++`). `None`, with a note, where there is no compiler and `CI` is not set.
    pub fn compile(generated: &[KernelSource]) -> Option<CpuKernels> {
        let mut source = format!("#include \"{}\"\n{}\n", Path::new(SHIM).display(), hand_written());
        for kernel in generated {
            source.push_str(&kernel.function);
            source.push('\n');
        }
        let cooperative = cooperative_kernels(&source);
        let names: Vec<String> = entry_points(&source).into_iter().map(str::to_string).collect();
        source.push_str("\nextern const cuda_on_cpu::Entry cuda_on_cpu_entries[] = {\n");
        for name in &names {
            source.push_str(&format!("    {{\"{name}\", [](void** a) {{ cuda_on_cpu::invoke({name}, a); }}}},\n"));
        }
        source.push_str(&format!("}};\nextern const unsigned cuda_on_cpu_entry_count = {};\n", names.len()));

        let dir = tempfile::tempdir().unwrap();
        let (unit, library) = (dir.path().join("kernels.cpp"), dir.path().join("libkernels.so"));
        std::fs::write(&unit, &source).unwrap();
        let compiler = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        let status = Command::new(&compiler)
            .args(["-std=c++17", "-O2", "-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&unit)
            .status();
        match status {
            Ok(status) => assert!(status.success(), "{compiler} could not compile the kernels for the CPU ({status})"),
            Err(e) if std::env::var_os("CI").is_none() => {
                println!("SKIPPED (not a pass): no C++ compiler `{compiler}` to run the CUDA kernels on the CPU: {e}");
                return None;
            }
            Err(e) => panic!("no C++ compiler `{compiler}` in CI ({e}): .ci/run installs g++"),
        }
        // SAFETY: the library is the one just compiled from shim.h, whose only initialisers
        // are its statics' constructors.
        let loaded = unsafe { libloading::Library::new(&library) }.unwrap();
        // SAFETY: shim.h defines `cuda_on_cpu_launch` with exactly `LaunchFn`'s signature.
        let launch = unsafe { *loaded.get::<LaunchFn>(b"cuda_on_cpu_launch\0").unwrap() };
        Some(CpuKernels { launch, cooperative, _library: loaded, _dir: dir })
    }

    /// Runs `kernel` over `grid` blocks of `block` threads; `args[i]` points to the value of its
    /// parameter `i`.
    ///
    /// # Safety
    /// `args` must hold one pointer per parameter of `kernel`, each to a value of that
    /// parameter's type, and every device pointer among those values must point into memory
    /// that the kernel's accesses stay within.
    pub unsafe fn launch(&self, kernel: &str, grid: u32, block: u32, args: &mut [*mut c_void]) {
        let name = CString::new(kernel).unwrap();
        let cooperative = c_int::from(self.cooperative.contains(kernel));
        // SAFETY: the caller vouches for `args`; the name is a NUL-terminated string.
        let found = unsafe { (self.launch)(name.as_ptr(), grid, block, cooperative, args.as_mut_ptr()) };
        assert_eq!(found, 0, "no kernel {kernel} was compiled for the CPU");
    }
}

/// shim.h, by its path in the repository.
const SHIM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cuda_on_cpu/shim.h");

/// The entry points of `source` whose bodies wait at a barrier (`__syncthreads`, or `block_sum`
/// which does).
fn cooperative_kernels(source: &str) -> HashSet<String> {
    source
        .split("extern \"C\" __global__ void ")
        .skip(1)
        .filter(|body| body.contains("block_sum(") || body.contains("__syncthreads"))
        .filter_map(|body| body.split_once('(').map(|(name, _)| name.trim().to_string()))
        .collect()
}
