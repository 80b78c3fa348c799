//! GEMM at the shapes the models use: the runtime's own `sgemm` on each micro-kernel family this
//! CPU runs, against the `gemm` crate and `matrixmultiply` (its `threading` feature). Every case
//! computes C = A·B with row-major A (m×k), B (k×n), C (m×n) and reports GFLOP/s (2·m·n·k
//! floating-point operations per product), the best of several timed repetitions.
//!
//! `RAYON_NUM_THREADS=2 MATMUL_NUM_THREADS=2 cargo bench --bench gemm [-- --json] [-- NAME...]`
//!
//! With `--json` it prints one JSON object per line ({"name", "m", "k", "n", "gflops"}), the format
//! `benches/peers/gemm.py` prints for numpy, so that `scripts/compare_pytorch.sh` can tabulate
//! both; NAME arguments keep only the candidates whose names start with one of them.

use graphc_runtime::cpu::gemm::{sgemm_with, Isa, Mat};
use std::hint::black_box;
use std::time::Duration;

mod harness;
use harness::{best_time, filled};
/// (m, k, n): the fully-connected layers, a square reference, the batched im2col products of
/// InfoGAN's convolutions (64×(1·4·4)×(128·14·14) and 128×(64·4·4)×(128·7·7), the latter also
/// the fully-connected 128×1024×6272), and one image's products in DC-GAN's convolutions (the
/// generator's 5×5 layer 64×(128·25)×(14·14), the discriminator's 128×(64·25)×(10·10); the
/// convolution kernels run these per image group, on one thread each).
pub const SHAPES: [(usize, usize, usize); 10] = [
    (100, 784, 1000),
    (100, 1000, 500),
    (128, 74, 1024),
    (128, 6272, 1024),
    (1024, 1024, 1024),
    (128, 784, 1024),
    (64, 4 * 4, 128 * 14 * 14),
    (128, 64 * 4 * 4, 128 * 7 * 7),
    (64, 128 * 25, 14 * 14),
    (128, 64 * 25, 10 * 10),
];

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

/// The runtime's product on one micro-kernel family.
fn graphc(isa: Isa) -> impl Fn(usize, usize, usize, &[f32], &[f32], &mut [f32]) {
    move |m, k, n, a, b, c| sgemm_with(isa, m, n, k, Mat::row_major(a, k), Mat::row_major(b, n), c, false)
}

/// Seconds of the fastest of the repetitions that fit in about half a second (at least three).
type Candidate = (String, Box<dyn Fn(usize, usize, usize, &[f32], &[f32], &mut [f32])>);

fn candidates() -> Vec<Candidate> {
    let mut list: Vec<Candidate> = Isa::supported()
        .into_iter()
        .map(|isa| (format!("graphc-{}", isa.name()), Box::new(graphc(isa)) as _))
        .collect();
    list.push(("gemm-crate".into(), Box::new(gemm_crate)));
    list.push(("matrixmultiply".into(), Box::new(matrixmultiply_crate)));
    list
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let json = args.iter().any(|a| a == "--json");
    let names: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let chosen: Vec<Candidate> = candidates()
        .into_iter()
        .filter(|(name, _)| names.is_empty() || names.iter().any(|n| name.starts_with(n.as_str())))
        .collect();
    if !json {
        #[cfg(target_arch = "x86_64")]
        println!(
            "CPU features: avx2={} fma={} avx512f={}; graphc uses {}",
            is_x86_feature_detected!("avx2"),
            is_x86_feature_detected!("fma"),
            is_x86_feature_detected!("avx512f"),
            Isa::best().name()
        );
        println!(
            "threads: rayon {}, MATMUL_NUM_THREADS={}",
            rayon::current_num_threads(),
            std::env::var("MATMUL_NUM_THREADS").unwrap_or_else(|_| "unset (physical cores)".into())
        );
        println!("{:<16} {:>18}", "GFLOP/s", "m×k×n");
    }
    for (m, k, n) in SHAPES {
        let (a, b) = (filled(m * k, 1), filled(k * n, 2));
        let mut out = vec![0.0; m * n];
        for (name, f) in &chosen {
            let seconds =
                best_time(Duration::from_millis(500), 1000, || f(m, k, n, black_box(&a), black_box(&b), &mut out));
            let gflops = 2.0 * (m * k * n) as f64 / seconds / 1e9;
            if json {
                println!(r#"{{"name": "{name}", "m": {m}, "k": {k}, "n": {n}, "gflops": {gflops:.1}}}"#);
            } else {
                println!("{name:<16} {:>18} {gflops:>8.1}", format!("{m}×{k}×{n}"));
            }
        }
    }
}
