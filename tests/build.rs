//! Semantics of the build step on small hand-written nets: Caffe's blob rules, parameter
//! sharing, sub-networks, phases and the batch override.

use graphc::error::SourceFile;
use graphc::ir::{Distribution, Graph, Op, UnaryOp, F32};
use graphc::schema::NetPhase;
use graphc::{compile, CompileOptions, PhaseSelect};

fn build(text: &str) -> Graph {
    build_with(text, CompileOptions::default())
}

fn build_with(text: &str, opts: CompileOptions) -> Graph {
    let src = SourceFile::new("t.g", text);
    match compile(&src, &opts) {
        Ok(c) => c.graph,
        Err(d) => panic!("{}", d.render(&src)),
    }
}

/// The TEST-phase net of `text`.
fn build_test(text: &str) -> Graph {
    let test = PhaseSelect::Net(NetPhase::Test);
    build_with(text, CompileOptions { phase: test, batch_size: None, train: false, opt_level: 2, passes: None })
}

fn op_of(g: &Graph, blob: &str) -> Op {
    g.node(g.blob(blob).unwrap_or_else(|| panic!("no blob {blob}"))).op.clone()
}

const NOISE: &str = r#"layer { name: "z" type: "DummyData" top: "z"
  dummy_data_param { shape { dim: 4 dim: 3 } data_filler { type: "gaussian" std: 1 } } }"#;

#[test]
fn build_in_place_layer_makes_a_new_version() {
    let g = build(&format!(
        r#"{NOISE}
        layer {{ name: "relu" type: "ReLU" bottom: "z" top: "z" }}
        layer {{ name: "t" type: "TanH" bottom: "z" top: "t" }}"#
    ));
    let t = g.blob("t").unwrap();
    let input = g.inputs(t)[0];
    assert_eq!(g.node(input).op, Op::Unary(UnaryOp::LeakyRelu(graphc::ir::F32::new(0.0))));
    // The blob name now refers to the ReLU's output, not the noise.
    assert_eq!(g.blob("z"), Some(input));
}

#[test]
fn build_forward_reference_is_ordered_topologically() {
    let g = build(&format!(
        r#"layer {{ name: "t" type: "TanH" bottom: "s" top: "t" }}
        layer {{ name: "s" type: "Sigmoid" bottom: "z" top: "s" }}
        {NOISE}"#
    ));
    let order: Vec<&str> = g.layers.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(order, ["z", "s", "t"]);
}

#[test]
fn build_named_params_are_shared() {
    let g = build(&format!(
        r#"{NOISE}
        layer {{ name: "a" type: "InnerProduct" bottom: "z" top: "a" param {{ name: "w" }} param {{ name: "b" }}
          inner_product_param {{ num_output: 3 }} }}
        layer {{ name: "b" type: "InnerProduct" bottom: "a" top: "b" param {{ name: "w" }} param {{ name: "b" }}
          inner_product_param {{ num_output: 3 }} }}"#
    ));
    assert_eq!(g.params.len(), 2);
    assert_eq!(g.param("w").unwrap().users, ["a", "b"]);
    assert_eq!(g.param("w").unwrap().owner, "a");
}

#[test]
fn build_subnet_applications_share_parameters() {
    let g = build(&format!(
        r#"{NOISE}
        subnet {{ name: "head" input: "x" output: "y"
          layer {{ name: "fc" type: "InnerProduct" bottom: "x" top: "y" inner_product_param {{ num_output: 2 }} }} }}
        layer {{ name: "h1" type: "Subnet" bottom: "z" top: "y1" subnet_param {{ name: "head" }} }}
        layer {{ name: "h2" type: "Subnet" bottom: "z" top: "y2" subnet_param {{ name: "head" }} }}"#
    ));
    let names: Vec<&str> = g.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["head/fc.weight", "head/fc.bias"]);
    assert_eq!(g.params[0].users, ["h1/fc", "h2/fc"]);
    assert_eq!(g.params[0].subnet.as_deref(), Some("head"));
    // Two applications are two computations until CSE merges them.
    assert_ne!(g.blob("y1"), g.blob("y2"));
    assert_eq!(g.shape(g.blob("y1").unwrap()).0, [4, 2]);
}

#[test]
fn build_phase_rules_select_layers_and_batch_norm_statistics() {
    let text = format!(
        r#"{NOISE}
        layer {{ name: "bn" type: "BatchNorm" bottom: "z" top: "bn" }}
        layer {{ name: "train_only" type: "TanH" bottom: "bn" top: "t" include {{ phase: TRAIN }} }}
        layer {{ name: "test_only" type: "Sigmoid" bottom: "bn" top: "t" include: {{ phase: TEST }} }}"#
    );
    let train = build(&text);
    let test = build_test(&text);
    assert_eq!(op_of(&train, "t").name(), "tanh");
    assert_eq!(op_of(&test, "t").name(), "sigmoid");
    // Training normalizes by batch statistics and updates the running ones; testing reads them.
    let updated: Vec<&str> = train.updates.iter().map(|u| u.param.as_str()).collect();
    assert_eq!(updated, ["bn.running_mean", "bn.running_var"]);
    assert!(test.updates.is_empty());
    let reads_running_mean = |g: &Graph| {
        let mean = g.param("bn.running_mean").unwrap().node;
        g.ancestors(&[g.blob("bn").unwrap()]).contains(&mean)
    };
    assert!(!reads_running_mean(&train));
    assert!(reads_running_mean(&test));
}

#[test]
fn build_random_affine_warps_in_training_and_passes_through_in_testing() {
    let text = r#"layer { name: "x" type: "DummyData" top: "x"
          dummy_data_param { shape { dim: 5 dim: 1 dim: 6 dim: 6 } data_filler { type: "gaussian" std: 1 } } }
        layer { name: "w" type: "RandomAffine" bottom: "x" top: "w"
          random_affine_param { rotation: 12 scale: 0.2 translation: 1.5 } }"#;
    let train = build(text);
    let warp = train.blob("w").unwrap();
    let Op::Warp2d(attrs) = train.node(warp).op.clone() else { panic!("{:?}", train.node(warp).op) };
    assert_eq!((attrs.rotation.get(), attrs.scale.get(), attrs.translation.get()), (12.0, 0.2, 1.5));
    // One row of four unit draws per image, resampled every step.
    let draws = train.inputs(warp)[1];
    let unit = Distribution::Uniform { min: F32::new(-1.0), max: F32::new(1.0) };
    assert!(matches!(train.node(draws).op, Op::Sample { dist, ref shape, .. } if dist == unit && shape == &[5, 4]));
    let test = build_test(text);
    assert_eq!(test.blob("w"), test.blob("x"));
}

#[test]
fn build_batch_override_changes_data_and_noise() {
    let text = format!(
        r#"{NOISE}
        layer {{ name: "data" type: "Data" top: "data" top: "label" data_param {{ batch_size: 100 }} }}
        layer {{ name: "r" type: "Reshape" bottom: "z" top: "r" reshape_param {{ shape {{ dim: 0 dim: -1 dim: 1 }} }} }}"#
    );
    let g = build_with(&text, CompileOptions { batch_size: Some(7), ..Default::default() });
    assert_eq!(g.shape(g.blob("data").unwrap()).0, [7, 1, 28, 28]);
    assert_eq!(g.shape(g.blob("label").unwrap()).0, [7]);
    assert_eq!(g.shape(g.blob("r").unwrap()).0, [7, 3, 1]);
}

#[test]
fn build_losses_default_to_loss_layers_with_caffe_weights() {
    let g = build(&format!(
        r#"{NOISE}
        layer {{ name: "t" type: "DummyData" top: "t" dummy_data_param {{ shape {{ dim: 4 dim: 3 }} }} }}
        layer {{ name: "l2" type: "EuclideanLoss" bottom: "z" bottom: "t" top: "l2" }}
        layer {{ name: "metric" type: "EuclideanLoss" bottom: "z" bottom: "t" top: "m" loss_weight: 0 }}
        layer {{ name: "kl" type: "Reduction" bottom: "z" top: "kl" loss_weight: 0.01 }}"#
    ));
    let losses: Vec<(&str, f32)> = g.losses.iter().map(|l| (l.blob.as_str(), l.weight)).collect();
    assert_eq!(losses, [("l2", 1.0), ("kl", 0.01)]);
    assert_eq!(g.shape(g.blob("m").unwrap()).rank(), 0);
}

#[test]
fn build_solver_phase_keeps_only_what_its_losses_need() {
    let text = format!(
        r#"{NOISE}
        layer {{ name: "a" type: "InnerProduct" bottom: "z" top: "a" inner_product_param {{ num_output: 1 }} }}
        layer {{ name: "b" type: "InnerProduct" bottom: "z" top: "b" inner_product_param {{ num_output: 1 }} }}
        layer {{ name: "ra" type: "Reduction" bottom: "a" top: "ra" }}
        layer {{ name: "rb" type: "Reduction" bottom: "b" top: "rb" }}
        solver {{ max_iter: 1 phase {{ name: "pa" loss {{ blob: "ra" }} update: "a" base_lr: 0.1 }} }}"#
    );
    let g = build_with(
        &text,
        CompileOptions {
            phase: PhaseSelect::Solver("pa".into()),
            batch_size: None,
            train: false,
            opt_level: 2,
            passes: None,
        },
    );
    assert!(g.blob("ra").is_some());
    assert!(g.blob("rb").is_none());
    assert!(g.param("b.weight").is_none());
}
