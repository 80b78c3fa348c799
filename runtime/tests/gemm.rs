//! The packed GEMM against an f64 reference, on every micro-kernel family this CPU runs: tile
//! edges in m, n and k (sizes around the tile shapes and the k slice), strided and transposed
//! operands, accumulation; a transposed B computed through Cᵀ bit for bit as directly; and
//! bit-identical results for any thread count.

use graphc_runtime::cpu::gemm::{sgemm, sgemm_packing, sgemm_with, Isa, Mat, PackB};
use std::ops::Range;

/// Deterministic values in [-1, 1).
fn values(len: usize, salt: u64) -> Vec<f32> {
    let mut state = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Element (i, j) of a strided operand.
fn at(x: &Mat, i: usize, j: usize) -> f32 {
    x.data[i * x.row_stride + j * x.col_stride]
}

/// Checks `got` = `start` (+) a·b element by element against an f64 sum, within a bound that
/// grows with the sum of |a·b| terms (f32 rounding of a k-term chain).
#[allow(clippy::too_many_arguments)]
fn check(m: usize, n: usize, k: usize, a: &Mat, b: &Mat, start: &[f32], got: &[f32], accumulate: bool, what: &str) {
    for i in 0..m {
        for j in 0..n {
            let terms = (0..k).map(|l| at(a, i, l) as f64 * at(b, l, j) as f64);
            let (sum, magnitude) = terms.fold((0.0, 0.0), |(s, m), t| (s + t, m + t.abs()));
            let base = if accumulate { start[i * n + j] as f64 } else { 0.0 };
            let want = base + sum;
            let error = (got[i * n + j] as f64 - want).abs();
            assert!(
                error <= 1e-6 * (magnitude + base.abs()) + 1e-30,
                "{what}: C[{i}][{j}] = {} but the f64 sum is {want} ({m}×{k}·{k}×{n}, accumulate {accumulate})",
                got[i * n + j]
            );
        }
    }
}

#[test]
fn every_kernel_matches_the_reference_across_tile_edges() {
    let shapes = [
        (1, 1, 1),
        (1, 100, 37),
        (5, 7, 3),
        (12, 32, 256),
        (13, 33, 257),
        (25, 17, 300),
        (6, 16, 1),
        (241, 65, 40),
        (64, 100, 600),
        (7, 500, 12),
    ];
    for isa in Isa::supported() {
        for (m, n, k) in shapes {
            let (a_data, b_data) = (values(m * k, 1), values(k * n, 2));
            let (a, b) = (Mat::row_major(&a_data, k), Mat::row_major(&b_data, n));
            let start = values(m * n, 3);
            for accumulate in [false, true] {
                let mut c = start.clone();
                sgemm_with(isa, m, n, k, a, b, &mut c, accumulate);
                check(m, n, k, &a, &b, &start, &c, accumulate, isa.name());
            }
        }
    }
}

#[test]
fn strided_and_transposed_operands() {
    let (m, n, k) = (29, 45, 70);
    // A stored transposed (k×m), B as every other column of a wider matrix with padded rows.
    let a_t = values(k * m, 4);
    let a = Mat::row_major(&a_t, m).t();
    let b_wide = values(k * (2 * n + 3), 5);
    let b = Mat { data: &b_wide, row_stride: 2 * n + 3, col_stride: 2 };
    // And B stored transposed (n×k).
    let b_t = values(n * k, 6);
    let b_transposed = Mat::row_major(&b_t, k).t();
    for isa in Isa::supported() {
        for b in [b, b_transposed] {
            let mut c = vec![f32::NAN; m * n];
            sgemm_with(isa, m, n, k, a, b, &mut c, false);
            check(m, n, k, &a, &b, &[], &c, false, isa.name());
        }
    }
}

#[test]
fn a_read_in_place_gives_the_bits_of_a_packed() {
    // A with contiguous rows (padded to a wider stride) is read in place by the kernels when the
    // product is narrow; the same A stored transposed is packed. Both give the same bits.
    for (m, n, k) in [(29, 45, 70), (64, 196, 600), (13, 256, 257), (7, 1, 3)] {
        let a_padded = values(m * (k + 3), 13);
        let a_rows = Mat { data: &a_padded, row_stride: k + 3, col_stride: 1 };
        let a_t: Vec<f32> = (0..k * m).map(|i| a_padded[(i % m) * (k + 3) + i / m]).collect();
        let a_packed = Mat::row_major(&a_t, m).t();
        let b_data = values(k * n, 14);
        let b = Mat::row_major(&b_data, n);
        for isa in Isa::supported() {
            let (mut in_place, mut packed) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            sgemm_with(isa, m, n, k, a_rows, b, &mut in_place, false);
            sgemm_with(isa, m, n, k, a_packed, b, &mut packed, false);
            check(m, n, k, &a_rows, &b, &[], &in_place, false, isa.name());
            let same = in_place.iter().zip(&packed).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{}: {m}×{k}·{k}×{n}", isa.name());
        }
    }
}

/// A row-major B that packs its own blocks, leaving NaN in the lanes past the block's last
/// column (which the kernels must never store).
struct SelfPacking<'a>(Mat<'a>);

impl PackB for SelfPacking<'_> {
    fn pack(&self, ks: Range<usize>, cols: Range<usize>, width: usize, dst: &mut [f32]) {
        let panels = cols.len().div_ceil(width);
        dst[..panels * width * ks.len()].fill(f32::NAN);
        for (row, p) in ks.clone().enumerate() {
            for (w, q) in cols.clone().enumerate() {
                dst[(w / width * ks.len() + row) * width + w % width] = at(&self.0, p, q);
            }
        }
    }
}

#[test]
fn b_packing_itself_gives_the_bits_of_b_packed() {
    // A B that packs its own blocks (a convolution's unfolded image) gives the bits of the same
    // B packed by the product: A read in place (narrow) or packed, one k slice or several, one
    // task or many, accumulating or not.
    for (m, n, k) in [(29, 45, 70), (64, 196, 600), (128, 1000, 300), (7, 1, 3), (12, 33, 257)] {
        let (a_data, b_data) = (values(m * k, 15), values(k * n, 16));
        let (a, b) = (Mat::row_major(&a_data, k), Mat::row_major(&b_data, n));
        for accumulate in [false, true] {
            let start = values(m * n, 17);
            let (mut direct, mut self_packed) = (start.clone(), start.clone());
            sgemm(m, n, k, a, b, &mut direct, accumulate);
            sgemm_packing(m, n, k, a, &SelfPacking(b), &mut self_packed, accumulate);
            check(m, n, k, &a, &b, &start, &self_packed, accumulate, "self-packing B");
            let same = direct.iter().zip(&self_packed).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{m}×{k}·{k}×{n}, accumulate {accumulate}");
        }
    }
}

#[test]
fn a_transposed_b_goes_through_c_transposed_bit_for_bit() {
    // x·Wᵀ with W stored n×k (a fully connected layer's forward pass, m < n): computed as
    // Cᵀ = W·xᵀ with W read in place; the same bits as the direct product of a copy of Wᵀ.
    // (5, 1030, 1100): W over 4 MiB, prefetched ahead where read in place, and its copy too.
    let shapes = [(1, 100, 37), (13, 33, 257), (5, 7, 3), (64, 784, 600), (7, 500, 12), (30, 250, 1), (5, 1030, 1100)];
    for (m, n, k) in shapes {
        let (x_data, w_data) = (values(m * k, 10), values(n * k, 11));
        let (x, w_t) = (Mat::row_major(&x_data, k), Mat::row_major(&w_data, k).t());
        let copy: Vec<f32> = (0..k * n).map(|i| w_data[(i % n) * k + i / n]).collect();
        let start = values(m * n, 12);
        for isa in Isa::supported() {
            for accumulate in [false, true] {
                let (mut via_transpose, mut direct) = (start.clone(), start.clone());
                sgemm_with(isa, m, n, k, x, w_t, &mut via_transpose, accumulate);
                sgemm_with(isa, m, n, k, x, Mat::row_major(&copy, n), &mut direct, accumulate);
                check(m, n, k, &x, &w_t, &start, &via_transpose, accumulate, isa.name());
                let same = via_transpose.iter().zip(&direct).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{}: {m}×{k}·({n}×{k})ᵀ accumulate {accumulate}", isa.name());
            }
        }
    }
}

#[test]
fn operands_larger_than_the_cache_are_prefetched_and_multiplied_right() {
    // Operands of 4 MiB or more are prefetched as the kernels go (hints only): B row-major over
    // several k slices, B read down its columns (a transposed matrix, m ≥ n), and a large C.
    fn row_major_b(_k: usize, n: usize, data: &[f32]) -> Mat<'_> {
        Mat::row_major(data, n)
    }
    fn transposed_b(k: usize, _n: usize, data: &[f32]) -> Mat<'_> {
        Mat::row_major(data, k).t()
    }
    type Layout = fn(usize, usize, &[f32]) -> Mat<'_>;
    let cases: [(usize, usize, usize, Layout); 3] =
        [(13, 1030, 1100, row_major_b), (40, 40, 30_000, transposed_b), (1100, 1030, 3, row_major_b)];
    for (m, n, k, layout) in cases {
        let (a_data, b_data) = (values(m * k, 13), values(k * n, 14));
        let (a, b) = (Mat::row_major(&a_data, k), layout(k, n, &b_data));
        let start = values(m * n, 15);
        for isa in Isa::supported() {
            for accumulate in [false, true] {
                let mut c = start.clone();
                sgemm_with(isa, m, n, k, a, b, &mut c, accumulate);
                check(m, n, k, &a, &b, &start, &c, accumulate, isa.name());
            }
        }
    }
}

#[test]
fn bit_identical_for_any_thread_count() {
    // Large enough to be split into many tasks (and several k slices).
    let (m, n, k) = (250, 1100, 600);
    let (a_data, b_data) = (values(m * k, 7), values(k * n, 8));
    let product = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut c = vec![0.0; m * n];
        pool.install(|| sgemm(m, n, k, Mat::row_major(&a_data, k), Mat::row_major(&b_data, n), &mut c, false));
        c
    };
    let one = product(1);
    for threads in [2, 3, 5] {
        assert!(product(threads).iter().zip(&one).all(|(x, y)| x.to_bits() == y.to_bits()), "{threads} threads");
    }
}

#[test]
fn empty_products() {
    let mut c = vec![5.0; 6];
    sgemm(2, 3, 0, Mat::row_major(&[], 0), Mat::row_major(&[], 3), &mut c, true);
    assert_eq!(c, [5.0; 6], "k = 0 accumulates nothing");
    sgemm(2, 3, 0, Mat::row_major(&[], 0), Mat::row_major(&[], 3), &mut c, false);
    assert_eq!(c, [0.0; 6], "k = 0 overwrites with zeros");
    sgemm(0, 3, 4, Mat::row_major(&[], 4), Mat::row_major(&[0.0; 12], 3), &mut [], false);
}

#[test]
#[should_panic(expected = "sgemm operands too small")]
fn undersized_operands_are_refused() {
    sgemm(2, 2, 2, Mat::row_major(&[1.0; 3], 2), Mat::row_major(&[1.0; 4], 2), &mut [0.0; 4], false);
}

#[test]
fn the_best_kernel_is_supported_and_listed_first() {
    let supported = Isa::supported();
    assert_eq!(supported[0], Isa::best());
    assert!(supported.contains(&Isa::Portable));
}
