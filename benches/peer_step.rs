//! One model file's training iterations (every solver phase, K steps each) at a given batch,
//! timed after a warm-up iteration, printed as one JSON line in the format of
//! benches/peers/models.py, so scripts/compare_pytorch.sh can set the two side by side.
//!
//! `RAYON_NUM_THREADS=2 cargo bench --bench peer_step -- MODEL BATCH ITERATIONS`
//! (MODEL: vae, dcgan or infogan, i.e. graphs/MODEL.g)

use std::time::Instant;

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{build, compile, train::init, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};

fn main() {
    // Cargo passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let [model, batch, iterations] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench peer_step -- MODEL BATCH ITERATIONS");
        std::process::exit(2);
    };
    let (batch, iterations): (usize, usize) = (batch.parse().expect("batch"), iterations.parse().expect("iterations"));
    graphc_runtime::cpu::denormals::init_threads(None).expect("thread pool");
    let src = SourceFile::read(&format!("graphs/{model}.g")).expect("model file");
    let compiled =
        compile(&src, &CompileOptions { batch_size: Some(batch), ..CompileOptions::default() }).expect("compiles");
    let train = build::build(&compiled.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: Some(batch) })
        .expect("builds");
    let mut phases: Vec<(CpuProgram, usize)> = compiled
        .phases
        .iter()
        .map(|p| (CpuProgram::new(graphc::training_plan(&train, p, &compiled.passes)), p.steps))
        .collect();
    let mut state = State::default();
    let programs: Vec<&CpuProgram> = phases.iter().map(|(p, _)| p).collect();
    init::fill_state(&mut state, &train.params, &programs, 1);
    let feeds: Vec<_> = phases.iter().map(|(p, _)| init::synthetic_feeds(p)).collect();
    let mut draw = 0;
    let mut iteration = |state: &mut State| {
        for ((program, steps), feeds) in phases.iter_mut().zip(&feeds) {
            for _ in 0..*steps {
                draw += 1;
                program.run(state, feeds, &NoiseKey { seed: 1, draw }).expect("runs");
            }
        }
    };
    iteration(&mut state);
    let started = Instant::now();
    for _ in 0..iterations {
        iteration(&mut state);
    }
    let rate = (batch * iterations) as f64 / started.elapsed().as_secs_f64();
    println!(
        "{{\"model\": \"{model}\", \"batch\": {batch}, \"threads\": {}, \"images_per_sec\": {:.1}}}",
        rayon::current_num_threads(),
        rate
    );
}
