//! The CPU backend's kernels: [`execute`] runs one [`Kernel`] on row-major `f32` buffers.
//!
//! Every kernel gives bit-identical results for any rayon thread count: work is split at
//! boundaries that depend only on the shapes, and partial results are combined in a fixed order.

mod conv;
pub mod denormals;
mod direct_conv;
pub(crate) mod elementwise;
pub mod fused;
pub mod gemm;
mod im2col;
mod labels;
mod lanes;
mod par;
mod pool;
mod reduce;
pub mod sample;
mod shape_ops;
mod softmax;
mod vmath;
mod warp;
mod wide_conv;
mod widest;

use crate::plan::Kernel;
use gemm::{sgemm, Mat};

/// A read-only view of one buffer: row-major data and its shape.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The elements, row-major.
    pub data: &'a [f32],
    /// The shape (empty for a scalar).
    pub shape: &'a [usize],
}

/// Where noise comes from for a Sample kernel: values are drawn from
/// `Rng::keyed(seed, stream, draw)`.
#[derive(Clone, Copy, Debug)]
pub struct NoiseKey {
    /// The run's seed.
    pub seed: u64,
    /// The draw number (e.g. the step), so that each run draws fresh noise.
    pub draw: u64,
}

/// Runs one kernel: reads `inputs`, overwrites all of `out` (whose shape is `out_shape`).
///
/// Shapes are assumed to have been checked by the compiler; mismatches panic or are caught by
/// debug assertions.
pub fn execute(kernel: &Kernel, inputs: &[View], out: &mut [f32], out_shape: &[usize], noise: &NoiseKey) {
    debug_assert_eq!(out.len(), out_shape.iter().product::<usize>(), "output length vs shape {out_shape:?}");
    debug_assert!(inputs.iter().all(|v| v.data.len() == v.shape.iter().product::<usize>()));
    let input = |i: usize| inputs[i];
    match kernel {
        Kernel::Fill(v) => elementwise::fill(out, v.get()),
        Kernel::Sample { dist, stream } => {
            sample::sample(*dist, *stream, noise, out, out_shape.last().copied().unwrap_or(1))
        }
        Kernel::MatMul { trans_a, trans_b } => matmul(input(0), input(1), *trans_a, *trans_b, out, out_shape),
        Kernel::Conv2d(attrs) => conv::conv2d(attrs, input(0), input(1), out, out_shape),
        Kernel::ConvTranspose2d(attrs) => conv::conv_transpose2d(attrs, input(0), input(1), out, out_shape),
        Kernel::Conv2dGradWeight(attrs) => conv::conv2d_grad_weight(attrs, input(0), input(1), out, out_shape),
        Kernel::Pool2d(attrs) => pool::pool2d(attrs, input(0), out, out_shape),
        Kernel::Pool2dGrad(attrs) => pool::pool2d_grad(attrs, input(0), input(1), out),
        Kernel::Upsample2d { scale } => shape_ops::upsample2d(input(0), *scale, out),
        Kernel::Warp2d(attrs) => warp::warp2d(attrs, input(0), input(1), out),
        Kernel::Warp2dGrad(attrs) => warp::warp2d_grad(attrs, input(0), input(1), out),
        Kernel::Unary(op) => elementwise::unary(*op, input(0).data, out),
        Kernel::Binary(op) => elementwise::binary(*op, input(0).data, input(1).data, out),
        Kernel::Fused(expr) => fused::fused(expr, inputs, out),
        Kernel::Epilogue { base, activation } => {
            let (bias, base_inputs) = inputs.split_last().expect("an epilogue has a bias input");
            execute(base, base_inputs, out, out_shape, noise);
            elementwise::bias_activation(out, out_shape, bias.data, *activation);
        }
        Kernel::FusedReduce { expr, op, axes } => reduce::fused_reduce(expr, *op, inputs, axes, out),
        Kernel::Reduce { op, axes } => reduce::reduce(*op, input(0), axes, out),
        Kernel::Broadcast { dims } => shape_ops::broadcast(input(0), dims, out, out_shape),
        Kernel::Copy => shape_ops::copy(input(0).data, out),
        Kernel::Concat { axis } => shape_ops::concat(inputs, *axis, out, out_shape),
        Kernel::Slice { axis, start, end } => {
            debug_assert_eq!(out_shape[*axis], end - start);
            shape_ops::slice(input(0), *axis, *start, out, out_shape)
        }
        Kernel::Softmax { axis } => softmax::softmax(input(0), *axis, false, out),
        Kernel::LogSoftmax { axis } => softmax::softmax(input(0), *axis, true, out),
        Kernel::OneHot { classes } => labels::one_hot(input(0).data, *classes, out),
        Kernel::Accuracy { top_k } => out[0] = labels::accuracy(input(0), input(1).data, *top_k),
    }
}

/// `out = op(A)·op(B)`, where `op` transposes when its flag is set (A and B stored as given).
fn matmul(a: View, b: View, trans_a: bool, trans_b: bool, out: &mut [f32], out_shape: &[usize]) {
    let (&[m, n], &[a0, a1], &[b0, b1]) = (out_shape, a.shape, b.shape) else {
        panic!("matmul needs 2-D operands, got {:?}·{:?} → {out_shape:?}", a.shape, b.shape)
    };
    let operand = |data, cols, trans| if trans { Mat::row_major(data, cols).t() } else { Mat::row_major(data, cols) };
    let k = if trans_a { a0 } else { a1 };
    debug_assert_eq!((m, k), if trans_a { (a1, a0) } else { (a0, a1) });
    debug_assert_eq!((k, n), if trans_b { (b1, b0) } else { (b0, b1) });
    sgemm(m, n, k, operand(a.data, a1, trans_a), operand(b.data, b1, trans_b), out, false);
}
