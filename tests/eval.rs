//! `graphc eval` refuses what it cannot score, with a clear message.

use std::process::Command;

fn graphc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_graphc"))
}

#[test]
fn eval_of_a_run_without_a_generated_image_is_a_clear_error() {
    let run = tempfile::tempdir().unwrap();
    std::fs::copy("graphs/lenet.g", run.path().join("graph.g")).unwrap();
    let out = graphc().arg("eval").arg(run.path()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("declares no generated image"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn eval_of_a_missing_run_names_the_file() {
    let run = tempfile::tempdir().unwrap();
    let out = graphc().args(["eval", "--device", "cpu"]).arg(run.path().join("nothing")).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("graph.g"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
