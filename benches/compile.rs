//! Compile time: each model file from its text to the executable plans of every solver phase
//! (parse, checks, shape inference, autodiff, the default passes, lowering and buffer planning),
//! as `graphc run` does before its first step. Prints the fastest of 10 compilations per file,
//! after one warm-up, in milliseconds.
//!
//! `cargo bench --bench compile`

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{build, compile, training_plan, CompileOptions};
use std::time::{Duration, Instant};

const FILES: [&str; 5] = ["graphs/vae.g", "graphs/vae_2d.g", "graphs/dcgan.g", "graphs/infogan.g", "graphs/lenet.g"];

/// Source text to every phase's plan; returns the number of kernel calls, so the work is used.
fn plans(src: &SourceFile) -> usize {
    let compiled = compile(src, &CompileOptions::default()).expect("compiles");
    let options = build::BuildOptions { phase: NetPhase::Train, batch_size: compiled.batch_size };
    let train = build::build(&compiled.net, &options).expect("builds");
    compiled.phases.iter().map(|phase| training_plan(&train, phase, &compiled.passes).steps.len()).sum()
}

fn main() {
    println!("{:<18} {:>8} {:>14}", "file", "ms", "kernel calls");
    for file in FILES {
        let src = SourceFile::read(file).expect("model file");
        let calls = plans(&src);
        let best = (0..10)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(plans(&src));
                start.elapsed()
            })
            .min()
            .unwrap_or(Duration::ZERO);
        println!("{file:<18} {:>8.1} {calls:>14}", best.as_secs_f64() * 1e3);
    }
}
