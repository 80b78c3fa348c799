//! Packing: a block of an operand copied into the panel layout the micro-kernels stream through.
//! A's rows and B's columns are both "panel columns" of a matrix X indexed (k, q): for B, X = B;
//! for A, X = Aᵀ. Panel `t` holds, for each k in order, the `width` values X(k, t·width + w),
//! zero past the block's last column.

use super::Mat;
use crate::cpu::par::copy_short;
use std::ops::Range;

/// The cache-line size the packed panels are aligned to.
const ALIGN_FLOATS: usize = 16;

/// A reusable buffer whose slices start on a 64-byte boundary, so that the kernels' vector loads
/// of a packed panel never straddle two cache lines.
#[derive(Default)]
pub(super) struct AlignedScratch {
    storage: Vec<f32>,
}

impl AlignedScratch {
    /// A zero-initialized-once slice of `len` floats starting on a 64-byte boundary; grows the
    /// storage only when a larger slice than ever before is asked for.
    pub fn slice(&mut self, len: usize) -> &mut [f32] {
        if self.storage.len() < len + ALIGN_FLOATS {
            self.storage.resize(len + ALIGN_FLOATS, 0.0);
        }
        let offset = self.storage.as_ptr().align_offset(ALIGN_FLOATS * size_of::<f32>()).min(ALIGN_FLOATS);
        &mut self.storage[offset..offset + len]
    }
}

/// Packs X(ks, cols) into panels of `width` columns (see the module doc) at the start of `dst`,
/// which holds at least `ks.len() · cols.len().div_ceil(width) · width` values.
pub(super) fn pack(x: Mat, ks: Range<usize>, cols: Range<usize>, width: usize, dst: &mut [f32]) {
    let depth = ks.len();
    let panels = cols.len().div_ceil(width);
    for (t, panel) in dst[..panels * depth * width].chunks_exact_mut(depth * width).enumerate() {
        let first = cols.start + t * width;
        let live = width.min(cols.end - first);
        if x.col_stride == 1 {
            // Rows of X are contiguous: copy each k's run of `live` values.
            for (p, out) in ks.clone().zip(panel.chunks_exact_mut(width)) {
                copy_short(&mut out[..live], &x.data[p * x.row_stride + first..][..live]);
                out[live..].fill(0.0);
            }
        } else {
            // Columns of X are contiguous (or neither is): walk each column down k, eight or four
            // columns at a time by transposes where the CPU has AVX.
            let transposed = transpose_columns(x, ks.clone(), first, live, width, panel);
            for w in transposed..live {
                let column = (first + w) * x.col_stride;
                for (p, out) in ks.clone().zip(panel.chunks_exact_mut(width)) {
                    out[w] = x.data[column + p * x.row_stride];
                }
            }
            if live < width {
                panel.chunks_exact_mut(width).for_each(|out| out[live..].fill(0.0));
            }
        }
    }
}

/// Packs the first columns of a panel whose columns of X are contiguous (row stride 1) with 8×8
/// and 4×4 transposes, eight or four columns at a time: column by column, packing had been a
/// third of a small-batch product's time (B = transposed weights) and a sixth of a large one's
/// (A, row-major). Returns how many of the `live` columns it packed (a multiple of 4; 0 without
/// AVX or with another row stride).
fn transpose_columns(x: Mat, ks: Range<usize>, first: usize, live: usize, width: usize, panel: &mut [f32]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if x.row_stride == 1 && std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, checked just above.
        return unsafe { transpose_columns_avx(x, ks, first, live, width, panel) };
    }
    let _ = (x, ks, first, live, width, panel);
    0
}

/// [`transpose_columns`] on a CPU with AVX, for X with row stride 1. Compiled with AVX enabled,
/// so that the transposes are inlined into its loops: called one 8×8 block at a time, their
/// calls and bounds checks had cost more than the shuffles.
///
/// # Safety
/// The CPU has AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_columns_avx(
    x: Mat,
    ks: Range<usize>,
    first: usize,
    live: usize,
    width: usize,
    panel: &mut [f32],
) -> usize {
    let depth = ks.len();
    let source = |w: usize| &x.data[(first + w) * x.col_stride + ks.start..][..depth];
    let mut w0 = 0;
    while w0 + 4 <= live {
        let group = if w0 + 8 <= live { 8 } else { 4 };
        let blocks = depth / group * group;
        if group == 8 {
            let sources: [&[f32]; 8] = std::array::from_fn(|r| source(w0 + r));
            for p0 in (0..blocks).step_by(8) {
                // SAFETY: the CPU has AVX (this function's contract); each source holds `depth`
                // ≥ p0 + 8 values, and the panel rows p0..p0+8 hold `width` ≥ w0 + 8 values each.
                unsafe { transpose8x8(&sources, p0, &mut panel[p0 * width + w0..], width) }
            }
        } else {
            let sources: [&[f32]; 4] = std::array::from_fn(|r| source(w0 + r));
            for p0 in (0..blocks).step_by(4) {
                // SAFETY: as for the 8×8 blocks, with 4.
                unsafe { transpose4x4(&sources, p0, &mut panel[p0 * width + w0..], width) }
            }
        }
        for p in blocks..depth {
            for r in 0..group {
                panel[p * width + w0 + r] = source(w0 + r)[p];
            }
        }
        w0 += group;
    }
    w0
}

/// `dst` (cols×rows, row-major) = the transpose of `src` (rows×cols, row-major), by 8×8 blocks
/// where the CPU has AVX.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose needs {rows}×{cols} values");
    #[cfg(target_arch = "x86_64")]
    let r0 = if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, checked just above.
        unsafe { transpose_rows_avx(src, rows, cols, dst) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let r0 = 0;
    for r in r0..rows {
        for c in 0..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

/// The first rows of [`transpose`] (a multiple of 8) by 8×8 blocks, compiled with AVX enabled as
/// [`transpose_columns_avx`] is; returns how many rows it transposed.
///
/// # Safety
/// The CPU has AVX; `src` and `dst` hold at least `rows · cols` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_rows_avx(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) -> usize {
    let mut r0 = 0;
    while r0 + 8 <= rows {
        let sources: [&[f32]; 8] = std::array::from_fn(|r| &src[(r0 + r) * cols..][..cols]);
        let mut c0 = 0;
        while c0 + 8 <= cols {
            // SAFETY: the CPU has AVX (this function's contract); each source row holds `cols`
            // ≥ c0 + 8 values, and dst rows c0..c0+8 hold `rows` ≥ r0 + 8 values from column r0.
            unsafe { transpose8x8(&sources, c0, &mut dst[c0 * rows + r0..], rows) };
            c0 += 8;
        }
        for c in c0..cols {
            for (r, source) in sources.iter().enumerate() {
                dst[c * rows + r0 + r] = source[c];
            }
        }
        r0 += 8;
    }
    r0
}

/// Writes `sources[r][p0 + t]` to `out[t·stride + r]` for r, t < 4.
///
/// # Safety
/// Every source holds at least p0 + 4 values; `out` holds at least 3·stride + 4 values.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn transpose4x4(sources: &[&[f32]; 4], p0: usize, out: &mut [f32], stride: usize) {
    use std::arch::x86_64::*;
    assert!(sources.iter().all(|s| s.len() >= p0 + 4) && out.len() >= 3 * stride + 4);
    // SAFETY: the assert above bounds every load and store; SSE is part of x86-64.
    unsafe {
        let row = |r: usize| _mm_loadu_ps(sources[r].as_ptr().add(p0));
        let (t0, t1) = (_mm_unpacklo_ps(row(0), row(1)), _mm_unpackhi_ps(row(0), row(1)));
        let (t2, t3) = (_mm_unpacklo_ps(row(2), row(3)), _mm_unpackhi_ps(row(2), row(3)));
        let columns = [_mm_movelh_ps(t0, t2), _mm_movehl_ps(t2, t0), _mm_movelh_ps(t1, t3), _mm_movehl_ps(t3, t1)];
        for (t, v) in columns.into_iter().enumerate() {
            _mm_storeu_ps(out.as_mut_ptr().add(t * stride), v);
        }
    }
}

/// Writes `sources[r][p0 + t]` to `out[t·stride + r]` for r, t < 8.
///
/// # Safety
/// The CPU has AVX; every source holds at least p0 + 8 values; `out` holds at least
/// 7·stride + 8 values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn transpose8x8(sources: &[&[f32]; 8], p0: usize, out: &mut [f32], stride: usize) {
    use std::arch::x86_64::*;
    assert!(sources.iter().all(|s| s.len() >= p0 + 8) && out.len() >= 7 * stride + 8);
    // SAFETY: the assert above bounds every load and store.
    unsafe {
        let row = |r: usize| _mm256_loadu_ps(sources[r].as_ptr().add(p0));
        let (r0, r1, r2, r3, r4, r5, r6, r7) = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7));
        // Interleave pairs, then quadruples, then swap 128-bit halves.
        let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
        let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
        let (u0, u1) = (_mm256_shuffle_ps::<0x44>(t0, t2), _mm256_shuffle_ps::<0xEE>(t0, t2));
        let (u2, u3) = (_mm256_shuffle_ps::<0x44>(t1, t3), _mm256_shuffle_ps::<0xEE>(t1, t3));
        let (u4, u5) = (_mm256_shuffle_ps::<0x44>(t4, t6), _mm256_shuffle_ps::<0xEE>(t4, t6));
        let (u6, u7) = (_mm256_shuffle_ps::<0x44>(t5, t7), _mm256_shuffle_ps::<0xEE>(t5, t7));
        let columns = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (t, v) in columns.into_iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(t * stride), v);
        }
    }
}
