//! Flush-to-zero: subnormal floats (below 1.2e-38) are up to a hundred times slower to compute
//! with on x86 CPUs, and training produces them (tiny gradients squared in Adam's second moment,
//! weights decaying towards zero): a run can slow down tenfold midway. PyTorch offers the same
//! switch (`torch.set_flush_denormal`). With it, subnormal results and inputs count as zero.

/// Makes this thread flush subnormal floats to zero (no effect on CPUs without SSE).
pub fn flush_denormals_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    {
        const FLUSH_TO_ZERO: u32 = 1 << 15;
        const DENORMALS_ARE_ZERO: u32 = 1 << 6;
        // SAFETY: reading and writing MXCSR only changes how this thread rounds and flushes
        // floating-point results; SSE is part of the x86-64 baseline, so the register exists.
        #[allow(deprecated)]
        unsafe {
            use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
            _mm_setcsr(_mm_getcsr() | FLUSH_TO_ZERO | DENORMALS_ARE_ZERO);
        }
    }
}

/// Starts rayon's global pool with `threads` workers (default: one per core), each flushing
/// subnormals, and sets the same on the calling thread. Call once, before any kernel runs.
pub fn init_threads(threads: Option<usize>) -> Result<(), rayon::ThreadPoolBuildError> {
    flush_denormals_on_this_thread();
    let mut builder = rayon::ThreadPoolBuilder::new().start_handler(|_| flush_denormals_on_this_thread());
    if let Some(n) = threads {
        builder = builder.num_threads(n);
    }
    builder.build_global()
}

#[cfg(test)]
mod tests {
    #[test]
    fn subnormal_results_become_zero() {
        super::flush_denormals_on_this_thread();
        let tiny = std::hint::black_box(1e-30f32);
        assert_eq!(tiny * 1e-10, 0.0);
    }
}
