//! Direct stride-1 convolutions for the narrow case: few output channels (a generator's last,
//! single-channel layer), or a transposed convolution with few input channels (that layer's
//! input gradient). There the unfolded matrix product degenerates: a 1×(C·k·k) row times a
//! (C·k·k)×(H·W) unfolded matrix that is written, packed and read once for two flops per element.
//!
//! Instead each output plane is accumulated tap by tap: for every input channel and kernel tap,
//! the plane gains the weight times the input plane shifted by the tap, read from a zero-padded
//! copy of the image whose rows are padded to whole vector-width chunks, so that the inner loop
//! has no edge cases and works on whole vectors ([`super::lanes`]). Every output is one
//! multiply-add chain over (channel, row tap, column tap) in increasing order, whatever the
//! thread count; images run in parallel, and the weight gradient sums images in fixed ranges,
//! added in order.

use super::conv::leading;
use super::im2col::ConvGeom;
use super::lanes::{lanes, Lanes, LANES};
use super::par::copy_short;
use super::View;
use rayon::prelude::*;

/// The most output channels of a convolution (input channels of a transposed one) that the
/// direct kernels take.
pub const MAX_NARROW: usize = 4;
/// The most partial weight gradients summed at the end of [`grad_weight`].
const MAX_PARTIALS: usize = 8;

thread_local! {
    /// Each thread's padded image and padded output gradients, reused so that a step allocates
    /// nothing once run.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    /// The calling thread's flipped kernel ([`transpose`]) or partial weight gradients
    /// ([`grad_weight`]).
    static WEIGHTS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Output rows padded to whole chunks.
fn padded_out_width(geom: &ConvGeom) -> usize {
    geom.output[1].div_ceil(LANES) * LANES
}

/// Rows and row length of the padded copy of one input plane: every tap's shifted row of
/// [`padded_out_width`] values lies inside it.
fn padded_plane(geom: &ConvGeom) -> (usize, usize) {
    (geom.input[0] + 2 * geom.pad[0], padded_out_width(geom) + geom.kernel[1] - 1)
}

/// Output rows (of one chunk) a correlation keeps in registers at once, and kernel columns a
/// weight gradient accumulates at once: enough independent multiply-add chains to hide their
/// latency.
const BLOCK: usize = 4;

/// One image of a correlation: `out` (O planes of the output size) gets
/// Σ_c Σ_i Σ_j w[o, c, i, j]·x[c, y − pad + i, x − pad + j] from `padded` (the image padded by
/// [`ConvGeom::pad_into`] to [`padded_plane`]'s rows), [`BLOCK`] rows of one chunk at a time.
///
/// # Safety
/// The CPU runs `V`'s instructions.
#[inline(always)]
unsafe fn correlate_image<V: Lanes>(geom: &ConvGeom, padded: &[f32], weights: &[f32], out: &mut [f32]) {
    let [ho, wo] = geom.output;
    let taps = geom.channels * geom.kernel[0] * geom.kernel[1];
    let chunks = padded_out_width(geom) / LANES;
    for (plane, w_o) in out.chunks_exact_mut(ho * wo).zip(weights.chunks_exact(taps)) {
        let full = ho - ho % BLOCK;
        for chunk in 0..chunks {
            // SAFETY: the CPU runs V's instructions (this function's contract).
            unsafe {
                for y in (0..full).step_by(BLOCK) {
                    correlate_rows::<V, BLOCK>(geom, padded, w_o, (y, chunk), plane);
                }
                for y in full..ho {
                    correlate_rows::<V, 1>(geom, padded, w_o, (y, chunk), plane);
                }
            }
        }
    }
}

/// Output rows `y..y + R` of `plane`, columns of chunk `chunk`: each value a chain over the
/// channels, kernel rows and kernel columns in order, in registers.
///
/// # Safety
/// The CPU runs `V`'s instructions.
#[inline(always)]
unsafe fn correlate_rows<V: Lanes, const R: usize>(
    geom: &ConvGeom,
    padded: &[f32],
    w_o: &[f32],
    (y, chunk): (usize, usize),
    plane: &mut [f32],
) {
    let ([_, wo], [kh, kw]) = (geom.output, geom.kernel);
    let (rows, width) = padded_plane(geom);
    // SAFETY: the CPU runs V's instructions (this function's contract).
    let mut acc = [unsafe { V::zero() }; R];
    for (input, w_c) in padded.chunks_exact(rows * width).zip(w_o.chunks_exact(kh * kw)) {
        for (i, w_ci) in w_c.chunks_exact(kw).enumerate() {
            // The R input rows this kernel row reads, from the chunk's first column on.
            let src: [&[f32]; R] =
                std::array::from_fn(|r| &input[(y + r + i) * width + chunk * LANES..][..LANES + kw - 1]);
            for (j, &w) in w_ci.iter().enumerate() {
                // SAFETY: as above.
                let w = unsafe { V::splat(w) };
                for (acc, src) in acc.iter_mut().zip(&src) {
                    // SAFETY: as above.
                    *acc = unsafe { acc.madd(w, V::load(lanes(&src[j..]))) };
                }
            }
        }
    }
    let (start, len) = (chunk * LANES, LANES.min(wo - chunk * LANES));
    let mut values = [0.0; LANES];
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: as above.
        unsafe { acc.store(&mut values) };
        copy_short(&mut plane[(y + r) * wo + start..][..len], &values[..len]);
    }
}

/// One image's contribution to a weight gradient: `sums[o, c, i, j]` +=
/// Σ_y Σ_x g[o, y, x]·x[c, y − pad + i, x − pad + j], with `grads` the output gradient's planes
/// padded to whole chunks (zeros past the row end) and `padded` the image; [`BLOCK`] kernel
/// columns at a time.
///
/// # Safety
/// The CPU runs `V`'s instructions.
#[inline(always)]
unsafe fn grad_weight_image<V: Lanes>(geom: &ConvGeom, padded: &[f32], grads: &[f32], sums: &mut [f32]) {
    let ([ho, _], [kh, kw]) = (geom.output, geom.kernel);
    let (rows, width) = padded_plane(geom);
    let stride = padded_out_width(geom);
    let full = kw - kw % BLOCK;
    for (g_o, sums_o) in grads.chunks_exact(ho * stride).zip(sums.chunks_exact_mut(geom.channels * kh * kw)) {
        for (input, sums_c) in padded.chunks_exact(rows * width).zip(sums_o.chunks_exact_mut(kh * kw)) {
            for (i, sums_ci) in sums_c.chunks_exact_mut(kw).enumerate() {
                let rows_of = |y: usize| &input[(y + i) * width..][..width];
                // SAFETY: the CPU runs V's instructions (this function's contract).
                unsafe {
                    for j in (0..full).step_by(BLOCK) {
                        grad_weight_taps::<V, BLOCK>(g_o, stride, rows_of, j, &mut sums_ci[j..j + BLOCK]);
                    }
                    for j in full..kw {
                        grad_weight_taps::<V, 1>(g_o, stride, rows_of, j, &mut sums_ci[j..j + 1]);
                    }
                }
            }
        }
    }
}

/// Adds to `sums[t]` (kernel column j + t, t < T) the sum over the output gradient rows `g_o`
/// (each `stride` long) of their products with the input row `row(y)` shifted by j + t: per tap
/// one chain per lane over rows and chunks in order, then the lanes summed in order.
///
/// # Safety
/// The CPU runs `V`'s instructions.
#[inline(always)]
unsafe fn grad_weight_taps<'a, V: Lanes, const T: usize>(
    g_o: &[f32],
    stride: usize,
    row: impl Fn(usize) -> &'a [f32],
    j: usize,
    sums: &mut [f32],
) {
    // SAFETY: the CPU runs V's instructions (this function's contract).
    let mut partial = [unsafe { V::zero() }; T];
    for (y, g_row) in g_o.chunks_exact(stride).enumerate() {
        let src = row(y);
        for (chunk, g) in g_row.chunks_exact(LANES).enumerate() {
            // SAFETY: as above.
            let g = unsafe { V::load(lanes(g)) };
            for (t, sums) in partial.iter_mut().enumerate() {
                // SAFETY: as above.
                *sums = unsafe { sums.madd(g, V::load(lanes(&src[chunk * LANES + j + t..]))) };
            }
        }
    }
    let mut values = [0.0; LANES];
    for (sum, lanes) in sums.iter_mut().zip(&partial) {
        // SAFETY: as above.
        unsafe { lanes.store(&mut values) };
        *sum += values.iter().sum::<f32>();
    }
}

/// The instruction sets the kernels are compiled for, best first.
#[derive(Clone, Copy)]
enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

/// The best of [`Isa`] this CPU runs (the standard library caches the detection).
fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// Defines `$name`, which runs `$body` on the best [`Lanes`] this CPU has, compiled for its
/// instruction set.
macro_rules! dispatch {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,fma")]
            unsafe fn avx512($($arg: $ty),*) {
                // SAFETY: compiled for, and called only on, CPUs with AVX-512F and FMA.
                unsafe { $body::<super::lanes::Avx512>($($arg),*) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) {
                // SAFETY: compiled for, and called only on, CPUs with AVX2 and FMA.
                unsafe { $body::<super::lanes::Avx2>($($arg),*) }
            }
            match isa() {
                // SAFETY: `isa` detected AVX-512F and FMA on this CPU.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { avx512($($arg),*) },
                // SAFETY: `isa` detected AVX2 and FMA on this CPU.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { avx2($($arg),*) },
                // SAFETY: the portable lanes are plain arrays.
                Isa::Portable => unsafe { $body::<super::lanes::Portable>($($arg),*) },
            }
        }
    };
}

dispatch!(correlate_one, correlate_image, (geom: &ConvGeom, padded: &[f32], weights: &[f32], out: &mut [f32]));
dispatch!(grad_weight_one, grad_weight_image, (geom: &ConvGeom, padded: &[f32], grads: &[f32], sums: &mut [f32]));

/// Correlation of every image of `x` (N×C×H×W) by `weights` (O×C×kh×kw) into `out`
/// (N×O×Ho×Wo): the stride-1 convolution `geom`.
pub fn correlate(geom: &ConvGeom, x: &[f32], weights: &[f32], out: &mut [f32]) {
    let [ho, wo] = geom.output;
    let outputs = weights.len() / (geom.channels * geom.kernel[0] * geom.kernel[1]).max(1);
    let (rows, width) = padded_plane(geom);
    let image_len = geom.channels * geom.input[0] * geom.input[1];
    if out.is_empty() {
        return;
    }
    out.par_chunks_mut(outputs * ho * wo).zip(x.par_chunks(image_len)).for_each(|(out, image)| {
        let (mut padded, grads) = SCRATCH.take();
        let padded_image = leading(&mut padded, geom.channels * rows * width);
        geom.pad_into(image, padded_image, width);
        correlate_one(geom, padded_image, weights, out);
        SCRATCH.set((padded, grads));
    });
}

/// The stride-1 transposed convolution of `g` (N×C×H×W) by `weights` (C×O×kh×kw: a
/// convolution's O_conv×C_conv weights read with C = O_conv) into `out` (N×O×Ho×Wo), with `geom`
/// giving C, H×W, the kernel, the convolution's padding and Ho×Wo: the correlation of `g` padded
/// by k − 1 − pad with the kernel flipped and its two channel axes swapped.
///
/// # Panics
/// If a padding exceeds k − 1.
pub fn transpose(geom: &ConvGeom, g: &[f32], weights: &[f32], out: &mut [f32]) {
    let [kh, kw] = geom.kernel;
    assert!(geom.pad[0] < kh && geom.pad[1] < kw, "transposed convolution padding {:?} ≥ kernel", geom.pad);
    let outputs = weights.len() / (geom.channels * kh * kw).max(1);
    let mut scratch = WEIGHTS.take();
    let flipped = leading(&mut scratch, weights.len());
    for (c, w_c) in weights.chunks_exact(outputs * kh * kw).enumerate() {
        for (o, w_co) in w_c.chunks_exact(kh * kw).enumerate() {
            for (t, w) in w_co.iter().enumerate() {
                let (i, j) = (t / kw, t % kw);
                flipped[((o * geom.channels + c) * kh + kh - 1 - i) * kw + kw - 1 - j] = *w;
            }
        }
    }
    let full = ConvGeom { pad: [kh - 1 - geom.pad[0], kw - 1 - geom.pad[1]], ..*geom };
    correlate(&full, g, flipped, out);
    WEIGHTS.set(scratch);
}

/// The weight gradient (O×C×kh×kw, into `out`) of the stride-1 convolution `geom` of `x`
/// (N×C×H×W) given its output gradient `g` (N×O×Ho×Wo). Images are split into at most
/// [`MAX_PARTIALS`] contiguous ranges whose partial sums are added in order.
pub fn grad_weight(geom: &ConvGeom, x: &[f32], g: View, out: &mut [f32]) {
    let [ho, wo] = geom.output;
    let (n, outputs) = (g.shape[0], g.shape[1]);
    let (rows, width) = padded_plane(geom);
    let stride = padded_out_width(geom);
    let image_len = geom.channels * geom.input[0] * geom.input[1];
    out.fill(0.0);
    if n == 0 || out.is_empty() {
        return;
    }
    let per_range = n.div_ceil(MAX_PARTIALS.min(n));
    let ranges = n.div_ceil(per_range);
    let mut partials = WEIGHTS.take();
    let len = out.len();
    // Each range's sums start at zero and gain its images in order.
    let sums = leading(&mut partials, ranges * len);
    sums.fill(0.0);
    sums.par_chunks_mut(len).enumerate().for_each(|(range, sums)| {
        let (mut padded, mut grads) = SCRATCH.take();
        for image in range * per_range..n.min((range + 1) * per_range) {
            let padded_image = leading(&mut padded, geom.channels * rows * width);
            geom.pad_into(&x[image * image_len..][..image_len], padded_image, width);
            let padded_grads = leading(&mut grads, outputs * ho * stride);
            let image_grads = &g.data[image * outputs * ho * wo..][..outputs * ho * wo];
            for (dst, src) in padded_grads.chunks_exact_mut(stride).zip(image_grads.chunks_exact(wo)) {
                copy_short(&mut dst[..wo], src);
                dst[wo..].fill(0.0);
            }
            grad_weight_one(geom, padded_image, padded_grads, sums);
        }
        SCRATCH.set((padded, grads));
    });
    for range_sums in sums.chunks_exact(len) {
        out.iter_mut().zip(range_sums).for_each(|(o, s)| *o += s);
    }
    WEIGHTS.set(partials);
}
