//! Every CUDA kernel compiles to PTX with NVRTC, for sm_80 and sm_90: the hand-written ones and
//! those generated for every fused node, fused reduction and epilogue of every model file's
//! training programs. Needs libnvrtc (CI installs the PyPI
//! wheel `nvidia-cuda-nvrtc-cu12`), not a GPU; where it is missing the test says so and, outside
//! CI, returns without checking anything (it is then not a pass).
#![cfg(feature = "cuda")]

use std::collections::BTreeMap;

use graphc::error::SourceFile;
use graphc::ir::Op;
use graphc::schema::NetPhase;
use graphc::{autodiff, build, compile, CompileOptions};
use graphc_runtime::cuda::codegen::{bias_activation_kernel, fused_kernel, fused_reduce_kernel, KernelSource};
use graphc_runtime::cuda::{entry_points, hand_written};
use graphc_runtime::device::compile_ptx;

const MODELS: &[&str] = &["graphs/vae.g", "graphs/vae_2d.g", "graphs/dcgan.g", "graphs/infogan.g", "graphs/lenet.g"];

/// The kernels generated for every phase's level-2 training program, by name.
fn generated_kernels() -> BTreeMap<String, KernelSource> {
    let mut kernels = BTreeMap::new();
    for path in MODELS {
        let src = SourceFile::read(path).unwrap();
        let c = compile(&src, &CompileOptions::default()).unwrap();
        let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: None }).unwrap();
        for phase in &c.phases {
            let program = autodiff::training_program_with(&train, phase, &c.passes);
            for id in program.topo_order() {
                let kernel = match &program.node(id).op {
                    Op::Fused(expr) => fused_kernel(expr),
                    Op::FusedReduce { expr, .. } => fused_reduce_kernel(expr),
                    Op::Epilogue { activation, .. } => bias_activation_kernel(*activation),
                    _ => continue,
                };
                kernels.insert(kernel.name.clone(), kernel);
            }
        }
    }
    kernels
}

/// PTX for `source`, or `None` when libnvrtc is missing outside CI (the caller then skips).
fn ptx(source: &str, arch: &'static str, what: &str) -> Option<String> {
    match compile_ptx(source, arch) {
        Ok(ptx) => Some(ptx),
        Err(None) if std::env::var_os("CI").is_none() => {
            println!("SKIPPED (not a pass): libnvrtc not found; set LD_LIBRARY_PATH to the CUDA NVRTC library");
            None
        }
        Err(None) => panic!("libnvrtc not found in CI: .ci/run installs nvidia-cuda-nvrtc-cu12"),
        Err(Some(log)) => panic!("{arch}: {what} does not compile:\n{log}\n{source}"),
    }
}

#[test]
fn every_kernel_compiles_to_ptx_for_sm_80_and_sm_90() {
    let generated = generated_kernels();
    assert!(generated.len() > 20, "only {} generated kernels", generated.len());
    let hand = hand_written();
    for arch in ["compute_80", "compute_90"] {
        let Some(code) = ptx(&hand, arch, "the hand-written kernels") else { return };
        for name in entry_points(&hand) {
            assert!(code.contains(&format!(".entry {name}(")), "{arch}: no entry {name}");
        }
        for kernel in generated.values() {
            let Some(code) = ptx(&kernel.source, arch, &kernel.name) else { return };
            assert!(code.contains(&format!(".entry {}(", kernel.name)), "{arch}: no entry in\n{code}");
        }
    }
    println!(
        "{} hand-written and {} generated kernels compiled for sm_80 and sm_90",
        entry_points(&hand).len(),
        generated.len()
    );
}
