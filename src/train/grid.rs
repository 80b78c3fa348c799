//! Sample grids: a batch of images tiled into one PNG, as the book's sample figures.

use rayon::prelude::*;
use std::io::BufWriter;
use std::path::Path;

/// Writes `images` (N×C×H×W, C = 1 grey or 3 RGB, values already mapped to 0..=255) as a grid
/// with `columns` images per row and a 2-pixel border.
pub fn write_grid(path: &Path, images: &[u8], shape: [usize; 4], columns: usize) -> std::io::Result<()> {
    let [n, c, h, w] = shape;
    let columns = columns.clamp(1, n.max(1));
    let rows = n.div_ceil(columns);
    let (gap, width, height) = (2, columns * (w + 2) + 2, rows * (h + 2) + 2);
    let channels = if c == 3 { 3 } else { 1 };
    let mut canvas = vec![0u8; width * height * channels];
    for i in 0..n {
        let (top, left) = (gap + (i / columns) * (h + gap), gap + (i % columns) * (w + gap));
        for y in 0..h {
            for x in 0..w {
                for ch in 0..channels {
                    let value = images[((i * c + ch.min(c - 1)) * h + y) * w + x];
                    canvas[((top + y) * width + left + x) * channels + ch] = value;
                }
            }
        }
    }
    let file = std::fs::File::create(path)?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(if channels == 3 { png::ColorType::Rgb } else { png::ColorType::Grayscale });
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    writer.write_image_data(&canvas).map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)
}

/// Maps a generated value back to a pixel by inverting the data transform `(p − mean)·scale`,
/// rounded to the nearest pixel (ties to even); NaN gives 0.
pub fn to_pixel(value: f32, scale: f32, mean: f32) -> u8 {
    // In [2^23, 2^24) consecutive floats are consecutive integers, so adding 2^23 to a value in
    // [0, 255] rounds it to an integer, which is then the low bits of the sum's mantissa. No libm
    // call (`f32::round` is one on baseline x86-64, 3% of the VAE's generation time) and no
    // float-to-integer conversion, so the loop over a batch vectorizes.
    const TWO_POW_23: f32 = 8_388_608.0;
    let v = (value / scale + mean).clamp(0.0, 255.0);
    let v = if v.is_nan() { 0.0 } else { v };
    ((v + TWO_POW_23).to_bits() & 0xff) as u8
}

/// Pixels converted per parallel task by [`to_pixels`].
const PIXEL_CHUNK: usize = 1 << 14;

/// [`to_pixel`] of every value, in parallel chunks (on one thread this was 6% of the VAE's
/// generation time).
pub fn to_pixels(values: &[f32], scale: f32, mean: f32) -> Vec<u8> {
    let mut pixels = vec![0; values.len()];
    pixels
        .par_chunks_mut(PIXEL_CHUNK)
        .zip(values.par_chunks(PIXEL_CHUNK))
        .for_each(|(pixels, values)| pixels.iter_mut().zip(values).for_each(|(p, v)| *p = to_pixel(*v, scale, mean)));
    pixels
}

#[cfg(test)]
mod tests {
    #[test]
    fn to_pixels_converts_every_value_across_chunks() {
        // Values in [-0.1, 1.1] under the transform p/255: clamped at both ends, rounded between.
        let values: Vec<f32> = (0..3 * super::PIXEL_CHUNK + 5).map(|i| (i % 1201) as f32 / 1000.0 - 0.1).collect();
        let pixels = super::to_pixels(&values, 1.0 / 255.0, 0.0);
        assert_eq!(pixels.len(), values.len());
        for (i, (p, v)) in pixels.iter().zip(&values).enumerate() {
            assert_eq!(*p, super::to_pixel(*v, 1.0 / 255.0, 0.0), "value {i}: {v}");
        }
        // -0.1 and 1.1 clamp; 0.6 is pixel 153.
        assert_eq!((pixels[0], pixels[1200], pixels[700]), (0, 255, 153));
    }

    #[test]
    fn to_pixel_rounds_to_nearest_with_ties_to_even() {
        let pixel = |v: f32| super::to_pixel(v, 1.0, 0.0);
        let just_below_half = 0.5 - f32::EPSILON / 4.0;
        assert_eq!([pixel(2.4999), pixel(2.5), pixel(2.5001), pixel(3.5), pixel(254.5)], [2, 2, 3, 4, 254]);
        assert_eq!([pixel(just_below_half), pixel(-0.4), pixel(300.0), pixel(f32::NAN)], [0, 0, 255, 0]);
    }
}
