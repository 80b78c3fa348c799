//! The closed set of IR operations. Attributes are plain data with `Hash`/`Eq` (floats by their
//! bits), so later passes can compare nodes by key; source ops carry their output shape.

use serde::Serialize;
use std::fmt;

use crate::schema::PoolMethod;

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

/// Which field of a data batch an `Input` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum InputField {
    /// Images, as raw pixel values 0..=255.
    Image,
    /// Integer class labels, as floats.
    Label,
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
    /// `max(x, 0) + slope·min(x, 0)`; slope 0 is ReLU.
    LeakyRelu(F32),
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
    /// `max(a, b)`.
    Max,
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

/// An IR operation. Inputs are the node's incoming edges, ordered by slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Op {
    /// A field of the data batch.
    Input { field: InputField, shape: Vec<usize> },
    /// A parameter (learned, or running statistics), by its unique name.
    Param { name: String, shape: Vec<usize> },
    /// A tensor filled with one value.
    Const { value: F32, shape: Vec<usize> },
    /// A noise source, resampled every step; `stream` makes each source distinct.
    Sample { dist: Distribution, stream: u32, shape: Vec<usize> },
    /// Matrix product of two 2-D inputs, either optionally transposed.
    MatMul { trans_a: bool, trans_b: bool },
    /// 2-D convolution of N×C×H×W by O×C×kh×kw.
    Conv2d(ConvAttrs),
    /// 2-D transposed convolution of N×C×H×W by C×O×kh×kw.
    ConvTranspose2d(ConvAttrs),
    /// 2-D pooling.
    Pool2d(PoolAttrs),
    /// Nearest-neighbour upsampling.
    Upsample2d { scale: usize },
    /// Normalization over N, H, W per channel; inputs x, running mean, running variance.
    /// `training` selects batch statistics (and a running-statistics update).
    BatchNorm { eps: F32, momentum: F32, training: bool },
    /// Elementwise function.
    Unary(UnaryOp),
    /// Elementwise function of two same-shaped inputs.
    Binary(BinaryOp),
    /// Reduction over `axes`, which are removed from the shape.
    Reduce { op: ReduceOp, axes: Vec<usize> },
    /// Broadcast to `to`; input axis i becomes output axis `dims[i]`.
    Broadcast { to: Vec<usize>, dims: Vec<usize> },
    /// Same elements, new shape.
    Reshape { to: Vec<usize> },
    /// Concatenation along `axis`.
    Concat { axis: usize },
    /// Elements `start..end` along `axis`.
    Slice { axis: usize, start: usize, end: usize },
    /// Softmax along `axis`.
    Softmax { axis: usize },
    /// log(softmax) along `axis`.
    LogSoftmax { axis: usize },
    /// One-hot encoding of integer labels into `classes` columns.
    OneHot { classes: usize },
    /// Fraction of rows whose label is among the top-k scores.
    Accuracy { top_k: usize },
    /// Identity forward, zero gradient.
    StopGradient,
}

impl Op {
    /// The op's name in listings (snake_case).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Param { .. } => "param",
            Op::Const { .. } => "const",
            Op::Sample { .. } => "sample",
            Op::MatMul { .. } => "matmul",
            Op::Conv2d(_) => "conv2d",
            Op::ConvTranspose2d(_) => "conv_transpose2d",
            Op::Pool2d(_) => "pool2d",
            Op::Upsample2d { .. } => "upsample2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Unary(u) => match u {
                UnaryOp::Affine { .. } => "affine",
                UnaryOp::Pow(_) => "pow",
                UnaryOp::Exp => "exp",
                UnaryOp::Log => "log",
                UnaryOp::Abs => "abs",
                UnaryOp::LeakyRelu(s) if s.get() == 0.0 => "relu",
                UnaryOp::LeakyRelu(_) => "leaky_relu",
                UnaryOp::Tanh => "tanh",
                UnaryOp::Sigmoid => "sigmoid",
            },
            Op::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Max => "max",
                BinaryOp::SigmoidCrossEntropy => "sigmoid_cross_entropy",
            },
            Op::Reduce { op: ReduceOp::Sum, .. } => "reduce_sum",
            Op::Reduce { op: ReduceOp::Mean, .. } => "reduce_mean",
            Op::Broadcast { .. } => "broadcast",
            Op::Reshape { .. } => "reshape",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::OneHot { .. } => "one_hot",
            Op::Accuracy { .. } => "accuracy",
            Op::StopGradient => "stop_gradient",
        }
    }

    /// The attributes shown in listings, e.g. `stride=2x2, pad=1x1`; empty when none.
    pub fn attrs(&self) -> String {
        let hw = |v: [usize; 2]| format!("{}x{}", v[0], v[1]);
        match self {
            Op::Input { field, .. } => format!("{field:?}").to_lowercase(),
            Op::Param { name, .. } => format!("\"{name}\""),
            Op::Const { value, .. } => format!("value={value}"),
            Op::Sample { dist, stream, .. } => {
                let d = match dist {
                    Distribution::Uniform { min, max } => format!("uniform({min}, {max})"),
                    Distribution::Gaussian { mean, std } => format!("gaussian({mean}, {std})"),
                    Distribution::Categorical => "categorical".to_string(),
                };
                format!("{d}, stream={stream}")
            }
            Op::MatMul { trans_a, trans_b } => match (trans_a, trans_b) {
                (false, false) => String::new(),
                (true, false) => "a^T".into(),
                (false, true) => "b^T".into(),
                (true, true) => "a^T, b^T".into(),
            },
            Op::Conv2d(c) | Op::ConvTranspose2d(c) => format!("stride={}, pad={}", hw(c.stride), hw(c.pad)),
            Op::Pool2d(p) => format!(
                "{}, kernel={}, stride={}, pad={}",
                format!("{:?}", p.method).to_lowercase(),
                hw(p.kernel),
                hw(p.stride),
                hw(p.pad)
            ),
            Op::Upsample2d { scale } => format!("scale={scale}"),
            Op::BatchNorm { eps, momentum, training } => {
                format!("eps={eps}, momentum={momentum}, {}", if *training { "batch stats" } else { "running stats" })
            }
            Op::Unary(UnaryOp::Affine { scale, shift }) => format!("scale={scale}, shift={shift}"),
            Op::Unary(UnaryOp::Pow(p)) => format!("p={p}"),
            Op::Unary(UnaryOp::LeakyRelu(s)) if s.get() != 0.0 => format!("slope={s}"),
            Op::Reduce { axes, .. } => format!("axes={axes:?}"),
            Op::Broadcast { dims, .. } => format!("dims={dims:?}"),
            Op::Concat { axis } | Op::Softmax { axis } | Op::LogSoftmax { axis } => format!("axis={axis}"),
            Op::Slice { axis, start, end } => format!("axis={axis}, {start}..{end}"),
            Op::OneHot { classes } => format!("classes={classes}"),
            Op::Accuracy { top_k } => format!("top_k={top_k}"),
            _ => String::new(),
        }
    }
}
