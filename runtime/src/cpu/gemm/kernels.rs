//! The micro-kernels: each computes one MR×NR tile of C from an A panel (packed, MR values per
//! k, or MR rows read in place) and a packed B panel (NR values per k), one fused multiply-add
//! chain per output element in increasing k. Three builds of the same schedule, chosen at run
//! time: AVX-512 (12×32, 24 zmm accumulators), AVX2+FMA (6×16, 12 ymm accumulators) and a
//! portable one (4×16, plain arrays the compiler vectorizes for baseline x86-64 or any other
//! target).
//!
//! The portable kernel multiplies and adds separately: without FMA hardware `mul_add` is a
//! library call.
//!
//! `rows` (at most MR) selects a kernel compiled for exactly that many rows, so a thin product
//! (one output channel, say) does not pay for a full tile, and `cols` at most NR/2 one that
//! computes half the columns (a 100-column product wastes 12 of 112 columns, not 28 of 128);
//! a partial width stores through a stack tile. Padding rows and columns of the packed panels are
//! zeros.

/// Floats in a 64-byte cache line.
pub(super) const LINE_FLOATS: usize = 16;

/// Where a kernel reads its A operand.
#[derive(Clone, Copy)]
pub(super) enum ASource {
    /// A packed panel: row r's value for k step p at `p·MR + r`.
    Packed(*const f32),
    /// Rows of A in place: row r's value for k step p at `r·stride + p`.
    Rows(*const f32, usize),
}

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
    /// Lines of the operand's next block to prefetch while the tile is computed.
    pub prefetch: LineStream,
    /// Prefetch A's rows ahead along k (when read in place from memory).
    pub prefetch_a: bool,
    /// Prefetch the tile's lines of C for writing before computing it (C does not fit in cache:
    /// its stores would each wait for the line).
    pub prefetch_c: bool,
}

/// A run of cache lines for a kernel to prefetch into L2, one every other k step: lines of a
/// block stored as runs of values `run_stride` apart, [`LineStream::lines_per_run`] lines a run.
/// A hint only: the lines' addresses are never read, and a kernel may ignore the stream.
#[derive(Clone, Copy)]
pub(super) struct LineStream {
    /// The first line's first value.
    pub at: *const f32,
    /// Which line of its run `at` is.
    pub line: usize,
    /// Lines in a run.
    pub lines_per_run: usize,
    /// Distance between runs, in values.
    pub run_stride: usize,
    /// Lines to prefetch (at most one per two k steps are issued).
    pub count: usize,
}

impl LineStream {
    /// A stream of no lines.
    pub const NONE: LineStream =
        LineStream { at: std::ptr::null(), line: 0, lines_per_run: 1, run_stride: 0, count: 0 };

    /// The lines of a block of `runs` runs of `run_len` values from `at`, `run_stride` apart.
    pub fn block(at: *const f32, runs: usize, run_len: usize, run_stride: usize) -> LineStream {
        // One line more than the run's length in lines: a run need not start on a line.
        let lines_per_run = run_len.div_ceil(LINE_FLOATS) + 1;
        LineStream { at, line: 0, lines_per_run, run_stride, count: runs * lines_per_run }
    }

    /// Lines `from..from + count` of the stream (clipped to its end).
    pub fn part(&self, from: usize, count: usize) -> LineStream {
        let first = self.line + from;
        let (run, line) = (first / self.lines_per_run, first % self.lines_per_run);
        let at = self.at.wrapping_add(run * self.run_stride + line * LINE_FLOATS).wrapping_sub(self.line * LINE_FLOATS);
        LineStream { at, line, count: count.min(self.count.saturating_sub(from)), ..*self }
    }

    /// Issues the next line's prefetch, if any is left (where the target has a prefetch
    /// instruction).
    #[inline(always)]
    fn issue_next(&mut self) {
        if self.count == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch only hints and never faults, whatever the address (computed with
        // `wrapping_add`, so never dereferenced).
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(self.at.cast())
        };
        self.count -= 1;
        self.line += 1;
        self.at = if self.line == self.lines_per_run {
            self.line = 0;
            self.at.wrapping_add(self.run_stride).wrapping_sub((self.lines_per_run - 1) * LINE_FLOATS)
        } else {
            self.at.wrapping_add(LINE_FLOATS)
        };
    }
}

/// A micro-kernel: its tile shape and the function that computes one tile.
pub(super) trait MicroKernel {
    /// Rows of a tile (and of a packed A panel).
    const MR: usize;
    /// Columns of a tile (and of a packed B panel).
    const NR: usize;

    /// C[tile] (+)= Σ_p A(r, p) · b[p·NR + j] for p < kc, A read as `a` says.
    ///
    /// # Safety
    /// `a` holds kc·MR readable values (packed) or `tile.rows` rows of kc (in place), and `b`
    /// kc·NR; `tile.c` addresses `tile.rows` rows of `tile.cols` writable values `tile.ldc` apart,
    /// not aliased by `a` or `b`; the CPU supports the kernel's instruction set.
    unsafe fn tile(kc: usize, a: ASource, b: *const f32, tile: Tile);
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

/// Calls `$tile::<R, W, PACKED>` for R = `$rows`, W = 1 when the tile has at most half of NR
/// columns (else 2), and PACKED as A is read: one arm per row count, width and A layout, so that
/// each has its own fully unrolled kernel, and neither a short last row panel nor a narrow last
/// column panel computes padding.
macro_rules! dispatch {
    ($tile:ident, [$($r:literal)+], $nr:expr, ($kc:expr, $a:expr, $b:expr, $t:expr)) => {
        match ($a, $t.rows, $t.cols <= $nr / 2) {
            $((ASource::Packed(a), $r, true) => $tile::<$r, 1, true>($kc, a, 0, $b, $t),)+
            $((ASource::Packed(a), $r, false) => $tile::<$r, 2, true>($kc, a, 0, $b, $t),)+
            $((ASource::Rows(a, lda), $r, true) => $tile::<$r, 1, false>($kc, a, lda, $b, $t),)+
            $((ASource::Rows(a, lda), $r, false) => $tile::<$r, 2, false>($kc, a, lda, $b, $t),)+
            (_, rows, _) => unreachable!("a tile has 1..=MR rows, got {rows}"),
        }
    };
}

/// The address of A(r, p): in a packed panel of `mr` rows, or in place with row stride `lda`.
///
/// # Safety
/// The element lies inside A's storage (the kernels' contract).
#[inline(always)]
unsafe fn a_at<const PACKED: bool>(a: *const f32, mr: usize, lda: usize, r: usize, p: usize) -> *const f32 {
    // SAFETY: forwarded contract.
    unsafe {
        if PACKED {
            a.add(p * mr + r)
        } else {
            a.add(r * lda + p)
        }
    }
}

/// The portable kernel: plain arrays, vectorized by the compiler for the build's baseline.
pub(super) struct Portable;

impl MicroKernel for Portable {
    const MR: usize = 4;
    const NR: usize = 16;

    unsafe fn tile(kc: usize, a: ASource, b: *const f32, tile: Tile) {
        // SAFETY: forwarded contract.
        unsafe { dispatch!(portable_tile, [1 2 3 4], Portable::NR, (kc, a, b, tile)) }
    }
}

/// [`Portable`]'s tile for exactly `R` rows and `W` halves of NR columns, A packed or in place
/// (row stride `lda`).
///
/// # Safety
/// As [`MicroKernel::tile`], with at most W·NR/2 columns.
unsafe fn portable_tile<const R: usize, const W: usize, const PACKED: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    tile: Tile,
) {
    const NR: usize = Portable::NR;
    // SAFETY: the caller's contract: b holds kc·NR values.
    let b = unsafe { std::slice::from_raw_parts(b, kc * NR) };
    let mut acc = [[0.0f32; NR]; R];
    let mut prefetch = tile.prefetch;
    for (p, bp) in b.chunks_exact(NR).enumerate() {
        if p % 2 == 0 {
            prefetch.issue_next();
        }
        // SAFETY: (r, p) lies inside A for r < R, p < kc (the caller's contract).
        let ap: [f32; R] = std::array::from_fn(|r| unsafe { *a_at::<PACKED>(a, Portable::MR, lda, r, p) });
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
    use super::{a_at, store_partial, ASource, MicroKernel, Tile, LINE_FLOATS};
    use std::arch::x86_64::*;

    /// How far ahead along k (in floats) a kernel reading A's rows in place prefetches them, one
    /// line per row every [`LINE_FLOATS`] steps. Those rows come from memory or L3 (a fully
    /// connected layer's weights, 25 MB in InfoGAN), where the hardware prefetchers alone left
    /// the kernel waiting: 64×6272·(1024×6272)ᵀ ran 18% faster with 64 floats ahead (median of
    /// eight alternations against the kernel without, 2 threads), and as fast or faster with 128.
    const A_PREFETCH_AHEAD: usize = 128;

    /// Defines a SIMD micro-kernel (its type, its [`MicroKernel`] impl and its tile function)
    /// from one template and the vector width's intrinsics, so that the AVX-512 and AVX2 kernels
    /// cannot drift apart.
    macro_rules! simd_kernel {
        ($(#[$doc:meta])* $kernel:ident, $tile:ident, $feature:literal, mr $mr:literal,
         lanes $lanes:literal, rows $rows:tt, $zero:ident, $load:ident, $splat:ident, $fma:ident, $add:ident,
         $store:ident) => {
            $(#[$doc])*
            pub struct $kernel;

            impl MicroKernel for $kernel {
                const MR: usize = $mr;
                const NR: usize = 2 * $lanes;

                unsafe fn tile(kc: usize, a: ASource, b: *const f32, tile: Tile) {
                    // SAFETY: forwarded contract (the CPU has the kernel's instruction set).
                    unsafe { dispatch!($tile, $rows, Self::NR, (kc, a, b, tile)) }
                }
            }

            /// The tile for exactly `R` rows and `W` vectors of columns, A packed or in place
            /// (row stride `lda`).
            ///
            /// # Safety
            /// As [`MicroKernel::tile`], with at most W vectors of columns.
            #[target_feature(enable = $feature)]
            unsafe fn $tile<const R: usize, const W: usize, const PACKED: bool>(
                kc: usize,
                a: *const f32,
                lda: usize,
                b: *const f32,
                tile: Tile,
            ) {
                const MR: usize = $kernel::MR;
                const NR: usize = $kernel::NR;
                let mut acc = [[$zero(); W]; R];
                let mut prefetch = tile.prefetch;
                if tile.prefetch_c {
                    for r in 0..R {
                        for v in 0..W {
                            let line = tile.c.wrapping_add(r * tile.ldc + v * $lanes);
                            _mm_prefetch::<_MM_HINT_ET0>(line.cast());
                        }
                    }
                }
                // SAFETY: every offset read stays below kc·MR for a and kc·NR for b (the caller's
                // contract); a prefetch past A's storage (computed with `wrapping_add`) only
                // hints and never faults.
                unsafe {
                    for p in 0..kc {
                        if p % 2 == 0 {
                            prefetch.issue_next();
                        }
                        if !PACKED && tile.prefetch_a && p % LINE_FLOATS == 0 {
                            for r in 0..R {
                                let ahead = a.wrapping_add(r * lda + p + A_PREFETCH_AHEAD);
                                _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
                            }
                        }
                        let panel: [_; W] = std::array::from_fn(|v| $load(b.add(p * NR + v * $lanes)));
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let ar = $splat(*a_at::<PACKED>(a, MR, lda, r, p));
                            for (acc, b) in acc.iter_mut().zip(panel) {
                                *acc = $fma(ar, b, *acc);
                            }
                        }
                    }
                }
                if tile.cols == W * $lanes {
                    for (r, acc) in acc.iter().enumerate() {
                        for (v, &sum) in acc.iter().enumerate() {
                            // SAFETY: row r of the tile holds W vectors = cols writable values.
                            unsafe {
                                let c = tile.c.add(r * tile.ldc + v * $lanes);
                                $store(c, if tile.accumulate { $add($load(c), sum) } else { sum });
                            }
                        }
                    }
                } else {
                    let mut spill = [[0.0f32; NR]; R];
                    for (row, acc) in spill.iter_mut().zip(&acc) {
                        for (v, &sum) in acc.iter().enumerate() {
                            // SAFETY: each row has room for W ≤ 2 vectors.
                            unsafe { $store(row.as_mut_ptr().add(v * $lanes), sum) };
                        }
                    }
                    // SAFETY: forwarded contract.
                    unsafe { store_partial(spill.as_flattened(), NR, tile) }
                }
            }
        };
    }

    simd_kernel!(
        /// The AVX-512 kernel: 12 rows × 2 zmm vectors of 16 columns.
        Avx512, avx512_tile, "avx512f", mr 12, lanes 16, rows [1 2 3 4 5 6 7 8 9 10 11 12],
        _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps
    );

    simd_kernel!(
        /// The AVX2+FMA kernel: 6 rows × 2 ymm vectors of 8 columns.
        Avx2, avx2_tile, "avx2,fma", mr 6, lanes 8, rows [1 2 3 4 5 6],
        _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps
    );
}
