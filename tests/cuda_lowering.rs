//! The CUDA backend's lowering, checked on the host (no GPU needed) for every model file's
//! training programs:
//! - every launch passes arguments of its kernel's parameter types, in order (parsed from the
//!   CUDA C of the hand-written and generated kernels);
//! - the device operations, run with the kernels' own CUDA C compiled for the CPU
//!   (`fake_cuda`) and cuBLAS emulated, compute what the CPU backend computes, step by step,
//!   both in the plan's order and in the schedule a run takes (groups of fused steps as one
//!   launch). Every allocation lies between guards of canaries, so that an access out of
//!   bounds is found.
//!
//! So the layouts (the convolutions' unfold-GEMM-permute, the row-major GEMM as cuBLAS's
//! column-major one, the views of slices, concatenations, broadcasts and reductions), the
//! kernels' arithmetic and indexing, the launch configurations' grid-stride loops and the
//! argument structs' layouts are tested here; what only a GPU can test is the CUDA C running
//! on one under NVRTC (tests/nvrtc.rs compiles it) and the executor's calls into the driver.

mod common;
mod fake_cuda;
#[path = "fake_cuda/kernels.rs"]
mod fake_kernels;

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::sync::OnceLock;

use fake_kernels::CpuKernels;
use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{build, compile, train::init, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::cuda::launch::launch_config;
use graphc_runtime::cuda::lowering::{lower, Arg, Base, DeviceOp, Gemm, Lowered, Place, Scheduled};
use graphc_runtime::cuda::{hand_written, signatures};
use graphc_runtime::exec::{CpuProgram, State};
use graphc_runtime::{BufferRole, Plan};

const MODELS: &[&str] = &["graphs/vae.g", "graphs/vae_2d.g", "graphs/dcgan.g", "graphs/infogan.g", "graphs/lenet.g"];

/// Every phase's training plan of `file` at batch `batch`, with its parameters.
fn training_plans(file: &str, batch: usize) -> Vec<(String, Plan, Vec<graphc::ir::ParamInfo>)> {
    let src = SourceFile::read(file).unwrap();
    let c = compile(&src, &CompileOptions { batch_size: Some(batch), ..CompileOptions::default() }).unwrap();
    let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: Some(batch) }).unwrap();
    c.phases
        .iter()
        .map(|phase| {
            (format!("{file} {}", phase.name), graphc::training_plan(&train, phase, &c.passes), train.params.clone())
        })
        .collect()
}

#[test]
fn every_launch_passes_its_kernels_parameter_types() {
    let mut launches = 0;
    for file in MODELS {
        for (what, plan, _) in training_plans(file, 4) {
            let lowered = lower(&plan);
            let parameters = kernel_parameters(&lowered);
            let groups = lowered.schedule.iter().filter_map(|unit| match unit {
                Scheduled::Group { members, launch } => Some((&plan.steps[members[0]], std::slice::from_ref(launch))),
                Scheduled::Step(_) => None,
            });
            for (step, ops) in plan.steps.iter().zip(lowered.steps.iter().map(|ops| &ops[..])).chain(groups) {
                for op in ops {
                    let DeviceOp::Launch { kernel, args, .. } = op else { continue };
                    let expected = parameters.get(kernel).unwrap_or_else(|| panic!("{what}: no kernel {kernel}"));
                    let passed: Vec<&str> = args.iter().map(Arg::c_type).collect();
                    assert_eq!(&passed, expected, "{what}: {} launches {kernel}", step.label);
                    launches += 1;
                }
            }
        }
    }
    assert!(launches > 1000, "only {launches} launches checked");
}

/// Elements of canary before and after every allocation: a kernel's access a little out of
/// bounds reads a canary (a NaN, which spoils the result compared) or overwrites one (found
/// after the launch).
const GUARD: usize = 1024;

/// The canary's bits: a quiet NaN no computation produces.
const CANARY: u32 = 0x7fc0_dead;

/// Device memory as the kernels on the CPU see it: one allocation per buffer and one workspace,
/// each between two guards of canaries.
struct Memory {
    buffers: Vec<Vec<f32>>,
    workspace: Vec<f32>,
}

impl Memory {
    /// `values` between two guards.
    fn guarded(values: &[f32]) -> Vec<f32> {
        let canary = f32::from_bits(CANARY);
        let mut region = vec![canary; GUARD];
        region.extend_from_slice(values);
        region.extend(std::iter::repeat_n(canary, GUARD));
        region
    }

    fn region(&mut self, base: Base) -> &mut Vec<f32> {
        match base {
            Base::Buffer(id) => &mut self.buffers[id.0 as usize],
            Base::Workspace => &mut self.workspace,
        }
    }

    /// The allocation's values, without its guards.
    fn values(&mut self, base: Base) -> &mut [f32] {
        let region = self.region(base);
        let len = region.len();
        &mut region[GUARD..len - GUARD]
    }

    /// The address of `place`, which must lie inside its allocation.
    fn address(&mut self, place: Place) -> *mut f32 {
        let values = self.values(place.base);
        assert!(place.offset <= values.len(), "a pointer at {} of {} elements", place.offset, values.len());
        values[place.offset..].as_mut_ptr()
    }

    /// Fails if a canary of `base`'s guards was overwritten.
    fn check_guards(&mut self, base: Base, kernel: &str) {
        let region = self.region(base);
        let len = region.len();
        let (before, after) = (&region[..GUARD], &region[len - GUARD..]);
        for (side, guard) in [("before", before), ("after", after)] {
            let hit = guard.iter().position(|v| v.to_bits() != CANARY);
            assert!(hit.is_none(), "{kernel} wrote {side} its allocation ({base:?}, guard element {hit:?})");
        }
    }
}

/// The parameter types of every kernel of `lowered` (hand-written and generated), by name.
fn kernel_parameters(lowered: &Lowered) -> HashMap<String, Vec<String>> {
    let hand = hand_written();
    let mut parameters: HashMap<String, Vec<String>> =
        signatures(&hand).into_iter().map(|(name, types)| (name.to_string(), types)).collect();
    for generated in lowered.generated.values() {
        let source = generated.source();
        for (name, types) in signatures(&source.function) {
            parameters.insert(name.to_string(), types);
        }
    }
    parameters
}

/// Runs `kernel` on the CPU over the grid the CUDA executor would launch for `threads` threads
/// (on a one-multiprocessor device, so that large launches loop grid-stride), after checking
/// that `args` match its parameter types, then checks the guards of every allocation it was
/// given.
fn launch_on_cpu(
    kernels: &CpuKernels,
    memory: &mut Memory,
    parameters: &HashMap<String, Vec<String>>,
    (kernel, threads, args): (&str, u64, &[Arg]),
) {
    let expected = parameters.get(kernel).unwrap_or_else(|| panic!("no kernel {kernel}"));
    let passed: Vec<&str> = args.iter().map(Arg::c_type).collect();
    assert_eq!(&passed, expected, "{kernel}'s arguments");
    let mut values = args.to_vec();
    let mut pointers: Vec<*mut f32> =
        args.iter().filter_map(|a| if let Arg::Ptr(p) = a { Some(memory.address(*p)) } else { None }).collect();
    let mut next_pointer = pointers.iter_mut();
    let mut addresses: Vec<*mut c_void> = values
        .iter_mut()
        .map(|value| -> *mut c_void {
            match value {
                Arg::Ptr(_) => std::ptr::from_mut(next_pointer.next().unwrap()).cast(),
                Arg::U64(v) => std::ptr::from_mut(v).cast(),
                Arg::I64(v) => std::ptr::from_mut(v).cast(),
                Arg::I32(v) => std::ptr::from_mut(v).cast(),
                Arg::F32(v) => std::ptr::from_mut(v).cast(),
                Arg::F64(v) => std::ptr::from_mut(v).cast(),
                Arg::View(v) => std::ptr::from_mut(v).cast(),
                Arg::Pool(v) => std::ptr::from_mut(v).cast(),
                Arg::Conv(v) => std::ptr::from_mut(v).cast(),
            }
        })
        .collect();
    let (grid, block) = launch_config(threads, 1);
    // SAFETY: the arguments match the kernel's parameter types (checked above), the structs
    // are the `#[repr(C)]` mirrors of the CUDA C ones, and every pointer points into an
    // allocation between two guards, which the check below and the comparison of results
    // with the CPU backend's hold the kernel to.
    unsafe { kernels.launch(kernel, grid, block, &mut addresses) };
    for arg in args {
        if let Arg::Ptr(p) = arg {
            memory.check_guards(p.base, kernel);
        }
    }
}

/// cuBLAS sgemm (column-major, alpha 1, beta 0), summed in f64, every operand checked to lie
/// inside its allocation.
fn emulate_gemm(memory: &mut Memory, g: &Gemm) {
    let (lda, ldb, ldc) = (g.a.1, g.b.1, g.c.1);
    assert!(lda >= (if g.trans_a { g.k } else { g.m }).max(1), "lda");
    assert!(ldb >= (if g.trans_b { g.n } else { g.k }).max(1), "ldb");
    assert!(ldc >= g.m.max(1), "ldc");
    let mut operand = |place: Place, ld: usize, rows: usize, cols: usize| -> Vec<f32> {
        let values = memory.values(place.base);
        let end = place.offset + (cols - 1) * ld + rows;
        assert!(end <= values.len(), "an operand ends at {end} of {} elements", values.len());
        values[place.offset..end].to_vec()
    };
    let (a_rows, a_cols) = if g.trans_a { (g.k, g.m) } else { (g.m, g.k) };
    let (b_rows, b_cols) = if g.trans_b { (g.n, g.k) } else { (g.k, g.n) };
    let (a, b) = (operand(g.a.0, lda, a_rows, a_cols), operand(g.b.0, ldb, b_rows, b_cols));
    let mut c = operand(g.c.0, ldc, g.m, g.n);
    for j in 0..g.n {
        for i in 0..g.m {
            let mut sum = 0.0f64;
            for l in 0..g.k {
                let x = if g.trans_a { a[l + i * lda] } else { a[i + l * lda] };
                let y = if g.trans_b { b[j + l * ldb] } else { b[l + j * ldb] };
                sum += x as f64 * y as f64;
            }
            c[i + j * ldc] = sum as f32;
        }
    }
    let offset = g.c.0.offset;
    memory.values(g.c.0.base)[offset..offset + c.len()].copy_from_slice(&c);
}

/// What runs the device operations: the kernels on the CPU, their parameter types, the noise.
struct Emulator<'a> {
    kernels: &'a CpuKernels,
    parameters: HashMap<String, Vec<String>>,
    noise: NoiseKey,
}

impl Emulator<'_> {
    fn run(&self, memory: &mut Memory, op: &DeviceOp) {
        match op {
            DeviceOp::Launch { kernel, threads, args } => {
                launch_on_cpu(self.kernels, memory, &self.parameters, (kernel, *threads, args));
            }
            DeviceOp::Gemm(g) => emulate_gemm(memory, g),
            DeviceOp::Copy { from, to, len } => {
                let source = memory.values(from.base)[from.offset..from.offset + len].to_vec();
                memory.values(to.base)[to.offset..to.offset + len].copy_from_slice(&source);
            }
            DeviceOp::Sample { dist, stream, out, len, row_len } => {
                let region = memory.values(Base::Buffer(*out));
                assert_eq!(region.len(), *len, "noise fills its whole buffer");
                graphc_runtime::cpu::sample::sample(*dist, *stream, &self.noise, region, *row_len);
            }
        }
    }
}

/// The order the emulator runs a lowered plan in.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// Each step's operations in the plan's order (how the first non-finite step is found).
    PlanSteps,
    /// The schedule a run takes, groups of fused steps as one launch.
    Schedule,
}

/// The batch size of the emulated programs.
const BATCH: usize = 3;

/// The kernels of every model file's training programs at [`BATCH`] compiled for the CPU, once
/// for all tests; `None` where there is no C++ compiler (outside CI).
fn cpu_kernels() -> Option<&'static CpuKernels> {
    static KERNELS: OnceLock<Option<CpuKernels>> = OnceLock::new();
    KERNELS
        .get_or_init(|| {
            let mut generated = BTreeMap::new();
            for file in MODELS {
                for (_, plan, _) in training_plans(file, BATCH) {
                    generated.extend(lower(&plan).generated.values().map(|g| (g.source().name, g.source())));
                }
            }
            let mut unit = hand_written();
            for kernel in generated.values() {
                unit.push('\n');
                unit.push_str(&kernel.function);
            }
            CpuKernels::compile(&unit)
        })
        .as_ref()
}

/// Runs every model file's training programs in `order` with the kernels on the CPU, comparing
/// the outputs of each unit with the CPU backend's as soon as they are written; returns the
/// number of group launches, or `None` where the kernels could not be compiled.
fn emulate_in(order: Order) -> Option<usize> {
    let kernels = cpu_kernels()?;
    let noise = NoiseKey { seed: 3, draw: 2 };
    let mut groups = 0;
    for file in MODELS {
        for (what, plan, params) in training_plans(file, BATCH) {
            let mut unplanned = plan.clone();
            unplanned.memory = None;
            let mut cpu = CpuProgram::new(unplanned);
            let mut state = State::default();
            init::fill_state(&mut state, &params, &[cpu.plan()], 5);
            let feeds = init::synthetic_feeds(cpu.plan());
            // In the plan's order, so that every step's output is kept to compare.
            cpu.compute_in_plan_order(&state, &feeds, &noise).unwrap();

            let lowered = lower(&plan);
            let emulator = Emulator { kernels, parameters: kernel_parameters(&lowered), noise };
            let buffers = plan
                .buffers
                .iter()
                .map(|b| match &b.role {
                    BufferRole::State(name) => Memory::guarded(&state.values[name]),
                    BufferRole::Feed(name) => Memory::guarded(&feeds[name.as_str()]),
                    BufferRole::Temp => Memory::guarded(&vec![f32::NAN; b.numel()]),
                })
                .collect();
            let workspace = Memory::guarded(&vec![f32::NAN; lowered.workspace]);
            let mut memory = Memory { buffers, workspace };
            let units: Vec<(Vec<usize>, &[DeviceOp])> = match order {
                Order::PlanSteps => lowered.steps.iter().enumerate().map(|(i, ops)| (vec![i], &ops[..])).collect(),
                Order::Schedule => lowered
                    .schedule
                    .iter()
                    .map(|unit| match unit {
                        Scheduled::Step(i) => (vec![*i], &lowered.steps[*i][..]),
                        Scheduled::Group { members, launch } => (members.clone(), std::slice::from_ref(launch)),
                    })
                    .collect(),
            };
            for (steps, ops) in units {
                groups += usize::from(steps.len() > 1);
                ops.iter().for_each(|op| emulator.run(&mut memory, op));
                // A left-out broadcast's output is never written (its readers read its source):
                // nothing to compare, and it stays NaN, so that a reader of it would show.
                for step in steps.iter().filter(|i| !lowered.elided.contains(i)).map(|&i| &plan.steps[i]) {
                    let expected = cpu.value(&state, step.output);
                    let got = memory.values(Base::Buffer(step.output));
                    common::assert_close(&format!("{what} ({order:?})"), &step.label, expected, got, 2e-4);
                    // The next steps read the CPU's values, so that a difference is reported where
                    // it arises rather than where it has grown past the tolerance.
                    got.copy_from_slice(expected);
                }
            }
        }
    }
    Some(groups)
}

#[test]
fn the_device_operations_on_the_cpu_compute_what_the_cpu_backend_computes() {
    if let Some(groups) = emulate_in(Order::PlanSteps) {
        assert_eq!(groups, 0);
    }
}

#[test]
fn the_schedule_with_its_fused_groups_on_the_cpu_computes_what_the_cpu_backend_computes() {
    let Some(groups) = emulate_in(Order::Schedule) else { return };
    println!("{groups} group launches");
    assert!(groups > 50, "only {groups} groups of fused steps were launched");
}

#[test]
fn batchnorms_broadcast_statistics_are_read_in_place() {
    for (what, plan, _) in training_plans("graphs/infogan.g", 64) {
        let lowered = lower(&plan);
        // Every BatchNorm broadcasts its mean and variance (and their gradients) over the batch:
        // about fifty broadcasts a phase, none of them launched.
        assert!(lowered.elided.len() >= 40, "{what}: only {} broadcasts left out", lowered.elided.len());
        for &step in &lowered.elided {
            assert!(matches!(plan.steps[step].kernel, graphc_runtime::Kernel::Broadcast { .. }), "{what}: step {step}");
            assert!(lowered.steps[step].is_empty(), "{what}: a left-out step has operations");
        }
        let ops: usize = lowered
            .schedule
            .iter()
            .map(|unit| match unit {
                Scheduled::Step(i) => lowered.steps[*i].len(),
                Scheduled::Group { .. } => 1,
            })
            .sum();
        println!("{what}: {ops} device operations a step, {} broadcasts left out", lowered.elided.len());
    }
}
