//! The closed set of IR operations. Attributes are plain data with `Hash`/`Eq` (floats by their
//! bits), so later passes can compare nodes by key; source ops carry their output shape.

use serde::Serialize;

use graphc_runtime::fused::FusedExpr;
pub use graphc_runtime::ops::{
    BinaryOp, ConvAttrs, Distribution, PoolAttrs, PoolMethod, ReduceOp, UnaryOp, WarpAttrs, F32,
};

/// Which field of a data batch an `Input` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum InputField {
    /// Images, as raw pixel values 0..=255.
    Image,
    /// Integer class labels, as floats.
    Label,
    /// The 1-based number of the training step being run (a scalar), for optimizers' bias
    /// corrections.
    Step,
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
    /// 2-D transposed convolution of N×C×H×W by C×O×kh×kw (also a convolution's input gradient).
    ConvTranspose2d(ConvAttrs),
    /// A convolution's weight gradient from its input and output gradient; `kernel` is the
    /// weight's kh×kw.
    Conv2dGradWeight { attrs: ConvAttrs, kernel: [usize; 2] },
    /// 2-D pooling.
    Pool2d(PoolAttrs),
    /// Pooling's input gradient from its input and output gradient.
    Pool2dGrad(PoolAttrs),
    /// Nearest-neighbour upsampling.
    Upsample2d { scale: usize },
    /// Affine warp of N×C×H×W images by per-example draws (N×4, in [-1, 1]).
    Warp2d(WarpAttrs),
    /// The warp's input gradient from the output gradient and the draws.
    Warp2dGrad(WarpAttrs),
    /// Elementwise function.
    Unary(UnaryOp),
    /// Elementwise function of two same-shaped inputs.
    Binary(BinaryOp),
    /// Several elementwise functions evaluated by one kernel (made by the fusion pass, after
    /// differentiation); inputs are shaped as the output, or scalars broadcast to it.
    Fused(FusedExpr),
    /// A matrix product or (transposed) convolution `base` whose result gets a bias per column
    /// or channel (axis 1) and then an optional activation, in one kernel (made by the epilogue
    /// fusion pass): inputs are `base`'s, then the bias.
    Epilogue { base: Box<Op>, activation: Option<UnaryOp> },
    /// A reduction of a fused elementwise expression (made by the reduction-fusion pass): the
    /// expression's inputs are shaped as the reduction's input, or scalars.
    FusedReduce { expr: FusedExpr, op: ReduceOp, axes: Vec<usize> },
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
            Op::Conv2dGradWeight { .. } => "conv2d_grad_weight",
            Op::Pool2d(_) => "pool2d",
            Op::Pool2dGrad(_) => "pool2d_grad",
            Op::Upsample2d { .. } => "upsample2d",
            Op::Warp2d(_) => "warp2d",
            Op::Warp2dGrad(_) => "warp2d_grad",
            Op::Unary(u) => match u {
                UnaryOp::Affine { .. } => "affine",
                UnaryOp::Pow(_) => "pow",
                UnaryOp::Exp => "exp",
                UnaryOp::Log => "log",
                UnaryOp::Abs => "abs",
                UnaryOp::Sign => "sign",
                UnaryOp::LeakyReluSlope(_) => "leaky_relu_slope",
                UnaryOp::LeakyRelu(s) if s.get() == 0.0 => "relu",
                UnaryOp::LeakyRelu(_) => "leaky_relu",
                UnaryOp::Tanh => "tanh",
                UnaryOp::Sigmoid => "sigmoid",
            },
            Op::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Div => "div",
                BinaryOp::GreaterEqual => "greater_equal",
                BinaryOp::Max => "max",
                BinaryOp::SigmoidCrossEntropy => "sigmoid_cross_entropy",
            },
            Op::Fused(_) => "fused",
            Op::Epilogue { base, .. } => match **base {
                Op::MatMul { .. } => "matmul_bias",
                Op::Conv2d(_) => "conv2d_bias",
                _ => "conv_transpose2d_bias",
            },
            Op::FusedReduce { op: ReduceOp::Sum, .. } => "fused_reduce_sum",
            Op::FusedReduce { op: ReduceOp::Mean, .. } => "fused_reduce_mean",
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
            Op::Conv2d(c) | Op::ConvTranspose2d(c) | Op::Conv2dGradWeight { attrs: c, .. } => {
                let extra =
                    if c.output_pad == [0, 0] { String::new() } else { format!(", output_pad={}", hw(c.output_pad)) };
                format!("stride={}, pad={}{extra}", hw(c.stride), hw(c.pad))
            }
            Op::Pool2d(p) | Op::Pool2dGrad(p) => format!(
                "{}, kernel={}, stride={}, pad={}",
                format!("{:?}", p.method).to_lowercase(),
                hw(p.kernel),
                hw(p.stride),
                hw(p.pad)
            ),
            Op::Upsample2d { scale } => format!("scale={scale}"),
            Op::Warp2d(w) | Op::Warp2dGrad(w) => {
                format!("rotation={}, scale={}, translation={}", w.rotation, w.scale, w.translation)
            }
            Op::Unary(UnaryOp::Affine { scale, shift }) => format!("scale={scale}, shift={shift}"),
            Op::Unary(UnaryOp::Pow(p)) => format!("p={p}"),
            Op::Unary(UnaryOp::LeakyRelu(s)) if s.get() != 0.0 => format!("slope={s}"),
            Op::Unary(UnaryOp::LeakyReluSlope(s)) => format!("slope={s}"),
            Op::Fused(expr) => expr.to_string(),
            Op::Epilogue { base, activation } => {
                let act = activation.map_or(String::new(), |a| format!(", then {}", Op::Unary(a).name()));
                format!("{}{act}", base.attrs())
            }
            Op::FusedReduce { expr, axes, .. } => format!("axes={axes:?} of {expr}"),
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
