//! Elementwise kernels: fills and the functions of one or two same-shaped inputs. Each op is a
//! closure monomorphized into a plain loop over slices, which the compiler vectorizes where the
//! function allows it, compiled for the CPU's widest vectors ([`widest`]).

use super::par::{for_each_chunk, ELEMENT_CHUNK};
use super::vmath;
use super::widest::{self, VectorLoop};
use crate::ops::{BinaryOp, UnaryOp};

/// Sets every element of `out` to `v`.
pub fn fill(out: &mut [f32], v: f32) {
    for_each_chunk(out, ELEMENT_CHUNK, |_, chunk| chunk.fill(v));
}

/// `out[i] = f(x[i])`.
fn map1(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Copy + Sync + Send) {
    debug_assert_eq!(x.len(), out.len());
    for_each_chunk(out, ELEMENT_CHUNK, |i, chunk| widest::run(Map1(&x[i * ELEMENT_CHUNK..][..chunk.len()], chunk, f)));
}

/// `out[i] = f(a[i], b[i])`.
fn map2(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Copy + Sync + Send) {
    debug_assert!(a.len() == out.len() && b.len() == out.len());
    for_each_chunk(out, ELEMENT_CHUNK, |i, chunk| {
        let start = i * ELEMENT_CHUNK;
        widest::run(Map2(&a[start..][..chunk.len()], &b[start..][..chunk.len()], chunk, f));
    });
}

/// [`map_slice`] as a [`VectorLoop`].
struct Map1<'a, F>(&'a [f32], &'a mut [f32], F);

impl<F: Fn(f32) -> f32 + Copy> VectorLoop for Map1<'_, F> {
    #[inline(always)]
    fn run(self) {
        map_slice(self.0, self.1, self.2);
    }
}

/// [`map2_slice`] as a [`VectorLoop`].
struct Map2<'a, F>(&'a [f32], &'a [f32], &'a mut [f32], F);

impl<F: Fn(f32, f32) -> f32 + Copy> VectorLoop for Map2<'_, F> {
    #[inline(always)]
    fn run(self) {
        map2_slice(self.0, self.1, self.2, self.3);
    }
}

/// `out[i] = f(x[i])` on one slice. `f` comes by value, so its captured constants (a slope, a
/// scale) are known not to alias `out` and the loop vectorizes; read through a reference they
/// were reloaded after every store, one element at a time.
#[inline(always)]
pub(crate) fn map_slice(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    out.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
}

/// `out[i] = f(a[i], b[i])` on one slice, `f` by value as in [`map_slice`].
#[inline(always)]
pub(crate) fn map2_slice(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Copy) {
    out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&a, &b))| *o = f(a, b));
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

/// Applies a scalar function of one input over some elements: the slices of a kernel, one block
/// of a fused expression, or a single value. [`with_unary`] hands it each op's function, so that
/// every caller computes exactly the same per-element math.
pub(crate) trait ApplyUnary {
    /// Applies `f`.
    fn apply<F: Fn(f32) -> f32 + Copy + Sync + Send>(self, f: F);
}

/// As [`ApplyUnary`], for functions of two inputs.
pub(crate) trait ApplyBinary {
    /// Applies `f`.
    fn apply<F: Fn(f32, f32) -> f32 + Copy + Sync + Send>(self, f: F);
}

/// `scale·v + shift`: the affine op's function, also computed inside other ops' loops by the
/// fused kernel (the same bits either way).
#[inline(always)]
pub(crate) fn affine(scale: f32, shift: f32) -> impl Fn(f32) -> f32 + Copy + Sync + Send {
    move |v| scale * v + shift
}

/// Calls `k.apply` with the scalar function of `op`.
#[inline(always)]
pub(crate) fn with_unary(op: UnaryOp, k: impl ApplyUnary) {
    match op {
        UnaryOp::Affine { scale, shift } => k.apply(affine(scale.get(), shift.get())),
        // Identities, squares and square roots (Adam's denominator, BatchNorm's std) skip the
        // scalar libm call, so their loops vectorize; every other exponent uses powf. The square
        // root is PyTorch's rule for pow(x, 0.5) too.
        UnaryOp::Pow(p) if p.get() == 1.0 => k.apply(|v| v),
        UnaryOp::Pow(p) if p.get() == 2.0 => k.apply(|v| v * v),
        UnaryOp::Pow(p) if p.get() == 0.5 => k.apply(f32::sqrt),
        UnaryOp::Pow(p) => {
            let p = p.get();
            k.apply(move |v| v.powf(p))
        }
        UnaryOp::Exp => k.apply(vmath::exp),
        UnaryOp::Log => k.apply(f32::ln),
        UnaryOp::Abs => k.apply(f32::abs),
        UnaryOp::Sign => k.apply(sign),
        UnaryOp::LeakyRelu(slope) => {
            let slope = slope.get();
            k.apply(move |v| if v > 0.0 { v } else { slope * v })
        }
        UnaryOp::LeakyReluSlope(slope) => {
            let slope = slope.get();
            k.apply(move |v| if v > 0.0 { 1.0 } else { slope })
        }
        UnaryOp::Tanh => k.apply(vmath::tanh),
        UnaryOp::Sigmoid => k.apply(vmath::sigmoid),
    }
}

/// Calls `k.apply` with the scalar function of `op`.
#[inline(always)]
pub(crate) fn with_binary(op: BinaryOp, k: impl ApplyBinary) {
    match op {
        BinaryOp::Add => k.apply(|a, b| a + b),
        BinaryOp::Sub => k.apply(|a, b| a - b),
        BinaryOp::Mul => k.apply(|a, b| a * b),
        BinaryOp::Div => k.apply(|a, b| a / b),
        // The same comparison as GreaterEqual, so that max and its derivative agree on ties.
        BinaryOp::Max => k.apply(|a, b| if a >= b { a } else { b }),
        BinaryOp::GreaterEqual => k.apply(|a, b| if a >= b { 1.0 } else { 0.0 }),
        // max(a, 0) − a·b + ln(1 + e^{−|a|}): stable for either sign of the logit a.
        BinaryOp::SigmoidCrossEntropy => k.apply(|a, b| a.max(0.0) - a * b + vmath::ln_1p(vmath::exp(-a.abs()))),
    }
}

/// `op(x)` for one value, bit-identical to the kernels.
pub(crate) fn unary_scalar(op: UnaryOp, x: f32) -> f32 {
    struct One<'a>(f32, &'a mut f32);
    impl ApplyUnary for One<'_> {
        fn apply<F: Fn(f32) -> f32 + Copy + Sync + Send>(self, f: F) {
            *self.1 = f(self.0);
        }
    }
    let mut out = 0.0;
    with_unary(op, One(x, &mut out));
    out
}

/// `op(a, b)` for one pair of values, bit-identical to the kernels.
pub(crate) fn binary_scalar(op: BinaryOp, a: f32, b: f32) -> f32 {
    struct One<'a>(f32, f32, &'a mut f32);
    impl ApplyBinary for One<'_> {
        fn apply<F: Fn(f32, f32) -> f32 + Copy + Sync + Send>(self, f: F) {
            *self.2 = f(self.0, self.1);
        }
    }
    let mut out = 0.0;
    with_binary(op, One(a, b, &mut out));
    out
}

/// `out = activation(out + bias)` in place, the bias indexed by axis 1 of `shape` (columns of a
/// matrix, channels of an N×C×H×W tensor): the same per-element math as a broadcast add and the
/// activation's kernel.
pub fn bias_activation(out: &mut [f32], shape: &[usize], bias: &[f32], activation: Option<UnaryOp>) {
    let channels = shape.get(1).copied().unwrap_or(1);
    let inner: usize = shape.iter().skip(2).product();
    debug_assert_eq!(bias.len(), channels);
    struct Planes<'a>(&'a mut [f32], &'a [f32], usize);
    impl ApplyUnary for Planes<'_> {
        fn apply<F: Fn(f32) -> f32 + Copy + Sync + Send>(self, f: F) {
            let Planes(out, bias, inner) = self;
            let image = (bias.len() * inner).max(1);
            // Whole images per chunk, about ELEMENT_CHUNK elements of them.
            let chunk = image * (ELEMENT_CHUNK / image).max(1);
            for_each_chunk(out, chunk, |_, images| widest::run(BiasImages { images, bias, inner, f }));
        }
    }
    /// Whole images of [`bias_activation`]'s output.
    struct BiasImages<'a, F> {
        images: &'a mut [f32],
        bias: &'a [f32],
        inner: usize,
        f: F,
    }
    impl<F: Fn(f32) -> f32 + Copy> VectorLoop for BiasImages<'_, F> {
        #[inline(always)]
        fn run(self) {
            let BiasImages { images, bias, inner, f } = self;
            if inner == 1 {
                // A matrix's rows: one bias per column, a vectorizable loop along the row.
                for row in images.chunks_mut(bias.len().max(1)) {
                    add_bias_row(row, bias, f);
                }
                return;
            }
            for (plane, &b) in images.chunks_mut(inner.max(1)).zip(bias.iter().cycle()) {
                add_bias_plane(plane, b, f);
            }
        }
    }
    match activation {
        Some(op) => with_unary(op, Planes(out, bias, inner)),
        None => Planes(out, bias, inner).apply(|v| v),
    }
}

/// `row[j] = f(row[j] + bias[j])`, `f` by value as in [`map_slice`].
#[inline(always)]
fn add_bias_row(row: &mut [f32], bias: &[f32], f: impl Fn(f32) -> f32 + Copy) {
    row.iter_mut().zip(bias).for_each(|(v, b)| *v = f(*v + b));
}

/// `plane[i] = f(plane[i] + b)`, `f` by value as in [`map_slice`].
#[inline(always)]
fn add_bias_plane(plane: &mut [f32], b: f32, f: impl Fn(f32) -> f32 + Copy) {
    plane.iter_mut().for_each(|v| *v = f(*v + b));
}

/// `out = op(x)` elementwise.
pub fn unary(op: UnaryOp, x: &[f32], out: &mut [f32]) {
    struct Slices<'a>(&'a [f32], &'a mut [f32]);
    impl ApplyUnary for Slices<'_> {
        fn apply<F: Fn(f32) -> f32 + Copy + Sync + Send>(self, f: F) {
            map1(self.0, self.1, f)
        }
    }
    with_unary(op, Slices(x, out))
}

/// `out = op(a, b)` elementwise.
pub fn binary(op: BinaryOp, a: &[f32], b: &[f32], out: &mut [f32]) {
    struct Slices<'a>(&'a [f32], &'a [f32], &'a mut [f32]);
    impl ApplyBinary for Slices<'_> {
        fn apply<F: Fn(f32, f32) -> f32 + Copy + Sync + Send>(self, f: F) {
            map2(self.0, self.1, self.2, f)
        }
    }
    with_binary(op, Slices(a, b, out))
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
