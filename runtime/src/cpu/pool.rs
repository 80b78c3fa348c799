//! Max and average pooling and their input gradients, with Caffe's window rules: windows may hang
//! over the padding, MAX ignores padded positions, and AVE divides by the window clipped to the
//! padded input (padding counted, the overhang beyond it not).

use super::par::for_each_chunk;
use super::View;
use crate::ops::{PoolAttrs, PoolMethod};
use std::ops::Range;

/// One output position's window along one axis.
#[derive(Clone, Debug, PartialEq)]
struct Window {
    /// The input positions it covers (padding excluded).
    range: Range<usize>,
    /// Its extent within the padded input: AVE's divisor along this axis.
    extent: usize,
}

/// An axis's windows, on the stack for the sizes the models use.
type Windows = smallvec::SmallVec<[Window; 64]>;

/// The windows of `outputs` positions along an axis of `size` inputs.
fn windows(outputs: usize, kernel: usize, stride: usize, pad: usize, size: usize) -> Windows {
    (0..outputs)
        .map(|o| {
            let start = (o * stride) as isize - pad as isize;
            let end = (start + kernel as isize).min((size + pad) as isize);
            let lo = start.max(0) as usize;
            let hi = (end.min(size as isize).max(0) as usize).max(lo);
            Window { range: lo..hi, extent: (end - start).max(0) as usize }
        })
        .collect()
}

/// The row and column windows of a pooling from an H×W plane to an Ho×Wo plane.
fn plane_windows(attrs: &PoolAttrs, (h, w): (usize, usize), (ho, wo): (usize, usize)) -> (Windows, Windows) {
    let [kh, kw] = attrs.kernel;
    let ([sh, sw], [ph, pw]) = (attrs.stride, attrs.pad);
    (windows(ho, kh, sh, ph, h), windows(wo, kw, sw, pw, w))
}

/// The index in a row-major plane of width `width` of the first maximal element in the window
/// (row-major order), or `None` for an empty window.
fn argmax(plane: &[f32], width: usize, rows: &Window, cols: &Window) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for y in rows.range.clone() {
        for x in cols.range.clone() {
            let (i, v) = (y * width + x, plane[y * width + x]);
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((i, v));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Splits N×C×H×W into H×W planes.
fn plane_dims(shape: &[usize]) -> (usize, usize) {
    let &[_, _, h, w] = shape else { panic!("pooling needs a 4-D tensor, got {shape:?}") };
    (h, w)
}

/// Whether `attrs` is a 2×2 max pooling with stride 2 and no padding over an H×W plane of even
/// sides: every window is whole, so the fast paths below apply.
fn is_max_2x2(attrs: &PoolAttrs, (h, w): (usize, usize)) -> bool {
    attrs.method == PoolMethod::Max
        && attrs.kernel == [2, 2]
        && attrs.stride == [2, 2]
        && attrs.pad == [0, 0]
        && h % 2 == 0
        && w % 2 == 0
}

/// The index in a window `[a, b; c, d]` (row-major) of its first maximal element, as [`argmax`]
/// chooses it.
#[inline(always)]
fn first_max_of_4(v: [f32; 4]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate().skip(1) {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Pools `x` (N×C×H×W) into `out` of shape `out_shape` (N×C×Ho×Wo). An empty MAX window (only
/// possible when the padding is at least the kernel) gives 0.
pub fn pool2d(attrs: &PoolAttrs, x: View, out: &mut [f32], out_shape: &[usize]) {
    let ((h, w), (ho, wo)) = (plane_dims(x.shape), plane_dims(out_shape));
    if is_max_2x2(attrs, (h, w)) {
        for_each_chunk(out, ho * wo, |p, out| {
            let plane = &x.data[p * h * w..][..h * w];
            for (oy, out_row) in out.chunks_mut(wo).enumerate() {
                let (top, bottom) = (&plane[2 * oy * w..][..w], &plane[(2 * oy + 1) * w..][..w]);
                for (ox, o) in out_row.iter_mut().enumerate() {
                    let v = [top[2 * ox], top[2 * ox + 1], bottom[2 * ox], bottom[2 * ox + 1]];
                    *o = v[first_max_of_4(v)];
                }
            }
        });
        return;
    }
    let (rows, cols) = plane_windows(attrs, (h, w), (ho, wo));
    for_each_chunk(out, ho * wo, |p, out| {
        let plane = &x.data[p * h * w..][..h * w];
        for (out_row, r) in out.chunks_mut(wo).zip(&rows) {
            for (o, c) in out_row.iter_mut().zip(&cols) {
                *o = match attrs.method {
                    PoolMethod::Max => argmax(plane, w, r, c).map_or(0.0, |i| plane[i]),
                    PoolMethod::Ave => {
                        let sum: f32 =
                            r.range.clone().map(|y| plane[y * w..][c.range.clone()].iter().sum::<f32>()).sum();
                        sum / (r.extent * c.extent) as f32
                    }
                };
            }
        }
    });
}

/// The gradient with respect to the pooling input `x` (N×C×H×W) from `g`, the gradient of the
/// pooling output: MAX routes each output's gradient to its window's first maximal element, AVE
/// spreads it evenly over the window (divided by the same size as the forward pass).
pub fn pool2d_grad(attrs: &PoolAttrs, x: View, g: View, out: &mut [f32]) {
    let ((h, w), (ho, wo)) = (plane_dims(x.shape), plane_dims(g.shape));
    if is_max_2x2(attrs, (h, w)) {
        for_each_chunk(out, h * w, |p, dx| {
            let plane = &x.data[p * h * w..][..h * w];
            let g = &g.data[p * ho * wo..][..ho * wo];
            dx.fill(0.0);
            for (oy, g_row) in g.chunks(wo).enumerate() {
                for (ox, &g) in g_row.iter().enumerate() {
                    let (top, bottom) = (2 * oy * w + 2 * ox, (2 * oy + 1) * w + 2 * ox);
                    let v = [plane[top], plane[top + 1], plane[bottom], plane[bottom + 1]];
                    let at = [top, top + 1, bottom, bottom + 1][first_max_of_4(v)];
                    dx[at] += g;
                }
            }
        });
        return;
    }
    let (rows, cols) = plane_windows(attrs, (h, w), (ho, wo));
    for_each_chunk(out, h * w, |p, dx| {
        let plane = &x.data[p * h * w..][..h * w];
        let g = &g.data[p * ho * wo..][..ho * wo];
        dx.fill(0.0);
        for (g_row, r) in g.chunks(wo).zip(&rows) {
            for (&g, c) in g_row.iter().zip(&cols) {
                match attrs.method {
                    PoolMethod::Max => {
                        if let Some(i) = argmax(plane, w, r, c) {
                            dx[i] += g;
                        }
                    }
                    PoolMethod::Ave => {
                        let share = g / (r.extent * c.extent) as f32;
                        for y in r.range.clone() {
                            dx[y * w..][c.range.clone()].iter_mut().for_each(|d| *d += share);
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The general path, for comparison with the 2×2 fast path.
    fn general(attrs: &PoolAttrs, x: View, g: View) -> (Vec<f32>, Vec<f32>) {
        let ((h, w), (ho, wo)) = (plane_dims(x.shape), plane_dims(g.shape));
        let (rows, cols) = plane_windows(attrs, (h, w), (ho, wo));
        let planes = x.data.len() / (h * w);
        let (mut out, mut dx) = (vec![0.0; planes * ho * wo], vec![0.0; x.data.len()]);
        for p in 0..planes {
            let plane = &x.data[p * h * w..][..h * w];
            for (i, (r, c)) in rows.iter().flat_map(|r| cols.iter().map(move |c| (r, c))).enumerate() {
                let best = argmax(plane, w, r, c).unwrap();
                out[p * ho * wo + i] = plane[best];
                dx[p * h * w + best] += g.data[p * ho * wo + i];
            }
        }
        (out, dx)
    }

    #[test]
    fn the_2x2_fast_path_matches_the_general_one_ties_included() {
        let attrs = PoolAttrs { method: PoolMethod::Max, kernel: [2, 2], stride: [2, 2], pad: [0, 0] };
        let shape = [2, 3, 6, 4];
        // Values from a small set, so that windows hold ties.
        let x: Vec<f32> = (0..144).map(|i| ((i * 7919) % 5) as f32).collect();
        let g: Vec<f32> = (0..36).map(|i| i as f32 + 0.5).collect();
        let (xv, gv) = (View { data: &x, shape: &shape }, View { data: &g, shape: &[2, 3, 3, 2] });
        let (mut out, mut dx) = (vec![0.0; 36], vec![0.0; 144]);
        pool2d(&attrs, xv, &mut out, &[2, 3, 3, 2]);
        pool2d_grad(&attrs, xv, gv, &mut dx);
        assert_eq!((out, dx), general(&attrs, xv, gv));
    }

    #[test]
    fn windows_follow_caffe() {
        // H = 5, k = 3, s = 2, p = 1: Caffe's output size is ceil((5 + 2 − 3) / 2) + 1 = 3.
        let w = windows(3, 3, 2, 1, 5);
        assert_eq!(w[0], Window { range: 0..2, extent: 3 });
        assert_eq!(w[1], Window { range: 1..4, extent: 3 });
        // The last window stops at the padded edge (5 + 1): extent 3, inputs 3..5.
        assert_eq!(w[2], Window { range: 3..5, extent: 3 });
        // H = 4, k = 3, s = 2, p = 0: ceil(1 / 2) + 1 = 2 outputs; the second overhangs by one.
        assert_eq!(windows(2, 3, 2, 0, 4)[1], Window { range: 2..4, extent: 2 });
    }
}
