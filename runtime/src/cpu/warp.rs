//! Random affine warps of images (data augmentation inside a graph) and their adjoint.
//!
//! Output pixel (x, y) of example n reads its input by bilinear interpolation at the point that
//! `WarpAttrs::inverse_map` gives for n's draws; taps outside the image read zero. The forward
//! pass gathers four taps per output pixel; the adjoint scatters the output gradient back
//! through the same taps and weights, one plane at a time, so both are deterministic.

use super::par::for_each_chunk;
use super::View;
use crate::ops::WarpAttrs;

/// Up to four `(input index within the plane, weight)` taps of one output pixel.
type Taps = [(usize, f32); 4];

/// One plane's warp: the inverse map of its image's draws and the plane's size.
struct PlaneWarp {
    map: [f32; 6],
    h: usize,
    w: usize,
}

impl PlaneWarp {
    /// The bilinear taps of output pixel `i` (row-major); taps outside the image get weight zero
    /// (and index 0).
    fn taps(&self, i: usize) -> Taps {
        let (map, h, w) = (&self.map, self.h, self.w);
        let (x, y) = ((i % w) as f32, (i / w) as f32);
        let sx = map[0] * x + map[1] * y + map[2];
        let sy = map[3] * x + map[4] * y + map[5];
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let tap = |col: f32, row: f32, weight: f32| {
            let inside = col >= 0.0 && row >= 0.0 && (col as usize) < w && (row as usize) < h;
            if inside {
                (row as usize * w + col as usize, weight)
            } else {
                (0, 0.0)
            }
        };
        [
            tap(x0, y0, (1.0 - fx) * (1.0 - fy)),
            tap(x0 + 1.0, y0, fx * (1.0 - fy)),
            tap(x0, y0 + 1.0, (1.0 - fx) * fy),
            tap(x0 + 1.0, y0 + 1.0, fx * fy),
        ]
    }
}

/// Runs `f(warp, input plane, output plane)` for every plane of the N×C×H×W `input` (images or
/// an output gradient), planes in parallel; each plane's map is computed where it is used, so a
/// training step allocates nothing.
fn for_each_plane(
    attrs: &WarpAttrs,
    input: View,
    draws: View,
    out: &mut [f32],
    f: impl Fn(&PlaneWarp, &[f32], &mut [f32]) + Sync + Send,
) {
    let &[n, channels, h, w] = input.shape else { panic!("warp2d input must be 4-D, got {:?}", input.shape) };
    debug_assert_eq!(draws.shape, [n, WarpAttrs::DRAWS]);
    let plane = h * w;
    if plane == 0 {
        return;
    }
    for_each_chunk(out, plane, |p, out_plane| {
        let row = &draws.data[p / channels * WarpAttrs::DRAWS..][..WarpAttrs::DRAWS];
        let warp = PlaneWarp { map: attrs.inverse_map(row, h, w), h, w };
        f(&warp, &input.data[p * plane..][..plane], out_plane);
    });
}

/// Warps N×C×H×W `images` by `draws` (N×4) into `out`.
pub fn warp2d(attrs: &WarpAttrs, images: View, draws: View, out: &mut [f32]) {
    for_each_plane(attrs, images, draws, out, |warp, src, dst| {
        for (i, o) in dst.iter_mut().enumerate() {
            *o = warp.taps(i).iter().map(|&(at, weight)| weight * src[at]).sum();
        }
    });
}

/// The adjoint of `warp2d`: the images' gradient from the output gradient `grad` (N×C×H×W).
pub fn warp2d_grad(attrs: &WarpAttrs, grad: View, draws: View, out: &mut [f32]) {
    for_each_plane(attrs, grad, draws, out, |warp, g, dst| {
        dst.fill(0.0);
        for (i, g) in g.iter().enumerate() {
            for (at, weight) in warp.taps(i) {
                dst[at] += weight * g;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::F32;

    fn attrs(rotation: f32, scale: f32, translation: f32) -> WarpAttrs {
        WarpAttrs { rotation: F32::new(rotation), scale: F32::new(scale), translation: F32::new(translation) }
    }

    fn warp(attrs: &WarpAttrs, image: &[f32], shape: [usize; 4], draws: &[f32]) -> Vec<f32> {
        let mut out = vec![f32::NAN; image.len()];
        let draws_view = View { data: draws, shape: &[shape[0], 4] };
        warp2d(attrs, View { data: image, shape: &shape }, draws_view, &mut out);
        out
    }

    #[test]
    fn zero_draws_are_the_identity() {
        let image: Vec<f32> = (0..2 * 3 * 4 * 5).map(|v| v as f32 * 0.5 - 7.0).collect();
        let out = warp(&attrs(30.0, 0.5, 3.0), &image, [2, 3, 4, 5], &[0.0; 8]);
        assert_eq!(out, image);
    }

    #[test]
    fn a_whole_pixel_shift_moves_the_image_and_fills_zeros() {
        // translation 2, draws (0, 0, 0.5, -0.5): one pixel right and one pixel up.
        let image: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let out = warp(&attrs(0.0, 0.0, 2.0), &image, [1, 1, 3, 4], &[0.0, 0.0, 0.5, -0.5]);
        #[rustfmt::skip]
        let expected = [
            0.0, 5.0, 6.0, 7.0,
            0.0, 9.0, 10.0, 11.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn a_quarter_turn_of_a_square_image_permutes_its_pixels() {
        // 90° (rotation 90, draw 1) about the centre of a 3×3 image: output (x, y) reads input
        // (y, 2 − x), so the first output row is the input's first column read bottom-up.
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let out = warp(&attrs(90.0, 0.0, 0.0), &image, [1, 1, 3, 3], &[1.0, 0.0, 0.0, 0.0]);
        let expected = [7.0, 4.0, 1.0, 8.0, 5.0, 2.0, 9.0, 6.0, 3.0];
        for (o, e) in out.iter().zip(expected) {
            assert!((o - e).abs() < 1e-5, "{out:?}");
        }
    }

    #[test]
    fn a_half_pixel_shift_averages_neighbours() {
        let image = [0.0, 2.0, 4.0, 8.0];
        let out = warp(&attrs(0.0, 0.0, 1.0), &image, [1, 1, 1, 4], &[0.0, 0.0, -0.5, 0.0]);
        assert_eq!(out, [1.0, 3.0, 6.0, 4.0]);
    }

    #[test]
    fn the_gradient_is_the_adjoint_of_the_warp() {
        // Element j of warp_grad(g) must be <warp(e_j), g> for every basis image e_j, for
        // rotated, rescaled and shifted warps of two images with two channels each.
        let shape = [2, 2, 5, 6];
        let len: usize = shape.iter().product();
        let g: Vec<f32> = (0..len).map(|i| ((i * 53 % 97) as f32 / 48.0) - 1.0).collect();
        let draws = [0.7, -0.4, 0.3, -0.9, -0.2, 0.8, -0.6, 0.45];
        let a = attrs(20.0, 0.2, 2.0);
        let mut grad = vec![f32::NAN; len];
        warp2d_grad(&a, View { data: &g, shape: &shape }, View { data: &draws, shape: &[2, 4] }, &mut grad);
        let mut moved = 0;
        for (j, got) in grad.iter().enumerate() {
            let mut basis = vec![0.0; len];
            basis[j] = 1.0;
            let column = warp(&a, &basis, shape, &draws);
            moved += usize::from(column[j] != 1.0);
            let expected: f32 = column.iter().zip(&g).map(|(c, g)| c * g).sum();
            assert!((got - expected).abs() < 1e-5, "element {j}: {got} vs {expected}");
        }
        assert!(moved == len, "the warp must move every pixel: {moved} of {len}");
    }
}
