//! Sixteen f32 lanes as one value, for kernel loops that must compile to whole-vector operations
//! whatever the optimizer's heuristics decide: the direct convolutions' inner loops, written over
//! plain arrays, had been left scalar by one build and vectorized by the next after an unrelated
//! change elsewhere in the crate (a 60% slower DC-GAN generation). One implementation per
//! instruction set, chosen by the caller's run-time dispatch: AVX-512F+FMA (one zmm register),
//! AVX2+FMA (two ymm registers) and a portable one (an array, multiply then add, as a build
//! without FMA hardware computes).

/// The number of lanes.
pub(super) const LANES: usize = 16;

/// Sixteen f32 lanes.
///
/// # Safety
/// Every method runs its type's instructions: callers ensure the CPU supports them.
pub(super) trait Lanes: Copy {
    /// Every lane zero.
    unsafe fn zero() -> Self;
    /// Every lane `v`.
    unsafe fn splat(v: f32) -> Self;
    /// The lanes of `src`.
    unsafe fn load(src: &[f32; LANES]) -> Self;
    /// `self + a·b` lane by lane: rounded once where the type has FMA.
    unsafe fn madd(self, a: Self, b: Self) -> Self;
    /// Writes the lanes to `dst`.
    unsafe fn store(self, dst: &mut [f32; LANES]);
}

/// The first [`LANES`] values of `values`, as an array.
#[inline(always)]
pub(super) fn lanes(values: &[f32]) -> &[f32; LANES] {
    values[..LANES].try_into().expect("a chunk of LANES values")
}

/// Portable lanes: an array the compiler may vectorize for the build's baseline.
#[derive(Clone, Copy)]
pub(super) struct Portable([f32; LANES]);

impl Lanes for Portable {
    #[inline(always)]
    unsafe fn zero() -> Self {
        Portable([0.0; LANES])
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Portable([v; LANES])
    }
    #[inline(always)]
    unsafe fn load(src: &[f32; LANES]) -> Self {
        Portable(*src)
    }
    #[inline(always)]
    unsafe fn madd(self, a: Self, b: Self) -> Self {
        // Without FMA hardware `mul_add` is a library call: multiply, then add.
        Portable(std::array::from_fn(|l| self.0[l] + a.0[l] * b.0[l]))
    }
    #[inline(always)]
    unsafe fn store(self, dst: &mut [f32; LANES]) {
        *dst = self.0;
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Lanes, LANES};
    use std::arch::x86_64::*;

    /// One AVX-512 register.
    #[derive(Clone, Copy)]
    pub struct Avx512(__m512);

    // SAFETY (every method): the caller ensures the CPU has AVX-512F and FMA (the trait's
    // contract); loads and stores go through references to exactly LANES values.
    impl Lanes for Avx512 {
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Avx512(_mm512_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            unsafe { Avx512(_mm512_set1_ps(v)) }
        }
        #[inline(always)]
        unsafe fn load(src: &[f32; LANES]) -> Self {
            unsafe { Avx512(_mm512_loadu_ps(src.as_ptr())) }
        }
        #[inline(always)]
        unsafe fn madd(self, a: Self, b: Self) -> Self {
            unsafe { Avx512(_mm512_fmadd_ps(a.0, b.0, self.0)) }
        }
        #[inline(always)]
        unsafe fn store(self, dst: &mut [f32; LANES]) {
            unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), self.0) }
        }
    }

    /// Two AVX2 registers: lanes 0–7 and 8–15.
    #[derive(Clone, Copy)]
    pub struct Avx2([__m256; 2]);

    // SAFETY (every method): the caller ensures the CPU has AVX2 and FMA (the trait's contract);
    // loads and stores go through references to exactly LANES values, 8 at offset 0 and 8.
    impl Lanes for Avx2 {
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Avx2([_mm256_setzero_ps(); 2]) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            unsafe { Avx2([_mm256_set1_ps(v); 2]) }
        }
        #[inline(always)]
        unsafe fn load(src: &[f32; LANES]) -> Self {
            unsafe { Avx2([_mm256_loadu_ps(src.as_ptr()), _mm256_loadu_ps(src.as_ptr().add(8))]) }
        }
        #[inline(always)]
        unsafe fn madd(self, a: Self, b: Self) -> Self {
            unsafe { Avx2([_mm256_fmadd_ps(a.0[0], b.0[0], self.0[0]), _mm256_fmadd_ps(a.0[1], b.0[1], self.0[1])]) }
        }
        #[inline(always)]
        unsafe fn store(self, dst: &mut [f32; LANES]) {
            unsafe {
                _mm256_storeu_ps(dst.as_mut_ptr(), self.0[0]);
                _mm256_storeu_ps(dst.as_mut_ptr().add(8), self.0[1]);
            }
        }
    }
}
