//! Shapes and the shape rule of every op, in one `match`.

use std::fmt;

use super::op::{Op, PoolAttrs, WarpAttrs};

/// A tensor shape (row-major dimensions); a scalar has no dimensions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let dims: Vec<String> = self.0.iter().map(|d| d.to_string()).collect();
        write!(f, "[{}]", dims.join(","))
    }
}

/// Output size of a convolution or pooling window along one axis (Caffe's formula; pooling
/// rounds up, then drops a last window that would start past the input and its padding, as
/// PyTorch's ceil mode does; Caffe keeps such a window only to average over nothing).
fn window_out(input: usize, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Option<usize> {
    let padded = input + 2 * pad;
    if padded < kernel {
        return None;
    }
    let span = padded - kernel;
    let mut out = if ceil { span.div_ceil(stride) } else { span / stride } + 1;
    if ceil && (out - 1) * stride >= input + pad {
        out -= 1;
    }
    Some(out)
}

fn pool_out(p: &PoolAttrs, h: usize, w: usize) -> Option<(usize, usize)> {
    Some((
        window_out(h, p.kernel[0], p.stride[0], p.pad[0], true)?,
        window_out(w, p.kernel[1], p.stride[1], p.pad[1], true)?,
    ))
}

fn expect_rank(what: &str, s: &[usize], rank: usize) -> Result<(), String> {
    if s.len() != rank {
        return Err(format!("{what} needs a {rank}-D input, got {}", Shape(s.to_vec())));
    }
    Ok(())
}

/// The output shape of `op` applied to inputs of shapes `ins`, or why the shapes do not fit.
pub fn infer_shape(op: &Op, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
    let arity = |n: usize| {
        if ins.len() != n {
            return Err(format!("{} takes {n} inputs, got {}", op.name(), ins.len()));
        }
        Ok(())
    };
    let same = |a: &[usize], b: &[usize]| {
        if a != b {
            return Err(format!(
                "{} needs equal shapes, got {} and {}",
                op.name(),
                Shape(a.to_vec()),
                Shape(b.to_vec())
            ));
        }
        Ok(a.to_vec())
    };
    match op {
        Op::Input { shape, .. } | Op::Param { shape, .. } | Op::Const { shape, .. } | Op::Sample { shape, .. } => {
            arity(0)?;
            Ok(shape.clone())
        }
        Op::MatMul { trans_a, trans_b } => {
            arity(2)?;
            expect_rank("matmul", ins[0], 2)?;
            expect_rank("matmul", ins[1], 2)?;
            let (m, k1) = if *trans_a { (ins[0][1], ins[0][0]) } else { (ins[0][0], ins[0][1]) };
            let (k2, n) = if *trans_b { (ins[1][1], ins[1][0]) } else { (ins[1][0], ins[1][1]) };
            if k1 != k2 {
                return Err(format!("matmul inner dimensions differ: {k1} and {k2}"));
            }
            Ok(vec![m, n])
        }
        Op::Conv2d(c) => {
            arity(2)?;
            expect_rank("conv2d", ins[0], 4)?;
            expect_rank("conv2d weight", ins[1], 4)?;
            let (x, w) = (ins[0], ins[1]);
            if x[1] != w[1] {
                return Err(format!("conv2d input has {} channels, weight expects {}", x[1], w[1]));
            }
            let h = window_out(x[2], w[2], c.stride[0], c.pad[0], false);
            let wd = window_out(x[3], w[3], c.stride[1], c.pad[1], false);
            match (h, wd) {
                (Some(h), Some(wd)) => Ok(vec![x[0], w[0], h, wd]),
                _ => Err(format!(
                    "conv2d kernel {}x{} is larger than the padded input {}x{}",
                    w[2],
                    w[3],
                    x[2] + 2 * c.pad[0],
                    x[3] + 2 * c.pad[1]
                )),
            }
        }
        Op::ConvTranspose2d(c) => {
            arity(2)?;
            expect_rank("conv_transpose2d", ins[0], 4)?;
            expect_rank("conv_transpose2d weight", ins[1], 4)?;
            let (x, w) = (ins[0], ins[1]);
            if x[1] != w[0] {
                return Err(format!("conv_transpose2d input has {} channels, weight expects {}", x[1], w[0]));
            }
            let out = |i: usize, k: usize, s: usize, p: usize, extra: usize| {
                (i - 1).checked_mul(s)?.checked_add(k + extra)?.checked_sub(2 * p).filter(|o| *o > 0)
            };
            let h = out(x[2], w[2], c.stride[0], c.pad[0], c.output_pad[0]);
            match (h, out(x[3], w[3], c.stride[1], c.pad[1], c.output_pad[1])) {
                (Some(h), Some(wd)) => Ok(vec![x[0], w[1], h, wd]),
                _ => Err("conv_transpose2d padding leaves no output".to_string()),
            }
        }
        Op::Conv2dGradWeight { attrs, kernel } => {
            arity(2)?;
            expect_rank("conv2d_grad_weight input", ins[0], 4)?;
            expect_rank("conv2d_grad_weight gradient", ins[1], 4)?;
            let (x, g) = (ins[0], ins[1]);
            let fits = x[0] == g[0]
                && window_out(x[2], kernel[0], attrs.stride[0], attrs.pad[0], false) == Some(g[2])
                && window_out(x[3], kernel[1], attrs.stride[1], attrs.pad[1], false) == Some(g[3]);
            if !fits {
                return Err(format!(
                    "conv2d_grad_weight: gradient {} does not match input {}",
                    Shape(g.to_vec()),
                    Shape(x.to_vec())
                ));
            }
            Ok(vec![g[1], x[1], kernel[0], kernel[1]])
        }
        Op::Pool2dGrad(p) => {
            arity(2)?;
            expect_rank("pool2d_grad", ins[0], 4)?;
            let x = ins[0];
            let expected = pool_out(p, x[2], x[3]).map(|(h, w)| vec![x[0], x[1], h, w]);
            if expected.as_deref() != Some(ins[1]) {
                return Err(format!(
                    "pool2d_grad: gradient {} does not match input {}",
                    Shape(ins[1].to_vec()),
                    Shape(x.to_vec())
                ));
            }
            Ok(x.to_vec())
        }
        Op::Pool2d(p) => {
            arity(1)?;
            expect_rank("pool2d", ins[0], 4)?;
            let x = ins[0];
            match pool_out(p, x[2], x[3]) {
                Some((h, w)) => Ok(vec![x[0], x[1], h, w]),
                None => Err(format!(
                    "pooling window {}x{} is larger than the input {}x{}",
                    p.kernel[0], p.kernel[1], x[2], x[3]
                )),
            }
        }
        Op::Upsample2d { scale } => {
            arity(1)?;
            expect_rank("upsample2d", ins[0], 4)?;
            let x = ins[0];
            Ok(vec![x[0], x[1], x[2] * scale, x[3] * scale])
        }
        Op::Warp2d(_) | Op::Warp2dGrad(_) => {
            arity(2)?;
            expect_rank("warp2d", ins[0], 4)?;
            if ins[1] != [ins[0][0], WarpAttrs::DRAWS] {
                return Err(format!(
                    "warp2d draws must be {}×{} (one row per image), got {:?}",
                    ins[0][0],
                    WarpAttrs::DRAWS,
                    ins[1]
                ));
            }
            Ok(ins[0].to_vec())
        }
        Op::Unary(_) | Op::StopGradient => {
            arity(1)?;
            Ok(ins[0].to_vec())
        }
        Op::Binary(_) => {
            arity(2)?;
            same(ins[0], ins[1])
        }
        Op::Fused(expr) => {
            arity(expr.inputs)?;
            fused_shape(ins)
        }
        Op::Epilogue { base, .. } => {
            let (bias, base_inputs) = ins.split_last().ok_or_else(|| "an epilogue takes a bias".to_string())?;
            let out = infer_shape(base, base_inputs)?;
            match out.get(1) {
                Some(c) if *bias == [*c] => Ok(out),
                _ => Err(format!("bias {} does not fit axis 1 of {}", Shape(bias.to_vec()), Shape(out.clone()))),
            }
        }
        Op::FusedReduce { expr, axes, .. } => {
            arity(expr.inputs)?;
            reduced_shape(&fused_shape(ins)?, axes)
        }
        Op::Reduce { axes, .. } => {
            arity(1)?;
            reduced_shape(ins[0], axes)
        }
        Op::Broadcast { to, dims } => {
            arity(1)?;
            let fits = dims.len() == ins[0].len()
                && dims.windows(2).all(|w| w[0] < w[1])
                && dims.iter().zip(ins[0]).all(|(d, n)| *d < to.len() && (to[*d] == *n || *n == 1));
            if !fits {
                return Err(format!(
                    "cannot broadcast {} to {} along {dims:?}",
                    Shape(ins[0].to_vec()),
                    Shape(to.clone())
                ));
            }
            Ok(to.clone())
        }
        Op::Reshape { to } => {
            arity(1)?;
            let count = |s: &[usize]| s.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
            if count(to).is_none() || count(to) != count(ins[0]) {
                return Err(format!(
                    "cannot reshape {} ({} elements) to {}",
                    Shape(ins[0].to_vec()),
                    ins[0].iter().product::<usize>(),
                    Shape(to.clone())
                ));
            }
            Ok(to.clone())
        }
        Op::Concat { axis } => {
            if ins.len() < 2 {
                return Err("concat takes at least 2 inputs".to_string());
            }
            let mut out = ins[0].to_vec();
            if *axis >= out.len() {
                return Err(format!("concat axis {axis} is out of range for {}", Shape(out)));
            }
            for other in &ins[1..] {
                let mismatch =
                    other.len() != out.len() || other.iter().enumerate().any(|(i, d)| i != *axis && *d != out[i]);
                if mismatch {
                    return Err(format!(
                        "concat along axis {axis} needs equal other dimensions, got {} and {}",
                        Shape(ins[0].to_vec()),
                        Shape(other.to_vec())
                    ));
                }
                out[*axis] += other[*axis];
            }
            Ok(out)
        }
        Op::Slice { axis, start, end } => {
            arity(1)?;
            let mut out = ins[0].to_vec();
            if *axis >= out.len() || start >= end || *end > out[*axis] {
                return Err(format!("cannot slice {start}..{end} along axis {axis} of {}", Shape(out)));
            }
            out[*axis] = end - start;
            Ok(out)
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            arity(1)?;
            if *axis >= ins[0].len() {
                return Err(format!("softmax axis {axis} is out of range for {}", Shape(ins[0].to_vec())));
            }
            Ok(ins[0].to_vec())
        }
        Op::OneHot { classes } => {
            arity(1)?;
            expect_rank("one_hot", ins[0], 1)?;
            Ok(vec![ins[0][0], *classes])
        }
        Op::Accuracy { .. } => {
            arity(2)?;
            expect_rank("accuracy scores", ins[0], 2)?;
            if ins[1] != [ins[0][0]] {
                return Err(format!("accuracy labels must be [{}], got {}", ins[0][0], Shape(ins[1].to_vec())));
            }
            Ok(vec![])
        }
    }
}

/// The shape of a fused expression over `ins`: scalars broadcast; every other input has the
/// output's shape.
fn fused_shape(ins: &[&[usize]]) -> Result<Vec<usize>, String> {
    let mut full = ins.iter().filter(|s| !s.is_empty());
    let out = full.next().copied().unwrap_or_default();
    for s in full {
        if *s != out {
            return Err(format!("shapes {} and {} differ", Shape(out.to_vec()), Shape(s.to_vec())));
        }
    }
    Ok(out.to_vec())
}

/// `shape` without the sorted `axes`.
fn reduced_shape(shape: &[usize], axes: &[usize]) -> Result<Vec<usize>, String> {
    if axes.iter().any(|a| *a >= shape.len()) || axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("cannot reduce axes {axes:?} of {}", Shape(shape.to_vec())));
    }
    Ok(shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| *d).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::ConvAttrs;
    use crate::ir::PoolMethod;

    #[test]
    fn caffe_output_sizes() {
        let conv = Op::Conv2d(ConvAttrs { stride: [2, 2], pad: [1, 1], output_pad: [0, 0] });
        assert_eq!(infer_shape(&conv, &[&[8, 1, 28, 28], &[64, 1, 4, 4]]).unwrap(), vec![8, 64, 14, 14]);
        let deconv = Op::ConvTranspose2d(ConvAttrs { stride: [2, 2], pad: [1, 1], output_pad: [0, 0] });
        assert_eq!(infer_shape(&deconv, &[&[8, 128, 7, 7], &[128, 64, 4, 4]]).unwrap(), vec![8, 64, 14, 14]);
        let pool = Op::Pool2d(PoolAttrs { method: PoolMethod::Max, kernel: [2, 2], stride: [2, 2], pad: [0, 0] });
        assert_eq!(infer_shape(&pool, &[&[8, 128, 10, 10]]).unwrap(), vec![8, 128, 5, 5]);
        // Caffe rounds pooling up: 3x3/2 over 6 gives ceil(3/2)+1 = 3 (floor would give 2).
        let pool3 = Op::Pool2d(PoolAttrs { method: PoolMethod::Ave, kernel: [3, 3], stride: [2, 2], pad: [0, 0] });
        assert_eq!(infer_shape(&pool3, &[&[1, 1, 6, 6]]).unwrap(), vec![1, 1, 3, 3]);
        // A 1×1 window with stride 2 over 4: ceil gives 3 windows, the last starts past the input.
        let sparse = Op::Pool2d(PoolAttrs { method: PoolMethod::Ave, kernel: [1, 1], stride: [2, 2], pad: [0, 0] });
        assert_eq!(infer_shape(&sparse, &[&[1, 1, 4, 4]]).unwrap(), vec![1, 1, 2, 2]);
    }

    #[test]
    fn mismatches_are_errors() {
        let mm = Op::MatMul { trans_a: false, trans_b: true };
        assert!(infer_shape(&mm, &[&[8, 784], &[10, 700]]).unwrap_err().contains("784 and 700"));
        let bc = Op::Broadcast { to: vec![8, 3], dims: vec![0] };
        assert!(infer_shape(&bc, &[&[3]]).is_err());
    }
}
