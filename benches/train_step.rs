//! One training iteration of each model file (every solver phase, K steps each), on the CPU
//! backend, reported as images/s (images read from the data per iteration; for GANs the
//! discriminator's real batch). Data batches are fixed synthetic pixels: the cost of the step
//! does not depend on the pixel values.
//!
//! Run on two threads, as the project's CPU numbers are reported:
//! `RAYON_NUM_THREADS=2 cargo bench --bench train_step`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{build, compile, train::init, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};

fn bench_model(c: &mut Criterion, path: &str) {
    let src = SourceFile::read(path).expect("model file");
    let compiled = compile(&src, &CompileOptions::default()).expect("compiles");
    let train = build::build(&compiled.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: None }).unwrap();
    let mut programs: Vec<(CpuProgram, usize)> = compiled
        .phases
        .iter()
        .map(|p| (CpuProgram::new(graphc::training_plan(&train, p, &compiled.passes)), p.steps))
        .collect();
    let mut state = State::default();
    let refs: Vec<&CpuProgram> = programs.iter().map(|(p, _)| p).collect();
    init::fill_state(&mut state, &train.params, &refs, 1);
    let feeds: Vec<_> = programs.iter().map(|(p, _)| init::synthetic_feeds(p)).collect();
    let images: usize = programs
        .iter()
        .map(|(p, steps)| init::synthetic_feeds(p).get("image").map_or(0, |i| i.len() / 784) * steps)
        .sum();
    let name = std::path::Path::new(path).file_stem().unwrap().to_string_lossy().into_owned();
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(images as u64)).sample_size(10).measurement_time(Duration::from_secs(8));
    let mut draw = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            for ((program, steps), f) in programs.iter_mut().zip(&feeds) {
                for _ in 0..*steps {
                    draw += 1;
                    program.run(&mut state, f, &NoiseKey { seed: 1, draw }).unwrap();
                }
            }
            black_box(&state);
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
