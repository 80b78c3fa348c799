//! Adversarial training: phases update only their own parameters, K discriminator steps run per
//! generator step with fresh data and noise, InfoGAN's mutual-information terms are right, and
//! short DC-GAN and InfoGAN runs on the bundled MNIST stay finite and learn.

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::train::{self, RunOptions};
use graphc::{autodiff, build, compile, lower, train::init, CompileOptions, Compiled};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};

fn compiled_text(name: &str, text: &str, batch: usize) -> Compiled {
    let src = SourceFile::new(name, text);
    let opts = CompileOptions { batch_size: Some(batch), ..CompileOptions::default() };
    compile(&src, &opts).unwrap_or_else(|d| panic!("{}", d.render(&src)))
}

fn file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Every state value of `programs`, initialized from the fillers.
fn initial_state(c: &Compiled, programs: &[&CpuProgram]) -> State {
    let train =
        build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: c.batch_size }).unwrap();
    let mut state = State::default();
    let plans: Vec<&graphc_runtime::Plan> = programs.iter().map(|p| p.plan()).collect();
    init::fill_state(&mut state, &train.params, &plans, 5);
    state
}

#[test]
fn gan_phases_update_only_their_parameters() {
    let c = compiled_text("dcgan.g", &file("graphs/dcgan.g"), 4);
    let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: Some(4) }).unwrap();
    let mut programs: Vec<CpuProgram> = c
        .phases
        .iter()
        .map(|p| CpuProgram::new(lower::to_plan(&autodiff::training_program(&train, p, 2), &[])))
        .collect();
    let mut state = initial_state(&c, &programs.iter().collect::<Vec<_>>());
    for (phase, program) in c.phases.iter().zip(&mut programs) {
        let before = state.clone();
        program.run(&mut state, &init::synthetic_feeds(program.plan()), &NoiseKey { seed: 1, draw: 0 }).unwrap();
        for p in train.params.iter().filter(|p| p.kind == graphc::ir::ParamKind::Learned) {
            let changed = before.values[&p.name] != state.values[&p.name];
            let updated = phase.params.contains(&p.name);
            assert_eq!(changed, updated, "phase {}: parameter {} changed = {changed}", phase.name, p.name);
        }
    }
}

#[test]
fn update_names_a_sub_network_layer_by_its_definition_path() {
    // The Q head alone, without the trunk that `update: "q_network"` would bring along.
    let text = file("graphs/infogan.g").replacen(
        "    update: \"generator\"\n",
        "    update: \"generator\"\n    update: \"q_network/q_fc1\"\n    update: \"q_network/q_fc2\"\n",
        1,
    );
    let c = compiled_text("infogan_q_head.g", &text, 2);
    let generator = c.phases.iter().find(|p| p.name == "generator").unwrap();
    let q_head: Vec<&String> = generator.params.iter().filter(|p| p.starts_with("q_network/")).collect();
    assert_eq!(
        q_head,
        ["q_network/q_fc1.weight", "q_network/q_fc1.bias", "q_network/q_fc2.weight", "q_network/q_fc2.bias"]
    );
    assert!(!generator.params.iter().any(|p| p.starts_with("trunk/")), "{:?}", generator.params);
    // A misspelt layer is still a located error, with the definition path among the suggestions.
    let src = SourceFile::new("typo.g", text.replacen("q_network/q_fc2", "q_network/q_fc9", 1));
    let Err(diagnostic) = compile(&src, &CompileOptions::default()) else { panic!("an unknown layer is an error") };
    let message = diagnostic.render(&src);
    assert!(message.contains("did you mean \"q_network/q_fc1\""), "{message}");
}

#[test]
fn gan_runs_k_discriminator_steps_per_generator_step() {
    let text = file("graphs/dcgan.g").replacen("steps: 1", "steps: 3", 1);
    let c = compiled_text("dcgan_k3.g", &text, 4);
    assert_eq!(c.phases[0].steps, 3);
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        max_steps: Some(2),
        epochs: None,
        seed: Some(1),
        data: "mnist".into(),
        resume: false,
        interrupt: None,
        device: graphc::train::TrainDevice::Cpu,
        loss_readback: None,
    };
    train::run(&c, &opts, &mut |_| {}).unwrap();
    let (_, position) = train::checkpoint::load(&dir.path().join("checkpoint.safetensors")).unwrap();
    // Each discriminator step reads a fresh batch of 4; the generator step reads none.
    assert_eq!(position.data_position, 2 * 3 * 4);
    // Every step of every phase draws fresh noise.
    assert_eq!(position.draw, 2 * (3 + 1));
}

#[test]
fn infogan_mi_terms_match_hand_computation() {
    let c = compiled_text("infogan.g", &file("graphs/infogan.g"), 2);
    let g = &c.graph;
    let codes = [3usize, 7];
    let disc: Vec<f32> = codes.iter().flat_map(|&k| (0..10).map(move |i| if i == k { 1.0 } else { 0.0 })).collect();
    let cont = vec![0.5f32, -0.25, 1.0, 0.0];
    let logits: Vec<f32> = (0..20).map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.0).collect();
    let means = [0.1f32, 0.2, -0.3, 0.4];
    // The categorical term reads Q of the warped fakes, the continuous one Q of the fakes: each
    // gets the other's part wrong (zero logits, means of 9), so reading the wrong one fails.
    let q_output = |logits: &[f32], means: &[f32]| -> Vec<f32> {
        (0..2).flat_map(|n| logits[n * 10..n * 10 + 10].iter().chain(&means[n * 2..n * 2 + 2]).copied()).collect()
    };
    let warped = q_output(&logits, &[9.0; 4]);
    let unwarped = q_output(&[0.0; 20], &means);
    let fed = [
        (g.blob("disc_code").unwrap(), "disc_code".to_string()),
        (g.blob("cont_code").unwrap(), "cont_code".to_string()),
        (g.blob("fake_warped_dist_info").unwrap(), "warped".to_string()),
        (g.blob("fake_reg_z_dist_info").unwrap(), "unwarped".to_string()),
    ];
    let mut program = CpuProgram::new(lower::to_plan_feeding(g, &[], &fed));
    let mut state = initial_state(&c, &[&program]);
    let mut feeds = init::synthetic_feeds(program.plan());
    feeds.insert("disc_code", disc);
    feeds.insert("cont_code", cont.clone());
    feeds.insert("warped", warped);
    feeds.insert("unwarped", unwarped);
    program.run(&mut state, &feeds, &NoiseKey { seed: 1, draw: 0 }).unwrap();
    let read = |blob: &str| program.value(&state, program.plan().output(blob).unwrap())[0] as f64;

    // Categorical: H(c) − E[−log q(c|x)] with q the softmax of the logits.
    let cross_ent: f64 = codes
        .iter()
        .enumerate()
        .map(|(n, &k)| {
            let row: Vec<f64> = logits[n * 10..n * 10 + 10].iter().map(|v| *v as f64).collect();
            let log_sum = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            -(row[k] - log_sum)
        })
        .sum::<f64>()
        / 2.0;
    let disc_mi = 10f64.ln() - cross_ent;
    // Continuous: E[log N(c; μ, 1)] − E[log N(c; 0, 1)].
    let log_n = |x: f64, mu: f64| -0.5 * (x - mu).powi(2) - 0.5 * (2.0 * std::f64::consts::PI).ln();
    let (mut posterior, mut prior) = (0.0, 0.0);
    for i in 0..4 {
        posterior += log_n(cont[i] as f64, means[i] as f64) / 2.0;
        prior += log_n(cont[i] as f64, 0.0) / 2.0;
    }
    let cont_mi = posterior - prior;
    assert!((read("disc_mi_est") - disc_mi).abs() < 1e-5, "disc_mi_est {} vs {disc_mi}", read("disc_mi_est"));
    assert!((read("disc_ent") - 10f64.ln()).abs() < 1e-6, "disc_ent {}", read("disc_ent"));
    assert!((read("cont_mi_est") - cont_mi).abs() < 1e-5, "cont_mi_est {} vs {cont_mi}", read("cont_mi_est"));
}

/// Trains `text` briefly at batch 16, logging every 10 iterations; returns the metrics records.
fn short_run(name: &str, text: &str, steps: u64) -> Vec<serde_json::Value> {
    let text = text.replace("display: 50", "display: 10");
    let c = compiled_text(name, &text, 16);
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        max_steps: Some(steps),
        epochs: None,
        seed: Some(3),
        data: "mnist".into(),
        resume: false,
        interrupt: None,
        device: graphc::train::TrainDevice::Cpu,
        loss_readback: None,
    };
    train::run(&c, &opts, &mut |_| {}).unwrap();
    assert!(dir.path().join("loss.png").exists() && dir.path().join("samples/step_000000.png").exists());
    let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn series(records: &[serde_json::Value], phase: &str, key: &str) -> Vec<f64> {
    records.iter().filter(|r| r["phase"] == phase).filter_map(|r| r[key].as_f64()).collect()
}

#[test]
fn infogan_short_run_learns_the_categorical_code() {
    let records = short_run("infogan.g", &file("graphs/infogan.g"), 100);
    let mi = series(&records, "discriminator", "disc_mi_est");
    assert!(records.iter().all(|r| r.as_object().unwrap().values().all(|v| v.as_f64().is_none_or(f64::is_finite))));
    // At initialization Q knows nothing of the code (estimate near 0); it must rise towards ln 10.
    let late = mi[mi.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(late > mi[0] + 0.3 && late <= 10f64.ln() + 1e-3, "disc_mi_est {mi:?}");
}

#[test]
fn dcgan_short_run_stays_finite_and_trains_both_players() {
    let records = short_run("dcgan.g", &file("graphs/dcgan.g"), 60);
    let d = series(&records, "discriminator", "d_real_loss");
    let g = series(&records, "generator", "g_loss");
    assert_eq!((d.len(), g.len()), (6, 6));
    assert!(d.iter().chain(&g).all(|v| v.is_finite()), "{d:?} {g:?}");
    // Neither player's loss is stuck: both move over the run.
    assert!(d.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-3) && g.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-3));
}
