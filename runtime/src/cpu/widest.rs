//! Loops compiled for the widest vector instructions this CPU runs, chosen at run time: the build
//! itself targets baseline x86-64 (SSE2), so a loop the compiler vectorizes would otherwise use
//! 4-lane registers on a CPU with 16-lane ones.
//!
//! A loop implements [`VectorLoop`] with an `#[inline(always)]` body, and [`run`] calls it from
//! one function per instruction set, each compiled with that set enabled, so that the body (and
//! the functions it inlines, such as [`super::vmath`]'s) is compiled once per set. Every variant
//! computes the same bits: Rust never contracts a multiply and an add into an FMA implicitly, and
//! the vector forms of the other operations round as the scalar ones do.

/// A loop that [`run`] compiles once per instruction set.
pub(crate) trait VectorLoop {
    /// Runs the loop. Implementations are `#[inline(always)]`, so that they are compiled inside
    /// each instruction-set variant of [`run`].
    fn run(self);
}

/// Runs `body` with the widest vector instructions the CPU supports (AVX-512F, AVX2, else the
/// baseline).
#[inline]
pub(crate) fn run(body: impl VectorLoop) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (and so AVX2), checked just above.
            return unsafe { run_avx512(body) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { run_avx2(body) };
        }
    }
    body.run()
}

/// `body` compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn run_avx512(body: impl VectorLoop) {
    body.run()
}

/// `body` compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_avx2(body: impl VectorLoop) {
    body.run()
}
