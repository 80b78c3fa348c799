//! The lowering of a convolution to a matrix product. `im2col` unfolds one C×H×W image into a
//! (C·kh·kw)×(Ho·Wo) matrix whose column p holds the receptive field of output position p (zeros
//! where it overlaps the padding), so that the convolution is `W · cols`; `col2im` is its adjoint,
//! adding each column back into the image.

use super::par::copy_short;
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

    /// Adds the unfolded matrix `cols` (rows `ld` apart) back into `image`: the adjoint of
    /// [`ConvGeom::im2col`].
    pub fn col2im(&self, cols: &[f32], ld: usize, image: &mut [f32]) {
        let sw = self.stride[1];
        self.walk(ld, |col, source, len| {
            let Some(img) = source else { return };
            let src = &cols[col..col + len];
            if sw == 1 {
                image[img..img + len].iter_mut().zip(src).for_each(|(d, s)| *d += s);
            } else {
                src.iter().enumerate().for_each(|(t, s)| image[img + t * sw] += s);
            }
        });
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
    fn im2col_of_a_padded_3x3_image() {
        let geom = ConvGeom { channels: 1, input: [3, 3], output: [2, 2], kernel: [2, 2], stride: [2, 2], pad: [1, 1] };
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut cols = vec![f32::NAN; 16];
        geom.im2col(&image, &mut cols, 4);
        // Rows are kernel taps (0,0), (0,1), (1,0), (1,1); columns the four outputs.
        assert_eq!(cols, [0., 0., 0., 5., 0., 0., 4., 6., 0., 2., 0., 8., 1., 3., 7., 9.]);
    }
}
