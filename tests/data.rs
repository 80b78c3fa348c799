//! The bundled MNIST subset (`data/mnist`, see `data/README.md`) loads with the expected split,
//! and Fashion-MNIST too where the Debian package `dataset-fashion-mnist` is installed.

use graphc::data::{load_split, resolve_source, Dataset, Split, FASHION_DIR};
use std::path::Path;

/// Images per digit 0..=9 in the bundled training split.
const MNIST_TRAIN_PER_DIGIT: [usize; 10] = [901, 1014, 892, 929, 882, 777, 912, 963, 850, 880];
/// Images per digit 0..=9 in the bundled test split.
const MNIST_TEST_PER_DIGIT: [usize; 10] = [100, 113, 99, 103, 98, 86, 102, 107, 94, 98];

fn per_class(ds: &Dataset) -> [usize; 10] {
    let mut counts = [0; 10];
    for &label in &ds.labels {
        assert!(label <= 9, "label {label} out of range");
        counts[label as usize] += 1;
    }
    counts
}

fn mean_pixel(ds: &Dataset) -> f64 {
    ds.images.iter().map(|&p| p as f64).sum::<f64>() / ds.images.len() as f64
}

fn check(ds: &Dataset, count: usize, per_digit: [usize; 10], mean: std::ops::Range<f64>) {
    assert_eq!((ds.count, ds.height, ds.width), (count, 28, 28));
    assert_eq!(ds.images.len(), count * 28 * 28);
    assert_eq!(ds.labels.len(), count);
    assert_eq!(per_class(ds), per_digit);
    let m = mean_pixel(ds);
    assert!(mean.contains(&m), "mean pixel {m:.2} outside {mean:?}");
}

#[test]
fn bundled_mnist_splits() {
    let dir = resolve_source("mnist");
    assert_eq!(dir, Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"));
    let train = load_split(&dir, Split::Train).unwrap_or_else(|e| panic!("{e}"));
    check(&train, 9000, MNIST_TRAIN_PER_DIGIT, 30.0..37.0);
    let test = load_split(&dir, Split::Test).unwrap_or_else(|e| panic!("{e}"));
    check(&test, 1000, MNIST_TEST_PER_DIGIT, 30.0..37.0);
    // The files are shuffled, not sorted by class.
    assert!(train.labels[..100].windows(2).filter(|w| w[0] != w[1]).count() > 50);
    // No test image is also a training image.
    let train_images: std::collections::HashSet<&[u8]> = train.images.chunks_exact(784).collect();
    assert!(test.images.chunks_exact(784).all(|img| !train_images.contains(img)));
}

#[test]
fn fashion_mnist_if_installed() {
    let dir = resolve_source("fashion");
    assert_eq!(dir, Path::new(FASHION_DIR));
    if !dir.is_dir() {
        eprintln!("skipped: {FASHION_DIR} not found (apt-get install dataset-fashion-mnist)");
        return;
    }
    // Fashion-MNIST has 6,000 training and 1,000 test images of each of its 10 classes;
    // its mean pixel is about 73.
    let train = load_split(&dir, Split::Train).unwrap_or_else(|e| panic!("{e}"));
    check(&train, 60_000, [6000; 10], 65.0..80.0);
    let test = load_split(&dir, Split::Test).unwrap_or_else(|e| panic!("{e}"));
    check(&test, 10_000, [1000; 10], 65.0..80.0);
}
