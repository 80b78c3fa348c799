//! Kernels over integer class labels stored as floats: one-hot encoding and top-k accuracy.

use super::View;

/// The class a label names, if it is an integer in `0..classes`.
fn class_of(label: f32, classes: usize) -> Option<usize> {
    (label >= 0.0 && label.fract() == 0.0 && (label as usize) < classes).then_some(label as usize)
}

/// One-hot rows `[N, classes]` from labels `[N]`; an out-of-range label gives an all-zero row.
pub fn one_hot(labels: &[f32], classes: usize, out: &mut [f32]) {
    out.fill(0.0);
    if classes == 0 {
        return;
    }
    for (row, &label) in out.chunks_mut(classes).zip(labels) {
        if let Some(c) = class_of(label, classes) {
            row[c] = 1.0;
        }
    }
}

/// The fraction of rows of `scores` (`[N, C]`) whose label is among the `top_k` highest scores.
/// Ties count against the label, as in Caffe: a row is right when fewer than `top_k` other
/// classes score at least as high as the label (so constant scores are never right for
/// `top_k < C`). A row whose label is out of range counts as wrong.
pub fn accuracy(scores: View, labels: &[f32], top_k: usize) -> f32 {
    let (n, classes) = (scores.shape[0], scores.shape[1]);
    if n == 0 {
        return 0.0;
    }
    let correct = scores
        .data
        .chunks(classes.max(1))
        .zip(labels)
        .filter(|(row, &label)| {
            class_of(label, classes).is_some_and(|c| {
                let rivals = row.iter().enumerate().filter(|&(k, &s)| k != c && s >= row[c]).count();
                rivals < top_k
            })
        })
        .count();
    (correct as f64 / n as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_integral_in_range_labels_name_a_class() {
        assert_eq!(class_of(2.0, 3), Some(2));
        assert_eq!(class_of(3.0, 3), None);
        assert_eq!(class_of(-1.0, 3), None);
        assert_eq!(class_of(1.5, 3), None);
        assert_eq!(class_of(f32::NAN, 3), None);
    }
}
