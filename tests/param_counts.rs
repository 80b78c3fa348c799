//! Parameter counts of the model files against the counts their headers give (weights and
//! biases; BatchNorm running statistics are state, not parameters): the elements each solver
//! phase updates, and the learned total of nets without a solver.

use graphc::error::SourceFile;
use graphc::ir::ParamKind;
use graphc::{compile, CompileOptions, Compiled};

fn compiled(path: &str) -> Compiled {
    let src = SourceFile::read(path).expect("model file is readable");
    match compile(&src, &CompileOptions::default()) {
        Ok(c) => c,
        Err(d) => panic!("{}", d.render(&src)),
    }
}

/// Elements of the parameters each phase updates, by phase name, in solver order.
fn phase_totals(c: &Compiled) -> Vec<(&str, usize)> {
    c.phases
        .iter()
        .map(|phase| {
            let total = phase
                .params
                .iter()
                .map(|name| c.graph.param(name).unwrap_or_else(|| panic!("phase param {name} is in the graph")))
                .map(|p| p.shape.numel())
                .sum();
            (phase.name.as_str(), total)
        })
        .collect()
}

/// Checks that the summary's phase table and totals show the same counts.
fn assert_summary_shows(c: &Compiled, learned: usize) {
    let text = graphc::emit::summary(c);
    let shown = |label: &str, count: usize| {
        let count = group_thousands(count);
        text.lines().any(|line| line.trim_start().starts_with(label) && line.split_whitespace().any(|w| w == count))
    };
    assert!(shown("Learned parameters:", learned), "summary lacks the learned total:\n{text}");
    for (phase, total) in phase_totals(c) {
        assert!(shown(&format!("{phase} "), total), "summary lacks phase {phase}'s total:\n{text}");
    }
}

fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> =
        (0..digits.len()).rev().step_by(3).map(|end| &digits[end.saturating_sub(2)..=end]).collect();
    groups.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// Elements of every learned parameter, each counted once however many layers share it.
fn learned_total(c: &Compiled) -> usize {
    c.graph.params.iter().filter(|p| p.kind == ParamKind::Learned).map(|p| p.shape.numel()).sum()
}

#[test]
fn summary_vae_phase_param_counts() {
    let c = compiled("graphs/vae.g");
    assert_eq!(phase_totals(&c), [("train", 2_844_844)]);
    assert_eq!(learned_total(&c), 2_844_844);
    assert_summary_shows(&c, 2_844_844);
}

#[test]
fn summary_vae_2d_phase_param_counts() {
    let c = compiled("graphs/vae_2d.g");
    assert_eq!(phase_totals(&c), [("train", 2_823_788)]);
    assert_eq!(learned_total(&c), 2_823_788);
    assert_summary_shows(&c, 2_823_788);
}

#[test]
fn summary_dcgan_phase_param_counts() {
    let c = compiled("graphs/dcgan.g");
    assert_eq!(phase_totals(&c), [("discriminator", 3_485_441), ("generator", 6_751_233)]);
    assert_eq!(learned_total(&c), 3_485_441 + 6_751_233);
    assert_summary_shows(&c, 3_485_441 + 6_751_233);
}

#[test]
fn summary_infogan_phase_param_counts() {
    // The discriminator phase updates the shared trunk, the D head and the Q head.
    let c = compiled("graphs/infogan.g");
    assert_eq!(phase_totals(&c), [("discriminator", 6_692_173), ("generator", 6_652_481)]);
    assert_eq!(learned_total(&c), 6_692_173 + 6_652_481);
    assert_summary_shows(&c, 6_692_173 + 6_652_481);
}

#[test]
fn summary_caffe_mnist_vae_learned_param_count() {
    let c = compiled("tests/caffe/mnist_vae.prototxt");
    assert!(c.phases.is_empty(), "the Caffe file has no solver");
    assert_eq!(learned_total(&c), 2_844_844);
    assert_summary_shows(&c, 2_844_844);
}
