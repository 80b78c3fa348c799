//! One model file's training iterations (every solver phase, K steps each) at a given batch,
//! timed after a warm-up iteration, printed as one JSON line in the format of
//! benches/peers/models.py, so scripts/compare_pytorch.sh can set the two side by side.
//!
//! `RAYON_NUM_THREADS=2 cargo bench --bench peer_step -- MODEL BATCH ITERATIONS`
//! (MODEL: vae, dcgan or infogan, i.e. graphs/MODEL.g)

mod common;

use std::time::Instant;

fn main() {
    // Cargo passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let [model, batch, iterations] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench peer_step -- MODEL BATCH ITERATIONS");
        std::process::exit(2);
    };
    let (batch, iterations): (usize, usize) = (batch.parse().expect("batch"), iterations.parse().expect("iterations"));
    graphc_runtime::cpu::denormals::init_threads(None).expect("thread pool");
    let mut trainer = common::Model::load(&format!("graphs/{model}.g"), Some(batch));
    trainer.iteration();
    let started = Instant::now();
    for _ in 0..iterations {
        trainer.iteration();
    }
    let rate = (trainer.images_per_iteration() * iterations) as f64 / started.elapsed().as_secs_f64();
    println!(
        "{{\"model\": \"{model}\", \"batch\": {batch}, \"threads\": {}, \"images_per_sec\": {:.1}}}",
        rayon::current_num_threads(),
        rate
    );
}
