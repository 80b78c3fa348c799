//! Elementwise kernels: fills and the functions of one or two same-shaped inputs. Each op is a
//! closure monomorphized into a plain loop over slices, which the compiler vectorizes where the
//! function allows it.

use super::par::{for_each_chunk, ELEMENT_CHUNK};
use crate::ops::{BinaryOp, UnaryOp};

/// Sets every element of `out` to `v`.
pub fn fill(out: &mut [f32], v: f32) {
    for_each_chunk(out, ELEMENT_CHUNK, |_, chunk| chunk.fill(v));
}

/// `out[i] = f(x[i])`.
fn map1(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Sync + Send) {
    debug_assert_eq!(x.len(), out.len());
    for_each_chunk(out, ELEMENT_CHUNK, |i, chunk| {
        let src = &x[i * ELEMENT_CHUNK..][..chunk.len()];
        chunk.iter_mut().zip(src).for_each(|(o, &v)| *o = f(v));
    });
}

/// `out[i] = f(a[i], b[i])`.
fn map2(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) {
    debug_assert!(a.len() == out.len() && b.len() == out.len());
    for_each_chunk(out, ELEMENT_CHUNK, |i, chunk| {
        let start = i * ELEMENT_CHUNK;
        let (a, b) = (&a[start..][..chunk.len()], &b[start..][..chunk.len()]);
        chunk.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&a, &b))| *o = f(a, b));
    });
}

/// −1, 0 or 1 by the sign of `x` (NaN stays NaN).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x * 0.0
    }
}

/// `out = op(x)` elementwise.
pub fn unary(op: UnaryOp, x: &[f32], out: &mut [f32]) {
    match op {
        UnaryOp::Affine { scale, shift } => {
            let (scale, shift) = (scale.get(), shift.get());
            map1(x, out, |v| scale * v + shift)
        }
        // Exact squares and identities skip the libm call; every other exponent uses powf.
        UnaryOp::Pow(p) if p.get() == 1.0 => map1(x, out, |v| v),
        UnaryOp::Pow(p) if p.get() == 2.0 => map1(x, out, |v| v * v),
        UnaryOp::Pow(p) => {
            let p = p.get();
            map1(x, out, |v| v.powf(p))
        }
        UnaryOp::Exp => map1(x, out, f32::exp),
        UnaryOp::Log => map1(x, out, f32::ln),
        UnaryOp::Abs => map1(x, out, f32::abs),
        UnaryOp::Sign => map1(x, out, sign),
        UnaryOp::LeakyRelu(slope) => {
            let slope = slope.get();
            map1(x, out, |v| if v > 0.0 { v } else { slope * v })
        }
        UnaryOp::LeakyReluSlope(slope) => {
            let slope = slope.get();
            map1(x, out, |v| if v > 0.0 { 1.0 } else { slope })
        }
        UnaryOp::Tanh => map1(x, out, f32::tanh),
        UnaryOp::Sigmoid => map1(x, out, |v| 1.0 / (1.0 + (-v).exp())),
    }
}

/// `out = op(a, b)` elementwise.
pub fn binary(op: BinaryOp, a: &[f32], b: &[f32], out: &mut [f32]) {
    match op {
        BinaryOp::Add => map2(a, b, out, |a, b| a + b),
        BinaryOp::Sub => map2(a, b, out, |a, b| a - b),
        BinaryOp::Mul => map2(a, b, out, |a, b| a * b),
        BinaryOp::Div => map2(a, b, out, |a, b| a / b),
        // The same comparison as GreaterEqual, so that max and its derivative agree on ties.
        BinaryOp::Max => map2(a, b, out, |a, b| if a >= b { a } else { b }),
        BinaryOp::GreaterEqual => map2(a, b, out, |a, b| if a >= b { 1.0 } else { 0.0 }),
        BinaryOp::SigmoidCrossEntropy => map2(a, b, out, |a, b| a.max(0.0) - a * b + (-a.abs()).exp().ln_1p()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::F32;

    #[test]
    fn sign_and_leaky_relu_follow_the_docs() {
        let x = [-2.0, -0.0, 0.0, 3.0];
        let mut out = [9.0; 4];
        unary(UnaryOp::Sign, &x, &mut out);
        assert_eq!(out, [-1.0, 0.0, 0.0, 1.0]);
        unary(UnaryOp::LeakyRelu(F32::new(0.1)), &x, &mut out);
        assert_eq!(out, [-0.2, 0.0, 0.0, 3.0]);
        unary(UnaryOp::LeakyReluSlope(F32::new(0.1)), &x, &mut out);
        assert_eq!(out, [0.1, 0.1, 0.1, 1.0]);
        assert!(sign(f32::NAN).is_nan());
    }

    #[test]
    fn large_inputs_take_the_parallel_path_unchanged() {
        let x: Vec<f32> = (0..super::super::par::PAR_MIN + 7).map(|i| i as f32 * 0.5).collect();
        let mut out = vec![0.0; x.len()];
        unary(UnaryOp::Affine { scale: F32::new(2.0), shift: F32::new(1.0) }, &x, &mut out);
        assert!(out.iter().zip(&x).all(|(o, v)| *o == 2.0 * v + 1.0));
    }
}
