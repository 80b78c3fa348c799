//! Which device runs a program: `auto`, `cpu` or `cuda[:N]`, and the probe that decides. The
//! probe loads nothing that could panic: it looks for the CUDA driver library with `dlopen`
//! before any CUDA call (cudarc's loaders panic when a library is missing).

use std::fmt;
use std::str::FromStr;

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    /// A CUDA device when one can run the program, else the CPU.
    Auto,
    /// The CPU backend.
    Cpu,
    /// CUDA device number N.
    Cuda(usize),
}

impl FromStr for DeviceRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceRequest::Auto),
            "cpu" => Ok(DeviceRequest::Cpu),
            "cuda" => Ok(DeviceRequest::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceRequest::Cuda)
                .ok_or_else(|| format!("unknown device \"{other}\": use auto, cpu, cuda or cuda:N")),
        }
    }
}

/// Why a CUDA device cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CudaUnavailable(pub String);

impl fmt::Display for CudaUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CudaUnavailable {}

/// The device a run uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selected {
    /// The CPU, with a one-line note when `auto` found no usable GPU.
    Cpu(Option<String>),
    /// CUDA device N, whose driver and libraries are present.
    Cuda(usize),
}

/// Chooses the device for `request`: `auto` takes CUDA device 0 when its driver, NVRTC and
/// cuBLAS are present, else the CPU with a note; `cuda:N` without them is an error.
pub fn select(request: DeviceRequest) -> Result<Selected, CudaUnavailable> {
    match request {
        DeviceRequest::Cpu => Ok(Selected::Cpu(None)),
        DeviceRequest::Auto => match probe_libraries(0) {
            Ok(()) => Ok(Selected::Cuda(0)),
            Err(why) => Ok(Selected::Cpu(Some(format!("note: running on the CPU ({why})")))),
        },
        DeviceRequest::Cuda(ordinal) => probe_libraries(ordinal).map(|()| Selected::Cuda(ordinal)),
    }
}

/// Whether CUDA device `ordinal` exists and the libraries the CUDA backend loads (the driver,
/// NVRTC and cuBLAS) are present, checked without a call that could panic.
pub fn probe_libraries(ordinal: usize) -> Result<(), CudaUnavailable> {
    let count = probe_device_count()?;
    if ordinal >= count {
        return Err(CudaUnavailable(format!("no CUDA device {ordinal}: the driver reports {count}")));
    }
    for (library, package) in [("nvrtc", "NVRTC"), ("cublas", "cuBLAS")] {
        if !library_present(library) {
            return Err(CudaUnavailable(format!(
                "CUDA device {ordinal} found, but {package} (lib{library}) is not on the library path"
            )));
        }
    }
    Ok(())
}

/// Whether the CUDA library `name` (`cuda`, `nvrtc`) loads under any of the names cudarc tries.
#[cfg(feature = "cuda")]
fn library_present(name: &str) -> bool {
    // SAFETY: loading a CUDA library runs its initializers, as any CUDA program does; the handle
    // is dropped at once and no symbol is called through it.
    cudarc::get_lib_name_candidates(name).iter().any(|n| unsafe { libloading::Library::new(n) }.is_ok())
}

/// The number of CUDA devices the driver reports, or why there is no driver.
#[cfg(feature = "cuda")]
pub fn probe_device_count() -> Result<usize, CudaUnavailable> {
    if !library_present("cuda") {
        return Err(CudaUnavailable("no CUDA driver: libcuda.so.1 not found".into()));
    }
    cudarc::driver::result::init().map_err(|e| CudaUnavailable(format!("the CUDA driver failed to start: {e:?}")))?;
    cudarc::driver::result::device::get_count()
        .map(|n| n as usize)
        .map_err(|e| CudaUnavailable(format!("the CUDA driver cannot count devices: {e:?}")))
}

/// PTX for the CUDA C `source`, compiled by NVRTC for the virtual architecture `arch` (e.g.
/// `compute_80`); `Err(None)` when NVRTC cannot be loaded, `Err(Some(log))` when it rejects the
/// source.
#[cfg(feature = "cuda")]
pub fn compile_ptx(source: &str, arch: &'static str) -> Result<String, Option<String>> {
    if !library_present("nvrtc") {
        return Err(None);
    }
    let opts = cudarc::nvrtc::CompileOptions { arch: Some(arch), ..Default::default() };
    cudarc::nvrtc::compile_ptx_with_opts(source, opts).map(|ptx| ptx.to_src()).map_err(|e| Some(format!("{e:?}")))
}

/// Without the `cuda` feature no CUDA library is looked for.
#[cfg(not(feature = "cuda"))]
fn library_present(_name: &str) -> bool {
    false
}

/// Without the `cuda` feature there is no CUDA support to probe.
#[cfg(not(feature = "cuda"))]
pub fn probe_device_count() -> Result<usize, CudaUnavailable> {
    Err(CudaUnavailable("this graphc was built without the `cuda` feature".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!("auto".parse(), Ok(DeviceRequest::Auto));
        assert_eq!("cpu".parse(), Ok(DeviceRequest::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceRequest::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceRequest::Cuda(3)));
        assert!("gpu".parse::<DeviceRequest>().unwrap_err().contains("cuda:N"));
        assert!("cuda:x".parse::<DeviceRequest>().is_err());
    }

    #[test]
    fn cpu_needs_no_probe() {
        assert_eq!(select(DeviceRequest::Cpu), Ok(Selected::Cpu(None)));
    }
}
