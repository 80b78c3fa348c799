//! Detects an adversarial run that has collapsed: one phase (a GAN's discriminator) drives every
//! loss it minimizes to about zero and keeps it there, so it wins completely and the other
//! phases get no useful gradient. Only solvers with several phases are watched: a single-phase
//! model fitting its data well is not a failure.

/// A loss below this counts as won.
pub const WON_BELOW: f32 = 1e-3;

/// Consecutive iterations a phase must win before the run is stopped.
pub const PATIENCE: u64 = 200;

/// Counts, per phase, the consecutive iterations it has won.
pub struct WinWatch {
    streaks: Vec<u64>,
    active: bool,
}

impl WinWatch {
    /// A watch over `phases` phases (inactive with fewer than two).
    pub fn new(phases: usize) -> Self {
        WinWatch { streaks: vec![0; phases], active: phases >= 2 }
    }

    /// Records phase `phase`'s last losses with their weights; true once every positively
    /// weighted loss has stayed below [`WON_BELOW`] for [`PATIENCE`] iterations.
    pub fn observe(&mut self, phase: usize, losses: &[(String, f32)], weights: &[f32]) -> bool {
        let minimized: Vec<f32> = losses.iter().zip(weights).filter(|(_, w)| **w > 0.0).map(|((_, v), _)| *v).collect();
        let won = self.active && !minimized.is_empty() && minimized.iter().all(|v| v.abs() < WON_BELOW);
        self.streaks[phase] = if won { self.streaks[phase] + 1 } else { 0 };
        self.streaks[phase] >= PATIENCE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn losses(values: &[f32]) -> Vec<(String, f32)> {
        values.iter().enumerate().map(|(i, v)| (format!("l{i}"), *v)).collect()
    }

    #[test]
    fn a_phase_that_keeps_winning_is_reported_after_the_patience() {
        let mut watch = WinWatch::new(2);
        for _ in 0..PATIENCE - 1 {
            assert!(!watch.observe(0, &losses(&[1e-5, 2e-5, 0.7]), &[1.0, 1.0, -1.0]));
        }
        assert!(watch.observe(0, &losses(&[1e-5, 2e-5, 0.7]), &[1.0, 1.0, -1.0]));
    }

    #[test]
    fn a_single_loss_above_the_threshold_resets_the_streak() {
        let mut watch = WinWatch::new(2);
        for i in 0..2 * PATIENCE {
            let d = if i % 100 == 99 { 0.5 } else { 1e-5 };
            assert!(!watch.observe(0, &losses(&[d]), &[1.0]));
        }
    }

    #[test]
    fn single_phase_solvers_are_not_watched() {
        let mut watch = WinWatch::new(1);
        assert!((0..2 * PATIENCE).all(|_| !watch.observe(0, &losses(&[0.0]), &[1.0])));
    }
}
