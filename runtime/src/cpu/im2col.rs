//! The lowering of a convolution to a matrix product. `im2col` unfolds one C×H×W image into a
//! (C·kh·kw)×(Ho·Wo) matrix whose column p holds the receptive field of output position p (zeros
//! where it overlaps the padding), so that the convolution is `W · cols`; `col2im` is its adjoint,
//! adding each column back into the image. [`Unfolded`] writes the unfolded matrix of zero-padded
//! images straight into the GEMM's packed panels, one block at a time, so that it never exists in
//! full: a 5×5 convolution's unfolded image is 25 times the image, too large for the caches. Its
//! images are split by column phase ([`ConvGeom::split_into`]), so that every piece it copies is
//! contiguous, strided convolutions included.

use super::gemm::PackB;
use super::par::{add_short, copy_short};
use std::ops::Range;

/// The geometry of one convolution, from its input's point of view.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    /// Input channels.
    pub channels: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// Zero padding.
    pub pad: [usize; 2],
}

/// The output positions `o < outputs` whose input position `o·stride − pad + offset` lies in
/// `0..size`.
fn inside(outputs: usize, stride: usize, pad: usize, offset: usize, size: usize) -> Range<usize> {
    let lo = if pad > offset { (pad - offset).div_ceil(stride) } else { 0 };
    let hi = if size + pad > offset { ((size - 1 + pad - offset) / stride + 1).min(outputs) } else { 0 };
    lo.min(outputs)..hi.max(lo.min(outputs))
}

impl ConvGeom {
    /// Rows of the unfolded matrix: C·kh·kw.
    pub fn col_rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Columns of one image's unfolded matrix: Ho·Wo.
    pub fn col_cols(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Elements of one input image: C·H·W.
    pub fn image_len(&self) -> usize {
        self.channels * self.input[0] * self.input[1]
    }

    /// Walks the unfolded matrix (rows `ld` apart) run by run, calling `visit(col, source, len)`
    /// for `len` consecutive columns starting at `col`: `source` is `Some(img)` when they read the
    /// image at `img`, `img + stride`, …, and `None` when they fall in the zero padding.
    fn walk(&self, ld: usize, mut visit: impl FnMut(usize, Option<usize>, usize)) {
        let ([h, w], [ho, wo], [kh, kw]) = (self.input, self.output, self.kernel);
        let ([sh, sw], [ph, pw]) = (self.stride, self.pad);
        for c in 0..self.channels {
            for i in 0..kh {
                let rows = inside(ho, sh, ph, i, h);
                for j in 0..kw {
                    let row_start = ((c * kh + i) * kw + j) * ld;
                    let cols = inside(wo, sw, pw, j, w);
                    for oy in 0..ho {
                        let col = row_start + oy * wo;
                        if !rows.contains(&oy) || cols.is_empty() {
                            visit(col, None, wo);
                            continue;
                        }
                        let (y, x) = (oy * sh + i - ph, cols.start * sw + j - pw);
                        visit(col, None, cols.start);
                        visit(col + cols.start, Some((c * h + y) * w + x), cols.len());
                        visit(col + cols.end, None, wo - cols.end);
                    }
                }
            }
        }
    }

    /// Writes the unfolded `image` into `cols`, a `col_rows()`×`col_cols()` matrix whose rows
    /// start `ld` apart.
    pub fn im2col(&self, image: &[f32], cols: &mut [f32], ld: usize) {
        let sw = self.stride[1];
        self.walk(ld, |col, source, len| {
            let dst = &mut cols[col..col + len];
            match source {
                None => dst.fill(0.0),
                Some(img) if sw == 1 => copy_short(dst, &image[img..img + len]),
                Some(img) => dst.iter_mut().enumerate().for_each(|(t, d)| *d = image[img + t * sw]),
            }
        });
    }

    /// Writes `image` into `padded` as C planes of H + 2·pad rows of `width` (at least
    /// W + 2·pad) values: the image at row and column offset pad, zeros everywhere else.
    pub fn pad_into(&self, image: &[f32], padded: &mut [f32], width: usize) {
        let ([h, w], [ph, pw]) = (self.input, self.pad);
        let rows = h + 2 * ph;
        for (plane, source) in padded.chunks_exact_mut(rows * width).zip(image.chunks_exact(h * w)) {
            let (top, rest) = plane.split_at_mut(ph * width);
            top.fill(0.0);
            let (middle, bottom) = rest.split_at_mut(h * width);
            bottom.fill(0.0);
            for (row, src) in middle.chunks_exact_mut(width).zip(source.chunks_exact(w)) {
                row[..pw].fill(0.0);
                copy_short(&mut row[pw..pw + w], src);
                row[pw + w..].fill(0.0);
            }
        }
    }

    /// Values per padded column phase of a row of [`ConvGeom::split_into`]:
    /// ⌈(W + 2·pad) / stride⌉.
    fn phase_len(&self) -> usize {
        (self.input[1] + 2 * self.pad[1]).div_ceil(self.stride[1])
    }

    /// Values per row of [`ConvGeom::split_into`]: one phase per column stride.
    fn split_row_len(&self) -> usize {
        self.stride[1] * self.phase_len()
    }

    /// Values of one image written by [`ConvGeom::split_into`].
    pub fn split_len(&self) -> usize {
        self.channels * (self.input[0] + 2 * self.pad[0]) * self.split_row_len()
    }

    /// Whether [`ConvGeom::split_into`] would copy the image as it is (no padding, column stride
    /// 1), so that the image can be read in its place.
    pub fn split_is_image(&self) -> bool {
        self.pad == [0, 0] && self.stride[1] == 1
    }

    /// Writes `image` zero-padded into `split` with each row's columns split by phase: padded
    /// column x of row y of channel c lies at ((c·(H + 2·pad) + y)·stride + x mod stride)·P plus
    /// x / stride (P = [`ConvGeom::phase_len`]), so that the columns one kernel tap reads at
    /// consecutive outputs are contiguous whatever the stride.
    pub fn split_into(&self, image: &[f32], split: &mut [f32]) {
        let row_len = self.split_row_len();
        if self.stride[1] == 1 {
            return self.pad_into(image, split, row_len);
        }
        let ([h, w], [ph, pw], sw, phase_len) = (self.input, self.pad, self.stride[1], self.phase_len());
        split.fill(0.0);
        let rows = h + 2 * ph;
        for (plane, source) in split.chunks_exact_mut(rows * row_len).zip(image.chunks_exact(h * w)) {
            for (row, src) in plane[ph * row_len..].chunks_exact_mut(row_len).zip(source.chunks_exact(w)) {
                for (x, &v) in (pw..).zip(src) {
                    row[x % sw * phase_len + x / sw] = v;
                }
            }
        }
    }

    /// For each row of the unfolded matrix (channel c, kernel tap (i, j)), where output position
    /// (0, 0) reads the image written by [`ConvGeom::split_into`].
    pub fn tap_offsets(&self, offsets: &mut Vec<usize>) {
        let (hp, row_len, [kh, kw]) = (self.input[0] + 2 * self.pad[0], self.split_row_len(), self.kernel);
        let (sw, phase_len) = (self.stride[1], self.phase_len());
        offsets.clear();
        offsets.extend(
            (0..self.channels * kh)
                .flat_map(|ci| (0..kw).map(move |j| (ci / kh * hp + ci % kh) * row_len + j % sw * phase_len + j / sw)),
        );
    }

    /// Adds the unfolded matrix `cols` (rows `ld` apart) back into `image`: the adjoint of
    /// [`ConvGeom::im2col`].
    pub fn col2im(&self, cols: &[f32], ld: usize, image: &mut [f32]) {
        let sw = self.stride[1];
        self.walk(ld, |col, source, len| {
            let Some(img) = source else { return };
            let src = &cols[col..col + len];
            if sw == 1 {
                add_short(&mut image[img..img + len], src);
            } else {
                src.iter().enumerate().for_each(|(t, s)| image[img + t * sw] += s);
            }
        });
    }
}

/// The unfolded matrix of a group of images, side by side (column b·Ho·Wo + p is output
/// position p of image b), as a GEMM operand that packs itself from the padded images, split by
/// column phase.
pub struct Unfolded<'a> {
    /// The geometry of each image's convolution.
    pub geom: &'a ConvGeom,
    /// The group's images, each written by [`ConvGeom::split_into`], [`ConvGeom::split_len`]
    /// values apart.
    pub split: &'a [f32],
    /// [`ConvGeom::tap_offsets`].
    pub offsets: &'a [usize],
}

impl PackB for Unfolded<'_> {
    fn pack(&self, ks: Range<usize>, cols: Range<usize>, width: usize, dst: &mut [f32]) {
        let ([ho, wo], sh) = (self.geom.output, self.geom.stride[0]);
        let (row_len, image_len) = (self.geom.split_row_len(), self.geom.split_len());
        let (offsets, depth) = (&self.offsets[ks.clone()], ks.len());
        // Column q is output (oy, ox) of image b; walked piece by piece, each piece within one
        // output row and one panel, copied for every row of the block.
        let spatial = ho * wo;
        let (mut b, mut oy, mut ox) = (cols.start / spatial, cols.start % spatial / wo, cols.start % wo);
        let mut q = cols.start;
        while q < cols.end {
            let (t, lane) = ((q - cols.start) / width, (q - cols.start) % width);
            let len = (width - lane).min(wo - ox).min(cols.end - q);
            let base = b * image_len + oy * sh * row_len + ox;
            let panel = &mut dst[t * width * depth + lane..];
            for (row, &offset) in offsets.iter().enumerate() {
                copy_short(&mut panel[row * width..][..len], &self.split[base + offset..][..len]);
            }
            q += len;
            ox += len;
            if ox == wo {
                ox = 0;
                oy += 1;
                if oy == ho {
                    (oy, b) = (0, b + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_clips_to_the_image() {
        // 4 outputs, stride 2, pad 1: offset 0 reads −1, 1, 3, 5 of a 5-wide input.
        assert_eq!(inside(4, 2, 1, 0, 5), 1..3);
        // offset 2 reads 1, 3, 5, 7: only the first two are inside.
        assert_eq!(inside(4, 2, 1, 2, 5), 0..2);
        // A window entirely in the padding.
        assert_eq!(inside(2, 1, 3, 0, 1), 2..2);
    }

    #[test]
    fn unfolded_blocks_match_im2col() {
        // Two images side by side; blocks of rows from the middle of k and of columns from a
        // whole panel inside the second image, strides 1 to 3, padding 0 to 2; without padding at
        // stride 1 the split layout is the image itself.
        for (stride, pad) in [(1, 2), (2, 1), (1, 0), (3, 2), (2, 0)] {
            let (input, kernel) = ([9, 11], [3, 4]);
            let output = [0, 1].map(|a| (input[a] + 2 * pad - kernel[a]) / stride + 1);
            let geom = ConvGeom { channels: 3, input, output, kernel, stride: [stride; 2], pad: [pad; 2] };
            let images: Vec<f32> = (0..2 * geom.image_len()).map(|v| v as f32 + 1.0).collect();
            let (rows, spatial) = (geom.col_rows(), geom.col_cols());
            let mut cols = vec![f32::NAN; rows * 2 * spatial];
            for (b, image) in images.chunks(geom.image_len()).enumerate() {
                geom.im2col(image, &mut cols[b * spatial..], 2 * spatial);
            }
            let mut split = vec![f32::NAN; 2 * geom.split_len()];
            for (image, split) in images.chunks(geom.image_len()).zip(split.chunks_mut(geom.split_len())) {
                geom.split_into(image, split);
            }
            assert_eq!(geom.split_is_image(), split == images, "stride {stride}, pad {pad}");
            let mut offsets = Vec::new();
            geom.tap_offsets(&mut offsets);
            let unfolded = Unfolded { geom: &geom, split: &split, offsets: &offsets };
            let width = 8;
            for (ks, q) in [(0..rows, 0..2 * spatial), (5..29, 16..2 * spatial - 3), (rows - 1..rows, 8..9)] {
                let mut block = vec![f32::NAN; ks.len() * q.len().div_ceil(width) * width];
                unfolded.pack(ks.clone(), q.clone(), width, &mut block);
                for (row, p) in ks.clone().enumerate() {
                    for (c, col) in q.clone().enumerate() {
                        let got = block[(c / width * ks.len() + row) * width + c % width];
                        assert_eq!(got, cols[p * 2 * spatial + col], "stride {stride}, pad {pad}: B({p}, {col})");
                    }
                }
            }
        }
    }

    #[test]
    fn im2col_of_a_padded_3x3_image() {
        let geom = ConvGeom { channels: 1, input: [3, 3], output: [2, 2], kernel: [2, 2], stride: [2, 2], pad: [1, 1] };
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut cols = vec![f32::NAN; 16];
        geom.im2col(&image, &mut cols, 4);
        // Rows are kernel taps (0,0), (0,1), (1,0), (1,1); columns the four outputs.
        assert_eq!(cols, [0., 0., 0., 5., 0., 0., 4., 6., 0., 2., 0., 8., 1., 3., 7., 9.]);
    }
}
