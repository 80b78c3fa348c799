//! One training iteration of each model file (every solver phase, K steps each), on the CPU
//! backend, reported as images/s (images read from the data per iteration; for GANs the
//! discriminator's real batch). Data batches are fixed synthetic pixels: the cost of the step
//! does not depend on the pixel values.
//!
//! Run on two threads, as the project's CPU numbers are reported:
//! `RAYON_NUM_THREADS=2 cargo bench --bench train_step`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench_model(c: &mut Criterion, path: &str) {
    let mut model = common::Model::load(path, None);
    let name = std::path::Path::new(path).file_stem().unwrap().to_string_lossy().into_owned();
    let mut group = c.benchmark_group("train_step");
    group
        .throughput(Throughput::Elements(model.images_per_iteration() as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function(name, |b| {
        b.iter(|| {
            model.iteration();
            black_box(&model.state);
        })
    });
    group.finish();
}

fn train_steps(c: &mut Criterion) {
    println!(
        "threads: {}; CPU features: avx2={} fma={} avx512f={}",
        rayon::current_num_threads(),
        is_x86_feature_detected!("avx2"),
        is_x86_feature_detected!("fma"),
        is_x86_feature_detected!("avx512f")
    );
    for path in ["graphs/vae.g", "graphs/dcgan.g", "graphs/infogan.g"] {
        bench_model(c, path);
    }
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
