//! Softmax and log-softmax along one axis, stabilized by subtracting the maximum. Rows along a
//! non-last axis are gathered into a contiguous buffer, so one row routine serves every axis.

use super::par::{for_each_chunk, ELEMENT_CHUNK};
use super::shape_ops::around_axis;
use super::View;

/// Softmax (or, when `log`, log-softmax) of one contiguous row.
fn row(x: &[f32], out: &mut [f32], log: bool) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    if log {
        let sum: f64 = x.iter().map(|&v| (v - max).exp() as f64).sum();
        let log_sum = sum.ln() as f32;
        out.iter_mut().zip(x).for_each(|(o, &v)| *o = (v - max) - log_sum);
    } else {
        let mut sum = 0f64;
        out.iter_mut().zip(x).for_each(|(o, &v)| {
            *o = (v - max).exp();
            sum += *o as f64;
        });
        let sum = sum as f32;
        out.iter_mut().for_each(|o| *o /= sum);
    }
}

/// Softmax (or log-softmax when `log`) of `x` along `axis`.
pub fn softmax(x: View, axis: usize, log: bool, out: &mut [f32]) {
    let (_, len, inner) = around_axis(x.shape, axis);
    let block = len * inner;
    if out.is_empty() {
        return;
    }
    let blocks_per_chunk = (ELEMENT_CHUNK / block).max(1);
    for_each_chunk(out, blocks_per_chunk * block, |chunk_index, chunk| {
        let src = &x.data[chunk_index * blocks_per_chunk * block..][..chunk.len()];
        if inner == 1 {
            chunk.chunks_mut(len).zip(src.chunks(len)).for_each(|(o, x)| row(x, o, log));
            return;
        }
        let (mut col_in, mut col_out) = (vec![0.0; len], vec![0.0; len]);
        for (o, x) in chunk.chunks_mut(block).zip(src.chunks(block)) {
            for j in 0..inner {
                col_in.iter_mut().enumerate().for_each(|(a, c)| *c = x[a * inner + j]);
                row(&col_in, &mut col_out, log);
                col_out.iter().enumerate().for_each(|(a, &c)| o[a * inner + j] = c);
            }
        }
    });
}
