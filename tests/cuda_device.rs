//! The CUDA backend on a real GPU, against the CPU backend: every step of every model file's
//! training programs, short seeded training runs, losses staged on the device, and the device
//! profile. They need a GPU, so they are ignored by `cargo test` (reported as ignored, not
//! passed); on a machine with one: `cargo test --test cuda_device -- --ignored`. Run without a
//! usable device they fail, saying why.
#![cfg(feature = "cuda")]

mod common;
mod fake_cuda;

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{build, compile, train::init, CompileOptions};
use graphc_runtime::backend::{Backend, Cpu};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::cuda::exec::CudaDevice;
use graphc_runtime::exec::{CpuProgram, State};
use graphc_runtime::Plan;

const MODELS: &[&str] = &["graphs/vae.g", "graphs/vae_2d.g", "graphs/dcgan.g", "graphs/infogan.g", "graphs/lenet.g"];

/// Set in the child process that runs these tests on the fake CUDA.
const ON_FAKE: &str = "GRAPHC_TEST_ON_FAKE_CUDA";

fn device() -> CudaDevice {
    let device = CudaDevice::open(0).unwrap_or_else(|why| panic!("no usable CUDA device: {why}"));
    println!("on {}", device.description());
    device
}

/// A phase's name, training plan and loss blobs.
type Phase = (String, Plan, Vec<String>);

/// Each phase of `file` at batch `batch`, and the parameters.
fn phases(file: &str, batch: usize) -> (Vec<Phase>, Vec<graphc::ir::ParamInfo>) {
    let src = SourceFile::read(file).unwrap();
    let c = compile(&src, &CompileOptions { batch_size: Some(batch), ..CompileOptions::default() }).unwrap();
    let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: Some(batch) }).unwrap();
    let plans = c
        .phases
        .iter()
        .map(|p| {
            let losses = p.losses.iter().map(|l| l.blob.clone()).collect();
            (format!("{file} {}", p.name), graphc::training_plan(&train, p, &c.passes), losses)
        })
        .collect();
    (plans, train.params)
}

/// Initial parameters, and the other state (optimizer moments, running statistics) positive, as
/// after some training. Not zeros: Adam's first step from zero moments is ±learning rate for
/// any gradient, however small, so where the exact gradient is zero (the bias of a layer that
/// BatchNorm follows) the summation order alone would decide which way each value moves.
fn mid_training_state(plan: &Plan, params: &[graphc::ir::ParamInfo]) -> State {
    let mut state = State::default();
    for buffer in &plan.buffers {
        if let graphc_runtime::BufferRole::State(name) = &buffer.role {
            if !params.iter().any(|p| &p.name == name) {
                let values = (0..buffer.numel()).map(|i| 0.01 * (1 + i % 7) as f32).collect();
                state.values.insert(name.clone(), values);
            }
        }
    }
    init::fill_state(&mut state, params, &[plan], 5);
    state
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn every_step_computes_what_the_cpu_backend_computes() {
    let mut gpu = device();
    let noise = NoiseKey { seed: 3, draw: 2 };
    for file in MODELS {
        let (plans, params) = phases(file, 8);
        for (what, plan, _) in plans {
            // Without slot sharing, and in the plan's order on the CPU, so that every step's
            // output can be read after the run.
            let mut unplanned = plan;
            unplanned.memory = None;
            let mut cpu = CpuProgram::new(unplanned.clone());
            let state = mid_training_state(cpu.plan(), &params);
            let feeds = init::synthetic_feeds(cpu.plan());
            cpu.compute_in_plan_order(&state, &feeds, &noise).unwrap();
            let mut program = gpu.program(unplanned.clone()).unwrap();
            let device_state = gpu.upload(&state).unwrap();
            gpu.compute(&mut program, &device_state, &feeds, &noise).unwrap();
            // A left-out broadcast's output is never written on the device: nothing to compare.
            let computed = unplanned.steps.iter().enumerate().filter(|(i, _)| !program.elides(*i));
            for step in computed.map(|(_, step)| step) {
                let expected = cpu.value(&state, step.output);
                let got = gpu.read(&program, &device_state, step.output).unwrap();
                common::assert_close(&what, &step.label, expected, &got, 1e-3);
            }
        }
    }
}

/// The losses of `steps` training steps of every phase of `file`, on `backend`: staged on the
/// device as the steps run and read back together at the end, as a training run reads them.
fn seeded_losses<B: Backend>(backend: &mut B, file: &str, steps: u64) -> Vec<f32> {
    let (plans, params) = phases(file, 16);
    let mut state = State::default();
    let plan_refs: Vec<&Plan> = plans.iter().map(|(_, p, _)| p).collect();
    init::fill_state(&mut state, &params, &plan_refs, 7);
    let feeds = init::synthetic_feeds(&plans[0].1);
    let mut programs: Vec<_> =
        plans.iter().map(|(_, plan, losses)| (backend.program(plan.clone()).unwrap(), losses)).collect();
    let mut state = backend.upload(state).unwrap();
    for draw in 0..steps {
        for (program, names) in &mut programs {
            backend.compute(program, &state, &feeds, &NoiseKey { seed: 1, draw }).unwrap();
            for name in names.iter() {
                let id = B::plan(program).output(name).unwrap();
                backend.stage_first(program, &state, id).unwrap();
            }
            B::commit(program, &mut state);
        }
    }
    let mut losses = Vec::new();
    backend.read_staged(&mut losses).unwrap();
    losses
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_seeded_run_gives_the_cpu_backends_losses() {
    // Three iterations: beyond them InfoGAN's losses drift apart (by 1.5% at the sixth on the
    // fake CUDA), as two runs whose sums are ordered differently do: a gradient near zero
    // whose sign the order decides makes Adam's first step go either way by the learning rate.
    const ITERATIONS: u64 = 3;
    let mut gpu = device();
    for file in MODELS {
        let cpu = seeded_losses(&mut Cpu::default(), file, ITERATIONS);
        let cuda = seeded_losses(&mut gpu, file, ITERATIONS);
        assert_eq!(cpu.len(), cuda.len());
        for (i, (a, b)) in cpu.iter().zip(&cuda).enumerate() {
            let message = format!("{file}: loss {i}: cpu {a} vs cuda {b}\ncpu  {cpu:?}\ncuda {cuda:?}");
            assert!((a - b).abs() <= 1e-2 * a.abs().max(1.0), "{message}");
        }
        println!("{file}: {} losses agree; last cpu {:?} cuda {:?}", cpu.len(), cpu.last(), cuda.last());
    }
}

/// The first phase of a model file at batch 8 on the device: its plan and loss blobs, synthetic
/// feeds, its program, and a filled state.
struct FirstPhase {
    plan: Plan,
    losses: Vec<String>,
    feeds: std::collections::HashMap<&'static str, Vec<f32>>,
    program: graphc_runtime::cuda::exec::CudaProgram,
    state: graphc_runtime::cuda::exec::DeviceState,
}

fn first_phase(gpu: &mut CudaDevice, file: &str) -> FirstPhase {
    let (mut plans, params) = phases(file, 8);
    let (_, plan, losses) = plans.swap_remove(0);
    let mut state = State::default();
    init::fill_state(&mut state, &params, &[&plan], 7);
    let feeds = init::synthetic_feeds(&plan);
    let program = gpu.program(plan.clone()).unwrap();
    let state = gpu.upload(state).unwrap();
    FirstPhase { plan, losses, feeds, program, state }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn staged_values_come_back_in_order_past_the_device_slots() {
    let mut gpu = device();
    let FirstPhase { plan, losses, feeds, mut program, state } = first_phase(&mut gpu, "graphs/vae.g");
    let ids: Vec<_> = losses.iter().map(|name| plan.output(name).unwrap()).collect();
    let mut expected: Vec<f32> = Vec::new();
    // More values than the device keeps before it copies them out, over several runs.
    for draw in 0..3 {
        gpu.compute(&mut program, &state, &feeds, &NoiseKey { seed: 1, draw }).unwrap();
        let firsts: Vec<f32> = ids.iter().map(|&id| gpu.read_first(&program, &state, id).unwrap()).collect();
        for _ in 0..2000 {
            for &id in &ids {
                gpu.stage_first(&program, &state, id).unwrap();
            }
            expected.extend(&firsts);
        }
    }
    let mut got = Vec::new();
    gpu.read_staged(&mut got).unwrap();
    assert_eq!(got, expected);
    gpu.read_staged(&mut got).unwrap();
    assert!(got.is_empty(), "a read leaves nothing staged");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_profiled_program_times_every_unit_of_its_schedule() {
    let mut gpu = device();
    let FirstPhase { plan, feeds, mut program, state, .. } = first_phase(&mut gpu, "graphs/infogan.g");
    program.enable_profile();
    for draw in 0..2 {
        gpu.compute(&mut program, &state, &feeds, &NoiseKey { seed: 1, draw }).unwrap();
    }
    let profile = program.profile().unwrap();
    let calls: u64 = profile.values().map(|(_, n)| n).sum();
    let total: f64 = profile.values().map(|(t, _)| t.as_secs_f64()).sum();
    println!("{} kinds, {calls} timed units, {:.3} ms of device time per run", profile.len(), total * 500.0);
    assert!(profile.keys().any(|k| k.starts_with("fused group of")), "{profile:?}");
    let units = graphc_runtime::cuda::lowering::lower(&plan).schedule.len() as u64;
    assert_eq!(calls, 2 * units, "every unit of both runs is timed");
    assert!(total > 0.0, "{profile:?}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_program_replays_its_graphs_bit_for_bit() {
    let mut gpu = device();
    // Four runs of InfoGAN's first phase (noise included), each committed, so that its
    // parameters alternate between two allocations: two graphs, each replayed once.
    let losses_of_four_runs = |gpu: &mut CudaDevice| {
        let FirstPhase { plan, losses, feeds, mut program, mut state } = first_phase(gpu, "graphs/infogan.g");
        let ids: Vec<_> = losses.iter().map(|name| plan.output(name).unwrap()).collect();
        for draw in 0..4 {
            gpu.compute(&mut program, &state, &feeds, &NoiseKey { seed: 1, draw }).unwrap();
            for &id in &ids {
                gpu.stage_first(&program, &state, id).unwrap();
            }
            program.commit(&mut state);
        }
        let mut values = Vec::new();
        gpu.read_staged(&mut values).unwrap();
        (values, program.graphs_captured())
    };
    let (graphed, captured) = losses_of_four_runs(&mut gpu);
    gpu.set_graphs(false);
    let (issued, none) = losses_of_four_runs(&mut gpu);
    assert_eq!((captured, none), (2, 0));
    assert_eq!(graphed, issued, "replayed graphs compute what the kernels issued one by one do");
    println!("{} losses identical with and without graphs", graphed.len());
}

/// The tests above, run with `--ignored` in a child process whose library path starts with the
/// fake CUDA (tests/fake_cuda: host memory, the kernels' CUDA C compiled for the CPU, sgemm on
/// the CPU): so graphc's CUDA executor runs unchanged through cudarc on a machine without a GPU.
/// Proves the host side (driver calls, argument passing, kernel cache, staging, events); says
/// nothing of speed, nor of what a GPU runs concurrently.
#[test]
fn the_gpu_tests_pass_on_the_fake_cuda() {
    if std::env::var_os(ON_FAKE).is_some() {
        return;
    }
    let Some(dir) = fake_cuda::libraries() else { return };
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--test-threads", "1", "--nocapture"])
        .env("LD_LIBRARY_PATH", fake_cuda::library_path(dir))
        .env(ON_FAKE, "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{stdout}{stderr}");
    assert!(output.status.success(), "the GPU tests failed on the fake CUDA:\n{stdout}\n{stderr}");
    assert!(stdout.contains("fake CUDA device on the CPU"), "the child did not run on the fake CUDA:\n{stdout}");
    assert!(stdout.contains("test result: ok. 5 passed"), "{stdout}");
}
