//! The kernel vocabulary shared by the compiler and the backends: elementwise functions,
//! reductions and the geometry of convolutions and pooling. Attributes are plain data with
//! `Hash`/`Eq` (floats by their bits) so the compiler can compare them.

use serde::Serialize;
use std::fmt;

/// An `f32` attribute compared and hashed by its bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct F32(u32);

impl F32 {
    /// Wraps a float.
    pub fn new(v: f32) -> Self {
        F32(v.to_bits())
    }
    /// The float.
    pub fn get(self) -> f32 {
        f32::from_bits(self.0)
    }
}

impl fmt::Debug for F32 {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl fmt::Display for F32 {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl Serialize for F32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f32(self.get())
    }
}

/// The distribution of a noise source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Distribution {
    /// Uniform on `[min, max]`.
    Uniform { min: F32, max: F32 },
    /// Normal.
    Gaussian { mean: F32, std: F32 },
    /// One-hot rows over the last axis, uniform class.
    Categorical,
}

/// Elementwise functions of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum UnaryOp {
    /// `scale·x + shift`.
    Affine { scale: F32, shift: F32 },
    /// `x^p`.
    Pow(F32),
    /// `e^x`.
    Exp,
    /// `ln x`.
    Log,
    /// `|x|`.
    Abs,
    /// −1, 0 or 1 by the sign of x.
    Sign,
    /// `max(x, 0) + slope·min(x, 0)`; slope 0 is ReLU.
    LeakyRelu(F32),
    /// The derivative of `LeakyRelu(slope)`: 1 where x > 0, else `slope`.
    LeakyReluSlope(F32),
    /// `tanh x`.
    Tanh,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
}

/// Elementwise functions of two inputs of the same shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// `max(a, b)`.
    Max,
    /// 1 where `a ≥ b`, else 0 (the derivative of `max` with respect to `a`).
    GreaterEqual,
    /// Binary cross-entropy of logits `a` against targets `b`: `softplus(a) − a·b`.
    SigmoidCrossEntropy,
}

/// Reductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ReduceOp {
    /// Σ.
    Sum,
    /// Mean.
    Mean,
}

/// Convolution geometry (the kernel size is the weight's shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ConvAttrs {
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Zero padding (height, width).
    pub pad: [usize; 2],
    /// Extra rows and columns at the end of a transposed convolution's output, so that it can
    /// restore any input size of the convolution it reverses (PyTorch's `output_padding`).
    pub output_pad: [usize; 2],
}

/// Pooling method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum PoolMethod {
    /// Maximum over the window.
    Max,
    /// Average over the window (padding counted, as Caffe does).
    Ave,
}

/// Pooling geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PoolAttrs {
    /// MAX or AVE.
    pub method: PoolMethod,
    /// Window (height, width).
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// Padding.
    pub pad: [usize; 2],
}

/// The range of a random affine warp (rotation, scale and shift about the image centre, bilinear
/// interpolation, zeros outside). Each example's warp is set by four draws `d ∈ [-1, 1]`: angle
/// `d0·rotation` degrees, scale `1 + d1·scale`, shift `(d2, d3)·translation` pixels (x, y).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct WarpAttrs {
    /// Largest rotation, degrees.
    pub rotation: F32,
    /// Largest relative change of size.
    pub scale: F32,
    /// Largest shift, pixels.
    pub translation: F32,
}

impl WarpAttrs {
    /// The number of draws per example.
    pub const DRAWS: usize = 4;

    /// The inverse map of one example's warp as `[a, b, c, d, e, f]`: the output pixel at
    /// column x, row y reads the input at column `a·x + b·y + c`, row `d·x + e·y + f`.
    pub fn inverse_map(&self, draws: &[f32], height: usize, width: usize) -> [f32; 6] {
        let angle = (draws[0] * self.rotation.get()).to_radians();
        let size = 1.0 + draws[1] * self.scale.get();
        let (shift_x, shift_y) = (draws[2] * self.translation.get(), draws[3] * self.translation.get());
        let (centre_x, centre_y) = ((width as f32 - 1.0) / 2.0, (height as f32 - 1.0) / 2.0);
        // Output = centre + size·R(angle)·(input − centre) + shift, inverted:
        // input = centre + R(−angle)·(output − centre − shift) / size.
        let (sin, cos) = angle.sin_cos();
        let (a, b, d, e) = (cos / size, sin / size, -sin / size, cos / size);
        let (ox, oy) = (centre_x + shift_x, centre_y + shift_y);
        [a, b, centre_x - a * ox - b * oy, d, e, centre_y - d * ox - e * oy]
    }
}
