//! Single kernels of a CUDA C translation unit, compiled by the fake NVRTC and launched by the
//! fake driver (`mod.rs`), on memory the caller owns.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::Mutex;

use crate::fake_cuda::libraries;

type Opaque = *mut c_void;

/// The calls of the fake libraries [`CpuKernels`] makes, as the real ones declare them.
struct Api {
    create_program: unsafe extern "C" fn(*mut Opaque, *const c_char, *const c_char, c_int, Opaque, Opaque) -> c_int,
    compile_program: unsafe extern "C" fn(Opaque, c_int, Opaque) -> c_int,
    ptx_size: unsafe extern "C" fn(Opaque, *mut usize) -> c_int,
    ptx: unsafe extern "C" fn(Opaque, *mut c_char) -> c_int,
    log_size: unsafe extern "C" fn(Opaque, *mut usize) -> c_int,
    log: unsafe extern "C" fn(Opaque, *mut c_char) -> c_int,
    load_module: unsafe extern "C" fn(*mut Opaque, *const c_void) -> c_int,
    get_function: unsafe extern "C" fn(*mut Opaque, Opaque, *const c_char) -> c_int,
    #[allow(clippy::type_complexity)]
    launch: unsafe extern "C" fn(
        Opaque,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        Opaque,
        *mut *mut c_void,
        *mut *mut c_void,
    ) -> c_int,
}

/// A CUDA C translation unit compiled by the fake NVRTC and loaded by the fake driver.
pub struct CpuKernels {
    api: Api,
    module: Opaque,
    functions: Mutex<HashMap<String, usize>>,
    _libraries: [libloading::Library; 2],
}

// SAFETY: the fake driver guards its shared state with a mutex, and a kernel's run keeps its
// state (shim.h's thread indices, fibers) in the launching thread's own storage.
unsafe impl Sync for CpuKernels {}
// SAFETY: as above; nothing here is tied to the thread that loaded it.
unsafe impl Send for CpuKernels {}

impl CpuKernels {
    /// Compiles and loads `source` (a CUDA C translation unit); `None` where [`libraries`] is.
    pub fn compile(source: &str) -> Option<CpuKernels> {
        let dir = libraries()?;
        // SAFETY: the fake libraries, built above from this directory's sources; their only
        // initialisers are their statics' constructors.
        let (nvrtc, driver) = unsafe {
            (
                libloading::Library::new(dir.join("libnvrtc.so")).unwrap(),
                libloading::Library::new(dir.join("libcuda.so")).unwrap(),
            )
        };
        // SAFETY: each symbol has the signature its field declares (nvrtc.cpp and driver.cpp,
        // after the NVRTC and driver headers).
        let api = unsafe {
            Api {
                create_program: *nvrtc.get(b"nvrtcCreateProgram\0").unwrap(),
                compile_program: *nvrtc.get(b"nvrtcCompileProgram\0").unwrap(),
                ptx_size: *nvrtc.get(b"nvrtcGetPTXSize\0").unwrap(),
                ptx: *nvrtc.get(b"nvrtcGetPTX\0").unwrap(),
                log_size: *nvrtc.get(b"nvrtcGetProgramLogSize\0").unwrap(),
                log: *nvrtc.get(b"nvrtcGetProgramLog\0").unwrap(),
                load_module: *driver.get(b"cuModuleLoadData\0").unwrap(),
                get_function: *driver.get(b"cuModuleGetFunction\0").unwrap(),
                launch: *driver.get(b"cuLaunchKernel\0").unwrap(),
            }
        };
        let source = CString::new(source).unwrap();
        let mut program: Opaque = std::ptr::null_mut();
        let mut module: Opaque = std::ptr::null_mut();
        // SAFETY: NVRTC's calls on a program it created, with buffers of the sizes it reports;
        // the "PTX" is the NUL-terminated path cuModuleLoadData takes.
        unsafe {
            let name = c"kernels.cu";
            let null = std::ptr::null_mut();
            assert_eq!((api.create_program)(&mut program, source.as_ptr(), name.as_ptr(), 0, null, null), 0);
            if (api.compile_program)(program, 0, null) != 0 {
                let mut size = 0;
                (api.log_size)(program, &mut size);
                let mut log = vec![0 as c_char; size];
                (api.log)(program, log.as_mut_ptr());
                panic!("the kernels do not compile for the CPU:\n{}", CStr::from_ptr(log.as_ptr()).to_string_lossy());
            }
            let mut size = 0;
            assert_eq!((api.ptx_size)(program, &mut size), 0);
            let mut ptx = vec![0 as c_char; size];
            assert_eq!((api.ptx)(program, ptx.as_mut_ptr()), 0);
            assert_eq!((api.load_module)(&mut module, ptx.as_ptr().cast()), 0, "cuModuleLoadData");
        }
        Some(CpuKernels { api, module, functions: Mutex::default(), _libraries: [nvrtc, driver] })
    }

    /// Runs `kernel` over `grid` blocks of `block` threads; `args[i]` points to the value of its
    /// parameter `i`.
    ///
    /// # Safety
    /// `args` must hold one pointer per parameter of `kernel`, each to a value of that
    /// parameter's type, and every device pointer among those values must point into memory
    /// that the kernel's accesses stay within.
    pub unsafe fn launch(&self, kernel: &str, grid: u32, block: u32, args: &mut [*mut c_void]) {
        let function = *self.functions.lock().unwrap().entry(kernel.to_string()).or_insert_with(|| {
            let name = CString::new(kernel).unwrap();
            let mut function: Opaque = std::ptr::null_mut();
            // SAFETY: a lookup in the module loaded above.
            let found = unsafe { (self.api.get_function)(&mut function, self.module, name.as_ptr()) };
            assert_eq!(found, 0, "no kernel {kernel} was compiled for the CPU");
            function as usize
        });
        let (stream, extra) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: the caller vouches for `args`; the function was found in this module.
        let launched = unsafe {
            (self.api.launch)(function as Opaque, grid, 1, 1, block, 1, 1, 0, stream, args.as_mut_ptr(), extra)
        };
        assert_eq!(launched, 0, "cuLaunchKernel of {kernel}");
    }
}
