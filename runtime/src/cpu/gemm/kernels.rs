//! The micro-kernels: each computes one MR×NR tile of C from a packed A panel (MR values per k)
//! and a packed B panel (NR values per k), one fused multiply-add chain per output element in
//! increasing k. Three builds of the same schedule, chosen at run time: AVX-512 (12×32, 24 zmm
//! accumulators), AVX2+FMA (6×16, 12 ymm accumulators) and a portable one (4×16, plain arrays
//! the compiler vectorizes for baseline x86-64 or any other target).
//!
//! The portable kernel multiplies and adds separately: without FMA hardware `mul_add` is a
//! library call.
//!
//! `rows` (at most MR) selects a kernel compiled for exactly that many rows, so a thin product
//! (one output channel, say) does not pay for a full tile, and `cols` at most NR/2 one that
//! computes half the columns (a 100-column product wastes 12 of 112 columns, not 28 of 128);
//! a partial width stores through a stack tile. Padding rows and columns of the packed panels are
//! zeros.

/// One output tile: where it goes and how.
#[derive(Clone, Copy)]
pub(super) struct Tile {
    /// The tile's top-left element of C.
    pub c: *mut f32,
    /// Distance between consecutive rows of C.
    pub ldc: usize,
    /// Rows of the tile that exist in C (1..=MR).
    pub rows: usize,
    /// Columns of the tile that exist in C (1..=NR).
    pub cols: usize,
    /// Add to C instead of overwriting it.
    pub accumulate: bool,
}

/// A micro-kernel: its tile shape and the function that computes one tile.
pub(super) trait MicroKernel {
    /// Rows of a tile (and of a packed A panel).
    const MR: usize;
    /// Columns of a tile (and of a packed B panel).
    const NR: usize;
    /// The instruction set, as the benchmarks print it.
    const NAME: &'static str;

    /// C[tile] (+)= Σ_p a[p·MR + r] · b[p·NR + j] for p < kc.
    ///
    /// # Safety
    /// `a` holds kc·MR and `b` kc·NR readable values; `tile.c` addresses `tile.rows` rows of
    /// `tile.cols` writable values `tile.ldc` apart, not aliased by `a` or `b`; the CPU supports
    /// the kernel's instruction set.
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, tile: Tile);
}

/// Writes an accumulated tile row by row from a stack copy, for tiles narrower than NR.
///
/// # Safety
/// As [`MicroKernel::tile`]; `acc` holds `tile.rows` rows of `nr` values.
#[inline(always)]
unsafe fn store_partial(acc: &[f32], nr: usize, tile: Tile) {
    for r in 0..tile.rows {
        // SAFETY: row r < rows of C holds `cols` writable values (the caller's contract).
        let row = unsafe { std::slice::from_raw_parts_mut(tile.c.add(r * tile.ldc), tile.cols) };
        let src = &acc[r * nr..][..tile.cols];
        if tile.accumulate {
            row.iter_mut().zip(src).for_each(|(c, a)| *c += a);
        } else {
            row.copy_from_slice(src);
        }
    }
}

/// Calls `$tile::<R, W>` for R = `$rows` and W = 1 when the tile has at most half of NR
/// columns, else 2: one arm per row count and width, so that each has its own fully unrolled
/// kernel, and neither a short last row panel nor a narrow last column panel computes padding.
macro_rules! dispatch {
    ($tile:ident, [$($r:literal)+], $nr:expr, ($kc:expr, $a:expr, $b:expr, $t:expr)) => {
        match ($t.rows, $t.cols <= $nr / 2) {
            $(($r, true) => $tile::<$r, 1>($kc, $a, $b, $t),)+
            $(($r, false) => $tile::<$r, 2>($kc, $a, $b, $t),)+
            (rows, _) => unreachable!("a tile has 1..=MR rows, got {rows}"),
        }
    };
}

/// The portable kernel: plain arrays, vectorized by the compiler for the build's baseline.
pub(super) struct Portable;

impl MicroKernel for Portable {
    const MR: usize = 4;
    const NR: usize = 16;
    const NAME: &'static str = "portable";

    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, tile: Tile) {
        // SAFETY: forwarded contract.
        unsafe { dispatch!(portable_tile, [1 2 3 4], Portable::NR, (kc, a, b, tile)) }
    }
}

/// [`Portable`]'s tile for exactly `R` rows and `W` halves of NR columns.
///
/// # Safety
/// As [`MicroKernel::tile`], with at most W·NR/2 columns.
unsafe fn portable_tile<const R: usize, const W: usize>(kc: usize, a: *const f32, b: *const f32, tile: Tile) {
    const NR: usize = Portable::NR;
    // SAFETY: the caller's contract: a holds kc·MR values, b kc·NR.
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, kc * Portable::MR), std::slice::from_raw_parts(b, kc * NR)) };
    let mut acc = [[0.0f32; NR]; R];
    for (ap, bp) in a.chunks_exact(Portable::MR).zip(b.chunks_exact(NR)) {
        for r in 0..R {
            for j in 0..W * NR / 2 {
                acc[r][j] += ap[r] * bp[j];
            }
        }
    }
    // SAFETY: forwarded contract; acc holds R = rows rows of NR values.
    unsafe { store_partial(acc.as_flattened(), NR, tile) }
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{store_partial, MicroKernel, Tile};
    use std::arch::x86_64::*;

    /// The AVX-512 kernel: 12 rows × 2 zmm vectors of 16 columns.
    pub struct Avx512;

    impl MicroKernel for Avx512 {
        const MR: usize = 12;
        const NR: usize = 32;
        const NAME: &'static str = "avx512f";

        unsafe fn tile(kc: usize, a: *const f32, b: *const f32, tile: Tile) {
            // SAFETY: forwarded contract (the CPU has AVX-512F).
            unsafe { dispatch!(avx512_tile, [1 2 3 4 5 6 7 8 9 10 11 12], Avx512::NR, (kc, a, b, tile)) }
        }
    }

    /// [`Avx512`]'s tile for exactly `R` rows and `W` vectors of 16 columns.
    ///
    /// # Safety
    /// As [`MicroKernel::tile`], with at most W·16 columns.
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_tile<const R: usize, const W: usize>(kc: usize, a: *const f32, b: *const f32, tile: Tile) {
        const MR: usize = Avx512::MR;
        const NR: usize = Avx512::NR;
        let mut acc = [[_mm512_setzero_ps(); W]; R];
        // SAFETY: every offset stays below kc·MR for a and kc·NR for b (the caller's contract).
        unsafe {
            for p in 0..kc {
                let panel: [_; W] = std::array::from_fn(|v| _mm512_loadu_ps(b.add(p * NR + v * 16)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let ar = _mm512_set1_ps(*a.add(p * MR + r));
                    for (acc, b) in acc.iter_mut().zip(panel) {
                        *acc = _mm512_fmadd_ps(ar, b, *acc);
                    }
                }
            }
        }
        if tile.cols == W * 16 {
            for (r, acc) in acc.iter().enumerate() {
                for (v, &sum) in acc.iter().enumerate() {
                    // SAFETY: row r of the tile holds W·16 = cols writable values.
                    unsafe {
                        let c = tile.c.add(r * tile.ldc + v * 16);
                        _mm512_storeu_ps(c, if tile.accumulate { _mm512_add_ps(_mm512_loadu_ps(c), sum) } else { sum });
                    }
                }
            }
        } else {
            let mut spill = [[0.0f32; NR]; R];
            for (row, acc) in spill.iter_mut().zip(&acc) {
                for (v, &sum) in acc.iter().enumerate() {
                    // SAFETY: each row has room for W ≤ 2 vectors of 16.
                    unsafe { _mm512_storeu_ps(row.as_mut_ptr().add(v * 16), sum) };
                }
            }
            // SAFETY: forwarded contract.
            unsafe { store_partial(spill.as_flattened(), NR, tile) }
        }
    }

    /// The AVX2+FMA kernel: 6 rows × 2 ymm vectors of 8 columns.
    pub struct Avx2;

    impl MicroKernel for Avx2 {
        const MR: usize = 6;
        const NR: usize = 16;
        const NAME: &'static str = "avx2+fma";

        unsafe fn tile(kc: usize, a: *const f32, b: *const f32, tile: Tile) {
            // SAFETY: forwarded contract (the CPU has AVX2 and FMA).
            unsafe { dispatch!(avx2_tile, [1 2 3 4 5 6], Avx2::NR, (kc, a, b, tile)) }
        }
    }

    /// [`Avx2`]'s tile for exactly `R` rows and `W` vectors of 8 columns.
    ///
    /// # Safety
    /// As [`MicroKernel::tile`], with at most W·8 columns.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_tile<const R: usize, const W: usize>(kc: usize, a: *const f32, b: *const f32, tile: Tile) {
        const MR: usize = Avx2::MR;
        const NR: usize = Avx2::NR;
        let mut acc = [[_mm256_setzero_ps(); W]; R];
        // SAFETY: every offset stays below kc·MR for a and kc·NR for b (the caller's contract).
        unsafe {
            for p in 0..kc {
                let panel: [_; W] = std::array::from_fn(|v| _mm256_loadu_ps(b.add(p * NR + v * 8)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let ar = _mm256_broadcast_ss(&*a.add(p * MR + r));
                    for (acc, b) in acc.iter_mut().zip(panel) {
                        *acc = _mm256_fmadd_ps(ar, b, *acc);
                    }
                }
            }
        }
        if tile.cols == W * 8 {
            for (r, acc) in acc.iter().enumerate() {
                for (v, &sum) in acc.iter().enumerate() {
                    // SAFETY: row r of the tile holds W·8 = cols writable values.
                    unsafe {
                        let c = tile.c.add(r * tile.ldc + v * 8);
                        _mm256_storeu_ps(c, if tile.accumulate { _mm256_add_ps(_mm256_loadu_ps(c), sum) } else { sum });
                    }
                }
            }
        } else {
            let mut spill = [[0.0f32; NR]; R];
            for (row, acc) in spill.iter_mut().zip(&acc) {
                for (v, &sum) in acc.iter().enumerate() {
                    // SAFETY: each row has room for W ≤ 2 vectors of 8.
                    unsafe { _mm256_storeu_ps(row.as_mut_ptr().add(v * 8), sum) };
                }
            }
            // SAFETY: forwarded contract.
            unsafe { store_partial(spill.as_flattened(), NR, tile) }
        }
    }
}
