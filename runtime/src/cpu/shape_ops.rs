//! Kernels that move data without arithmetic: copy, broadcast, concatenation, slicing and
//! nearest-neighbour upsampling. All but concatenation are one strided gather: the output is
//! written in row-major order while the input is read through per-axis strides (0 for a repeated
//! axis).

use super::par::{for_each_chunk, ELEMENT_CHUNK};
use super::View;
use smallvec::{smallvec, SmallVec};

/// Per-axis values (sizes, strides, indices), on the stack up to 8 axes.
pub type Axes<T> = SmallVec<[T; 8]>;

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Axes<usize> {
    let mut strides: Axes<usize> = smallvec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// `shape` seen as `[outer, shape[axis], inner]`.
pub fn around_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

/// `(size, stride)` pairs of `shape` with size-1 axes dropped and axes merged where the stride
/// pattern allows; never empty.
fn collapse(shape: &[usize], strides: &[usize]) -> Axes<(usize, usize)> {
    let mut dims: Axes<(usize, usize)> = Axes::new();
    for (&size, &stride) in shape.iter().zip(strides).filter(|(size, _)| **size != 1) {
        match dims.last_mut() {
            Some(last) if last.1 == stride * size => *last = (last.0 * size, stride),
            _ => dims.push((size, stride)),
        }
    }
    if dims.is_empty() {
        dims.push((1, 0));
    }
    dims
}

/// Writes `out`, row-major of shape `shape`, with `out[i₀, i₁, …] = src[Σ iⱼ·strides[j]]`.
fn gather(src: &[f32], shape: &[usize], strides: &[usize], out: &mut [f32]) {
    debug_assert_eq!(out.len(), shape.iter().product::<usize>());
    if out.is_empty() {
        return;
    }
    let dims = collapse(shape, strides);
    let (&(inner, stride), outer) = dims.split_last().expect("collapse never returns an empty list");
    let rows_per_chunk = (ELEMENT_CHUNK / inner).max(1);
    for_each_chunk(out, rows_per_chunk * inner, |chunk_index, chunk| {
        // Multi-index over the outer axes and the matching source offset, advanced like an odometer.
        let mut index: Axes<usize> = smallvec![0; outer.len()];
        let mut row = chunk_index * rows_per_chunk;
        for (d, &(size, _)) in outer.iter().enumerate().rev() {
            index[d] = row % size;
            row /= size;
        }
        let mut offset: usize = index.iter().zip(outer).map(|(i, (_, s))| i * s).sum();
        for row in chunk.chunks_mut(inner) {
            match stride {
                0 => row.fill(src[offset]),
                1 => row.copy_from_slice(&src[offset..offset + inner]),
                s => row.iter_mut().enumerate().for_each(|(j, o)| *o = src[offset + j * s]),
            }
            for (d, &(size, s)) in outer.iter().enumerate().rev() {
                index[d] += 1;
                offset += s;
                if index[d] < size {
                    break;
                }
                index[d] = 0;
                offset -= s * size;
            }
        }
    });
}

/// `out = x`, element for element (the shapes may differ).
pub fn copy(x: &[f32], out: &mut [f32]) {
    debug_assert_eq!(x.len(), out.len());
    for_each_chunk(out, ELEMENT_CHUNK, |i, chunk| chunk.copy_from_slice(&x[i * ELEMENT_CHUNK..][..chunk.len()]));
}

/// Input axis `i` becomes output axis `dims[i]`; input axes of size 1 and output axes that no
/// input axis maps to are repeated.
pub fn broadcast(x: View, dims: &[usize], out: &mut [f32], out_shape: &[usize]) {
    debug_assert_eq!(dims.len(), x.shape.len());
    let mut src_strides: Axes<usize> = smallvec![0; out_shape.len()];
    for ((&d, &size), stride) in dims.iter().zip(x.shape).zip(strides(x.shape)) {
        if size != 1 {
            debug_assert_eq!(size, out_shape[d], "broadcast of axis size {size} to {}", out_shape[d]);
            src_strides[d] = stride;
        }
    }
    gather(x.data, out_shape, &src_strides, out);
}

/// Elements `start..` along `axis` (the output's extent along `axis` gives the end).
pub fn slice(x: View, axis: usize, start: usize, out: &mut [f32], out_shape: &[usize]) {
    let x_strides = strides(x.shape);
    gather(&x.data[start * x_strides[axis]..], out_shape, &x_strides, out);
}

/// Nearest-neighbour upsampling of N×C×H×W by `scale`: `out[n, c, y, x] = x[n, c, y/scale, x/scale]`.
pub fn upsample2d(x: View, scale: usize, out: &mut [f32]) {
    let &[_, _, h, w] = x.shape else { panic!("upsample2d input must be 4-D, got {:?}", x.shape) };
    let (wide, plane) = (w * scale, h * scale * w * scale);
    if plane == 0 {
        return;
    }
    // Whole planes per chunk: each input row is widened once into the first of its `scale` output
    // rows, which the others copy (a strided gather moved `scale` values per step: 3% of DC-GAN).
    let planes_per_chunk = (ELEMENT_CHUNK / plane).max(1);
    for_each_chunk(out, planes_per_chunk * plane, |chunk_index, chunk| {
        for (p, out_plane) in chunk.chunks_mut(plane).enumerate() {
            let src = &x.data[(chunk_index * planes_per_chunk + p) * h * w..][..h * w];
            for (rows, src_row) in out_plane.chunks_mut(wide * scale).zip(src.chunks(w)) {
                let (first, copies) = rows.split_at_mut(wide);
                first.chunks_mut(scale).zip(src_row).for_each(|(o, v)| o.fill(*v));
                copies.chunks_mut(wide).for_each(|copy| copy.copy_from_slice(first));
            }
        }
    });
}

/// Concatenation of `inputs` along `axis`.
pub fn concat(inputs: &[View], axis: usize, out: &mut [f32], out_shape: &[usize]) {
    let (outer, _, inner) = around_axis(out_shape, axis);
    if out.is_empty() {
        return;
    }
    // Each output row (one index of the axes before `axis`) is the inputs' rows end to end.
    let row_len = out.len() / outer;
    let rows_per_chunk = (ELEMENT_CHUNK / row_len).max(1);
    for_each_chunk(out, rows_per_chunk * row_len, |chunk_index, chunk| {
        for (r, out_row) in chunk.chunks_mut(row_len).enumerate() {
            let row = chunk_index * rows_per_chunk + r;
            let mut at = 0;
            for x in inputs {
                let len = x.shape[axis] * inner;
                out_row[at..at + len].copy_from_slice(&x.data[row * len..][..len]);
                at += len;
            }
            debug_assert_eq!(at, row_len);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_merges_contiguous_and_repeated_axes() {
        assert_eq!(collapse(&[2, 3, 4], &strides(&[2, 3, 4]))[..], [(24, 1)]);
        assert_eq!(collapse(&[2, 1, 3, 4], &[0, 5, 0, 0])[..], [(24, 0)]);
        assert_eq!(collapse(&[2, 3, 4], &[0, 1, 0])[..], [(2, 0), (3, 1), (4, 0)]);
        assert_eq!(collapse(&[1, 1], &[3, 1])[..], [(1, 0)]);
    }

    #[test]
    fn gather_reads_through_strides() {
        // The transpose of a 2×3 matrix.
        let src = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0.0; 6];
        gather(&src, &[3, 2], &[1, 3], &mut out);
        assert_eq!(out, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
