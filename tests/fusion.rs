//! Elementwise and reduction fusion: fused programs compute bit for bit what the unfused ones
//! compute (random expression graphs ending in reductions, and a VAE training step with Adam),
//! with far fewer steps.

use std::collections::HashMap;

use graphc::error::{SourceFile, Span};
use graphc::ir::{BinaryOp, Blob, Graph, NodeId, Op, Origin, ReduceOp, UnaryOp, F32};
use graphc::schema::NetPhase;
use graphc::{autodiff, build, compile, lower, passes, train::init, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};
use graphc_runtime::{BufferRole, Plan};
use proptest::prelude::*;

/// The elementwise op numbered `k` (any number picks one).
fn elementwise(k: u8) -> (Op, usize) {
    let f = F32::new;
    let unary = |u| (Op::Unary(u), 1);
    let binary = |b| (Op::Binary(b), 2);
    match k % 18 {
        0 => unary(UnaryOp::Affine { scale: f(0.9), shift: f(-0.25) }),
        1 => unary(UnaryOp::Pow(f(2.0))),
        2 => unary(UnaryOp::Pow(f(-0.5))),
        3 => unary(UnaryOp::Exp),
        4 => unary(UnaryOp::Log),
        5 => unary(UnaryOp::Abs),
        6 => unary(UnaryOp::Sign),
        7 => unary(UnaryOp::LeakyRelu(f(0.2))),
        8 => unary(UnaryOp::LeakyReluSlope(f(0.2))),
        9 => unary(UnaryOp::Tanh),
        10 => unary(UnaryOp::Sigmoid),
        11 => binary(BinaryOp::Add),
        12 => binary(BinaryOp::Sub),
        13 => binary(BinaryOp::Mul),
        14 => binary(BinaryOp::Div),
        15 => binary(BinaryOp::Max),
        16 => binary(BinaryOp::GreaterEqual),
        _ => binary(BinaryOp::SigmoidCrossEntropy),
    }
}

fn origin() -> Origin {
    Origin { layer: "t".into(), span: Span::default() }
}

/// A random graph over `rows`×`cols` parameters `x0..`, scalar parameters broadcast to that
/// shape, and elementwise ops on earlier values; `named` values are blobs, and so is the last,
/// or its reduction over `reduce_axes` when given.
fn random_graph(
    [rows, cols]: [usize; 2],
    tensors: usize,
    scalars: usize,
    ops: &[(u8, usize, usize, bool)],
    reduce: Option<(ReduceOp, Vec<usize>)>,
) -> Graph {
    let mut g = Graph::default();
    let mut values: Vec<NodeId> = Vec::new();
    for i in 0..tensors {
        values.push(g.add(Op::Param { name: format!("x{i}"), shape: vec![rows, cols] }, &[], origin()).unwrap());
    }
    for i in 0..scalars {
        let s = g.add(Op::Param { name: format!("s{i}"), shape: vec![] }, &[], origin()).unwrap();
        values.push(g.add(Op::Broadcast { to: vec![rows, cols], dims: vec![] }, &[s], origin()).unwrap());
    }
    for (i, &(k, a, b, named)) in ops.iter().enumerate() {
        let (op, arity) = elementwise(k);
        // Operands mostly among the latest values, so that chains and trees form.
        let pick = |r: usize| values[values.len() - 1 - r % values.len().min(4)];
        let inputs = if arity == 1 { vec![pick(a)] } else { vec![pick(a), pick(b)] };
        let id = g.add(op, &inputs, origin()).unwrap();
        values.push(id);
        if named || (i + 1 == ops.len() && reduce.is_none()) {
            g.blobs.push(Blob { name: format!("v{i}"), node: id });
        }
    }
    if let Some((op, axes)) = reduce {
        let last = *values.last().unwrap();
        let r = g.add(Op::Reduce { op, axes }, &[last], origin()).unwrap();
        g.blobs.push(Blob { name: "reduced".into(), node: r });
    }
    g
}

/// Runs `plan` once on `state`; returns every output's values.
fn outputs(plan: Plan, state: &mut State) -> Vec<(String, Vec<f32>)> {
    let mut program = CpuProgram::new(plan);
    program.run(state, &HashMap::new(), &NoiseKey { seed: 0, draw: 0 }).unwrap();
    let plan = program.plan();
    plan.outputs.iter().map(|(name, b)| (name.clone(), program.value(state, *b).to_vec())).collect()
}

/// Equal bit for bit (any NaN equals any NaN: payloads are not part of the contract).
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fused_random_expressions_and_reductions_match_unfused_bit_for_bit(
        rows in 1usize..70,
        cols in 1usize..300,
        reduction in 0u8..5,
        tensors in 1usize..4,
        scalars in 0usize..3,
        ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>(), prop::bool::weighted(0.15)), 1..24),
        seed in any::<u64>(),
    ) {
        let reduce = match reduction {
            0 => None,
            1 => Some((ReduceOp::Sum, vec![0])),
            2 => Some((ReduceOp::Mean, vec![1])),
            3 => Some((ReduceOp::Sum, vec![0, 1])),
            _ => Some((ReduceOp::Mean, vec![0, 1])),
        };
        let plain = random_graph([rows, cols], tensors, scalars, &ops, reduce);
        let mut fused = plain.clone();
        passes::optimize_with(&mut fused, &["fuse-elementwise", "fuse-reductions"]);
        let mut state = State::default();
        let mut rng = graphc_runtime::rng::Rng::keyed(seed, 0, 0);
        for p in plain.topo_order().into_iter().filter_map(|id| match &plain.node(id).op {
            Op::Param { name, shape } => Some((name.clone(), shape.iter().product::<usize>())),
            _ => None,
        }) {
            state.values.insert(p.0, (0..p.1).map(|_| rng.normal() * 2.0).collect());
        }
        let (plain_plan, fused_plan) = (lower::to_plan(&plain, &[]), lower::to_plan(&fused, &[]));
        prop_assert!(fused_plan.steps.len() <= plain_plan.steps.len());
        let expected = outputs(plain_plan, &mut state.clone());
        let found = outputs(fused_plan, &mut state);
        prop_assert_eq!(expected.len(), found.len());
        for ((name, a), (_, b)) in expected.iter().zip(&found) {
            prop_assert!(same_bits(a, b), "blob {} differs", name);
        }
    }
}

fn vae() -> (graphc::Compiled, Graph) {
    model("graphs/vae.g", 16)
}

fn model(file: &str, batch: usize) -> (graphc::Compiled, Graph) {
    let src = SourceFile::new(file, std::fs::read_to_string(file).unwrap());
    let batch = Some(batch);
    let c = compile(&src, &CompileOptions { batch_size: batch, ..CompileOptions::default() }).unwrap();
    let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: batch }).unwrap();
    (c, train)
}

/// One step of `program` from the same initial state: its losses and the state after.
fn step(program: &Graph, train: &Graph, losses: &[String]) -> (Vec<f32>, State) {
    let mut program = CpuProgram::new(lower::to_plan(program, &[]));
    let mut state = State::default();
    init::fill_state(&mut state, &train.params, &[program.plan()], 3);
    program.run(&mut state, &init::synthetic_feeds(program.plan()), &NoiseKey { seed: 5, draw: 0 }).unwrap();
    let values = losses.iter().map(|l| program.value(&state, program.plan().output(l).unwrap())[0]).collect();
    (values, state)
}

fn assert_same_step(a: &(Vec<f32>, State), b: &(Vec<f32>, State), what: &str) {
    assert!(same_bits(&a.0, &b.0), "{what}: losses {:?} vs {:?}", a.0, b.0);
    assert_eq!(a.1.values.len(), b.1.values.len());
    for (name, values) in &a.1.values {
        assert!(same_bits(values, &b.1.values[name]), "{what}: state {name} differs");
    }
}

#[test]
fn fused_vae_training_step_is_bit_identical() {
    let (c, train) = vae();
    let phase = &c.phases[0];
    let losses: Vec<String> = phase.losses.iter().map(|l| l.blob.clone()).collect();
    // The same unoptimized program with the level-2 passes except fusion, and with all of them.
    let plain = autodiff::training_program(&train, phase, 0);
    let mut unfused = plain.clone();
    passes::optimize_with(&mut unfused, &["cse", "dce"]);
    let mut fused = plain.clone();
    passes::optimize_with(&mut fused, &["cse", "dce", "fuse-elementwise", "fuse-reductions"]);
    assert!(fused.topo_order().iter().any(|n| matches!(fused.node(*n).op, Op::Fused(_))));
    assert!(fused.topo_order().iter().any(|n| matches!(fused.node(*n).op, Op::FusedReduce { .. })));
    let reference = step(&unfused, &train, &losses);
    assert_same_step(&reference, &step(&fused, &train, &losses), "cse+dce vs cse+dce+fusion");
    // Level 2 (forward CSE, differentiation, then every pass) against level 0.
    let level2 = autodiff::training_program(&train, phase, 2);
    assert_same_step(&step(&plain, &train, &losses), &step(&level2, &train, &losses), "level 0 vs level 2");
}

#[test]
fn fusion_cuts_the_vae_training_plan_steps() {
    let (c, train) = vae();
    let phase = &c.phases[0];
    let steps = |level| lower::to_plan(&autodiff::training_program(&train, phase, level), &[]).steps.len();
    let mut unfused = autodiff::training_program(&train, phase, 0);
    passes::optimize_with(&mut unfused, &["cse", "dce"]);
    let (level0, cse, level2) = (steps(0), lower::to_plan(&unfused, &[]).steps.len(), steps(2));
    let temps = |level| {
        let plan = lower::to_plan(&autodiff::training_program(&train, phase, level), &[]);
        plan.buffers.iter().filter(|b| b.role == BufferRole::Temp).count()
    };
    println!("VAE training plan steps: level 0 {level0}, cse+dce {cse}, level 2 (with fusion) {level2}");
    println!("VAE temporaries: level 0 {}, level 2 {}", temps(0), temps(2));
    assert!(level2 * 2 < cse, "fusion should at least halve the steps: {cse} → {level2}");
}

#[test]
fn epilogue_fusion_keeps_gan_training_steps_bit_identical() {
    // DC-GAN: convolutions and matrix products with biases; InfoGAN: transposed convolutions too.
    let all = passes::level_names(2);
    let without: Vec<&str> = all.iter().copied().filter(|p| *p != "fuse-epilogues").collect();
    for file in ["graphs/dcgan.g", "graphs/infogan.g"] {
        let (c, train) = model(file, 4);
        for phase in &c.phases {
            let losses: Vec<String> = phase.losses.iter().map(|l| l.blob.clone()).collect();
            let fused = autodiff::training_program_with(&train, phase, &all);
            let epilogues =
                fused.topo_order().into_iter().filter(|n| matches!(fused.node(*n).op, Op::Epilogue { .. })).count();
            assert!(epilogues > 0, "{file} {}: no epilogue fused", phase.name);
            let reference = step(&autodiff::training_program_with(&train, phase, &without), &train, &losses);
            assert_same_step(&reference, &step(&fused, &train, &losses), &format!("{file} {}", phase.name));
        }
    }
}
