//! Snapshots of what the compiler makes of every model file: the IR listing (TRAIN, and TEST for
//! the generation path) and the summary table. Review changes with `cargo insta review`.

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{compile, emit, CompileOptions, PhaseSelect};

const MODELS: &[&str] =
    &["graphs/vae.g", "graphs/vae_2d.g", "graphs/dcgan.g", "graphs/infogan.g", "tests/caffe/mnist_vae.prototxt"];

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

/// The whole training program of a phase: forward, gradients, optimizer updates.
fn training_listing(path: &str, phase: &str) -> String {
    let src = SourceFile::read(path).expect("model file is readable");
    let opts = CompileOptions {
        phase: PhaseSelect::Solver(phase.into()),
        batch_size: None,
        train: true,
        opt_level: 2,
        passes: None,
    };
    match compile(&src, &opts) {
        Ok(c) => graphc::ir::print_graph(&c.graph, &src),
        Err(d) => panic!("{}", d.render(&src)),
    }
}

#[test]
fn ir_training_programs() {
    snapshot("vae@train".into(), training_listing("graphs/vae.g", "train"));
    snapshot("dcgan@train_discriminator".into(), training_listing("graphs/dcgan.g", "discriminator"));
    snapshot("dcgan@train_generator".into(), training_listing("graphs/dcgan.g", "generator"));
}
