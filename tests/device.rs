//! `--device`: asking for CUDA where it cannot run is one clear line and a failure, never a
//! panic; `auto` runs on the CPU and says why. These assertions hold on a machine without a GPU,
//! as CI's; on one with a GPU, `auto` and `cuda` train there instead (tests/cuda_device.rs).
//! With the fake CUDA first on the library path (tests/fake_cuda), `graphc run --device cuda`
//! goes through the whole CUDA path of the trainer: it trains as the CPU does, resumes from its
//! own checkpoints, and stops at a non-finite loss read back late, then traces it.

mod fake_cuda;

use std::path::Path;
use std::process::{Command, Output};

fn run(device: &str, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_graphc"))
        .args(["run", "graphs/vae.g", "--max-steps", "1", "--batch-size", "4", "--device", device, "--out"])
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn cuda_without_a_usable_gpu_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    for device in ["cuda", "cuda:1"] {
        let out = run(device, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{device}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{device}: {stderr}");
        assert!(stderr.starts_with(&format!("error: --device {}", if device == "cuda" { "cuda:0" } else { device })));
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn auto_falls_back_to_the_cpu_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let out = run("auto", dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.lines().next().unwrap().starts_with("note: running on the CPU ("), "{stderr}");
}

#[test]
fn an_unknown_device_is_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = run("tpu", dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use auto, cpu, cuda or cuda:N"));
}

/// `graphc ARGS` with the fake CUDA first on the library path; `None` where it cannot be built.
fn on_fake_cuda(args: &[&str]) -> Option<Output> {
    let dir = fake_cuda::libraries()?;
    let output = Command::new(env!("CARGO_BIN_EXE_graphc"))
        .args(args)
        .env("LD_LIBRARY_PATH", fake_cuda::library_path(dir))
        .output()
        .unwrap();
    Some(output)
}

/// The losses of a run's metrics file, line by line, by name.
fn losses(run: &Path) -> Vec<Vec<(String, f64)>> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let record: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
            let losses = record
                .into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "phase" | "step" | "epoch" | "images_per_sec"));
            losses.map(|(k, v)| (k, v.as_f64().unwrap())).collect()
        })
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn on_the_fake_cuda_a_run_trains_as_on_the_cpu_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (cpu, cuda, resumed) = (dir.path().join("cpu"), dir.path().join("cuda"), dir.path().join("resumed"));
    let args = |device: &'static str, out: &Path, steps: &'static str| {
        let out = out.to_str().unwrap().to_string();
        move |extra: &[&str]| {
            let mut all = vec!["run", "graphs/vae.g", "--batch-size", "16", "--max-steps", steps, "--device", device];
            all.extend(["--out", &out]);
            all.extend(extra);
            on_fake_cuda(&all)
        }
    };
    let Some(on_gpu) = args("auto", &cuda, "20")(&[]) else { return };
    assert!(on_gpu.status.success(), "{}", stderr(&on_gpu));
    // `auto` takes the (fake) GPU.
    assert!(stderr(&on_gpu).contains("device: fake CUDA device on the CPU"), "{}", stderr(&on_gpu));
    let on_cpu = args("cpu", &cpu, "20")(&[]).unwrap();
    assert!(on_cpu.status.success(), "{}", stderr(&on_cpu));
    let (expected, got) = (losses(&cpu), losses(&cuda));
    assert_eq!(expected.len(), got.len());
    for (e, g) in expected.iter().flatten().zip(got.iter().flatten()) {
        assert_eq!(e.0, g.0);
        assert!((e.1 - g.1).abs() <= 1e-4 * e.1.abs().max(1.0), "{}: cpu {} vs cuda {}", e.0, e.1, g.1);
    }
    // Ten iterations, then resumed from the device's checkpoint to twenty: the same losses as
    // the run that was not interrupted (the fake device, like the CPU, is deterministic).
    let first = args("cuda", &resumed, "10")(&[]).unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let second = args("cuda", &resumed, "20")(&["--resume"]).unwrap();
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stderr(&second).contains("resuming from"), "{}", stderr(&second));
    assert_eq!(losses(&resumed).last(), got.last());
}

#[test]
fn on_the_fake_cuda_a_non_finite_loss_stops_the_run_and_a_resumed_run_names_its_op() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "tests/graphs/diverges.g", "--device", "cuda", "--out", out.to_str().unwrap()];
        args.extend(extra);
        on_fake_cuda(&args)
    };
    let Some(late) = run(&[]) else { return };
    assert!(!late.status.success());
    let message = stderr(&late).lines().last().unwrap().to_string();
    assert!(message.starts_with("error: loss \"loss\" of phase \"p\" is not finite at iteration 4."), "{message}");
    assert!(message.contains("--loss-readback step"), "{message}");
    let traced = run(&["--resume", "--loss-readback", "step"]).unwrap();
    let message = stderr(&traced).lines().last().unwrap().to_string();
    assert!(!traced.status.success());
    assert!(message.contains("at iteration 4; the first non-finite value came from square (pow)"), "{message}");
}
