//! The Fréchet distance between Gaussians fitted to two sets of feature vectors (FID's formula,
//! with the MNIST classifier's features in place of Inception's):
//! d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½.
//! The matrix square roots come from symmetric eigendecompositions (nalgebra), in f64.

use nalgebra::{DMatrix, DVector};

/// A Gaussian fitted to feature vectors: their mean and (unbiased) covariance.
#[derive(Clone, Debug)]
pub struct Gaussian {
    /// The mean vector.
    pub mean: DVector<f64>,
    /// The covariance matrix.
    pub cov: DMatrix<f64>,
}

impl Gaussian {
    /// Fits `features`, row-major with `dim` values per vector (at least two vectors).
    ///
    /// # Panics
    /// If `features` holds fewer than two vectors or is not a whole number of them.
    pub fn fit(features: &[f32], dim: usize) -> Self {
        assert!(
            dim > 0 && features.len().is_multiple_of(dim) && features.len() / dim >= 2,
            "need two or more whole vectors"
        );
        let n = features.len() / dim;
        let x = DMatrix::from_row_iterator(n, dim, features.iter().map(|v| *v as f64));
        let mean = DVector::from_iterator(dim, x.column_iter().map(|c| c.mean()));
        let centered = DMatrix::from_fn(n, dim, |i, j| x[(i, j)] - mean[j]);
        let cov = centered.tr_mul(&centered) / (n - 1) as f64;
        Gaussian { mean, cov }
    }
}

/// The square root of a symmetric positive semi-definite matrix (negative eigenvalues from
/// rounding are taken as 0).
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = m.clone().symmetric_eigen();
    let roots = eigen.eigenvalues.map(|v| v.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

/// The Fréchet distance d² between `a` and `b` (0 for equal Gaussians).
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    let root_a = psd_sqrt(&a.cov);
    let product = &root_a * &b.cov * &root_a;
    let symmetric = (&product + product.transpose()) / 2.0;
    let cross: f64 = symmetric.symmetric_eigen().eigenvalues.iter().map(|v| v.max(0.0).sqrt()).sum();
    let distance = (&a.mean - &b.mean).norm_squared() + a.cov.trace() + b.cov.trace() - 2.0 * cross;
    distance.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(mean: &[f64], cov: &[f64]) -> Gaussian {
        let d = mean.len();
        Gaussian { mean: DVector::from_row_slice(mean), cov: DMatrix::from_row_slice(d, d, cov) }
    }

    #[test]
    fn equal_gaussians_are_at_distance_zero() {
        let g = gaussian(&[1.0, 2.0], &[2.0, 0.5, 0.5, 1.0]);
        assert!(frechet_distance(&g, &g).abs() < 1e-10);
    }

    #[test]
    fn diagonal_covariances_give_the_closed_form() {
        // Σ (σ₁ − σ₂)² + ‖Δμ‖² with σ₁ = (1, 2), σ₂ = (3, 1), Δμ = (1, −2): 4 + 1 + 1 + 4 = 10.
        let a = gaussian(&[0.0, 0.0], &[1.0, 0.0, 0.0, 4.0]);
        let b = gaussian(&[1.0, -2.0], &[9.0, 0.0, 0.0, 1.0]);
        assert!((frechet_distance(&a, &b) - 10.0).abs() < 1e-10);
        assert!((frechet_distance(&b, &a) - 10.0).abs() < 1e-10);
    }

    #[test]
    fn fit_gives_mean_and_unbiased_covariance() {
        // Vectors (0, 0), (2, 0), (0, 2), (2, 2): mean (1, 1), variances 4/3, covariance 0.
        let g = Gaussian::fit(&[0.0, 0.0, 2.0, 0.0, 0.0, 2.0, 2.0, 2.0], 2);
        assert_eq!(g.mean.as_slice(), &[1.0, 1.0]);
        let expected = [4.0 / 3.0, 0.0, 0.0, 4.0 / 3.0];
        assert!(g.cov.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12), "{}", g.cov);
    }
}
