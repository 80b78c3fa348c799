//! The one random number generator behind every filler and noise source: SplitMix64, keyed by
//! (seed, stream, draw). Keying by stream and draw number rather than sharing one sequence means
//! a noise source's values do not depend on which other sources ran before it, so runs are
//! bit-identical for a fixed seed whatever the backend's execution order.

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator for draw number `draw` of stream `stream` under `seed`.
    pub fn keyed(seed: u64, stream: u64, draw: u64) -> Self {
        let key = mix(mix(seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_add(stream)).wrapping_add(mix(draw));
        Rng { state: mix(key) }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform on [0, 1), with 24 random bits (every value exactly representable in f32).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform on [lo, hi).
    pub fn uniform_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal, by the Box–Muller transform (computed in f64, then rounded).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64);
        let u2 = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Uniform integer in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::keyed(1, 0, 0).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::keyed(1, 0, 0).next_u64(), Rng::keyed(1, 1, 0).next_u64());
        assert_ne!(Rng::keyed(1, 0, 0).next_u64(), Rng::keyed(1, 0, 1).next_u64());
        assert_ne!(Rng::keyed(1, 0, 0).next_u64(), Rng::keyed(2, 0, 0).next_u64());
    }

    #[test]
    fn moments_are_right() {
        let mut r = Rng::keyed(7, 3, 0);
        let n = 200_000;
        let normals: Vec<f64> = (0..n).map(|_| r.normal() as f64).collect();
        let mean = normals.iter().sum::<f64>() / n as f64;
        let var = normals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        let uniforms: Vec<f32> = (0..n).map(|_| r.uniform_in(-1.0, 1.0)).collect();
        assert!(uniforms.iter().all(|u| (-1.0..1.0).contains(u)));
        let umean = uniforms.iter().map(|u| *u as f64).sum::<f64>() / n as f64;
        assert!(umean.abs() < 0.01, "uniform mean {umean}");
        let mut counts = [0usize; 10];
        for _ in 0..n {
            counts[r.below(10)] += 1;
        }
        assert!(counts.iter().all(|c| (*c as f64 - n as f64 / 10.0).abs() < 600.0), "{counts:?}");
    }
}
