//! What the device tests share.

/// Fails unless `got` matches `expected` within `tolerance` of the largest magnitude in
/// `expected` (at least 1), naming `what` and the step `label` with the first values of each.
/// A NaN in `got` where `expected` has a number fails.
pub fn assert_close(what: &str, label: &str, expected: &[f32], got: &[f32], tolerance: f32) {
    assert_eq!(expected.len(), got.len(), "{what}: {label}: lengths differ");
    let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let bound = tolerance * scale;
    let differences =
        expected.iter().zip(got).map(|(e, g)| if e.to_bits() == g.to_bits() { 0.0 } else { (e - g).abs() });
    // `f32::max` would drop a NaN difference; this keeps it.
    let worst = differences.fold(0.0f32, |worst, d| if d.is_nan() || d > worst { d } else { worst });
    assert!(
        worst <= bound,
        "{what}: {label} differs by {worst} (values up to {scale}): cpu {:?} vs device {:?}",
        &expected[..expected.len().min(6)],
        &got[..got.len().min(6)]
    );
}
