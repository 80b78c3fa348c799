//! End-to-end training on the bundled MNIST: the VAE learns, resuming is bit-identical, a loss's
//! `start_iter` holds it at weight 0 until then, a NaN stops the run naming its op, losses read
//! back at log intervals give the same run as losses read after every step, and bad data or
//! checkpoints are clear errors.

use graphc::error::SourceFile;
use graphc::train::{self, LossReadback, RunOptions, TrainError};
use graphc::{compile, CompileOptions, Compiled};

fn compiled(path: &str, batch: usize) -> Compiled {
    let src = SourceFile::read(path).unwrap();
    let opts = CompileOptions { batch_size: Some(batch), ..CompileOptions::default() };
    compile(&src, &opts).unwrap_or_else(|d| panic!("{}", d.render(&src)))
}

fn options(out: &std::path::Path, steps: u64) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        max_steps: Some(steps),
        epochs: None,
        seed: Some(7),
        data: "mnist".into(),
        resume: false,
        interrupt: None,
        device: graphc::train::TrainDevice::Cpu,
        loss_readback: None,
    }
}

fn losses(out: &std::path::Path) -> Vec<f64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("cross_entropy_loss").and_then(|x| x.as_f64()))
        .collect()
}

#[test]
fn train_vae_loss_falls_on_real_mnist() {
    let dir = tempfile::tempdir().unwrap();
    let c = compiled("graphs/vae.g", 50);
    let summary = train::run(&c, &options(dir.path(), 300), &mut |_| {}).unwrap();
    let ce = losses(dir.path());
    assert!(ce.len() >= 3, "{ce:?}");
    // Reconstruction starts near 784·ln 2 ≈ 543 nats for random logits and must fall well below.
    assert!(ce.last().unwrap() < &(0.5 * 543.0), "{ce:?}");
    let (_, held_out) = &summary.held_out[0];
    assert!(held_out.is_finite() && *held_out < 260.0, "held-out loss {held_out}");
    assert!(dir.path().join("samples/step_000000.png").exists());
    assert!(dir.path().join("checkpoint.safetensors").exists());
}

#[test]
fn train_resume_is_bit_identical() {
    let c = compiled("graphs/vae.g", 20);
    let straight = tempfile::tempdir().unwrap();
    let mut opts = options(straight.path(), 6);
    train::run(&c, &opts, &mut |_| {}).unwrap();
    let resumed = tempfile::tempdir().unwrap();
    opts.out = resumed.path().to_path_buf();
    opts.max_steps = Some(3);
    train::run(&c, &opts, &mut |_| {}).unwrap();
    opts.max_steps = Some(6);
    opts.resume = true;
    train::run(&c, &opts, &mut |_| {}).unwrap();
    let load = |d: &tempfile::TempDir| train::checkpoint::load(&d.path().join("checkpoint.safetensors")).unwrap();
    let (a, pa) = load(&straight);
    let (b, pb) = load(&resumed);
    assert_eq!(pa, pb);
    assert!(a == b, "parameters differ after resuming");
}

/// graphs/vae.g with its phase minimizing `terms` (each a `loss { ... }` body) explicitly.
fn vae_with_losses(terms: &[&str]) -> Compiled {
    let losses: String = terms.iter().map(|t| format!("loss {{ {t} }}\n    ")).collect();
    let text =
        std::fs::read_to_string("graphs/vae.g").unwrap().replacen("type: \"Adam\"", &(losses + "type: \"Adam\""), 1);
    let src = SourceFile::new("vae_terms.g", &text);
    let opts = CompileOptions { batch_size: Some(20), ..CompileOptions::default() };
    compile(&src, &opts).unwrap_or_else(|d| panic!("{}", d.render(&src)))
}

#[test]
fn train_loss_start_iter_weighs_zero_until_then() {
    // KL warm-up: the KL term counts from iteration 3 on.
    let ce = "blob: \"cross_entropy_loss\"";
    let warm = vae_with_losses(&[ce, "blob: \"klloss\" weight: 0.01 start_iter: 3"]);
    assert_eq!([0, 2, 3, 9].map(|i| warm.phases[0].stage_start(i)), [0, 0, 3, 3]);
    assert_eq!(warm.phases[0].at_iteration(2).losses[1].weight, 0.0);
    assert_eq!(warm.phases[0].at_iteration(3).losses[1].weight, 0.01);
    let straight = tempfile::tempdir().unwrap();
    train::run(&warm, &options(straight.path(), 6), &mut |_| {}).unwrap();
    // The same as 3 iterations with the term at weight 0, resumed with it at its weight.
    let staged = tempfile::tempdir().unwrap();
    let mut opts = options(staged.path(), 3);
    train::run(&vae_with_losses(&[ce, "blob: \"klloss\" weight: 0"]), &opts, &mut |_| {}).unwrap();
    (opts.max_steps, opts.resume) = (Some(6), true);
    train::run(&vae_with_losses(&[ce, "blob: \"klloss\" weight: 0.01"]), &opts, &mut |_| {}).unwrap();
    // And not the same as the term counting from the start.
    let from_start = tempfile::tempdir().unwrap();
    let full = vae_with_losses(&[ce, "blob: \"klloss\" weight: 0.01"]);
    train::run(&full, &options(from_start.path(), 6), &mut |_| {}).unwrap();
    let load = |d: &tempfile::TempDir| train::checkpoint::load(&d.path().join("checkpoint.safetensors")).unwrap().0;
    assert!(load(&straight) == load(&staged), "a term starting at 3 differs from weight 0 for 3 iterations");
    assert!(load(&straight) != load(&from_start), "start_iter changed nothing");
}

#[test]
fn train_non_finite_loss_names_the_op() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
        layer { name: "data" type: "Data" top: "data" data_param { batch_size: 4 } }
        layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 2 } }
        layer { name: "neg" type: "Power" bottom: "fc" top: "neg" power_param { shift: -1 } }
        layer { name: "log" type: "Log" bottom: "neg" top: "log" }
        layer { name: "loss" type: "Reduction" bottom: "log" top: "loss" loss_weight: 1 }
        solver { max_iter: 5 phase { name: "p" type: "SGD" base_lr: 0.1 } }"#;
    let src = SourceFile::new("nan.g", text);
    let c = compile(&src, &CompileOptions::default()).unwrap();
    let err = train::run(&c, &options(dir.path(), 5), &mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("log (log)"), "{err}");
}

/// `text` with its solver's `display` and `snapshot` intervals set.
fn with_intervals(text: &str, display: u32, snapshot: u32) -> String {
    let set = |line: &str| match line.trim_start().split_once(':') {
        Some(("display", _)) => format!("display: {display}"),
        Some(("snapshot", _)) => format!("snapshot: {snapshot}"),
        _ => line.to_string(),
    };
    text.lines().map(set).collect::<Vec<_>>().join("\n")
}

/// The metrics of a run without its rates (which differ from run to run), and its checkpoint.
fn run_record(c: &Compiled, opts: &RunOptions) -> (Vec<serde_json::Value>, graphc_runtime::exec::State) {
    train::run(c, opts, &mut |_| {}).unwrap();
    let text = std::fs::read_to_string(opts.out.join("metrics.jsonl")).unwrap();
    let mut records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    records.iter_mut().for_each(|r| drop(r.as_object_mut().unwrap().remove("images_per_sec")));
    (records, train::checkpoint::load(&opts.out.join("checkpoint.safetensors")).unwrap().0)
}

#[test]
fn train_losses_read_back_at_log_intervals_are_those_of_every_step() {
    // DC-GAN at batch 4: three discriminator steps and one generator step per iteration, logged
    // every 2 iterations and saved every 3, so that reads happen at both and the last (7).
    let src = SourceFile::new("dcgan.g", with_intervals(&std::fs::read_to_string("graphs/dcgan.g").unwrap(), 2, 3));
    let c = compile(&src, &CompileOptions { batch_size: Some(4), ..CompileOptions::default() }).unwrap();
    let run = |readback| {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions { loss_readback: Some(readback), ..options(dir.path(), 7) };
        run_record(&c, &opts)
    };
    let (every_step, state_a) = run(LossReadback::EveryStep);
    let (at_logs, state_b) = run(LossReadback::AtLogs);
    let logged: Vec<u64> = every_step.iter().filter_map(|r| r["step"].as_u64()).collect();
    // Two phases logged at 2, 4, 6 and 7, and the discriminator's held-out loss at 7 (the
    // generator reads no data).
    assert_eq!(logged, [2, 2, 4, 4, 6, 6, 7, 7, 7], "{every_step:?}");
    assert_eq!(every_step, at_logs);
    assert!(state_a == state_b, "the checkpoints differ");
}

/// A graph whose loss, -(w·x + 1)², its SGD drives to -∞ within a few iterations.
const DIVERGES: &str = include_str!("graphs/diverges.g");

#[test]
fn train_non_finite_loss_read_back_late_names_its_iteration_and_resumes_to_its_op() {
    let c = compile(&SourceFile::new("diverges.g", DIVERGES), &CompileOptions::default()).unwrap();
    let fail = |readback, dir: &std::path::Path, resume| {
        let opts = RunOptions { loss_readback: Some(readback), resume, ..options(dir, 50) };
        match train::run(&c, &opts, &mut |_| {}).unwrap_err() {
            TrainError::NonFinite { iteration, loss, origin, .. } => (iteration, loss, origin),
            other => panic!("{other}"),
        }
    };
    let (every_step, at_logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let traced = fail(LossReadback::EveryStep, every_step.path(), false);
    assert_eq!(traced, (4, "loss".to_string(), Some("square (pow)".to_string())));
    // Read back late, the same loss and iteration, not traced; the checkpoint of iteration 4 is
    // not written, as its losses were judged first.
    assert_eq!(fail(LossReadback::AtLogs, at_logs.path(), false), (4, "loss".to_string(), None));
    let (saved, position) = train::checkpoint::load(&at_logs.path().join("checkpoint.safetensors")).unwrap();
    assert_eq!(position.iteration, 4, "the last checkpoint holds the four good iterations");
    assert!(saved.values.values().flatten().all(|v| v.is_finite()));
    // As the message says: resumed from it reading every step, the op is named.
    assert_eq!(fail(LossReadback::EveryStep, at_logs.path(), true), traced);
}

#[test]
fn train_bad_data_and_checkpoints_are_clear_errors() {
    let c = compiled("graphs/vae.g", 20);
    // A data directory whose image file is truncated.
    let data = tempfile::tempdir().unwrap();
    let bundled = std::path::Path::new("data/mnist");
    for f in ["train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(bundled.join(f), data.path().join(f)).unwrap();
    }
    let images = std::fs::read(bundled.join("train-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(data.path().join("train-images-idx3-ubyte.gz"), &images[..images.len() / 2]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut opts = options(out.path(), 2);
    opts.data = data.path().to_string_lossy().into_owned();
    let err = train::run(&c, &opts, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");

    // A truncated checkpoint, then a checkpoint of another graph.
    let mut opts = options(out.path(), 2);
    train::run(&c, &opts, &mut |_| {}).unwrap();
    let path = out.path().join("checkpoint.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    opts.resume = true;
    let err = train::run(&c, &opts, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("not a valid checkpoint"), "{err}");
    train::run(&compiled("graphs/vae.g", 20), &options(out.path(), 1), &mut |_| {}).unwrap();
    let err = train::run(&compiled("graphs/vae_2d.g", 20), &opts, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("does not fit this graph"), "{err}");
}
