//! A fake CUDA for tests, on the CPU: stand-ins for libcuda (`driver.cpp`: host memory with
//! guarded allocations, kernels run by `shim.h`), libnvrtc (`nvrtc.cpp`: the program compiled
//! for the CPU by `g++`) and libcublas (`cublas.cpp`: sgemm). A process whose library path
//! starts with [`libraries`] runs graphc's CUDA executor unchanged, through cudarc, and the
//! kernels' own CUDA C; `kernels.rs` runs single kernels of a translation unit.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The sources the three libraries are built from, by file name.
const SOURCES: [(&str, &str); 4] = [
    ("shim.h", include_str!("shim.h")),
    ("driver.cpp", include_str!("driver.cpp")),
    ("nvrtc.cpp", include_str!("nvrtc.cpp")),
    ("cublas.cpp", include_str!("cublas.cpp")),
];

/// The directory holding the fake `libcuda.so`, `libnvrtc.so` and `libcublas.so`, built once per
/// version of their sources under the target directory. `None`, with a note, where there is no
/// C++ compiler (`$CXX`, default `g++`) and `CI` is not set; in CI that is a failure.
pub fn libraries() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(build).as_deref()
}

fn compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "g++".into())
}

fn build() -> Option<PathBuf> {
    let mut hasher = DefaultHasher::new();
    SOURCES.hash(&mut hasher);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fake-cuda-{:016x}", hasher.finish()));
    if dir.join("libcublas.so").exists() {
        return Some(dir);
    }
    // Built beside, then renamed into place, so that a concurrent test never sees half of it.
    let building = dir.with_extension(format!("building-{}", std::process::id()));
    std::fs::create_dir_all(&building).unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_cuda");
    let shim = format!("-DSHIM_PATH=\"{}\"", here.join("shim.h").display());
    let libraries: [(&str, &str, Vec<String>); 3] = [
        ("driver.cpp", "libcuda.so", vec!["-ldl".into()]),
        ("nvrtc.cpp", "libnvrtc.so", vec![shim]),
        ("cublas.cpp", "libcublas.so", vec![format!("-L{}", building.display()), "-l:libcuda.so".into()]),
    ];
    for (source, library, extra) in libraries {
        let status = Command::new(compiler())
            .args(["-std=c++17", "-O2", "-shared", "-fPIC", "-Wall", "-o"])
            .arg(building.join(library))
            .arg(here.join(source))
            .args(extra)
            .status();
        match status {
            Ok(status) => assert!(status.success(), "{} could not compile {source} ({status})", compiler()),
            Err(e) if std::env::var_os("CI").is_none() => {
                println!("SKIPPED (not a pass): no C++ compiler `{}` for the fake CUDA: {e}", compiler());
                return None;
            }
            Err(e) => panic!("no C++ compiler `{}` in CI ({e}): .ci/run installs g++", compiler()),
        }
    }
    if std::fs::rename(&building, &dir).is_err() {
        // Another process built it first.
        std::fs::remove_dir_all(&building).unwrap();
    }
    Some(dir)
}

/// `LD_LIBRARY_PATH` for a child process that should load the fake CUDA: its directory first.
#[allow(dead_code)] // Not every test that includes this module starts processes.
pub fn library_path(dir: &Path) -> String {
    match std::env::var("LD_LIBRARY_PATH") {
        Ok(rest) if !rest.is_empty() => format!("{}:{rest}", dir.display()),
        _ => dir.display().to_string(),
    }
}
