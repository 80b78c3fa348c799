//! Sample grids: a batch of images tiled into one PNG, as the book's sample figures.

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

/// Maps a generated value back to a pixel by inverting the data transform `(p − mean)·scale`.
pub fn to_pixel(value: f32, scale: f32, mean: f32) -> u8 {
    (value / scale + mean).round().clamp(0.0, 255.0) as u8
}
