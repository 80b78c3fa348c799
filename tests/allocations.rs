//! Once warmed up, a training step allocates nothing: every model file's phases run one more
//! step under a counting allocator. The buffer plan allocates the temporaries once; the
//! kernels keep their scratch (GEMM packing, im2col, partial sums, fused blocks) per thread.

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{build, compile, train::init, training_plan, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting allocations (and reallocations) while `COUNTING` is set.
struct Counting;

static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Steps run before the counted one.
const WARM_UP_STEPS: u64 = 2;

/// Allocations made by each phase's training step of `file` at batch 8, after warm-up steps.
fn allocations_of_warmed_up_steps(file: &str) -> Vec<(String, usize)> {
    let src = SourceFile::read(file).expect("model file");
    let batch = Some(8);
    let compiled = compile(&src, &CompileOptions { batch_size: batch, ..CompileOptions::default() }).expect("compiles");
    let train = build::build(&compiled.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: batch })
        .expect("builds");
    let mut programs: Vec<CpuProgram> =
        compiled.phases.iter().map(|p| CpuProgram::new(training_plan(&train, p, &compiled.passes))).collect();
    let mut state = State::default();
    init::fill_state(&mut state, &train.params, &programs.iter().map(|p| p.plan()).collect::<Vec<_>>(), 1);
    let mut counts = Vec::new();
    for (phase, program) in compiled.phases.iter().zip(&mut programs) {
        let feeds = init::synthetic_feeds(program.plan());
        for draw in 0..WARM_UP_STEPS {
            program.run(&mut state, &feeds, &NoiseKey { seed: 1, draw }).expect("warm-up step");
        }
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        let result = program.run(&mut state, &feeds, &NoiseKey { seed: 1, draw: WARM_UP_STEPS });
        COUNTING.store(false, Ordering::Relaxed);
        result.expect("counted step");
        counts.push((phase.name.clone(), ALLOCATIONS.load(Ordering::Relaxed)));
    }
    counts
}

#[test]
fn warmed_up_training_steps_allocate_nothing() {
    // One test, so that no other test allocates while the counter runs. The steps run on the one
    // thread of a pool of their own: work stays on that thread, so the warm-up steps grow exactly
    // the scratch the counted step uses. (With more threads each worker grows its own scratch on
    // the first steps it takes part in; and a parallel kernel started from outside a pool queues
    // its job through rayon's injector, which allocates a block now and then.)
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread pool");
    for file in ["graphs/vae.g", "graphs/dcgan.g", "graphs/infogan.g", "graphs/lenet.g"] {
        for (phase, count) in pool.install(|| allocations_of_warmed_up_steps(file)) {
            assert_eq!(count, 0, "{file}, phase {phase}: {count} allocations in a warmed-up step");
        }
    }
}
