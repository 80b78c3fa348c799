//! The one matrix product every kernel goes through, so that its implementation can be swapped
//! in one place. It is backed by the `gemm` crate, which picks AVX2/FMA (or AVX-512) kernels by
//! runtime CPU feature detection and parallelizes with rayon over output tiles only: each output
//! element is summed in the same order whatever the thread count, so results are bit-identical
//! for any pool size.

/// A read-only strided matrix operand: element (i, j) is `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A contiguous row-major matrix with `cols` columns.
    pub fn row_major(data: &'a [f32], cols: usize) -> Self {
        Mat { data, row_stride: cols, col_stride: 1 }
    }

    /// The same storage read as the transposed matrix.
    pub fn t(self) -> Self {
        Mat { data: self.data, row_stride: self.col_stride, col_stride: self.row_stride }
    }

    /// Whether every element of a `rows`×`cols` matrix lies inside `data` (and the strides fit in
    /// `isize`).
    fn covers(&self, rows: usize, cols: usize) -> bool {
        let max_stride = isize::MAX as usize;
        if self.row_stride > max_stride || self.col_stride > max_stride {
            return false;
        }
        if rows == 0 || cols == 0 {
            return true;
        }
        let last = (rows - 1).checked_mul(self.row_stride).zip((cols - 1).checked_mul(self.col_stride));
        matches!(last, Some((r, c)) if r.checked_add(c).is_some_and(|i| i < self.data.len()))
    }
}

/// `c = a·b` (or `c += a·b` when `accumulate`), with `a` m×k, `b` k×n and `c` a contiguous
/// row-major m×n matrix.
///
/// # Panics
/// If an operand's storage is too small for its shape and strides.
pub fn sgemm(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], accumulate: bool) {
    assert!(a.covers(m, k) && b.covers(k, n) && c.len() >= m * n, "sgemm operands too small for {m}×{k}·{k}×{n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the assert above guarantees that the strides fit in isize and that every element
    // they address lies inside its slice; `c` is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    }
}
