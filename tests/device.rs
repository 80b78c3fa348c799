//! `--device`: asking for CUDA where it cannot run is one clear line and a failure, never a
//! panic; `auto` runs on the CPU and says why. These assertions hold on a machine without a GPU,
//! as CI's; on one with a GPU, `auto` and `cuda` train there instead (tests/cuda_device.rs).

use std::process::Command;

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
