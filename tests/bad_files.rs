//! The error-message corpus: every `tests/bad/*.g` file has exactly one mistake (its first line,
//! a `#` comment, says which). Each must fail to compile with a diagnostic that names
//! `file:line:col`, shows a caret under the offending text, and matches its reviewed snapshot in
//! `tests/snapshots/bad/<stem>.snap`.
//!
//! To review changed or new messages: `INSTA_UPDATE=new cargo test --test bad_files`, read every
//! `tests/snapshots/bad/*.snap.new`, and accept the right ones (`cargo insta review`, or rename
//! them to `.snap`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;

use graphc::error::SourceFile;
use graphc::CompileOptions;

/// The corpus files, sorted by name.
fn bad_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "g"))
        .collect();
    files.sort();
    files
}

/// Whether `text` contains `name:LINE:COL` with LINE and COL positive numbers.
fn has_location(text: &str, name: &str) -> bool {
    let prefix = format!("{name}:");
    text.match_indices(&prefix).any(|(i, _)| {
        let rest = &text[i + prefix.len()..];
        let line_len = rest.chars().take_while(char::is_ascii_digit).count();
        let Some(after) = rest[line_len..].strip_prefix(':') else { return false };
        let col_len = after.chars().take_while(char::is_ascii_digit).count();
        line_len > 0 && col_len > 0
    })
}

/// Compiles one corpus file and checks and snapshots its diagnostic.
fn check_file(path: &Path) {
    let file_name = path.file_name().and_then(|n| n.to_str()).expect("UTF-8 file name");
    let stem = path.file_stem().and_then(|n| n.to_str()).expect("UTF-8 file stem");
    let display = format!("tests/bad/{file_name}");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {display}: {e}"));
    assert!(text.starts_with('#'), "{display} must start with a `#` comment saying what its mistake is");
    let src = SourceFile::new(display.clone(), text);
    let diagnostic = match graphc::compile(&src, &CompileOptions::default()) {
        Ok(_) => panic!("{display} compiled, but it should fail"),
        Err(d) => d,
    };
    let rendered = diagnostic.render(&src);
    assert!(has_location(&rendered, &display), "{display}: the message names no {display}:LINE:COL\n{rendered}");
    assert!(rendered.contains('^'), "{display}: the message has no caret\n{rendered}");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/bad");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(path);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(stem, rendered));
}

#[test]
fn every_bad_file_fails_with_its_reviewed_message() {
    let files = bad_files();
    assert!(files.len() >= 30, "expected at least 30 files in tests/bad, found {}", files.len());
    // Check every file before failing, so one run shows (and writes pending snapshots for) all.
    let failed: Vec<String> = files
        .iter()
        .filter(|path| catch_unwind(AssertUnwindSafe(|| check_file(path))).is_err())
        .map(|path| format!("tests/bad/{}", path.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    assert!(failed.is_empty(), "{} of {} bad files failed:\n  {}", failed.len(), files.len(), failed.join("\n  "));
}

#[test]
fn check_command_reports_location_and_fails() {
    let output = Command::new(env!("CARGO_BIN_EXE_graphc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "tests/bad/undefined_bottom.g"])
        .output()
        .expect("run graphc");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "graphc check succeeded on a bad file; stderr:\n{stderr}");
    assert!(has_location(&stderr, "undefined_bottom.g"), "no undefined_bottom.g:LINE:COL in stderr:\n{stderr}");
    assert!(stderr.contains("undefined blob"), "stderr does not describe the error:\n{stderr}");
}

#[test]
fn location_finder_needs_line_and_column() {
    assert!(has_location("--> tests/bad/x.g:12:5\n", "tests/bad/x.g"));
    assert!(!has_location("--> tests/bad/x.g:12\n", "tests/bad/x.g"));
    assert!(!has_location("--> tests/bad/x.g::5\n", "tests/bad/x.g"));
    assert!(!has_location("--> tests/bad/y.g:1:1\n", "tests/bad/x.g"));
}
