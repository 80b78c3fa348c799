//! What the kernel benchmarks share: deterministic inputs and best-of-repetitions timing.

use std::time::{Duration, Instant};

/// A deterministic, non-trivial tensor of `len` elements in [0, 1).
pub fn filled(len: usize, salt: u32) -> Vec<f32> {
    (0..len as u32).map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(salt) >> 16) % 97) as f32 / 97.0).collect()
}

/// The best time in seconds of `f` over at least 3 runs after a warm-up, repeated for up to
/// `budget` (and at most `most` runs).
pub fn best_time(budget: Duration, most: usize, mut f: impl FnMut()) -> f64 {
    f();
    let (started, mut best, mut runs) = (Instant::now(), f64::INFINITY, 0);
    while runs < 3 || (started.elapsed() < budget && runs < most) {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}
