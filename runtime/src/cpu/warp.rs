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

/// The bilinear taps of output pixel (x, y) under `map`; taps outside the h×w image get weight
/// zero (and index 0).
fn taps(map: &[f32; 6], x: usize, y: usize, h: usize, w: usize) -> Taps {
    let (x, y) = (x as f32, y as f32);
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

/// The channels, height and width of a warp's N×C×H×W images, checked against its N×4 draws.
fn geometry(images: &[usize], draws: View) -> (usize, usize, usize) {
    let &[n, c, h, w] = images else { panic!("warp2d images must be 4-D, got {images:?}") };
    debug_assert_eq!(draws.shape, [n, WarpAttrs::DRAWS]);
    (c, h, w)
}

/// The inverse map of plane `p`'s image (computed per plane: no allocation in a training step).
fn plane_map(attrs: &WarpAttrs, draws: View, p: usize, channels: usize, h: usize, w: usize) -> [f32; 6] {
    attrs.inverse_map(&draws.data[p / channels * WarpAttrs::DRAWS..][..WarpAttrs::DRAWS], h, w)
}

/// Warps N×C×H×W `images` by `draws` (N×4) into `out`.
pub fn warp2d(attrs: &WarpAttrs, images: View, draws: View, out: &mut [f32]) {
    let (channels, h, w) = geometry(images.shape, draws);
    let plane = h * w;
    if plane == 0 {
        return;
    }
    for_each_chunk(out, plane, |p, out_plane| {
        let map = plane_map(attrs, draws, p, channels, h, w);
        let src = &images.data[p * plane..][..plane];
        for (i, o) in out_plane.iter_mut().enumerate() {
            *o = taps(&map, i % w, i / w, h, w).iter().map(|&(at, weight)| weight * src[at]).sum();
        }
    });
}

/// The adjoint of `warp2d`: the images' gradient from the output gradient `grad` (N×C×H×W).
pub fn warp2d_grad(attrs: &WarpAttrs, grad: View, draws: View, out: &mut [f32]) {
    let (channels, h, w) = geometry(grad.shape, draws);
    let plane = h * w;
    if plane == 0 {
        return;
    }
    for_each_chunk(out, plane, |p, out_plane| {
        let map = plane_map(attrs, draws, p, channels, h, w);
        out_plane.fill(0.0);
        for (i, g) in grad.data[p * plane..][..plane].iter().enumerate() {
            for (at, weight) in taps(&map, i % w, i / w, h, w) {
                out_plane[at] += weight * g;
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
