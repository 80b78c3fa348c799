//! The optimization passes: CSE computes InfoGAN's D/Q trunk once on the fake images, and an
//! optimized training step computes the same losses and parameters as the unoptimized one.

use graphc::error::SourceFile;
use graphc::ir::{Graph, Op};
use graphc::schema::NetPhase;
use graphc::{autodiff, build, compile, lower, train::init, CompileOptions, Compiled};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};

fn infogan(batch: usize) -> (Compiled, Graph) {
    // SGD rather than the file's Adam: Adam's first step moves every parameter by ±lr whatever
    // the gradient's size, so a bias followed by BatchNorm (gradient 0 up to rounding) would move
    // by the sign of rounding noise, which no reordering of sums preserves.
    let text = std::fs::read_to_string("graphs/infogan.g").unwrap().replace("type: \"Adam\"", "type: \"SGD\"");
    let src = SourceFile::new("infogan.g", text);
    let c = compile(&src, &CompileOptions { batch_size: Some(batch), ..CompileOptions::default() }).unwrap();
    let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: Some(batch) }).unwrap();
    (c, train)
}

fn convolutions_of_fake(g: &Graph) -> usize {
    let fake = g.blob("fake").unwrap();
    let is_conv = |op: &Op| match op {
        Op::Epilogue { base, .. } => matches!(**base, Op::Conv2d(_)),
        op => matches!(op, Op::Conv2d(_)),
    };
    g.topo_order().into_iter().filter(|n| is_conv(&g.node(*n).op) && g.inputs(*n)[0] == fake).count()
}

#[test]
fn cse_infogan_merges_d_q_trunk() {
    let (c, train) = infogan(4);
    for phase in &c.phases {
        let plain = autodiff::training_program(&train, phase, 0);
        let optimized = autodiff::training_program(&train, phase, 2);
        // The file applies the trunk to the fake images twice (for D and for Q).
        assert_eq!(convolutions_of_fake(&plain), 2, "phase {}", phase.name);
        assert_eq!(convolutions_of_fake(&optimized), 1, "phase {}", phase.name);
        assert!(optimized.node_count() < plain.node_count());
    }
}

#[test]
fn passes_keep_an_infogan_training_step_numerically_equal() {
    let (c, train) = infogan(8);
    let phase = &c.phases[0];
    let run = |level: u8| {
        let mut program = CpuProgram::new(lower::to_plan(&autodiff::training_program(&train, phase, level), &[]));
        let mut state = State::default();
        init::fill_state(&mut state, &train.params, &[&program], 9);
        program.run(&mut state, &init::synthetic_feeds(&program), &NoiseKey { seed: 2, draw: 0 }).unwrap();
        let losses: Vec<f32> =
            phase.losses.iter().map(|l| program.value(&state, program.plan().output(&l.blob).unwrap())[0]).collect();
        (losses, state)
    };
    let (plain_losses, plain_state) = run(0);
    let (losses, state) = run(2);
    // Merging the trunk sums the two gradient contributions in one accumulation instead of two,
    // so results may differ by float reassociation: a relative 1e-4 bounds that at these sizes.
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()));
    assert!(plain_losses.iter().zip(&losses).all(|(a, b)| close(*a, *b)), "{plain_losses:?} vs {losses:?}");
    for (name, values) in &plain_state.values {
        let other = &state.values[name];
        assert!(values.iter().zip(other).all(|(a, b)| close(*a, *b)), "parameter {name} differs");
    }
}
