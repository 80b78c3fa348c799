//! Every CUDA kernel compiles to PTX with NVRTC, for sm_80 and sm_90: the hand-written ones and
//! those the CUDA lowering generates (fused nodes, fused reductions, epilogues, lone elementwise
//! ops) for every model file's training programs. Needs libnvrtc (CI installs the PyPI
//! wheel `nvidia-cuda-nvrtc-cu12`), not a GPU; where it is missing the test says so and, outside
//! CI, returns without checking anything (it is then not a pass).
#![cfg(feature = "cuda")]

use std::collections::BTreeMap;

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{build, compile, CompileOptions};
use graphc_runtime::cuda::codegen::{translation_unit, KernelSource};
use graphc_runtime::cuda::lowering::lower;
use graphc_runtime::cuda::{entry_points, hand_written};
use graphc_runtime::device::compile_ptx;

const MODELS: &[&str] = &["graphs/vae.g", "graphs/vae_2d.g", "graphs/dcgan.g", "graphs/infogan.g", "graphs/lenet.g"];

/// The kernels the CUDA lowering generates for every phase's training plan, by name.
fn generated_kernels() -> BTreeMap<String, KernelSource> {
    let mut kernels = BTreeMap::new();
    for path in MODELS {
        let src = SourceFile::read(path).unwrap();
        let c = compile(&src, &CompileOptions::default()).unwrap();
        let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: None }).unwrap();
        for phase in &c.phases {
            for (name, kernel) in lower(&graphc::training_plan(&train, phase, &c.passes)).generated {
                kernels.insert(name, kernel.source());
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
        // All generated kernels in one translation unit, as the executor compiles a program's.
        let kernels: Vec<KernelSource> = generated.values().cloned().collect();
        let Some(code) = ptx(&translation_unit(&kernels), arch, "the generated kernels") else { return };
        for kernel in &kernels {
            assert!(code.contains(&format!(".entry {}(", kernel.name)), "{arch}: no entry {}", kernel.name);
        }
    }
    println!(
        "{} hand-written and {} generated kernels compiled for sm_80 and sm_90",
        entry_points(&hand).len(),
        generated.len()
    );
}
