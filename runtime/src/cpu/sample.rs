//! Noise kernels: outputs drawn sequentially from one keyed generator. They run on one thread so
//! that the values depend only on (seed, stream, draw), never on the thread count.

use super::NoiseKey;
use crate::ops::Distribution;
use crate::rng::Rng;

/// Fills `out` (whose last axis has `row_len` elements) from `dist`, drawing from
/// `Rng::keyed(noise.seed, stream, noise.draw)` in row-major order.
pub fn sample(dist: Distribution, stream: u32, noise: &NoiseKey, out: &mut [f32], row_len: usize) {
    let mut rng = Rng::keyed(noise.seed, stream as u64, noise.draw);
    match dist {
        Distribution::Uniform { min, max } => out.iter_mut().for_each(|o| *o = rng.uniform_in(min.get(), max.get())),
        Distribution::Gaussian { mean, std } => out.iter_mut().for_each(|o| *o = mean.get() + std.get() * rng.normal()),
        Distribution::Categorical => {
            for row in out.chunks_mut(row_len.max(1)) {
                row.fill(0.0);
                row[rng.below(row.len())] = 1.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::F32;

    #[test]
    fn categorical_rows_are_one_hot_and_reproducible() {
        let key = NoiseKey { seed: 3, draw: 1 };
        let (mut a, mut b) = (vec![7.0; 20], vec![0.0; 20]);
        sample(Distribution::Categorical, 2, &key, &mut a, 5);
        sample(Distribution::Categorical, 2, &key, &mut b, 5);
        assert_eq!(a, b);
        assert!(a.chunks(5).all(|r| r.iter().sum::<f32>() == 1.0 && r.iter().all(|v| *v == 0.0 || *v == 1.0)));
    }

    #[test]
    fn values_come_from_the_keyed_stream() {
        let key = NoiseKey { seed: 9, draw: 4 };
        let mut out = vec![0.0; 3];
        let dist = Distribution::Gaussian { mean: F32::new(1.0), std: F32::new(2.0) };
        sample(dist, 5, &key, &mut out, 3);
        let mut rng = Rng::keyed(9, 5, 4);
        let expect: Vec<f32> = (0..3).map(|_| 1.0 + 2.0 * rng.normal()).collect();
        assert_eq!(out, expect);
    }
}
