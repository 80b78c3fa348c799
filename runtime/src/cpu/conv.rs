//! Convolutions as matrix products. The batch is processed in small groups of images: a group's
//! images are unfolded side by side and multiplied at once, and groups run in parallel. The
//! forward product packs its unfolded operand block by block straight from the zero-padded
//! images ([`Unfolded`]); the weight gradient unfolds them first ([`ConvGeom::im2col`]). Groups
//! of at least [`TARGET_COLS`] columns measured fastest at batch 128 on two threads: each
//! group's unfolded matrix stays in cache, while unfolding the whole batch into one large
//! product ran at about half the speed. Group sizes depend only on the shapes, so results are
//! bit-identical for any thread count.
//!
//! Two kinds of stride-1 layer skip the products: those with at most [`MAX_NARROW`] output
//! channels ([`direct_conv`]), and, on a CPU with AVX-512, those with many channels on both sides
//! ([`wide_conv`]: a multiple of 32 output channels and at least 16 input channels, stride 1
//! or 2): forward pass and weight gradient, and transposed convolutions phase by output phase
//! ([`wide_conv::transpose_by_phases`]) but for the stride-1 ones that enlarge the image.

use super::direct_conv::{self, MAX_NARROW};
use super::gemm::{sgemm, sgemm_packing, transpose, Mat};
use super::im2col::{ConvGeom, Unfolded};
use super::par::copy_short;
use super::wide_conv;
use super::View;
use crate::ops::ConvAttrs;
use rayon::prelude::*;

thread_local! {
    /// Each thread's scratch matrices (unfolded or split inputs, regrouped images, products),
    /// taken for the length of one group's work and put back, so that a step allocates nothing
    /// once run.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    /// A transposed convolution's weights as an (O·kh·kw)×C matrix, or a weight gradient's
    /// transposed total.
    static TRANSPOSED_WEIGHTS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// A forward convolution's [`ConvGeom::tap_offsets`].
    static TAP_OFFSETS: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The weight gradient's partial sums, one per image range.
    static PARTIAL_SUMS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch matrices.
fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>) -> R) -> R {
    let (mut first, mut second) = SCRATCH.take();
    let result = f(&mut first, &mut second);
    SCRATCH.set((first, second));
    result
}

/// The first `len` values of `scratch`, grown (never shrunk) to hold them. What they hold is left
/// from earlier use: every caller overwrites all of them. Resizing down and up again zero-filled
/// the difference on every call where a larger convolution followed a smaller one (3% of a
/// DC-GAN step in `memset`).
pub(super) fn leading(scratch: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    &mut scratch[..len]
}

/// The fewest columns (output positions) a group's product aims for.
const TARGET_COLS: usize = 128;
/// The most partial weight gradients summed at the end of [`conv2d_grad_weight`].
const MAX_PARTIALS: usize = 8;

/// Images per group when each contributes `cols` columns.
fn group_size(batch: usize, cols: usize) -> usize {
    TARGET_COLS.div_ceil(cols.max(1)).clamp(1, batch.max(1))
}

/// The four axes of an N×C×H×W shape.
fn dims4(shape: &[usize]) -> [usize; 4] {
    shape.try_into().unwrap_or_else(|_| panic!("convolution operands are 4-D, got {shape:?}"))
}

/// The geometry of a convolution of an input with `input` shape (N×C×H×W) producing spatial size
/// `output` (Ho×Wo) through a `kernel`-sized window.
fn geometry(attrs: &ConvAttrs, input: &[usize], kernel: [usize; 2], output: [usize; 2]) -> ConvGeom {
    let [_, channels, h, w] = dims4(input);
    let geom = ConvGeom { channels, input: [h, w], output, kernel, stride: attrs.stride, pad: attrs.pad };
    debug_assert!((0..2).all(|a| (geom.input[a] + 2 * geom.pad[a] - kernel[a]) / geom.stride[a] + 1 == output[a]));
    geom
}

/// Whether the direct kernels take the stride-1 convolution `geom` (its padding below the kernel
/// size), whose output channels (input channels, transposed) number `narrow`: at most
/// [`MAX_NARROW`], which an unfolded product would run as a matrix-vector product (see
/// [`direct_conv`]).
fn is_narrow(attrs: &ConvAttrs, geom: &ConvGeom, narrow: usize) -> bool {
    attrs.stride == [1, 1] && narrow <= MAX_NARROW && (0..2).all(|a| geom.pad[a] < geom.kernel[a])
}

/// Copies images `[images, rows, cols]` (contiguous) into the matrix `[rows, images·cols]`.
fn side_by_side(images: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    let ld = images.len() / rows;
    for (b, image) in images.chunks(rows * cols).enumerate() {
        for (r, src) in image.chunks(cols).enumerate() {
            copy_short(&mut out[r * ld + b * cols..][..cols], src);
        }
    }
}

/// The inverse of [`side_by_side`]: `[rows, images·cols]` into `[images, rows, cols]`.
fn split_images(matrix: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    let ld = matrix.len() / rows;
    for (b, image) in out.chunks_mut(rows * cols).enumerate() {
        for (r, dst) in image.chunks_mut(cols).enumerate() {
            copy_short(dst, &matrix[r * ld + b * cols..][..cols]);
        }
    }
}

/// `data`, a group of `rows`×`cols` images, as one `rows`×(images·cols) matrix: borrowed as is
/// for a single image, rearranged into `scratch` otherwise.
fn group_matrix<'a>(data: &'a [f32], rows: usize, cols: usize, scratch: &'a mut Vec<f32>) -> &'a [f32] {
    if data.len() == rows * cols {
        return data;
    }
    let scratch = leading(scratch, data.len());
    side_by_side(data, rows, cols, scratch);
    scratch
}

/// Convolution of x (N×C×H×W) by w (O×C×kh×kw) into out (N×O×Ho×Wo), zero padding, no bias.
pub fn conv2d(attrs: &ConvAttrs, x: View, w: View, out: &mut [f32], out_shape: &[usize]) {
    let ([n, ..], [o, _, kh, kw], [.., ho, wo]) = (dims4(x.shape), dims4(w.shape), dims4(out_shape));
    let geom = geometry(attrs, x.shape, [kh, kw], [ho, wo]);
    if is_narrow(attrs, &geom, o) {
        return direct_conv::correlate(&geom, x.data, w.data, out);
    }
    if wide_conv::applies(&geom, o) {
        let c = geom.channels;
        let weight = |o: usize, ci: usize, i: usize, j: usize| w.data[((o * c + ci) * kh + i) * kw + j];
        return wide_conv::correlate(&geom, o, weight, x.data, out);
    }
    let (rows, spatial) = (geom.col_rows(), geom.col_cols());
    if out.is_empty() {
        return;
    }
    let group = group_size(n, spatial);
    let weights = Mat::row_major(w.data, rows);
    let mut offsets = TAP_OFFSETS.take();
    geom.tap_offsets(&mut offsets);
    out.par_chunks_mut(group * o * spatial).zip(x.data.par_chunks(group * geom.image_len())).for_each(|(out, x)| {
        with_scratch(|split, product| {
            let images = x.len() / geom.image_len();
            let split: &[f32] = if geom.split_is_image() {
                x
            } else {
                let split = leading(split, images * geom.split_len());
                for (image, split) in x.chunks(geom.image_len()).zip(split.chunks_mut(geom.split_len())) {
                    geom.split_into(image, split);
                }
                split
            };
            // The group's images unfolded side by side, block by block into the GEMM's panels.
            let cols = Unfolded { geom: &geom, split, offsets: &offsets };
            let ld = images * spatial;
            if images == 1 {
                sgemm_packing(o, ld, rows, weights, &cols, out, false);
            } else {
                let product = leading(product, o * ld);
                sgemm_packing(o, ld, rows, weights, &cols, product, false);
                split_images(product, o, spatial, out);
            }
        })
    });
    TAP_OFFSETS.set(offsets);
}

/// Transposed convolution of x (N×C×H×W) by w (C×O×kh×kw) into out (N×O×Hout×Wout): the adjoint
/// of the convolution of an N×O×Hout×Wout input by w read as C_out=C, C_in=O.
pub fn conv_transpose2d(attrs: &ConvAttrs, x: View, w: View, out: &mut [f32], out_shape: &[usize]) {
    let ([n, c, h, wd], [_, _, kh, kw]) = (dims4(x.shape), dims4(w.shape));
    let geom = geometry(attrs, out_shape, [kh, kw], [h, wd]);
    if is_narrow(attrs, &geom, c) && attrs.output_pad == [0, 0] {
        let transposed = ConvGeom { channels: c, input: [h, wd], output: geom.input, ..geom };
        return direct_conv::transpose(&transposed, x.data, w.data, out);
    }
    // At stride 1 a transposed convolution is the correlation of its input, padded by
    // k − 1 − pad, with the flipped kernel. Where that padding enlarges the image (the input
    // gradient of a convolution without padding) the correlation multiplies the padding's zeros
    // too: twice the product's work for DC-GAN's d_conv2 (10×10 → 14×14), so those stay with the
    // product. At stride s the phases' correlations pad by about a row and a column.
    let [hout, wout] = geom.input;
    let enlarging = attrs.stride == [1, 1] && hout * wout > h * wd;
    if !enlarging && wide_conv::transpose_applies(&geom, c) {
        return wide_conv::transpose_by_phases(&geom, x.data, w.data, out);
    }
    let (rows, spatial) = (geom.col_rows(), geom.col_cols());
    if out.is_empty() || c * spatial == 0 {
        out.fill(0.0);
        return;
    }
    let group = group_size(n, spatial);
    // Wᵀ, transposed once per call: each group's product (at most a few hundred columns) then
    // reads its rows in place, where reading w as stored would pack all of it for every group.
    let mut transposed = TRANSPOSED_WEIGHTS.take();
    let w_t = leading(&mut transposed, rows * c);
    transpose(w.data, c, rows, w_t);
    let weights = Mat::row_major(w_t, c);
    out.par_chunks_mut(group * geom.image_len()).zip(x.data.par_chunks(group * c * spatial)).for_each(|(out, x)| {
        with_scratch(|inputs, cols| {
            let ld = x.len() / c;
            let inputs = group_matrix(x, c, spatial, inputs);
            let cols = leading(cols, rows * ld);
            sgemm(rows, ld, c, weights, Mat::row_major(inputs, ld), cols, false);
            out.fill(0.0);
            for (b, image) in out.chunks_mut(geom.image_len()).enumerate() {
                geom.col2im(&cols[b * spatial..], ld, image);
            }
        })
    });
    TRANSPOSED_WEIGHTS.set(transposed);
}

/// The weight gradient of a convolution from its input x (N×C×H×W) and output gradient g
/// (N×O×Ho×Wo) into out (O×C×kh×kw), computed transposed ((C·kh·kw)×O). Images are split into
/// at most [`MAX_PARTIALS`] contiguous ranges whose partial sums are added in order at the end.
pub fn conv2d_grad_weight(attrs: &ConvAttrs, x: View, g: View, out: &mut [f32], out_shape: &[usize]) {
    let ([n, ..], [_, o, ho, wo], [_, _, kh, kw]) = (dims4(x.shape), dims4(g.shape), dims4(out_shape));
    let geom = geometry(attrs, x.shape, [kh, kw], [ho, wo]);
    if is_narrow(attrs, &geom, o) {
        return direct_conv::grad_weight(&geom, x.data, g, out);
    }
    if wide_conv::applies(&geom, o) {
        return wide_conv::grad_weight(&geom, o, x.data, g.data, out);
    }
    let (rows, spatial) = (geom.col_rows(), geom.col_cols());
    let group = group_size(n, spatial);
    let groups = n.div_ceil(group);
    let per_range = groups.div_ceil(MAX_PARTIALS.min(groups).max(1)) * group;
    let len = o * rows;
    if len == 0 {
        return;
    }
    let ranges = n.div_ceil(per_range.max(1));
    let mut partials = PARTIAL_SUMS.take();
    // Each range's first product overwrites its sum (every range has images).
    leading(&mut partials, ranges * len).par_chunks_mut(len).enumerate().for_each(|(range, sum)| {
        with_scratch(|scratch, cols| {
            let images = (range * per_range..n.min((range + 1) * per_range)).step_by(group);
            for (i, first) in images.enumerate() {
                let count = group.min(n - first);
                let ld = count * spatial;
                let cols = leading(cols, rows * ld);
                let inputs = x.data[first * geom.image_len()..].chunks(geom.image_len());
                for (b, image) in inputs.take(count).enumerate() {
                    geom.im2col(image, &mut cols[b * spatial..], ld);
                }
                let grads = group_matrix(&g.data[first * o * spatial..][..count * o * spatial], o, spatial, scratch);
                // dWᵀ = cols · gradsᵀ: the unfolded images are read in place as A (at most 256
                // output channels make a narrow product), and only the small gradients are
                // packed, where dW = grads · colsᵀ transposed all of cols into panels. Each
                // element is the same multiply-add chain either way.
                sgemm(rows, o, ld, Mat::row_major(cols, ld), Mat::row_major(grads, ld).t(), sum, i > 0);
            }
        })
    });
    // The ranges' sums in order, from zero, then transposed into dW.
    let mut total = TRANSPOSED_WEIGHTS.take();
    let total_t = leading(&mut total, len);
    total_t.fill(0.0);
    for p in partials[..ranges * len].chunks(len) {
        total_t.iter_mut().zip(p).for_each(|(t, p)| *t += p);
    }
    transpose(total_t, rows, o, out);
    TRANSPOSED_WEIGHTS.set(total);
    PARTIAL_SUMS.set(partials);
}
