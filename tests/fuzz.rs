//! Robustness: no input may make the compiler panic or hang. Every input either compiles or
//! returns a diagnostic, and every diagnostic renders.
//!
//! Three properties: arbitrary bytes (mostly invalid UTF-8 or unparsable), token soup (parses more
//! often), and mutations of the real graph files (delete, duplicate or insert text, swap lines,
//! replace numbers with extreme ones), which reach the schema, build and phase checks.
//! `PROPTEST_CASES=N` overrides the number of cases per property (default 256, and 1024 for the
//! mutations). The whole file runs in a few seconds in a debug build.

use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{CompileOptions, PhaseSelect};
use proptest::prelude::*;
use proptest::sample::Index;

/// Longest one compilation may take before it counts as a hang (debug build, slow machine).
const HANG_LIMIT: Duration = Duration::from_secs(20);

/// `cases` cases per property unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> ProptestConfig {
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { ProptestConfig::default().cases } else { cases };
    // Failures are minimized and reported by proptest; minimal inputs are kept as explicit tests
    // below rather than in a regressions file.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// The real graph files, as (display name, bytes).
fn corpus() -> &'static [(String, Vec<u8>)] {
    static CORPUS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("graphs"))
            .expect("read graphs/")
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "g"))
            .collect();
        paths.sort();
        paths.push(root.join("tests/caffe/mnist_vae.prototxt"));
        let files: Vec<(String, Vec<u8>)> = paths
            .iter()
            .map(|p| {
                let name = p.strip_prefix(root).unwrap_or(p).display().to_string();
                (name, std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
            })
            .collect();
        assert!(files.len() >= 2, "expected graph files in graphs/");
        files
    })
}

/// Compiles `src` with the default options and renders any error; when it compiles, compiles it
/// again with `batch_size` as the batch override, as its first solver phase's graph if it has one
/// (else the TEST graph).
fn compile_and_render(src: &SourceFile, batch_size: Option<usize>) {
    match graphc::compile(src, &CompileOptions::default()) {
        Ok(compiled) => {
            let phase = match compiled.phases.first() {
                Some(phase) => PhaseSelect::Solver(phase.name.clone()),
                None => PhaseSelect::Net(NetPhase::Test),
            };
            if let Err(d) =
                graphc::compile(src, &CompileOptions { phase, batch_size, train: false, opt_level: 2, passes: None })
            {
                let _ = d.render(src);
            }
        }
        Err(d) => {
            let rendered = d.render(src);
            assert!(rendered.starts_with("error: "), "{rendered}");
        }
    }
}

/// Feeds `bytes` to the compiler on a worker thread; a panic there is re-raised here (so proptest
/// sees and minimizes it), and a compilation that outlives [`HANG_LIMIT`] fails as a hang.
fn must_not_panic_or_hang(name: &str, bytes: Vec<u8>, batch_size: Option<usize>) {
    let name = name.to_string();
    let (done_tx, done_rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("compile".into())
        .spawn(move || {
            if let Ok(src) = SourceFile::from_bytes(&name, bytes) {
                compile_and_render(&src, batch_size);
            }
            let _ = done_tx.send(());
        })
        .expect("spawn compile thread");
    match done_rx.recv_timeout(HANG_LIMIT) {
        Ok(()) => worker.join().expect("worker finished"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker sends before it returns"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("compilation did not finish within {HANG_LIMIT:?}"),
    }
}

/// Pieces of graph-file syntax, for token soup and insertions.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ";",
    ",",
    "\"",
    "'",
    "#",
    "\n",
    " ",
    "-",
    "0",
    "1",
    "7",
    "28",
    "-1",
    ".",
    "e",
    "1e30",
    "99999999",
    "layer",
    "name",
    "type",
    "bottom",
    "top",
    "param",
    "subnet",
    "input",
    "output",
    "solver",
    "phase",
    "generate",
    "image",
    "latent",
    "loss",
    "blob",
    "update",
    "include",
    "num_output",
    "kernel_size",
    "dim",
    "shape",
    "axis",
    "\"x\"",
    "\"y\"",
    "\"Data\"",
    "\"DummyData\"",
    "\"InnerProduct\"",
    "\"Convolution\"",
    "\"Pooling\"",
    "\"Reshape\"",
    "\"Concat\"",
    "\"Slice\"",
    "\"Eltwise\"",
    "\"Subnet\"",
    "\"SigmoidCrossEntropyLoss\"",
    "\"Reduction\"",
    "dummy_data_param",
    "inner_product_param",
    "convolution_param",
    "data_param",
    "batch_size",
    "reshape_param",
    "slice_param",
    "slice_point",
    "data_filler",
    "\"gaussian\"",
    "TRAIN",
    "TEST",
    "SUM",
    "max_iter",
    "base_lr",
    "\u{d7}",
    "\u{1F600}",
];

/// Characters a mutation inserts.
const INSERT_CHARS: &str = "{}[]:;,\"'#-0123456789.eE xyzabc_\n\t\\";

/// Replacements for numbers: zero, negative, huge, tiny and overflowing values.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "1e30",
    "-1e30",
    "99999999",
    "4294967296",
    "18446744073709551616",
    "1099511627776",
    "0.5",
    "-0",
    "1e-30",
    "nan",
    "inf",
    "-inf",
];

/// One edit of a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Delete { at: Index, len: usize },
    Duplicate { from: Index, len: usize, to: Index },
    Insert { at: Index, text: String },
    SwapLines { a: Index, b: Index },
    ReplaceNumber { which: Index, with: &'static str },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let chars: Vec<char> = INSERT_CHARS.chars().collect();
    prop_oneof![
        (any::<Index>(), 1..64usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<Index>(), 1..200usize, any::<Index>()).prop_map(|(from, len, to)| Mutation::Duplicate { from, len, to }),
        (any::<Index>(), proptest::collection::vec(proptest::sample::select(chars), 1..8))
            .prop_map(|(at, text)| Mutation::Insert { at, text: text.into_iter().collect() }),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<Index>(), proptest::sample::select(NUMBERS))
            .prop_map(|(which, with)| Mutation::ReplaceNumber { which, with }),
    ]
}

/// Byte ranges of the numbers written in `text`: a digit run (with `.`, `e`, signs) that starts a
/// token, with its minus sign.
fn number_spans(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let starts_token = i == 0 || !(text[i - 1].is_ascii_alphanumeric() || text[i - 1] == b'_');
        if starts_token && text[i].is_ascii_digit() {
            let start = if i > 0 && text[i - 1] == b'-' { i - 1 } else { i };
            let mut end = i;
            while end < text.len() && (text[end].is_ascii_digit() || b".eE+-".contains(&text[end])) {
                end += 1;
            }
            spans.push((start, end));
            i = end;
        } else {
            i += 1;
        }
    }
    spans
}

fn line_spans(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, b) in text.iter().enumerate() {
        if *b == b'\n' {
            spans.push((start, i));
            start = i + 1;
        }
    }
    spans.push((start, text.len()));
    spans
}

/// Position `at` in a buffer of `len` bytes (0..=len).
fn position(at: &Index, len: usize) -> usize {
    at.index(len + 1)
}

/// Swaps lines `a` and `b` (0-based) of `text`.
fn swap_lines(text: &mut Vec<u8>, a: usize, b: usize) {
    let lines = line_spans(text);
    let (first, second) = (lines[a.min(b)], lines[a.max(b)]);
    if first.1 <= second.0 {
        let mut out = text[..first.0].to_vec();
        out.extend_from_slice(&text[second.0..second.1]);
        out.extend_from_slice(&text[first.1..second.0]);
        out.extend_from_slice(&text[first.0..first.1]);
        out.extend_from_slice(&text[second.1..]);
        *text = out;
    }
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Delete { at, len } => {
            let start = position(at, text.len());
            let end = (start + len).min(text.len());
            text.drain(start..end);
        }
        Mutation::Duplicate { from, len, to } => {
            let start = position(from, text.len());
            let end = (start + len).min(text.len());
            let piece = text[start..end].to_vec();
            let to = position(to, text.len());
            text.splice(to..to, piece);
        }
        Mutation::Insert { at, text: piece } => {
            let at = position(at, text.len());
            text.splice(at..at, piece.bytes());
        }
        Mutation::SwapLines { a, b } => {
            let lines = line_spans(text).len();
            swap_lines(text, a.index(lines), b.index(lines));
        }
        Mutation::ReplaceNumber { which, with } => {
            let numbers = number_spans(text);
            if !numbers.is_empty() {
                let (start, end) = numbers[which.index(numbers.len())];
                text.splice(start..end, with.bytes());
            }
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary bytes: invalid UTF-8 is rejected by `from_bytes`, anything else must compile or
    /// fail with a renderable diagnostic.
    #[test]
    fn random_bytes(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        any::<String>().prop_map(String::into_bytes),
    ]) {
        must_not_panic_or_hang("random.g", bytes, None);
    }

    /// Random sequences of graph-file tokens, which get past the parser far more often.
    #[test]
    fn token_soup(tokens in proptest::collection::vec(proptest::sample::select(TOKENS), 0..200)) {
        must_not_panic_or_hang("soup.g", tokens.concat().into_bytes(), None);
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Small random edits of the real graph files.
    #[test]
    fn mutated_graph_files(
        file in any::<Index>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
        batch_size in proptest::sample::select(&[None, Some(1), Some(3), Some(99_999)][..]),
    ) {
        let (name, original) = file.get(corpus());
        let mut text = original.clone();
        for m in &mutations {
            apply(&mut text, m);
        }
        must_not_panic_or_hang(name, text, batch_size);
    }
}

/// Inputs on the edges of the parser and the renderer: empty and blank files, errors at the very
/// end, CRLF line ends, multi-byte characters before and at the error, NUL and invalid UTF-8.
#[test]
fn edge_inputs() {
    let cases: &[&[u8]] = &[
        b"",
        b" \n\t\r\n",
        b"#",
        b"\"",
        b"'",
        b"layer {",
        b"layer {\r\n  name: \r\n}\r\n",
        b"layer { name: \"\xc3\x97\" type: \"\xc3\x97\" }",
        "name: \"\u{d7}\u{d7}\" \u{1F600}".as_bytes(),
        "# \u{d7}\nlayer { name: \"a\" type: \"ReLU\" bottom: \"\u{d7}\" top: \"b\" }".as_bytes(),
        b"a: [",
        b"a: [1,",
        b"a: [1 2]",
        b"a: 1e999999",
        b"a: -",
        b"a: \"\\",
        b"\xff\xfe",
        b"name: \"x\"\x00",
    ];
    for bytes in cases {
        must_not_panic_or_hang("edge.g", bytes.to_vec(), None);
    }
}

/// The unmutated files compile: otherwise the mutation property tests little beyond the first error.
#[test]
fn corpus_compiles() {
    for (name, bytes) in corpus() {
        let src = SourceFile::from_bytes(name, bytes.clone()).expect("UTF-8");
        if let Err(d) = graphc::compile(&src, &CompileOptions::default()) {
            panic!("{}", d.render(&src));
        }
    }
}

#[test]
fn mutation_helpers_find_numbers_and_lines() {
    let text = b"a: -1.5e-3 b: x2 c: 10\nd: 7";
    let numbers: Vec<&[u8]> = number_spans(text).into_iter().map(|(s, e)| &text[s..e]).collect();
    assert_eq!(numbers, [&b"-1.5e-3"[..], b"10", b"7"]);
    let mut swapped = b"one\ntwo\nthree".to_vec();
    swap_lines(&mut swapped, 2, 0);
    assert_eq!(swapped, b"three\ntwo\none");
}
