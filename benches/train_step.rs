//! One training iteration of each model file (every solver phase, K steps each), on the CPU
//! backend, reported as images/s (images read from the data per iteration; for GANs the
//! discriminator's real batch). Data batches are fixed synthetic pixels: the cost of the step
//! does not depend on the pixel values.
//!
//! Run on two threads, as the project's CPU numbers are reported:
//! `RAYON_NUM_THREADS=2 cargo bench --bench train_step`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{autodiff, build, compile, lower, train::init, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};
use graphc_runtime::BufferRole;

fn bench_model(c: &mut Criterion, path: &str) {
    let src = SourceFile::read(path).expect("model file");
    let compiled = compile(&src, &CompileOptions::default()).expect("compiles");
    let train = build::build(&compiled.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: None }).unwrap();
    let mut programs: Vec<(CpuProgram, usize)> = compiled
        .phases
        .iter()
        .map(|p| (CpuProgram::new(lower::to_plan(&autodiff::training_program(&train, p, 2), &[])), p.steps))
        .collect();
    let mut state = State::default();
    for p in &train.params {
        state.values.insert(p.name.clone(), init::initial_values(p, 1));
    }
    let mut images = 0;
    let mut feeds: Vec<HashMap<&str, Vec<f32>>> = Vec::new();
    for (program, steps) in &programs {
        let mut f = HashMap::from([("step", vec![1.0])]);
        for b in &program.plan().buffers {
            match &b.role {
                BufferRole::State(name) => {
                    state.values.entry(name.clone()).or_insert_with(|| vec![0.0; b.numel()]);
                }
                BufferRole::Feed(name) if name == "image" => {
                    images += b.shape[0] * steps;
                    f.insert("image", (0..b.numel()).map(|i| (i % 251) as f32).collect());
                }
                BufferRole::Feed(name) if name == "label" => {
                    f.insert("label", (0..b.numel()).map(|i| (i % 10) as f32).collect());
                }
                _ => {}
            }
        }
        feeds.push(f);
    }
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
