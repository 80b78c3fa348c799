//! Optimizer updates against hand-computed values: one weight w (initially 0.5) with input 1 and
//! loss ½·w², so the gradient is w itself (plus weight decay where set).

use std::collections::HashMap;

use graphc::error::SourceFile;
use graphc::{autodiff, compile, lower, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};

fn net(optimizer: &str) -> String {
    format!(
        r#"
        layer {{ name: "x" type: "DummyData" top: "x" dummy_data_param {{ shape {{ dim: 1 dim: 1 }} data_filler {{ type: "constant" value: 1 }} }} }}
        layer {{ name: "t" type: "DummyData" top: "t" dummy_data_param {{ shape {{ dim: 1 dim: 1 }} }} }}
        layer {{ name: "fc" type: "InnerProduct" bottom: "x" top: "y"
                 inner_product_param {{ num_output: 1 bias_term: false weight_filler {{ type: "constant" value: 0.5 }} }} }}
        layer {{ name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "loss" }}
        solver {{ max_iter: 3 phase {{ name: "p" {optimizer} }} }}"#
    )
}

/// The weight after each of `steps` updates.
fn trajectory(optimizer: &str, steps: usize) -> Vec<f32> {
    let src = SourceFile::new("opt.g", net(optimizer));
    let compiled = compile(&src, &CompileOptions::default()).unwrap_or_else(|d| panic!("{}", d.render(&src)));
    let program = autodiff::training_program_with(&compiled.graph, &compiled.phases[0], &compiled.passes);
    let mut prog = CpuProgram::new(lower::to_plan(&program, &[]));
    let mut state = State::default();
    for b in &prog.plan().buffers {
        if let graphc_runtime::BufferRole::State(name) = &b.role {
            state.values.insert(name.clone(), vec![if name == "fc.weight" { 0.5 } else { 0.0 }; b.numel()]);
        }
    }
    (1..=steps)
        .map(|t| {
            let feeds = HashMap::from([("step", vec![t as f32])]);
            prog.run(&mut state, &feeds, &NoiseKey { seed: 0, draw: t as u64 }).unwrap();
            state.values["fc.weight"][0]
        })
        .collect()
}

fn assert_close(actual: &[f32], expected: &[f64]) {
    for (a, e) in actual.iter().zip(expected) {
        assert!((*a as f64 - e).abs() < 1e-6, "got {actual:?}, expected {expected:?}");
    }
}

#[test]
fn optimizer_sgd_steps_by_the_gradient() {
    // w ← w − 0.1·w
    assert_close(&trajectory(r#"type: "SGD" base_lr: 0.1"#, 2), &[0.45, 0.405]);
}

#[test]
fn optimizer_sgd_momentum_matches_pytorch() {
    // buf₁ = g₁ = 0.5, w₁ = 0.45; g₂ = 0.45, buf₂ = 0.9·0.5 + 0.45 = 0.9, w₂ = 0.45 − 0.09 = 0.36
    assert_close(&trajectory(r#"type: "SGD" base_lr: 0.1 momentum: 0.9"#, 2), &[0.45, 0.36]);
}

#[test]
fn optimizer_nesterov_matches_pytorch() {
    // buf₁ = 0.5, step = g + μ·buf = 0.95, w₁ = 0.405; g₂ = 0.405, buf₂ = 0.855,
    // step = 0.405 + 0.7695 = 1.1745, w₂ = 0.405 − 0.11745 = 0.28755
    assert_close(&trajectory(r#"type: "Nesterov" base_lr: 0.1 momentum: 0.9"#, 2), &[0.405, 0.28755]);
}

#[test]
fn optimizer_weight_decay_adds_to_the_gradient() {
    // g = w + 0.5·w = 0.75 → w₁ = 0.5 − 0.075
    assert_close(&trajectory(r#"type: "SGD" base_lr: 0.1 weight_decay: 0.5"#, 1), &[0.425]);
}

#[test]
fn optimizer_adam_matches_pytorch() {
    // Step 1: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25 → w₁ = 0.5 − 0.01·0.5/(0.5 + 1e-8)
    let w1 = 0.5 - 0.01 * 0.5 / (0.5 + 1e-8);
    // Step 2: g = w₁; m = 0.9·0.05 + 0.1·g; v = 0.999·0.00025 + 0.001·g²
    let (m2, v2) = (0.9 * 0.05 + 0.1 * w1, 0.999 * 0.00025 + 0.001 * w1 * w1);
    let (c1, c2) = (1.0 - 0.9f64.powi(2), 1.0 - 0.999f64.powi(2));
    let w2 = w1 - 0.01 / c1 * m2 / (v2.sqrt() / c2.sqrt() + 1e-8);
    assert_close(&trajectory(r#"type: "Adam" base_lr: 0.01"#, 2), &[w1, w2]);
}
