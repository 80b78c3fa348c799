//! One model file's training iterations (every solver phase, K steps each) or generated batches
//! at a given batch size, timed after a warm-up, printed as one JSON line in the format of
//! benches/peers/models.py, so scripts/compare_pytorch.sh can set the two side by side.
//!
//! `RAYON_NUM_THREADS=2 cargo bench --bench peer_step -- MODEL BATCH ITERATIONS [train|generate] [cpu|cuda]`
//! (MODEL: vae, dcgan or infogan, i.e. graphs/MODEL.g; `generate` times the generator alone,
//! with its latents drawn by the program, as `graphc sample` runs it; `cuda` trains on CUDA
//! device 0, generation runs on the CPU only)

mod common;

use graphc_runtime::backend::{Backend, Cpu};
use graphc_runtime::cpu::NoiseKey;
use std::collections::HashMap;
use std::time::Instant;

fn main() {
    // Cargo passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let usage = || -> ! {
        eprintln!("usage: cargo bench --bench peer_step -- MODEL BATCH ITERATIONS [train|generate] [cpu|cuda]");
        std::process::exit(2)
    };
    let [model, batch, iterations, rest @ ..] = args.as_slice() else { usage() };
    let mode = rest.first().map_or("train", String::as_str);
    let device = rest.get(1).map_or("cpu", String::as_str);
    if !matches!(mode, "train" | "generate") || !matches!(device, "cpu" | "cuda") || rest.len() > 2 {
        usage()
    }
    let (batch, iterations): (usize, usize) = (batch.parse().expect("batch"), iterations.parse().expect("iterations"));
    graphc_runtime::cpu::denormals::init_threads(None).expect("thread pool");
    let path = format!("graphs/{model}.g");
    let (rate, on) = match (mode, device) {
        ("train", "cpu") => train_rate(common::Model::load(&path, Some(batch)), iterations),
        ("train", _) => train_on_cuda(&path, batch, iterations),
        ("generate", "cpu") => generate_rate(common::Model::load(&path, Some(batch)), iterations),
        _ => {
            eprintln!("generation runs on the CPU only");
            std::process::exit(2)
        }
    };
    println!(
        "{{\"model\": \"{model}\", \"mode\": \"{mode}\", \"batch\": {batch}, \"threads\": {}, \"device\": \"{on}\", \
         \"images_per_sec\": {rate:.1}}}",
        rayon::current_num_threads(),
    );
}

/// Images per second of `iterations` training iterations after one warm-up, and the device.
fn train_rate<B: Backend>(mut model: common::Model<B>, iterations: usize) -> (f64, String) {
    model.iteration();
    model.finish();
    let started = Instant::now();
    for _ in 0..iterations {
        model.iteration();
    }
    model.finish();
    ((model.images_per_iteration() * iterations) as f64 / started.elapsed().as_secs_f64(), model.describe())
}

#[cfg(feature = "cuda")]
fn train_on_cuda(path: &str, batch: usize, iterations: usize) -> (f64, String) {
    match graphc_runtime::cuda::exec::CudaDevice::open(0) {
        Ok(device) => train_rate(common::Model::load_on(device, path, Some(batch)), iterations),
        Err(why) => {
            eprintln!("no CUDA device: {why}");
            std::process::exit(1)
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn train_on_cuda(_path: &str, _batch: usize, _iterations: usize) -> (f64, String) {
    eprintln!("this build has no CUDA support (the `cuda` feature is off)");
    std::process::exit(1)
}

/// Images per second generated in `iterations` batches after one warm-up.
fn generate_rate(mut model: common::Model<Cpu>, iterations: usize) -> (f64, String) {
    let mut generator = model.generator();
    let feeds = HashMap::new();
    let mut generate = |draw| {
        let (pixels, _) = generator.generate(&mut model.state, &NoiseKey { seed: 1, draw }, &feeds).expect("generates");
        pixels.len() / 784
    };
    generate(0);
    let started = Instant::now();
    let images: usize = (1..=iterations as u64).map(&mut generate).sum();
    (images as f64 / started.elapsed().as_secs_f64(), Cpu::default().describe())
}
