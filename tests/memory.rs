//! Buffer planning: a planned training step computes exactly what the unplanned one does, in
//! less memory, and a non-finite value is still traced to the op that produced it. Fused steps
//! evaluated together (the executor's groups) compute exactly what the plan's order does.

use graphc::error::SourceFile;
use graphc::ir::Graph;
use graphc::schema::NetPhase;
use graphc::{build, compile, lower, train::init, CompileOptions, Compiled};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};
use graphc_runtime::Plan;

fn model(file: &str, batch: usize) -> (Compiled, Graph) {
    let src = SourceFile::new(file, std::fs::read_to_string(file).unwrap());
    let c = compile(&src, &CompileOptions { batch_size: Some(batch), ..CompileOptions::default() }).unwrap();
    let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: Some(batch) }).unwrap();
    (c, train)
}

/// Three steps of `plan` from a fixed initial state: the losses of each step and the final state.
fn three_steps(plan: Plan, train: &Graph, losses: &[&str]) -> (Vec<u32>, State) {
    let mut program = CpuProgram::new(plan);
    let mut state = State::default();
    init::fill_state(&mut state, &train.params, &[program.plan()], 11);
    let mut bits = Vec::new();
    for draw in 0..3 {
        program.run(&mut state, &init::synthetic_feeds(program.plan()), &NoiseKey { seed: 4, draw }).unwrap();
        for loss in losses {
            bits.push(program.value(&state, program.plan().output(loss).unwrap())[0].to_bits());
        }
    }
    (bits, state)
}

#[test]
fn planned_steps_match_unplanned_bit_for_bit_in_less_memory() {
    for file in ["graphs/vae.g", "graphs/dcgan.g", "graphs/infogan.g"] {
        let (c, train) = model(file, 4);
        for phase in &c.phases {
            let planned = graphc::training_plan(&train, phase, &c.passes);
            let mut unplanned = planned.clone();
            unplanned.memory = None;
            let report = lower::report(&planned);
            assert!(
                report.planned < report.unplanned,
                "{file} {}: planned {} vs unplanned {} elements",
                phase.name,
                report.planned,
                report.unplanned
            );
            let losses: Vec<&str> = phase.losses.iter().map(|l| l.blob.as_str()).collect();
            let (a, b) = (three_steps(planned, &train, &losses), three_steps(unplanned, &train, &losses));
            assert_eq!(a.0, b.0, "{file} {}: losses", phase.name);
            for (name, values) in &a.1.values {
                let same = values.iter().zip(&b.1.values[name]).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{file} {}: state {name}", phase.name);
            }
        }
    }
}

#[test]
fn planning_keeps_only_the_named_outputs_and_gives_write_backs_their_own_slots() {
    let (c, train) = model("graphs/vae.g", 2);
    let plan = graphc::training_plan(&train, &c.phases[0], &c.passes);
    let kept: Vec<&str> = plan.outputs.iter().map(|(n, _)| n.as_str()).collect();
    let losses: Vec<&str> = c.phases[0].losses.iter().map(|l| l.blob.as_str()).collect();
    assert_eq!(kept, losses);
    let memory = plan.memory.as_ref().unwrap();
    let slot = |b: graphc_runtime::BufId| memory.slot_of[b.0 as usize].unwrap();
    for (source, _) in &plan.writebacks {
        let sharing = plan.buffers.iter().enumerate().filter(|(i, _)| memory.slot_of[*i] == Some(slot(*source)));
        assert_eq!(sharing.count(), 1, "a write-back source shares its slot");
        assert_eq!(memory.slot_len[slot(*source) as usize], plan.buffers[source.0 as usize].numel());
    }
    for step in &plan.steps {
        assert!(step.inputs.iter().all(|b| memory.slot_of[b.0 as usize] != Some(slot(step.output))));
    }
}

#[test]
fn a_non_finite_value_is_traced_to_its_op_despite_reuse() {
    // log of a negative value: the NaN appears at the Log op, and every later value reads it.
    // (Without passes, so that the Log is a step of its own rather than part of a fused one.)
    let text = r#"
        layer { name: "data" type: "DummyData" top: "x"
                dummy_data_param { shape { dim: 2 dim: 3 } data_filler { type: "constant" value: 1 } } }
        layer { name: "fc" type: "InnerProduct" bottom: "x" top: "h" inner_product_param { num_output: 3 weight_filler { type: "constant" value: -1 } } }
        layer { name: "lg" type: "Log" bottom: "h" top: "l" }
        layer { name: "sq" type: "Power" bottom: "l" top: "s" power_param { power: 2 } }
        layer { name: "loss" type: "Reduction" bottom: "s" top: "loss" loss_weight: 1 }
        solver { max_iter: 1 phase { name: "train" loss { blob: "loss" weight: 1 } update: "fc" type: "SGD" base_lr: 0.1 } }
    "#;
    let src = SourceFile::new("nan.g", text);
    let c = compile(&src, &CompileOptions::default()).unwrap();
    let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: None }).unwrap();
    let mut program = CpuProgram::new(graphc::training_plan(&train, &c.phases[0], &[]));
    let mut state = State::default();
    init::fill_state(&mut state, &train.params, &[program.plan()], 1);
    let feeds = init::synthetic_feeds(program.plan());
    let noise = NoiseKey { seed: 0, draw: 0 };
    let before = state.clone();
    program.compute(&state, &feeds, &noise).unwrap();
    let loss = program.value(&state, program.plan().output("loss").unwrap())[0];
    assert!(loss.is_nan());
    let step = program.first_non_finite(&state, &feeds, &noise).unwrap().expect("a non-finite step");
    assert!(step.label.starts_with("lg ("), "{}", step.label);
    assert_eq!(state, before, "compute leaves the state alone");
}

/// Three steps of `plan`, grouped or in the plan's order: the losses' bits and the final state.
fn three_steps_ordered(plan: Plan, train: &Graph, losses: &[&str], grouped: bool) -> (Vec<u32>, State, usize) {
    let mut program = CpuProgram::new(plan);
    let mut state = State::default();
    init::fill_state(&mut state, &train.params, &[program.plan()], 7);
    let mut bits = Vec::new();
    for draw in 0..3 {
        let (feeds, noise) = (init::synthetic_feeds(program.plan()), NoiseKey { seed: 9, draw });
        match grouped {
            true => program.run(&mut state, &feeds, &noise).unwrap(),
            false => program.run_in_plan_order(&mut state, &feeds, &noise).unwrap(),
        }
        for loss in losses {
            bits.push(program.value(&state, program.plan().output(loss).unwrap())[0].to_bits());
        }
    }
    (bits, state, program.grouped_steps())
}

#[test]
fn grouped_fused_steps_match_the_plan_order_bit_for_bit() {
    for (file, batch) in [("graphs/vae.g", 4), ("graphs/dcgan.g", 4), ("graphs/infogan.g", 4), ("graphs/lenet.g", 16)] {
        let (c, train) = model(file, batch);
        for phase in &c.phases {
            let plan = graphc::training_plan(&train, phase, &c.passes);
            if file == "graphs/vae.g" {
                // Each decayed gradient (weight_decay 0.0005) is read only by its Adam moments.
                let chunk_only = CpuProgram::new(plan.clone()).chunk_only_steps();
                assert!(chunk_only > 0, "{file}: no output kept per chunk");
            }
            let losses: Vec<&str> = phase.losses.iter().map(|l| l.blob.as_str()).collect();
            let grouped = three_steps_ordered(plan.clone(), &train, &losses, true);
            let ordered = three_steps_ordered(plan, &train, &losses, false);
            // Adam's and SGD's updates of the large weights form groups in every phase here.
            assert!(grouped.2 >= 2, "{file} {}: {} grouped steps", phase.name, grouped.2);
            assert_eq!(grouped.0, ordered.0, "{file} {}: losses", phase.name);
            for (name, values) in &grouped.1.values {
                let same = values.iter().zip(&ordered.1.values[name]).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{file} {}: state {name}", phase.name);
            }
        }
    }
}
