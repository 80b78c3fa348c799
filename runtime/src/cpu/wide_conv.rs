//! Direct convolutions (stride 1 or 2) for the wide case, on AVX-512: both sides have many channels
//! (DC-GAN's 128 → 64 and 64 → 128 layers, InfoGAN's 64 → 128), output channels a multiple
//! of [`OC_BLOCK`]. As an unfolded product such a layer runs at about half the FMA peak of an Intel
//! core with two 512-bit FMA units (the unfolded operand is packed per image, and 64 channels
//! split badly into the GEMM's 12-row panels), where oneDNN's direct convolution runs near it.
//!
//! Here the vectors run over output channels instead: a register block holds [`OC_BLOCK`] output
//! channels (two zmm vectors) of up to [`MAX_PIXELS`] consecutive outputs of one row, and each
//! step, one (input channel, kernel row, kernel column) tap, loads the tap's weights for those
//! channels once (two vectors, from weights rearranged once per call) and multiplies them by
//! each pixel's input value, broadcast from a zero-padded copy of the image: 28 multiply-adds for
//! 16 loads, no unfolding and no packing. Every output is one multiply-add chain over (channel,
//! kernel row, kernel column) in increasing order, whatever the thread count. The weight gradient
//! ([`grad_weight`]) runs the same way round: the output gradients' channels are the vectors and
//! the taps' input values the broadcasts.

use super::conv::leading;
use super::gemm::{transpose, Isa};
use super::im2col::ConvGeom;
use rayon::prelude::*;

/// Output channels per register block: two 16-lane vectors.
pub const OC_BLOCK: usize = 32;
/// The most outputs of a row one register block holds: 2·14 accumulators, two weight vectors and
/// a broadcast fill the 32 zmm registers.
const MAX_PIXELS: usize = 14;
/// The fewest input channels for which the wide kernel beats the unfolded product: measured at
/// 64 and 128 (DC-GAN); a single-channel input (the discriminator's first layer) stays with the
/// product, which packs its 25-row unfolded operand cheaply.
const MIN_CHANNELS: usize = 16;

thread_local! {
    /// Each thread's padded image, reused so that a step allocates nothing once run.
    static PADDED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The calling thread's weights in block order ([`arrange_weights`]).
    static WEIGHTS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The calling thread's [`grad_weight`] operands: the padded images, the output gradients
    /// pixel by pixel, and the tasks' sums.
    static GRAD_SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Input channels per weight-gradient task: with [`OC_BLOCK`] output channels, DC-GAN's layers
/// make 16 tasks, each reading its block's output gradients once.
const GRAD_CHANNELS: usize = 16;

/// Whether this CPU and the correlation `geom` producing `outputs` channels suit the wide kernel.
/// Its weight gradient takes whole kernel rows into one register block, so a kernel row has at
/// most [`MAX_PIXELS`] taps.
pub fn applies(geom: &ConvGeom, outputs: usize) -> bool {
    (geom.stride == [1, 1] || geom.stride == [2, 2])
        && (0..2).all(|a| geom.pad[a] < geom.kernel[a])
        && geom.kernel[1] <= MAX_PIXELS
        && channels_suit(geom.channels, outputs)
}

/// Whether this CPU and `inputs` → `outputs` channels suit the wide kernel: a multiple of
/// [`OC_BLOCK`] outputs, at least [`MIN_CHANNELS`] inputs, AVX-512.
fn channels_suit(inputs: usize, outputs: usize) -> bool {
    outputs.is_multiple_of(OC_BLOCK) && inputs >= MIN_CHANNELS && has_avx512()
}

/// Whether the CPU runs the kernel's instructions (AVX-512F, as the GEMM's kernels detect it).
fn has_avx512() -> bool {
    Isa::Avx512.is_supported()
}

/// Writes the weights, `weight(o, c, i, j)` for output channel o, input channel c and kernel tap
/// (i, j), into `dst` in block order: for each block of [`OC_BLOCK`] output channels, for each
/// (c, i, j), the block's values.
fn arrange_weights(geom: &ConvGeom, weight: impl Fn(usize, usize, usize, usize) -> f32, dst: &mut [f32]) {
    let [kh, kw] = geom.kernel;
    let taps = geom.channels * kh * kw;
    for (block, values) in dst.chunks_exact_mut(taps * OC_BLOCK).enumerate() {
        for (tap, lanes) in values.chunks_exact_mut(OC_BLOCK).enumerate() {
            let (c, i, j) = (tap / (kh * kw), tap / kw % kh, tap % kw);
            for (lane, value) in lanes.iter_mut().enumerate() {
                *value = weight(block * OC_BLOCK + lane, c, i, j);
            }
        }
    }
}

/// out (N×O×Ho×Wo) = the correlation of x (N×C×H×W) with the weights `weight(o, c, i, j)`, zero
/// padded by `geom.pad`, at stride s (1 or 2): Σ_c Σ_i Σ_j w(o, c, i, j)·x[c, s·y − pad + i,
/// s·x − pad + j].
///
/// # Panics
/// If [`applies`] does not hold, or the operands do not have the geometry's sizes.
pub fn correlate(
    geom: &ConvGeom,
    outputs: usize,
    weight: impl Fn(usize, usize, usize, usize) -> f32,
    x: &[f32],
    out: &mut [f32],
) {
    assert!(applies(geom, outputs), "the wide convolution kernel does not take this convolution");
    let [ho, wo] = geom.output;
    let (image_len, out_len) = (geom.image_len(), outputs * ho * wo);
    assert!(
        x.len().is_multiple_of(image_len) && out.len() == x.len() / image_len * out_len,
        "convolution operand sizes"
    );
    let [kh, kw] = geom.kernel;
    let mut arranged = WEIGHTS.take();
    let weights = leading(&mut arranged, outputs * geom.channels * kh * kw);
    arrange_weights(geom, weight, weights);
    let weights = &*weights;
    out.par_chunks_mut(out_len).zip(x.par_chunks(image_len)).for_each(|(out, image)| {
        let mut padded = PADDED.take();
        let (rows, row_len) = (geom.input[0] + 2 * geom.pad[0], geom.input[1] + 2 * geom.pad[1]);
        let padded_image = leading(&mut padded, geom.channels * rows * row_len);
        geom.pad_into(image, padded_image, row_len);
        correlate_image(geom, outputs, padded_image, weights, out, Placement::dense(geom.output));
        PADDED.set(padded);
    });
    WEIGHTS.set(arranged);
}

/// Whether this CPU and the transposed convolution of an `inputs`-channel image whose forward
/// convolution is `forward` (its output channels are `forward.channels`) suit
/// [`transpose_by_phases`].
pub fn transpose_applies(forward: &ConvGeom, inputs: usize) -> bool {
    channels_suit(inputs, forward.channels)
}

/// Something per output phase, inline up to stride 3 (9 phases), so that a step allocates
/// nothing.
type Phases<T> = smallvec::SmallVec<[T; 9]>;

/// One axis of an output phase of a strided transposed convolution: the outputs r, r + s, …
/// and the kernel taps that reach them.
#[derive(Clone, Copy, Debug)]
struct PhaseAxis {
    /// The first output (r < s).
    first: usize,
    /// Outputs of the phase: ⌈(size − r) / s⌉.
    outputs: usize,
    /// Kernel taps that reach them: those ≡ (r + pad) mod s.
    taps: usize,
    /// The phase's first tap, (r + pad) mod s.
    first_tap: usize,
    /// How many inputs before output t's the phase's correlation starts: its t-th output reads
    /// inputs t − before … t − before + taps − 1 (as a correlation with the taps reversed).
    before: isize,
}

impl PhaseAxis {
    /// Phase `r` of one axis of a transposed convolution of stride `s` and padding `pad`, with a
    /// `kernel`-tap window, producing `size` outputs.
    fn new(r: usize, s: usize, pad: usize, kernel: usize, size: usize) -> PhaseAxis {
        let (first_tap, shift) = ((r + pad) % s, (r + pad) / s);
        let taps = if first_tap < kernel { (kernel - first_tap).div_ceil(s) } else { 0 };
        let outputs = if r < size { (size - r).div_ceil(s) } else { 0 };
        PhaseAxis { first: r, outputs, taps, first_tap, before: taps as isize - 1 - shift as isize }
    }

    /// The kernel tap that the phase's correlation tap `i` stands for.
    fn tap(&self, s: usize, i: usize) -> usize {
        self.first_tap + s * (self.taps - 1 - i)
    }

    /// Zero padding the phase needs on each side of `inputs` values: (before, after).
    fn padding(&self, inputs: usize) -> (usize, usize) {
        if self.taps == 0 || self.outputs == 0 {
            return (0, 0);
        }
        let last_read = self.outputs as isize - 1 - self.before + self.taps as isize - 1;
        (self.before.max(0) as usize, (last_read - (inputs as isize - 1)).max(0) as usize)
    }
}

/// The transposed convolution of x (N×C×H×W) with the weights w (C×O×kh×kw), whose forward
/// convolution is `forward` (O channels of Hout×Wout to C of H×W, at stride s), into out
/// (N×O×Hout×Wout). Output (y, x) only meets the kernel taps i ≡ y + pad (mod s) and
/// j ≡ x + pad, so the outputs split into s² phases (y mod s, x mod s), each a stride-1
/// correlation of x with its ⌈k/s⌉² taps, reversed: the wide kernel runs those, and no zero of
/// an upsampled input is multiplied, where the unfolded product multiplies by every tap. At
/// stride 1 the one phase is the correlation of x, padded by k − 1 − pad, with the flipped
/// kernel.
///
/// # Panics
/// If [`transpose_applies`] does not hold, or the operands do not have the geometry's sizes.
pub fn transpose_by_phases(forward: &ConvGeom, x: &[f32], w: &[f32], out: &mut [f32]) {
    let outputs = forward.channels;
    let ([kh, kw], [h, wd], [hout, wout], s) = (forward.kernel, forward.output, forward.input, forward.stride);
    let c = w.len() / (outputs * kh * kw).max(1);
    assert!(transpose_applies(forward, c), "the wide convolution kernel does not take this transposed convolution");
    let (image_len, out_len) = (c * h * wd, outputs * hout * wout);
    assert!(
        w.len() == c * outputs * kh * kw
            && x.len().is_multiple_of(image_len)
            && out.len() == x.len() / image_len * out_len,
        "transposed convolution operand sizes"
    );
    let phases: Phases<[PhaseAxis; 2]> = (0..s[0] * s[1])
        .map(|p| {
            [
                PhaseAxis::new(p / s[1], s[0], forward.pad[0], kh, hout),
                PhaseAxis::new(p % s[1], s[1], forward.pad[1], kw, wout),
            ]
        })
        .collect();
    // One zero padding for every phase: the widest any needs, on both sides.
    let pad = |a: usize, inputs: usize| {
        phases
            .iter()
            .map(|phase| {
                let (before, after) = phase[a].padding(inputs);
                before.max(after)
            })
            .max()
            .unwrap_or(0)
    };
    let padded_geom = ConvGeom {
        channels: c,
        input: [h, wd],
        output: [0, 0],
        kernel: [1, 1],
        stride: [1, 1],
        pad: [pad(0, h), pad(1, wd)],
    };
    let geom_of = |phase: &[PhaseAxis; 2]| ConvGeom {
        output: [phase[0].outputs, phase[1].outputs],
        kernel: [phase[0].taps, phase[1].taps],
        ..padded_geom
    };
    // Each phase's weights in block order, one after another.
    let lens: Phases<usize> = phases.iter().map(|phase| outputs * c * phase[0].taps * phase[1].taps).collect();
    let starts: Phases<usize> = lens.iter().scan(0, |at, len| Some(std::mem::replace(at, *at + len))).collect();
    let mut arranged = WEIGHTS.take();
    let weights = leading(&mut arranged, lens.iter().sum());
    for ((phase, &start), &len) in phases.iter().zip(&starts).zip(&lens) {
        if len == 0 {
            continue;
        }
        let weight = |o: usize, ci: usize, i: usize, j: usize| {
            w[((ci * outputs + o) * kh + phase[0].tap(s[0], i)) * kw + phase[1].tap(s[1], j)]
        };
        arrange_weights(&geom_of(phase), weight, &mut weights[start..start + len]);
    }
    let weights = &*weights;
    let [ph, pw] = padded_geom.pad;
    let row_len = wd + 2 * pw;
    out.par_chunks_mut(out_len).zip(x.par_chunks(image_len)).for_each(|(out, image)| {
        let mut padded = PADDED.take();
        let padded_image = leading(&mut padded, c * (h + 2 * ph) * row_len);
        padded_geom.pad_into(image, padded_image, row_len);
        for ((phase, &start), &len) in phases.iter().zip(&starts).zip(&lens) {
            let [rows, cols] = phase;
            if rows.outputs == 0 || cols.outputs == 0 {
                continue;
            }
            let placement =
                Placement { plane: hout * wout, first: rows.first * wout + cols.first, row: s[0] * wout, column: s[1] };
            if rows.taps == 0 || cols.taps == 0 {
                placement.fill_zero(outputs, [rows.outputs, cols.outputs], out);
                continue;
            }
            // The phase's first output reads the padded image from row ph − before, column
            // pw − before.
            let origin = (ph as isize - rows.before) as usize * row_len + (pw as isize - cols.before) as usize;
            let phase_weights = &weights[start..start + len];
            correlate_image(&geom_of(phase), outputs, &padded_image[origin..], phase_weights, out, placement);
        }
        PADDED.set(padded);
    });
    WEIGHTS.set(arranged);
}

/// Where [`correlate_image`] writes output (o, y, x): at o·plane + first + y·row + x·column.
#[derive(Clone, Copy, Debug)]
struct Placement {
    /// Values between output channels.
    plane: usize,
    /// Output (0, 0, 0).
    first: usize,
    /// Values between output rows.
    row: usize,
    /// Values between output columns.
    column: usize,
}

impl Placement {
    /// Outputs stored densely, channel by channel, row by row.
    fn dense([rows, cols]: [usize; 2]) -> Placement {
        Placement { plane: rows * cols, first: 0, row: cols, column: 1 }
    }

    /// Writes zeros at every output of `channels` channels of `size` outputs.
    fn fill_zero(&self, channels: usize, [rows, cols]: [usize; 2], out: &mut [f32]) {
        for o in 0..channels {
            for y in 0..rows {
                for x in 0..cols {
                    out[o * self.plane + self.first + y * self.row + x * self.column] = 0.0;
                }
            }
        }
    }
}

/// The weight gradient dW (O×C×kh×kw) of the correlation `geom` (as [`correlate`] computes it)
/// from its input x (N×C×H×W) and output gradient g (N×O×Ho×Wo):
/// dW[o, c, i, j] = Σ_b Σ_y Σ_x g[b, o, y, x]·x[b, c, s·y − pad + i, s·x − pad + j].
/// The vectors run over output channels again: the gradient is read pixel by pixel (transposed
/// once), and each pixel's [`OC_BLOCK`] values multiply the input values of up to
/// [`MAX_PIXELS`] taps, broadcast. Tasks take disjoint blocks of output × input channels, and each
/// dW element is one multiply-add chain over images, rows and columns in order, so the result
/// does not depend on the thread count.
///
/// # Panics
/// If [`applies`] does not hold, or the operands do not have the geometry's sizes.
pub fn grad_weight(geom: &ConvGeom, outputs: usize, x: &[f32], g: &[f32], out: &mut [f32]) {
    assert!(applies(geom, outputs), "the wide convolution kernel does not take this convolution");
    let ([ho, wo], [kh, kw], c) = (geom.output, geom.kernel, geom.channels);
    let (image_len, spatial) = (geom.image_len(), ho * wo);
    let n = x.len() / image_len;
    assert!(
        x.len() == n * image_len && g.len() == n * outputs * spatial && out.len() == outputs * c * kh * kw,
        "weight gradient operand sizes"
    );
    let (rows, row_len) = (geom.input[0] + 2 * geom.pad[0], geom.input[1] + 2 * geom.pad[1]);
    let padded_len = c * rows * row_len;
    let [mut padded, mut pixels, mut sums] = GRAD_SCRATCH.take();
    let padded_images = leading(&mut padded, n * padded_len);
    padded_images.par_chunks_mut(padded_len).zip(x.par_chunks(image_len)).for_each(|(padded, image)| {
        geom.pad_into(image, padded, row_len);
    });
    let by_pixel = leading(&mut pixels, g.len());
    by_pixel.par_chunks_mut(outputs * spatial).zip(g.par_chunks(outputs * spatial)).for_each(|(dst, src)| {
        transpose(src, outputs, spatial, dst);
    });
    let (padded_images, by_pixel) = (&*padded_images, &*by_pixel);
    let channel_blocks = c.div_ceil(GRAD_CHANNELS);
    let task_len = GRAD_CHANNELS * kh * kw * OC_BLOCK;
    let task_sums = leading(&mut sums, outputs / OC_BLOCK * channel_blocks * task_len);
    task_sums.par_chunks_mut(task_len).enumerate().for_each(|(task, sums)| {
        let (block, c0) = (task / channel_blocks, task % channel_blocks * GRAD_CHANNELS);
        sums.fill(0.0);
        let tap_rows = kh.min(MAX_PIXELS / kw);
        // Image by image, so that the image's gradients for the block stay in L1 while every
        // tap block's sums are loaded and stored once per image.
        for b in 0..n {
            let image = &padded_images[b * padded_len..][..padded_len];
            let grads = &by_pixel[(b * spatial * outputs + block * OC_BLOCK)..];
            for ci in c0..c.min(c0 + GRAD_CHANNELS) {
                for i0 in (0..kh).step_by(tap_rows) {
                    let taps = (kh - i0).min(tap_rows) * kw;
                    let at = (((ci - c0) * kh + i0) * kw) * OC_BLOCK;
                    let step = GradStep {
                        image: &image[(ci * rows + i0) * row_len..],
                        row_len,
                        kw,
                        stride: geom.stride[0],
                        output: geom.output,
                        grads,
                        grad_stride: outputs,
                    };
                    step.run(taps, &mut sums[at..at + taps * OC_BLOCK]);
                }
            }
        }
    });
    // Each task's sums ((c, i, j) × its output channels) into dW.
    for (task, sums) in task_sums.chunks_exact(task_len).enumerate() {
        let (block, c0) = (task / channel_blocks, task % channel_blocks * GRAD_CHANNELS);
        for (t, lanes) in sums.chunks_exact(OC_BLOCK).take((c.min(c0 + GRAD_CHANNELS) - c0) * kh * kw).enumerate() {
            let tap = c0 * kh * kw + t;
            for (lane, &value) in lanes.iter().enumerate() {
                out[(block * OC_BLOCK + lane) * c * kh * kw + tap] = value;
            }
        }
    }
    GRAD_SCRATCH.set([padded, pixels, sums]);
}

/// One weight-gradient register block: the taps of up to [`MAX_PIXELS`] kernel positions (whole
/// kernel rows) of one input channel, summed over one image's outputs.
struct GradStep<'a> {
    /// The padded image from the block's first tap row (row i0 of the channel's plane).
    image: &'a [f32],
    /// Values between rows of the padded image.
    row_len: usize,
    /// Kernel columns.
    kw: usize,
    /// The stride (both axes).
    stride: usize,
    /// Output rows and columns.
    output: [usize; 2],
    /// The image's output gradients, output by output, from the block's first output channel.
    grads: &'a [f32],
    /// Values between consecutive outputs' gradients.
    grad_stride: usize,
}

impl GradStep<'_> {
    /// Adds the image's contributions to the sums of `taps` taps (kernel positions in row-major
    /// order from the block's first row), [`OC_BLOCK`] values each, in `sums`.
    fn run(&self, taps: usize, sums: &mut [f32]) {
        let last_tap = (taps / self.kw - 1) * self.row_len + self.kw - 1;
        assert!(
            taps.is_multiple_of(self.kw) && (1..=MAX_PIXELS).contains(&taps) && sums.len() == taps * OC_BLOCK,
            "whole kernel rows"
        );
        let [ho, wo] = self.output;
        let last_output = ((ho - 1) * self.row_len + wo - 1) * self.stride;
        assert!(self.image.len() > last_tap + last_output, "the padded image holds every tap");
        assert!(self.grads.len() >= (ho * wo - 1) * self.grad_stride + OC_BLOCK, "the image's output gradients");
        assert!(has_avx512(), "the wide convolution kernel needs AVX-512");
        let mut offsets = [0; MAX_PIXELS];
        for (t, offset) in offsets.iter_mut().take(taps).enumerate() {
            *offset = t / self.kw * self.row_len + t % self.kw;
        }
        macro_rules! taps {
            ($($t:literal)+) => {
                match (taps, self.stride) {
                    // SAFETY: the asserts above: the CPU has AVX-512F, and every tap, gradient
                    // and sum read or written lies inside the slices.
                    $(($t, 1) => unsafe { x86::grad_block::<$t, 1>(self, &offsets, sums) },)+
                    $(($t, 2) => unsafe { x86::grad_block::<$t, 2>(self, &offsets, sums) },)+
                    _ => unreachable!("1..=MAX_PIXELS taps at stride 1 or 2, got {taps} at {}", self.stride),
                }
            };
        }
        #[cfg(target_arch = "x86_64")]
        taps!(1 2 3 4 5 6 7 8 9 10 11 12 13 14);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (offsets, sums);
    }
}

/// One image of [`correlate`], from its padded copy (C planes of H + 2·pad rows of W + 2·pad,
/// from the first output's window), written where `placement` says. Output rows of at most half
/// a block (InfoGAN's 7-wide ones) are taken two at a time, so that each weight load still meets
/// 14 outputs.
fn correlate_image(
    geom: &ConvGeom,
    outputs: usize,
    padded: &[f32],
    weights: &[f32],
    out: &mut [f32],
    placement: Placement,
) {
    let ([ho, wo], [kh, kw], stride) = (geom.output, geom.kernel, geom.stride[0]);
    let row_len = geom.input[1] + 2 * geom.pad[1];
    let plane = (geom.input[0] + 2 * geom.pad[0]) * row_len;
    let taps = geom.channels * kh * kw;
    let row_pairs = 2 * wo <= MAX_PIXELS;
    let mut block = [[0.0f32; OC_BLOCK]; MAX_PIXELS];
    for (b, block_weights) in weights.chunks_exact(taps * OC_BLOCK).take(outputs / OC_BLOCK).enumerate() {
        let mut y = 0;
        while y < ho {
            let rows = if row_pairs { 2.min(ho - y) } else { 1 };
            for x0 in (0..wo).step_by(MAX_PIXELS) {
                let pixels = MAX_PIXELS.min(wo - x0);
                let origin = (y * row_len + x0) * stride;
                let step = Step { image: &padded[origin..], plane, row_len, geom, weights: block_weights };
                step.run(pixels, rows, &mut block);
                let Placement { plane, first, row, column } = placement;
                for (lane, o) in (b * OC_BLOCK..(b + 1) * OC_BLOCK).enumerate() {
                    for r in 0..rows {
                        let start = o * plane + first + (y + r) * row + x0 * column;
                        let sums = &block[r * pixels..][..pixels];
                        if column == 1 {
                            for (value, sums) in out[start..][..pixels].iter_mut().zip(sums) {
                                *value = sums[lane];
                            }
                        } else {
                            for (p, sums) in sums.iter().enumerate() {
                                out[start + p * column] = sums[lane];
                            }
                        }
                    }
                }
            }
            y += rows;
        }
    }
}

/// One register block's work: its first output's window in the padded image and one block of
/// output channels' arranged weights.
struct Step<'a> {
    /// The padded image from the block's first output's window (row s·y, column s·x0 of channel
    /// 0).
    image: &'a [f32],
    /// Values between channel planes of the padded image.
    plane: usize,
    /// Values between rows of the padded image.
    row_len: usize,
    geom: &'a ConvGeom,
    /// The block's weights: for each (c, i, j), [`OC_BLOCK`] values.
    weights: &'a [f32],
}

impl Step<'_> {
    /// Writes the sums of `rows` (1 or 2) output rows of `pixels` outputs each (at most
    /// [`MAX_PIXELS`] in all) into the first rows of `block`, row by row.
    fn run(&self, pixels: usize, rows: usize, block: &mut [[f32; OC_BLOCK]; MAX_PIXELS]) {
        let [kh, kw] = self.geom.kernel;
        let stride = self.geom.stride[1];
        let last_row = (rows - 1) * stride * self.row_len;
        let last =
            (self.geom.channels - 1) * self.plane + (kh - 1) * self.row_len + last_row + kw - 1 + (pixels - 1) * stride;
        assert!(rows * pixels <= MAX_PIXELS && (1..=2).contains(&rows), "a register block holds at most 14 outputs");
        assert!(self.image.len() > last, "the padded image holds every tap of the block");
        assert!(self.weights.len() >= self.geom.channels * kh * kw * OC_BLOCK, "a block's weights");
        assert!(has_avx512(), "the wide convolution kernel needs AVX-512");
        macro_rules! widths {
            ([$($p:literal)+], [$($half:literal)+]) => {
                match (pixels, rows, stride) {
                    // SAFETY: the asserts above: the CPU has AVX-512F, and every tap of the
                    // block's outputs and every weight read lies inside the slices.
                    $(($p, 1, 1) => unsafe { x86::block::<$p, 1, 1>(self, block) },)+
                    $(($p, 1, 2) => unsafe { x86::block::<$p, 1, 2>(self, block) },)+
                    $(($half, 2, 1) => unsafe { x86::block::<$half, 2, 1>(self, block) },)+
                    $(($half, 2, 2) => unsafe { x86::block::<$half, 2, 2>(self, block) },)+
                    _ => unreachable!("{rows} rows of {pixels} outputs at stride {stride}"),
                }
            };
        }
        #[cfg(target_arch = "x86_64")]
        widths!([1 2 3 4 5 6 7 8 9 10 11 12 13 14], [1 2 3 4 5 6 7]);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = block;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{GradStep, Step, MAX_PIXELS, OC_BLOCK};
    use std::arch::x86_64::*;

    /// [`Step::run`] for exactly `R` rows of `P` outputs at stride `S`, with 2·R·P accumulators
    /// in zmm registers.
    ///
    /// # Safety
    /// The CPU runs AVX-512F; `step.image` holds every tap of the R·P outputs of every channel
    /// and `step.weights` every (c, i, j) block (as [`Step::run`] asserts).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block<const P: usize, const R: usize, const S: usize>(
        step: &Step,
        block: &mut [[f32; OC_BLOCK]; MAX_PIXELS],
    ) {
        let [kh, kw] = step.geom.kernel;
        let (image, weights) = (step.image.as_ptr(), step.weights.as_ptr());
        let next_row = S * step.row_len;
        let mut acc = [[[_mm512_setzero_ps(); 2]; P]; R];
        // SAFETY: every offset lies inside the slices (the caller's contract).
        unsafe {
            for c in 0..step.geom.channels {
                for i in 0..kh {
                    let row = image.add(c * step.plane + i * step.row_len);
                    let taps = weights.add((c * kh + i) * kw * OC_BLOCK);
                    for j in 0..kw {
                        let w = [_mm512_loadu_ps(taps.add(j * OC_BLOCK)), _mm512_loadu_ps(taps.add(j * OC_BLOCK + 16))];
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let row = row.add(r * next_row);
                            for (p, acc) in acc.iter_mut().enumerate() {
                                let x = _mm512_set1_ps(*row.add(p * S + j));
                                acc[0] = _mm512_fmadd_ps(x, w[0], acc[0]);
                                acc[1] = _mm512_fmadd_ps(x, w[1], acc[1]);
                            }
                        }
                    }
                }
            }
            for (sums, acc) in block.iter_mut().zip(acc.as_flattened()) {
                _mm512_storeu_ps(sums.as_mut_ptr(), acc[0]);
                _mm512_storeu_ps(sums.as_mut_ptr().add(16), acc[1]);
            }
        }
    }

    /// [`GradStep::run`] for exactly `T` taps at stride `S`, with 2·T accumulators in zmm
    /// registers, loaded from `sums` and stored back.
    ///
    /// # Safety
    /// The CPU runs AVX-512F; `offsets` are the taps' offsets in `step.image`, which holds every
    /// tap of the image's outputs; `step.grads` holds every output's [`OC_BLOCK`] gradients and
    /// `sums` T·[`OC_BLOCK`] values (as [`GradStep::run`] asserts).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn grad_block<const T: usize, const S: usize>(
        step: &GradStep,
        offsets: &[usize; MAX_PIXELS],
        sums: &mut [f32],
    ) {
        let (image, grads, out) = (step.image.as_ptr(), step.grads.as_ptr(), sums.as_mut_ptr());
        // SAFETY: every offset lies inside the slices (the caller's contract).
        unsafe {
            let mut acc: [[__m512; 2]; T] = std::array::from_fn(|t| {
                [_mm512_loadu_ps(out.add(t * OC_BLOCK)), _mm512_loadu_ps(out.add(t * OC_BLOCK + 16))]
            });
            let [ho, wo] = step.output;
            for y in 0..ho {
                let (row, grads) = (image.add(y * S * step.row_len), grads.add(y * wo * step.grad_stride));
                for p in 0..wo {
                    let g = grads.add(p * step.grad_stride);
                    let g = [_mm512_loadu_ps(g), _mm512_loadu_ps(g.add(16))];
                    let column = row.add(p * S);
                    for (acc, &offset) in acc.iter_mut().zip(offsets) {
                        let x = _mm512_set1_ps(*column.add(offset));
                        acc[0] = _mm512_fmadd_ps(x, g[0], acc[0]);
                        acc[1] = _mm512_fmadd_ps(x, g[1], acc[1]);
                    }
                }
            }
            for (t, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.add(t * OC_BLOCK), acc[0]);
                _mm512_storeu_ps(out.add(t * OC_BLOCK + 16), acc[1]);
            }
        }
    }
}
