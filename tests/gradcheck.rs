//! Every layer's backward pass against central finite differences: for a tiny net around each
//! layer type, the gradient the compiler builds (IR-level autodiff, run on the CPU backend) must
//! match (L(θ + h) − L(θ − h)) / 2h for sampled parameter entries.

use std::collections::HashMap;

use graphc::error::SourceFile;
use graphc::ir::Graph;
use graphc::{autodiff, compile, lower, train::init, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};

const NOISE_KEY: NoiseKey = NoiseKey { seed: 3, draw: 0 };

fn graph(text: &str) -> Graph {
    let src = SourceFile::new("gradcheck.g", text);
    match compile(&src, &CompileOptions::default()) {
        Ok(c) => c.graph,
        Err(d) => panic!("{}", d.render(&src)),
    }
}

/// The objective Σ weight·loss after one run.
fn objective(prog: &mut CpuProgram, state: &State, g: &Graph) -> f64 {
    let mut scratch = state.clone();
    prog.run(&mut scratch, &HashMap::new(), &NOISE_KEY).expect("runs");
    g.losses
        .iter()
        .map(|l| {
            let buf = prog.plan().output(&l.blob).expect("loss is an output");
            l.weight as f64 * prog.value(&scratch, buf)[0] as f64
        })
        .sum()
}

/// Checks the gradient of every learned parameter of the net at `samples` entries each.
fn gradcheck(text: &str) {
    let g = graph(text);
    let names: Vec<&str> = g.params.iter().filter(|p| p.lr_mult != 0.0).map(|p| p.name.as_str()).collect();
    assert!(!names.is_empty(), "the net needs a learned parameter");
    let (with_grads, grads) = autodiff::gradient_graph(&g, &g.losses, &names);
    let extra: Vec<(String, _)> = grads.iter().map(|(n, id)| (format!("grad:{n}"), *id)).collect();
    let mut prog = CpuProgram::new(lower::to_plan(&with_grads, &extra));
    let mut state = State::default();
    for p in &g.params {
        state.values.insert(p.name.clone(), init::initial_values(p, 11));
    }
    let mut scratch = state.clone();
    prog.run(&mut scratch, &HashMap::new(), &NOISE_KEY).expect("runs");
    let h = 1e-2f32;
    for (name, _) in &grads {
        let analytic = prog.value(&scratch, prog.plan().output(&format!("grad:{name}")).unwrap()).to_vec();
        let count = analytic.len();
        for i in (0..count).step_by((count / 6).max(1)) {
            let mut plus = state.clone();
            plus.values.get_mut(name).unwrap()[i] += h;
            let mut minus = state.clone();
            minus.values.get_mut(name).unwrap()[i] -= h;
            let numeric = (objective(&mut prog, &plus, &g) - objective(&mut prog, &minus, &g)) / (2.0 * h as f64);
            let a = analytic[i] as f64;
            let tolerance = 2e-3 + 3e-2 * a.abs().max(numeric.abs());
            assert!((a - numeric).abs() <= tolerance, "{name}[{i}]: analytic {a}, numeric {numeric}");
        }
    }
    for p in &names {
        assert!(grads.iter().any(|(n, _)| n == p), "no gradient reached {p}");
    }
}

/// A net: gaussian input `x` (shape `dims`), a learned layer `fc`/`conv` feeding the layers under
/// test, ending in a Euclidean loss against a gaussian target of the final shape.
fn net(input_dims: &str, body: &str, out_dims: &str) -> String {
    format!(
        r#"
        layer {{ name: "x" type: "DummyData" top: "x" dummy_data_param {{ shape {{ {input_dims} }} data_filler {{ type: "gaussian" std: 1 }} }} }}
        {body}
        layer {{ name: "t" type: "DummyData" top: "t" dummy_data_param {{ shape {{ {out_dims} }} data_filler {{ type: "gaussian" std: 1 }} }} }}
        layer {{ name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "loss" }}"#
    )
}

const FC: &str = r#"layer { name: "fc" type: "InnerProduct" bottom: "x" top: "h"
    inner_product_param { num_output: 6 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } } }"#;

fn after_fc(layers: &str, out_dims: &str) -> String {
    net("dim: 3 dim: 4", &format!("{FC}\n{layers}"), out_dims)
}

#[test]
fn gradcheck_inner_product_and_activations() {
    for act in ["ReLU", "TanH", "Sigmoid"] {
        gradcheck(&after_fc(&format!(r#"layer {{ name: "a" type: "{act}" bottom: "h" top: "y" }}"#), "dim: 3 dim: 6"));
    }
    gradcheck(&after_fc(
        r#"layer { name: "a" type: "ReLU" bottom: "h" top: "y" relu_param { negative_slope: 0.1 } }"#,
        "dim: 3 dim: 6",
    ));
}

#[test]
fn gradcheck_elementwise_layers() {
    let cases = [
        r#"layer { name: "p" type: "Power" bottom: "h" top: "y" power_param { power: 2 scale: 0.5 shift: 1 } }"#,
        r#"layer { name: "e" type: "Exp" bottom: "h" top: "y" exp_param { scale: 0.5 } }"#,
        r#"layer { name: "e" type: "Exp" bottom: "h" top: "pos" }
           layer { name: "l" type: "Log" bottom: "pos" top: "y" log_param { base: 10 shift: 1 } }"#,
        r#"layer { name: "e" type: "Eltwise" bottom: "h" bottom: "h" top: "y" eltwise_param { operation: PROD } }"#,
        r#"layer { name: "s" type: "Sigmoid" bottom: "h" top: "s" }
           layer { name: "e" type: "Eltwise" bottom: "h" bottom: "s" top: "y" eltwise_param { operation: SUM coeff: 0.5 coeff: -2 } }"#,
        r#"layer { name: "s" type: "TanH" bottom: "h" top: "s" }
           layer { name: "e" type: "Eltwise" bottom: "h" bottom: "s" top: "y" eltwise_param { operation: MAX } }"#,
        r#"layer { name: "s" type: "Scale" bottom: "h" top: "y" scale_param { bias_term: true filler { type: "gaussian" std: 1 } } }"#,
        r#"layer { name: "b" type: "Bias" bottom: "h" top: "y" bias_param { filler { type: "gaussian" std: 1 } } }"#,
        r#"layer { name: "s" type: "Softmax" bottom: "h" top: "y" }"#,
        r#"layer { name: "s" type: "LogSoftmax" bottom: "h" top: "y" }"#,
    ];
    for body in cases {
        gradcheck(&after_fc(body, "dim: 3 dim: 6"));
    }
}

#[test]
fn gradcheck_shape_layers() {
    gradcheck(&after_fc(
        r#"layer { name: "r" type: "Reshape" bottom: "h" top: "r" reshape_param { shape { dim: 0 dim: 2 dim: 3 } } }
           layer { name: "f" type: "Flatten" bottom: "r" top: "y" }"#,
        "dim: 3 dim: 6",
    ));
    gradcheck(&after_fc(
        r#"layer { name: "s" type: "Slice" bottom: "h" top: "a" top: "b" slice_param { slice_point: 2 } }
           layer { name: "tanh" type: "TanH" bottom: "a" top: "ta" }
           layer { name: "c" type: "Concat" bottom: "b" bottom: "ta" top: "y" }"#,
        "dim: 3 dim: 6",
    ));
    // ASUM's input has both signs but never crosses 0 under perturbation (|·| has a kink there).
    let both_signs = r#"layer { name: "e" type: "Exp" bottom: "h" top: "e" exp_param { scale: 0.3 } }
        layer { name: "n" type: "Power" bottom: "e" top: "n" power_param { scale: -1 } }
        layer { name: "c" type: "Concat" bottom: "e" bottom: "n" top: "r_in" }"#;
    for op in ["SUM", "ASUM", "SUMSQ", "MEAN"] {
        gradcheck(&after_fc(
            &format!(
                r#"{both_signs}
                layer {{ name: "r" type: "Reduction" bottom: "r_in" top: "y" reduction_param {{ operation: {op} axis: 1 coeff: 2 }} }}"#
            ),
            "dim: 3",
        ));
    }
}

#[test]
fn gradcheck_batch_norm_in_training() {
    gradcheck(&after_fc(
        r#"layer { name: "bn" type: "BatchNorm" bottom: "h" top: "n" }
           layer { name: "s" type: "Scale" bottom: "n" top: "y" scale_param { bias_term: true filler { type: "gaussian" mean: 1 std: 0.3 } } }"#,
        "dim: 3 dim: 6",
    ));
}

const CONV: &str = r#"layer { name: "conv" type: "Convolution" bottom: "x" top: "c"
    convolution_param { num_output: 3 kernel_size: 4 stride: 2 pad: 1 weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.3 } } }"#;

#[test]
fn gradcheck_convolutions_pooling_upsampling() {
    gradcheck(&net(
        "dim: 2 dim: 2 dim: 7 dim: 7",
        CONV.replace("\"c\"", "\"y\"").as_str(),
        "dim: 2 dim: 3 dim: 3 dim: 3",
    ));
    let conv5 = r#"layer { name: "conv" type: "Convolution" bottom: "x" top: "y"
        convolution_param { num_output: 2 kernel_size: 5 pad: 2 weight_filler { type: "gaussian" std: 0.2 } } }"#;
    gradcheck(&net("dim: 2 dim: 2 dim: 6 dim: 6", conv5, "dim: 2 dim: 2 dim: 6 dim: 6"));
    let deconv = r#"layer { name: "d" type: "Deconvolution" bottom: "x" top: "y"
        convolution_param { num_output: 2 kernel_size: 4 stride: 2 pad: 1 weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.3 } } }"#;
    gradcheck(&net("dim: 2 dim: 3 dim: 3 dim: 3", deconv, "dim: 2 dim: 2 dim: 6 dim: 6"));
    for pool in ["MAX", "AVE"] {
        let body = format!(
            r#"{CONV}
            layer {{ name: "p" type: "Pooling" bottom: "c" top: "y" pooling_param {{ pool: {pool} kernel_size: 2 stride: 2 }} }}"#
        );
        gradcheck(&net("dim: 2 dim: 2 dim: 8 dim: 8", &body, "dim: 2 dim: 3 dim: 2 dim: 2"));
    }
    let up =
        format!(r#"{CONV} layer {{ name: "u" type: "Upsample" bottom: "c" top: "y" upsample_param {{ scale: 2 }} }}"#);
    gradcheck(&net("dim: 2 dim: 2 dim: 6 dim: 6", &up, "dim: 2 dim: 3 dim: 6 dim: 6"));
}

#[test]
fn gradcheck_random_affine() {
    // The warp is linear in the image for fixed draws; the gradient must reach the convolution
    // through it, with each of the two images warped by its own draws.
    let warp = format!(
        r#"{CONV} layer {{ name: "w" type: "RandomAffine" bottom: "c" top: "y"
            random_affine_param {{ rotation: 30 scale: 0.3 translation: 1.5 }} }}"#
    );
    gradcheck(&net("dim: 2 dim: 2 dim: 7 dim: 7", &warp, "dim: 2 dim: 3 dim: 3 dim: 3"));
}

#[test]
fn gradcheck_losses() {
    let with_loss = |loss: &str| {
        format!(
            r#"layer {{ name: "x" type: "DummyData" top: "x" dummy_data_param {{ shape {{ dim: 4 dim: 3 }} data_filler {{ type: "gaussian" std: 1 }} }} }}
            {FC}
            {loss}"#
        )
    };
    gradcheck(&with_loss(
        r#"layer { name: "t" type: "DummyData" top: "t" dummy_data_param { shape { dim: 4 dim: 6 } data_filler { type: "uniform" min: 0 max: 1 } } }
           layer { name: "l" type: "SigmoidCrossEntropyLoss" bottom: "h" bottom: "t" top: "l" }"#,
    ));
    gradcheck(&with_loss(
        r#"layer { name: "t" type: "DummyData" top: "t" dummy_data_param { shape { dim: 4 } data_filler { type: "constant" value: 2 } } }
           layer { name: "l" type: "SoftmaxWithLoss" bottom: "h" bottom: "t" top: "l" }"#,
    ));
    gradcheck(&with_loss(
        r#"layer { name: "s" type: "Slice" bottom: "h" top: "mean" top: "logsd" top: "x2" slice_param { slice_point: 2 slice_point: 4 } }
           layer { name: "ll" type: "GaussianLogLikelihood" bottom: "x2" bottom: "mean" bottom: "logsd" top: "ll" }
           layer { name: "l" type: "Reduction" bottom: "ll" top: "l" reduction_param { operation: MEAN coeff: -1 } loss_weight: 1 }"#,
    ));
}

#[test]
fn gradcheck_stop_gradient_blocks_the_gradient() {
    let text = after_fc(r#"layer { name: "s" type: "StopGradient" bottom: "h" top: "y" }"#, "dim: 3 dim: 6");
    let g = graph(&text);
    let (_, grads) = autodiff::gradient_graph(&g, &g.losses, &["fc.weight", "fc.bias"]);
    assert!(grads.is_empty(), "gradient leaked through StopGradient: {grads:?}");
}
