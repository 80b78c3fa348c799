//! Scores computed from a classifier's outputs on generated images: the classifier score (the
//! Inception Score with the MNIST classifier), the histogram of predicted classes, and the
//! accuracy of a categorical latent code after the best one-to-one mapping of codes to classes.

use super::assign::max_score_assignment;
use super::info::{self, InfoError};

/// exp(E_x[KL(p(y|x) ‖ p(y))]) for row-major class probabilities `probs` (one row of `classes`
/// values per image), p(y) being their mean: 1 when every image gets the same distribution, up
/// to `classes` when each is classified with certainty and all classes are equally frequent.
pub fn classifier_score(probs: &[f64], classes: usize) -> f64 {
    let rows: Vec<&[f64]> = probs.chunks(classes).collect();
    let n = rows.len().max(1) as f64;
    let marginal: Vec<f64> = (0..classes).map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / n).collect();
    // KL of each row against the marginal; the marginal is positive wherever a row is.
    let mean_kl: f64 = rows
        .iter()
        .map(|row| row.iter().zip(&marginal).filter(|(p, _)| **p > 0.0).map(|(p, m)| p * (p / m).ln()).sum::<f64>())
        .sum::<f64>()
        / n;
    mean_kl.exp()
}

/// The most probable class of each row.
pub fn predictions(probs: &[f64], classes: usize) -> Vec<usize> {
    probs
        .chunks(classes)
        .map(|row| row.iter().enumerate().fold(0, |best, (c, p)| if *p > row[best] { c } else { best }))
        .collect()
}

/// How many times each class occurs in `labels`.
pub fn histogram(labels: &[usize], classes: usize) -> Vec<f64> {
    let mut counts = vec![0.0; classes];
    labels.iter().filter(|l| **l < classes).for_each(|l| counts[*l] += 1.0);
    counts
}

/// The entropy (nats) of the class histogram of `predicted`, and its JS divergence (nats) from
/// the histogram of `reference`: a generator collapsed onto few classes has a low entropy and a
/// large divergence.
pub fn class_balance(predicted: &[usize], reference: &[usize], classes: usize) -> Result<(f64, f64), InfoError> {
    let (p, q) = (histogram(predicted, classes), histogram(reference, classes));
    Ok((info::entropy(&p, info::NATS)?, info::js_divergence(&p, &q, info::NATS)?))
}

/// The accuracy of categorical codes (`code_values` of them) as class labels (`classes` of
/// them): codes are mapped to classes one to one so that the most images agree (Hungarian
/// method), then the fraction that agree. Returns the accuracy and, per code value, its class
/// (with more code values than classes, the extra values map to no real class and count as
/// misses).
pub fn code_accuracy(codes: &[usize], predicted: &[usize], code_values: usize, classes: usize) -> (f64, Vec<usize>) {
    let size = code_values.max(classes);
    let mut counts = vec![vec![0.0; size]; size];
    for (code, row) in confusion(codes, predicted, code_values, classes).iter().enumerate() {
        for (class, n) in row.iter().enumerate() {
            counts[code][class] = *n as f64;
        }
    }
    let mut mapping = max_score_assignment(&counts);
    let agree: f64 = mapping.iter().enumerate().map(|(code, class)| counts[code][*class]).sum();
    mapping.truncate(code_values);
    (agree / codes.len().max(1) as f64, mapping)
}

/// How often each code value (row) was classified as each class (column).
pub fn confusion(codes: &[usize], predicted: &[usize], code_values: usize, classes: usize) -> Vec<Vec<u32>> {
    let mut counts = vec![vec![0; classes]; code_values];
    for (code, class) in codes.iter().zip(predicted) {
        if *code < code_values && *class < classes {
            counts[*code][*class] += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot_rows(labels: &[usize], classes: usize) -> Vec<f64> {
        labels.iter().flat_map(|l| (0..classes).map(move |c| if c == *l { 1.0 } else { 0.0 })).collect()
    }

    #[test]
    fn a_perfect_classifier_on_balanced_real_data_scores_the_number_of_classes() {
        let labels: Vec<usize> = (0..100).map(|i| i % 10).collect();
        let probs = one_hot_rows(&labels, 10);
        assert!((classifier_score(&probs, 10) - 10.0).abs() < 1e-9);
        assert_eq!(predictions(&probs, 10), labels);
        let (entropy, js) = class_balance(&labels, &labels, 10).unwrap();
        assert!((entropy - 10f64.ln()).abs() < 1e-12 && js.abs() < 1e-12);
    }

    #[test]
    fn a_collapsed_generator_scores_one_and_shows_in_the_histogram() {
        let collapsed = vec![1usize; 50];
        let probs = one_hot_rows(&collapsed, 10);
        assert!((classifier_score(&probs, 10) - 1.0).abs() < 1e-12);
        let real: Vec<usize> = (0..50).map(|i| i % 10).collect();
        let (entropy, js) = class_balance(&collapsed, &real, 10).unwrap();
        assert_eq!(entropy, 0.0);
        // Against uniform real classes, with m = (p + q) / 2 = (0.55 at class 1, 0.05 elsewhere):
        // JS = (KL(p ‖ m) + KL(q ‖ m)) / 2.
        let m1: f64 = (1.0 + 0.1) / 2.0;
        let expected = (m1.recip().ln() + 0.1 * (0.1 / m1).ln() + 0.9 * 2f64.ln()) / 2.0;
        assert!((js - expected).abs() < 1e-12, "{js} vs {expected}");
        // Uncertain rows (every image the same soft distribution) also score 1.
        let soft: Vec<f64> = (0..20).flat_map(|_| [0.5, 0.3, 0.2]).collect();
        assert!((classifier_score(&soft, 3) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_permuted_code_is_fully_accurate_once_mapped() {
        let codes: Vec<usize> = (0..200).map(|i| i % 10).collect();
        let permutation = [3, 7, 0, 9, 1, 4, 8, 2, 6, 5];
        let predicted: Vec<usize> = codes.iter().map(|c| permutation[*c]).collect();
        let (accuracy, mapping) = code_accuracy(&codes, &predicted, 10, 10);
        assert_eq!(accuracy, 1.0);
        assert_eq!(mapping, permutation);
        // Two codes drawing the same digit: at best one of them maps to it.
        let merged: Vec<usize> = codes.iter().map(|c| if *c == 1 { 0 } else { *c }).collect();
        assert_eq!(code_accuracy(&codes, &merged, 10, 10).0, 0.9);
        // Fewer code values than classes: each still maps to a distinct class.
        let four: Vec<usize> = (0..40).map(|i| i % 4).collect();
        let drawn: Vec<usize> = four.iter().map(|c| c + 5).collect();
        assert_eq!(code_accuracy(&four, &drawn, 4, 10), (1.0, vec![5, 6, 7, 8]));
    }

    #[test]
    fn the_confusion_counts_each_code_values_predictions() {
        // Code 0 draws 0, 0, 1; code 1 draws 1; code 2 draws nothing; a class beyond range is
        // not counted.
        let counts = confusion(&[0, 0, 0, 1, 1], &[0, 0, 1, 1, 7], 3, 3);
        assert_eq!(counts, vec![vec![2, 1, 0], vec![0, 1, 0], vec![0, 0, 0]]);
    }
}
