//! GEMM candidates for the CPU backend, timed at the shapes the models use: the `gemm` crate
//! (runtime CPU feature detection, rayon parallelism), `matrixmultiply` (its `threading`
//! feature) and the runtime's own `sgemm` wrapper. Every case computes C = A·B with row-major
//! A (m×k), B (k×n), C (m×n); throughput is reported as elements/s where one element is one
//! floating-point operation, so `Gelem/s` reads as GFLOP/s.
//!
//! Run on two threads, as the CPU backend is measured:
//! `RAYON_NUM_THREADS=2 MATMUL_NUM_THREADS=2 cargo bench --bench gemm`.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use graphc_runtime::cpu::gemm::{sgemm, Mat};
use std::hint::black_box;
use std::time::Duration;

/// (m, k, n): the fully-connected layers, a square reference and the batched im2col products of
/// the convolution models (64×(1·4·4)×(128·14·14) and 128×(64·4·4)×(128·7·7), the latter also
/// the fully-connected 128×1024×6272).
const SHAPES: [(usize, usize, usize); 8] = [
    (100, 784, 1000),
    (100, 1000, 500),
    (128, 74, 1024),
    (128, 6272, 1024),
    (1024, 1024, 1024),
    (128, 784, 1024),
    (64, 4 * 4, 128 * 14 * 14),
    (128, 64 * 4 * 4, 128 * 7 * 7),
];

/// A deterministic, non-trivial matrix of `len` elements.
fn filled(len: usize, salt: u32) -> Vec<f32> {
    (0..len as u32).map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(salt) >> 16) % 97) as f32 / 97.0).collect()
}

fn gemm_crate(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the asserts above bound every index the row-major strides reach.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    }
}

fn matrixmultiply_crate(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the asserts above bound every index the row-major strides reach.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

fn runtime_sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    sgemm(m, n, k, Mat::row_major(a, k), Mat::row_major(b, n), c, false);
}

type Candidate = (&'static str, fn(usize, usize, usize, &[f32], &[f32], &mut [f32]));

const CANDIDATES: [Candidate; 3] =
    [("gemm", gemm_crate), ("matrixmultiply", matrixmultiply_crate), ("graphc_sgemm", runtime_sgemm)];

fn bench(c: &mut Criterion) {
    for (m, k, n) in SHAPES {
        let mut group = c.benchmark_group(format!("sgemm_{m}x{k}x{n}"));
        group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
        let (a, b) = (filled(m * k, 1), filled(k * n, 2));
        let mut out = vec![0.0; m * n];
        for (name, f) in CANDIDATES {
            group.bench_function(BenchmarkId::from_parameter(name), |bench| {
                bench.iter(|| f(m, k, n, black_box(&a), black_box(&b), &mut out))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    println!(
        "CPU features: avx2={} fma={} avx512f={}",
        is_x86_feature_detected!("avx2"),
        is_x86_feature_detected!("fma"),
        is_x86_feature_detected!("avx512f")
    );
    println!(
        "threads: rayon {}, MATMUL_NUM_THREADS={}",
        rayon::current_num_threads(),
        std::env::var("MATMUL_NUM_THREADS").unwrap_or_else(|_| "unset (physical cores)".into())
    );
    benches();
    Criterion::default().configure_from_args().final_summary();
}
