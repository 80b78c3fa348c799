//! Sum and mean over a set of axes, of a buffer or of a fused expression. Values are accumulated in f64 (with eight independent lanes
//! along contiguous runs, so the loop vectorizes), which keeps large sums accurate. Work is split
//! along the outermost axis into blocks whose boundaries depend only on the shape, and partial
//! sums are combined in block order, so results are bit-identical for any thread count.

use std::ops::Range;

use super::fused::eval_range;
use super::shape_ops::Axes;
use super::View;
use crate::fused::FusedExpr;
use crate::ops::ReduceOp;
use rayon::prelude::*;

/// Input elements per parallel block, roughly.
const BLOCK_ELEMS: usize = 1 << 16;
/// The most partial sums an outer reduced axis is split into.
const MAX_PARTIALS: usize = 16;

/// An axis group of the collapsed input: its size and whether it is reduced.
type Dim = (usize, bool);

/// `shape` with size-1 axes dropped and neighbouring axes of the same kind merged.
fn collapse(shape: &[usize], axes: &[usize]) -> Axes<Dim> {
    let mut dims: Axes<Dim> = Axes::new();
    for (axis, &size) in shape.iter().enumerate().filter(|(_, size)| **size != 1) {
        let reduced = axes.contains(&axis);
        match dims.last_mut() {
            Some(last) if last.1 == reduced => last.0 *= size,
            _ => dims.push((size, reduced)),
        }
    }
    dims
}

/// Σ x in f64, over eight lanes combined in a fixed order.
fn sum_f64(x: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, &v)| *l += v as f64);
    }
    lanes.iter().sum::<f64>() + tail
}

/// Adds the reduction of `x` (of collapsed shape `dims`) into `acc` (one slot per kept index).
fn accumulate(x: &[f32], dims: &[Dim], acc: &mut [f64]) {
    match dims {
        [] => acc[0] += x[0] as f64,
        [(_, true)] => acc[0] += sum_f64(x),
        [(_, false)] => acc.iter_mut().zip(x).for_each(|(a, &v)| *a += v as f64),
        [(len, reduced), rest @ ..] => {
            let step = x.len() / len;
            let acc_step = if *reduced { acc.len() } else { acc.len() / len };
            for i in 0..*len {
                let acc = if *reduced { &mut *acc } else { &mut acc[i * acc_step..][..acc_step] };
                accumulate(&x[i * step..][..step], rest, acc);
            }
        }
    }
}

/// Where a reduction reads its input.
enum Source<'a> {
    /// A buffer.
    Data(&'a [f32]),
    /// A fused expression over these inputs, evaluated block by block.
    Expr(&'a FusedExpr, &'a [View<'a>]),
}

thread_local! {
    /// Each thread's buffer for the evaluated blocks of a fused reduction, reused across calls.
    static BLOCK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Each thread's f64 accumulators (the partial sums of every block), reused across calls.
    static PARTIALS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Source<'_> {
    /// `f` of the input elements in `range`.
    fn with_block<R>(&self, range: Range<usize>, f: impl FnOnce(&[f32]) -> R) -> R {
        match self {
            Source::Data(data) => f(&data[range]),
            Source::Expr(expr, inputs) => BLOCK.with_borrow_mut(|values| {
                if values.len() < range.len() {
                    values.resize(range.len(), 0.0);
                }
                let values = &mut values[..range.len()];
                eval_range(expr, inputs, range.start, values);
                f(values)
            }),
        }
    }
}

/// Reduces `x` over the sorted `axes` into `out` (those axes removed).
pub fn reduce(op: ReduceOp, x: View, axes: &[usize], out: &mut [f32]) {
    reduce_from(op, x.shape, &Source::Data(x.data), axes, out);
}

/// Reduces `expr` over `inputs` (shaped as the reduction's input, or scalars) over the sorted
/// `axes` into `out`: the same sums, in the same order, as evaluating the expression into a
/// buffer and reducing that, without the buffer.
pub fn fused_reduce(expr: &FusedExpr, op: ReduceOp, inputs: &[View], axes: &[usize], out: &mut [f32]) {
    let shape = inputs.iter().max_by_key(|v| v.data.len()).map_or(&[][..], |v| v.shape);
    reduce_from(op, shape, &Source::Expr(expr, inputs), axes, out);
}

/// Reduces the input of shape `shape` read from `source`.
fn reduce_from(op: ReduceOp, shape: &[usize], source: &Source, axes: &[usize], out: &mut [f32]) {
    let count: usize = axes.iter().map(|&a| shape[a]).product();
    let numel: usize = shape.iter().product();
    let divisor = match op {
        ReduceOp::Sum => 1.0,
        ReduceOp::Mean => count as f64,
    };
    let dims = collapse(shape, axes);
    let (top, reduced) = dims.first().copied().unwrap_or((1, false));
    // Blocks of the outermost axis group, sized from the shape alone.
    let max_blocks = if reduced { top.min(MAX_PARTIALS) } else { top };
    let rows_per_block = top.div_ceil((numel / BLOCK_ELEMS).clamp(1, max_blocks.max(1))).max(1);
    let blocks = if numel > 0 { top.div_ceil(rows_per_block) } else { 0 };
    // A reduced outer axis gives each block a whole partial sum, added in block order at the end;
    // a kept one gives each block its own rows of the accumulator.
    let part_len = if reduced { out.len() } else { rows_per_block * (out.len() / top.max(1)) };
    // Taken out of the thread-local (and put back after), so that a nested reduction on this
    // thread finds its own.
    let mut partials = PARTIALS.take();
    partials.clear();
    partials.resize(if reduced { blocks * out.len() } else { out.len() }, 0.0);
    let run = |block: usize, part: &mut [f64]| {
        let start = block * rows_per_block;
        let rows = rows_per_block.min(top - start);
        let block_dims: Axes<Dim> = std::iter::once((rows, reduced)).chain(dims.iter().skip(1).copied()).collect();
        source.with_block(start * (numel / top)..(start + rows) * (numel / top), |x| accumulate(x, &block_dims, part));
    };
    if numel >= super::par::PAR_MIN {
        partials.par_chunks_mut(part_len.max(1)).enumerate().for_each(|(b, part)| run(b, part));
    } else if numel > 0 {
        partials.chunks_mut(part_len.max(1)).enumerate().for_each(|(b, part)| run(b, part));
    }
    let out_len = out.len();
    for (i, o) in out.iter_mut().enumerate() {
        let total = match reduced {
            true => (0..blocks).fold(0f64, |acc, b| acc + partials[b * out_len + i]),
            false => partials[i],
        };
        *o = (total / divisor) as f32;
    }
    PARTIALS.set(partials);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_groups_axes_by_kind() {
        assert_eq!(collapse(&[2, 3, 4, 5], &[0, 2, 3])[..], [(2, true), (3, false), (20, true)]);
        assert_eq!(collapse(&[2, 1, 4], &[1])[..], [(8, false)]);
        assert!(collapse(&[1, 1], &[0, 1]).is_empty());
    }

    #[test]
    fn sum_f64_is_exact_for_small_integers() {
        let x: Vec<f32> = (1..=1001).map(|i| i as f32).collect();
        assert_eq!(sum_f64(&x), 1001.0 * 1002.0 / 2.0);
    }
}
