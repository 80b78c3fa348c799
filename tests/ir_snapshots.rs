//! Snapshots of what the compiler makes of every model file: the IR listing (TRAIN, and TEST for
//! the generation path) and the summary table. Review changes with `cargo insta review`.

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{compile, emit, CompileOptions, PhaseSelect};

const MODELS: &[&str] = &[
    "graphs/vae.g",
    "graphs/vae_2d.g",
    "graphs/dcgan.g",
    "graphs/infogan.g",
    "graphs/lenet.g",
    "tests/caffe/mnist_vae.prototxt",
];

fn stem(path: &str) -> &str {
    path.rsplit('/').next().and_then(|f| f.split('.').next()).unwrap_or(path)
}

fn compiled(path: &str, phase: NetPhase) -> (SourceFile, graphc::Compiled) {
    let src = SourceFile::read(path).expect("model file is readable");
    let opts =
        CompileOptions { phase: PhaseSelect::Net(phase), batch_size: None, train: false, opt_level: 2, passes: None };
    match compile(&src, &opts) {
        Ok(c) => (src, c),
        Err(d) => panic!("{}", d.render(&src)),
    }
}

fn snapshot(name: String, text: String) {
    insta::with_settings!({ snapshot_path => "snapshots/ir", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn ir_every_model_train_listing() {
    for path in MODELS {
        let (src, c) = compiled(path, NetPhase::Train);
        snapshot(format!("{}@ir", stem(path)), graphc::ir::print_graph(&c.graph, &src));
    }
}

#[test]
fn ir_every_model_test_listing() {
    for path in MODELS {
        let (src, c) = compiled(path, NetPhase::Test);
        snapshot(format!("{}@ir_test", stem(path)), graphc::ir::print_graph(&c.graph, &src));
    }
}

#[test]
fn summary_every_model() {
    for path in MODELS {
        let (_, c) = compiled(path, NetPhase::Train);
        snapshot(format!("{}@summary", stem(path)), emit::summary(&c));
    }
}

/// The whole training program of a phase (forward, gradients, optimizer updates) at `opt_level`.
fn training_listing(path: &str, phase: &str, opt_level: u8) -> String {
    let src = SourceFile::read(path).expect("model file is readable");
    let opts = CompileOptions {
        phase: PhaseSelect::Solver(phase.into()),
        batch_size: None,
        train: true,
        opt_level,
        passes: None,
    };
    match compile(&src, &opts) {
        Ok(c) => graphc::ir::print_graph(&c.graph, &src),
        Err(d) => panic!("{}", d.render(&src)),
    }
}

/// Every solver phase's training program at opt-level 0 and 2, so that a reviewer sees what the
/// passes did; and the memory table (nodes, kernels, planned memory) of every model.
#[test]
fn ir_training_programs_at_levels_0_and_2() {
    for path in MODELS {
        let (_, c) = compiled(path, NetPhase::Train);
        for phase in &c.phases {
            for level in [0, 2] {
                let name = format!("{}@train_{}_O{level}", stem(path), phase.name);
                snapshot(name, training_listing(path, &phase.name, level));
            }
        }
        snapshot(format!("{}@memory", stem(path)), emit::memory(&c));
    }
}
