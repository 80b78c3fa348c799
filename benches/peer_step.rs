//! One model file's training iterations (every solver phase, K steps each) or generated batches
//! at a given batch size, timed after a warm-up, printed as one JSON line in the format of
//! benches/peers/models.py, so scripts/compare_pytorch.sh can set the two side by side.
//!
//! `RAYON_NUM_THREADS=2 cargo bench --bench peer_step -- MODEL BATCH ITERATIONS [train|generate]`
//! (MODEL: vae, dcgan or infogan, i.e. graphs/MODEL.g; `generate` times the generator alone,
//! with its latents drawn by the program, as `graphc sample` runs it)

mod common;

use graphc_runtime::cpu::NoiseKey;
use std::collections::HashMap;
use std::time::Instant;

fn main() {
    // Cargo passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let (model, batch, iterations, mode) = match args.as_slice() {
        [model, batch, iterations] => (model, batch, iterations, "train"),
        [model, batch, iterations, mode] if mode == "train" || mode == "generate" => {
            (model, batch, iterations, mode.as_str())
        }
        _ => {
            eprintln!("usage: cargo bench --bench peer_step -- MODEL BATCH ITERATIONS [train|generate]");
            std::process::exit(2);
        }
    };
    let (batch, iterations): (usize, usize) = (batch.parse().expect("batch"), iterations.parse().expect("iterations"));
    graphc_runtime::cpu::denormals::init_threads(None).expect("thread pool");
    let mut model_state = common::Model::load(&format!("graphs/{model}.g"), Some(batch));
    let rate = if mode == "train" {
        model_state.iteration();
        let started = Instant::now();
        for _ in 0..iterations {
            model_state.iteration();
        }
        (model_state.images_per_iteration() * iterations) as f64 / started.elapsed().as_secs_f64()
    } else {
        let mut generator = model_state.generator();
        let feeds = HashMap::new();
        let mut generate = |draw| {
            let (pixels, _) =
                generator.generate(&mut model_state.state, &NoiseKey { seed: 1, draw }, &feeds).expect("generates");
            pixels.len() / 784
        };
        generate(0);
        let started = Instant::now();
        let images: usize = (1..=iterations as u64).map(&mut generate).sum();
        images as f64 / started.elapsed().as_secs_f64()
    };
    println!(
        "{{\"model\": \"{model}\", \"mode\": \"{mode}\", \"batch\": {batch}, \"threads\": {}, \"images_per_sec\": {:.1}}}",
        rayon::current_num_threads(),
        rate
    );
}
