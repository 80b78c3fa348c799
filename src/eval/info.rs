//! The discrete information measures of the book's chapter, in f64 and any log base: entropy,
//! KL divergence, Jensen–Shannon divergence, and the mutual information of two sample sequences.
//! Distributions are given as non-negative weights and normalized here, so `[1, 2, 3]` means
//! `[1/6, 2/6, 3/6]`.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

/// Why a measure is undefined for its inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum InfoError {
    /// A weight is negative or not finite, or all weights are zero.
    NotADistribution(String),
    /// The two distributions have different lengths, or the two sequences different lengths.
    LengthMismatch(usize, usize),
    /// KL(p ‖ q) is infinite: q is zero at index `index` where p is not.
    Unbounded { index: usize },
    /// The log base is not a finite number above 0 other than 1.
    BadBase(f64),
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            InfoError::NotADistribution(why) => write!(f, "not a distribution: {why}"),
            InfoError::LengthMismatch(a, b) => write!(f, "lengths differ: {a} and {b}"),
            InfoError::Unbounded { index } => {
                write!(f, "KL divergence is infinite: q is 0 at index {index} where p is not")
            }
            InfoError::BadBase(b) => write!(f, "log base {b} is not a number above 0 other than 1"),
        }
    }
}

impl std::error::Error for InfoError {}

/// Natural logarithms: results in nats.
pub const NATS: f64 = std::f64::consts::E;

/// `weights` divided by their sum.
pub fn normalize(weights: &[f64]) -> Result<Vec<f64>, InfoError> {
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        return Err(InfoError::NotADistribution(format!("weight {w}")));
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return Err(InfoError::NotADistribution("the weights sum to 0".into()));
    }
    Ok(weights.iter().map(|w| w / total).collect())
}

/// ln(base), checked.
fn ln_base(base: f64) -> Result<f64, InfoError> {
    match base {
        b if b.is_finite() && b > 0.0 && b != 1.0 => Ok(b.ln()),
        b => Err(InfoError::BadBase(b)),
    }
}

/// H(p) = −Σ p log p (0 log 0 = 0).
pub fn entropy(p: &[f64], base: f64) -> Result<f64, InfoError> {
    let scale = ln_base(base)?;
    let p = normalize(p)?;
    Ok(-p.iter().filter(|v| **v > 0.0).map(|v| v * v.ln()).sum::<f64>() / scale)
}

/// KL(p ‖ q) = Σ p log(p / q); an error where q is 0 and p is not.
pub fn kl_divergence(p: &[f64], q: &[f64], base: f64) -> Result<f64, InfoError> {
    let scale = ln_base(base)?;
    if p.len() != q.len() {
        return Err(InfoError::LengthMismatch(p.len(), q.len()));
    }
    let (p, q) = (normalize(p)?, normalize(q)?);
    let mut sum = 0.0;
    for (index, (pi, qi)) in p.iter().zip(&q).enumerate() {
        match (*pi > 0.0, *qi > 0.0) {
            (false, _) => {}
            (true, false) => return Err(InfoError::Unbounded { index }),
            (true, true) => sum += pi * (pi / qi).ln(),
        }
    }
    Ok(sum / scale)
}

/// JS(p ‖ q) = (KL(p ‖ m) + KL(q ‖ m)) / 2 with m = (p + q) / 2: symmetric and finite.
pub fn js_divergence(p: &[f64], q: &[f64], base: f64) -> Result<f64, InfoError> {
    if p.len() != q.len() {
        return Err(InfoError::LengthMismatch(p.len(), q.len()));
    }
    let (p, q) = (normalize(p)?, normalize(q)?);
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    Ok((kl_divergence(&p, &m, base)? + kl_divergence(&q, &m, base)?) / 2.0)
}

/// I(a; b) of two paired sample sequences, from their empirical joint distribution:
/// Σ p(x, y) log(p(x, y) / (p(x) p(y))).
pub fn mutual_information<A: Eq + Hash, B: Eq + Hash>(a: &[A], b: &[B], base: f64) -> Result<f64, InfoError> {
    let scale = ln_base(base)?;
    if a.len() != b.len() {
        return Err(InfoError::LengthMismatch(a.len(), b.len()));
    }
    if a.is_empty() {
        return Err(InfoError::NotADistribution("no samples".into()));
    }
    let n = a.len() as f64;
    let (mut joint, mut pa, mut pb) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (x, y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_insert(0.0) += 1.0 / n;
        *pa.entry(x).or_insert(0.0) += 1.0 / n;
        *pb.entry(y).or_insert(0.0) += 1.0 / n;
    }
    let sum: f64 = joint.iter().map(|((x, y), pxy)| pxy * (pxy / (pa[x] * pb[y])).ln()).sum();
    Ok(sum / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round4(v: f64) -> f64 {
        (v * 1e4).round() / 1e4
    }

    #[test]
    fn the_chapters_kl_and_js_examples() {
        let p = [1.0, 2.0, 3.0, 4.0, 5.0];
        let cases = [
            ([5.0, 4.0, 3.0, 2.0, 1.0], 0.5216, 0.1197),
            ([1e-12, 4.0, 3.0, 2.0, 1.0], 2.0655, 0.0985),
            ([5.0, 4.0, 3.0, 2.0, 1e-12], 9.6630, 0.1940),
        ];
        for (q, kl, js) in cases {
            assert_eq!(round4(kl_divergence(&p, &q, NATS).unwrap()), kl, "KL(p‖{q:?})");
            assert_eq!(round4(js_divergence(&p, &q, NATS).unwrap()), js, "JS(p‖{q:?})");
            // JS is symmetric.
            let reverse = js_divergence(&q, &p, NATS).unwrap();
            assert!((reverse - js_divergence(&p, &q, NATS).unwrap()).abs() < 1e-12);
        }
    }

    #[test]
    fn kl_against_a_zero_is_an_error_not_nan() {
        let err = kl_divergence(&[1.0, 1.0], &[1.0, 0.0], NATS).unwrap_err();
        assert_eq!(err, InfoError::Unbounded { index: 1 });
        assert!(err.to_string().contains("infinite"));
        // JS stays finite.
        assert_eq!(round4(js_divergence(&[1.0, 1.0], &[1.0, 0.0], 2.0).unwrap()), 0.3113);
    }

    #[test]
    fn the_chapters_mutual_information_examples() {
        let a = [0, 0, 5, 6, 0, 4, 4, 3, 1, 2];
        let b1 = [3, 4, 5, 5, 3, 7, 7, 6, 5, 1];
        let b2 = [3, 3, 5, 6, 3, 7, 7, 9, 4, 8];
        assert_eq!(round4(mutual_information(&a, &b1, 10.0).unwrap()), 0.6535);
        assert_eq!(round4(mutual_information(&a, &b2, 10.0).unwrap()), 0.7967);
    }

    #[test]
    fn entropy_of_uniform_and_certain() {
        assert!((entropy(&[1.0; 10], NATS).unwrap() - 10f64.ln()).abs() < 1e-12);
        assert!((entropy(&[1.0; 8], 2.0).unwrap() - 3.0).abs() < 1e-12);
        assert_eq!(entropy(&[0.0, 3.0], NATS).unwrap(), 0.0);
        assert!(entropy(&[0.0, 0.0], NATS).is_err());
        assert!(entropy(&[-1.0, 2.0], NATS).is_err());
        assert!(entropy(&[1.0], 1.0).is_err());
    }
}
