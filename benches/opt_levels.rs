//! What the optimizer buys, per model file and solver phase: IR nodes of the training program,
//! kernel calls per step, planned memory and training images/s at opt-level 0 and 2, the two
//! levels timed alternately in one run (median of several steps each). Prints a Markdown table.
//!
//! `RAYON_NUM_THREADS=2 cargo bench --bench opt_levels`

use std::time::Instant;

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{autodiff, build, compile, lower, passes, train::init, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};

/// Timed steps per level and phase.
const ROUNDS: usize = 7;

/// One level's compiled phase: its program, state and feeds, and its sizes.
struct Level {
    program: CpuProgram,
    state: State,
    feeds: std::collections::HashMap<&'static str, Vec<f32>>,
    nodes: usize,
    times: Vec<f64>,
}

impl Level {
    fn step(&mut self, draw: u64) {
        let started = Instant::now();
        self.program.run(&mut self.state, &self.feeds, &NoiseKey { seed: 1, draw }).expect("runs");
        self.times.push(started.elapsed().as_secs_f64());
    }

    fn median(&self) -> f64 {
        let mut t = self.times.clone();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    }
}

fn main() {
    graphc_runtime::cpu::denormals::init_threads(None).expect("thread pool");
    println!(
        "threads: {}; CPU features: avx2={} fma={} avx512f={}\n",
        rayon::current_num_threads(),
        is_x86_feature_detected!("avx2"),
        is_x86_feature_detected!("fma"),
        is_x86_feature_detected!("avx512f")
    );
    println!("| graph | phase | batch | nodes O0 → O2 | kernels O0 → O2 | temporaries O0 → O2 (planned) | images/s O0 | images/s O2 | speed-up |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for path in ["graphs/vae.g", "graphs/dcgan.g", "graphs/infogan.g"] {
        let src = SourceFile::read(path).expect("model file");
        let compiled = compile(&src, &CompileOptions::default()).expect("compiles");
        let train =
            build::build(&compiled.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: None }).unwrap();
        for phase in &compiled.phases {
            let mut levels: Vec<Level> = [0u8, 2]
                .iter()
                .map(|&level| {
                    let names = passes::level_names(level);
                    let nodes = autodiff::training_program_with(&train, phase, &names).node_count();
                    let program = CpuProgram::new(graphc::training_plan(&train, phase, &names));
                    let mut state = State::default();
                    init::fill_state(&mut state, &train.params, &[program.plan()], 1);
                    let feeds = init::synthetic_feeds(program.plan());
                    Level { program, state, feeds, nodes, times: Vec::new() }
                })
                .collect();
            // One untimed step each, then alternate.
            for draw in 0..=ROUNDS as u64 {
                for level in &mut levels {
                    level.step(draw);
                }
                if draw == 0 {
                    levels.iter_mut().for_each(|l| l.times.clear());
                }
            }
            let batch = levels[0].feeds.get("image").map_or_else(|| generated_batch(&levels[0]), |i| i.len() / 784);
            let memory = |l: &Level| lower::report(l.program.plan());
            let (m0, m2) = (memory(&levels[0]), memory(&levels[1]));
            let rate = |l: &Level| batch as f64 / l.median();
            println!(
                "| {} | {} | {batch} | {} → {} | {} → {} | {:.0} → {:.0} MB | {:.0} | {:.0} | ×{:.2} |",
                path.trim_start_matches("graphs/"),
                phase.name,
                levels[0].nodes,
                levels[1].nodes,
                levels[0].program.plan().steps.len(),
                levels[1].program.plan().steps.len(),
                m0.planned as f64 * 4e-6,
                m2.planned as f64 * 4e-6,
                rate(&levels[0]),
                rate(&levels[1]),
                levels[0].median() / levels[1].median(),
            );
        }
    }
}

/// The batch of a phase that reads no data (a generator's): the leading axis of its largest
/// noise source's buffer.
fn generated_batch(level: &Level) -> usize {
    let plan = level.program.plan();
    plan.steps
        .iter()
        .filter(|s| matches!(s.kernel, graphc_runtime::Kernel::Sample { .. }))
        .map(|s| plan.shape(s.output).first().copied().unwrap_or(0))
        .max()
        .unwrap_or(0)
}
