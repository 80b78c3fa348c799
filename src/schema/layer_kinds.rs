//! The layer-type registry: each type's name, its `<type>_param` block and its arity, in one
//! table, as Caffe's layer factory keys layers by their type string.

use super::filler::{filler_or, Filler};
use super::reader::Reader;
use crate::error::{Diagnostic, Result, Span, Spanned};
pub use graphc_runtime::ops::PoolMethod;

/// Convolution and deconvolution parameters (`convolution_param`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvParams {
    /// Output channels.
    pub num_output: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Zero padding (height, width).
    pub pad: [usize; 2],
    /// Whether the layer has a bias.
    pub bias_term: bool,
    /// Weight filler.
    pub weight_filler: Filler,
    /// Bias filler.
    pub bias_filler: Filler,
}

/// Pooling parameters (`pooling_param`).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolParams {
    /// MAX or AVE.
    pub method: PoolMethod,
    /// Window (height, width).
    pub kernel: [usize; 2],
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Padding (height, width).
    pub pad: [usize; 2],
}

/// Elementwise operation of an Eltwise layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EltwiseOp {
    /// Product of the bottoms.
    Prod,
    /// Weighted sum (`coeff`).
    Sum,
    /// Maximum.
    Max,
}

/// Reduction of a Reduction layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReductionOp {
    /// Σ x.
    Sum,
    /// Σ |x|.
    Asum,
    /// Σ x².
    Sumsq,
    /// mean x.
    Mean,
}

/// The affine-then-function parameters shared by Power, Exp and Log: `f(shift + scale·x)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AffineFn {
    /// Power's exponent, or Exp's and Log's base (−1 means e).
    pub param: f32,
    /// Multiplies the input.
    pub scale: f32,
    /// Added after scaling.
    pub shift: f32,
}

/// A layer type with its type-specific parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    /// Reads images (and labels) from the data set.
    Data { source: String, batch_size: usize, scale: f32, mean: f32 },
    /// Constant or random blobs: one shape and filler per top.
    DummyData { shapes: Vec<Spanned<Vec<i64>>>, fillers: Vec<Filler> },
    /// Fully connected layer.
    InnerProduct { num_output: usize, bias_term: bool, axis: i64, weight_filler: Filler, bias_filler: Filler },
    /// 2-D convolution.
    Convolution(ConvParams),
    /// 2-D transposed convolution.
    Deconvolution(ConvParams),
    /// 2-D pooling.
    Pooling(PoolParams),
    /// Nearest-neighbour upsampling by an integer factor.
    Upsample { scale: usize },
    /// A random rotation, rescaling and shift of each image, drawn afresh every step, in the
    /// TRAIN phase; the identity at TEST (extension).
    RandomAffine { rotation: f32, scale: f32, translation: f32 },
    /// max(x, 0) + negative_slope·min(x, 0).
    ReLU { negative_slope: f32 },
    /// tanh.
    TanH,
    /// Logistic sigmoid.
    Sigmoid,
    /// Normalization by batch (training) or running (testing) statistics.
    BatchNorm { use_global_stats: Option<bool>, moving_average_fraction: f32, eps: f32 },
    /// Learned per-channel scale, optionally with a bias.
    Scale { axis: i64, num_axes: i64, bias_term: bool, filler: Filler, bias_filler: Filler },
    /// Learned per-channel bias.
    Bias { axis: i64, num_axes: i64, filler: Filler },
    /// Elementwise product, weighted sum or maximum.
    Eltwise { op: EltwiseOp, coeff: Vec<f32>, coeff_span: Span },
    /// (shift + scale·x)^power.
    Power(AffineFn),
    /// base^(shift + scale·x).
    Exp(AffineFn),
    /// log_base(shift + scale·x).
    Log(AffineFn),
    /// Sum-like reduction of all axes from `axis`, times `coeff`.
    Reduction { op: ReductionOp, axis: i64, coeff: f32 },
    /// Reshape; 0 copies a dimension, −1 infers one.
    Reshape { dims: Vec<i64> },
    /// Collapses axes `axis..=end_axis`.
    Flatten { axis: i64, end_axis: i64 },
    /// Concatenation along `axis`.
    Concat { axis: i64 },
    /// Splits along `axis` at the slice points.
    Slice { axis: i64, points: Vec<usize> },
    /// Copies its bottom to every top.
    Split,
    /// Softmax along `axis`.
    Softmax { axis: i64 },
    /// log(softmax) along `axis` (extension).
    LogSoftmax { axis: i64 },
    /// Mean over the batch of Σ binary cross-entropy with logits.
    SigmoidCrossEntropyLoss,
    /// Mean over the batch of the softmax cross-entropy against integer labels.
    SoftmaxWithLoss { axis: i64 },
    /// Σ(a − b)² / 2N.
    EuclideanLoss,
    /// Top-k accuracy against integer labels.
    Accuracy { top_k: usize },
    /// Σ log N(x; mean, σ) per example (extension).
    GaussianLogLikelihood { std: f32 },
    /// Identity forward, no gradient (extension).
    StopGradient,
    /// Applies a sub-network (extension).
    Subnet { name: Spanned<String> },
}

type ParseFn = fn(&mut Reader, Span) -> Result<LayerKind>;

/// Every layer type: its name, its `_param` field, and how to read it.
const REGISTRY: &[(&str, &[&str], ParseFn)] = &[
    ("Data", &["data_param", "transform_param"], data),
    ("DummyData", &["dummy_data_param"], dummy_data),
    ("InnerProduct", &["inner_product_param"], inner_product),
    ("Convolution", &["convolution_param"], |r, _| Ok(LayerKind::Convolution(conv(r)?))),
    ("Deconvolution", &["convolution_param"], |r, _| Ok(LayerKind::Deconvolution(conv(r)?))),
    ("Pooling", &["pooling_param"], pooling),
    ("Upsample", &["upsample_param"], upsample),
    ("RandomAffine", &["random_affine_param"], random_affine),
    ("ReLU", &["relu_param"], relu),
    ("TanH", &[], |_, _| Ok(LayerKind::TanH)),
    ("Sigmoid", &[], |_, _| Ok(LayerKind::Sigmoid)),
    ("BatchNorm", &["batch_norm_param"], batch_norm),
    ("Scale", &["scale_param"], scale),
    ("Bias", &["bias_param"], bias),
    ("Eltwise", &["eltwise_param"], eltwise),
    ("Power", &["power_param"], |r, _| Ok(LayerKind::Power(affine_fn(r, "power_param", "power", 1.0)?))),
    ("Exp", &["exp_param"], |r, _| Ok(LayerKind::Exp(affine_fn(r, "exp_param", "base", -1.0)?))),
    ("Log", &["log_param"], |r, _| Ok(LayerKind::Log(affine_fn(r, "log_param", "base", -1.0)?))),
    ("Reduction", &["reduction_param"], reduction),
    ("Reshape", &["reshape_param"], reshape),
    ("Flatten", &["flatten_param"], flatten),
    ("Concat", &["concat_param"], |r, _| Ok(LayerKind::Concat { axis: axis_param(r, "concat_param", "axis", 1)? })),
    ("Slice", &["slice_param"], slice),
    ("Split", &[], |_, _| Ok(LayerKind::Split)),
    ("Softmax", &["softmax_param"], |r, _| Ok(LayerKind::Softmax { axis: axis_param(r, "softmax_param", "axis", 1)? })),
    ("LogSoftmax", &["softmax_param"], |r, _| {
        Ok(LayerKind::LogSoftmax { axis: axis_param(r, "softmax_param", "axis", 1)? })
    }),
    ("SigmoidCrossEntropyLoss", &[], |_, _| Ok(LayerKind::SigmoidCrossEntropyLoss)),
    ("SoftmaxWithLoss", &["softmax_param"], |r, _| {
        Ok(LayerKind::SoftmaxWithLoss { axis: axis_param(r, "softmax_param", "axis", 1)? })
    }),
    ("EuclideanLoss", &[], |_, _| Ok(LayerKind::EuclideanLoss)),
    ("Accuracy", &["accuracy_param"], accuracy),
    ("GaussianLogLikelihood", &["gaussian_param"], gaussian_ll),
    ("StopGradient", &[], |_, _| Ok(LayerKind::StopGradient)),
    ("Subnet", &["subnet_param"], subnet),
];

/// The names of every supported layer type.
pub fn layer_type_names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(name, _, _)| *name)
}

/// Reads the type-specific part of a layer whose `type` is `type_name`.
pub fn parse_kind(type_name: &Spanned<String>, r: &mut Reader) -> Result<LayerKind> {
    match REGISTRY.iter().find(|(name, _, _)| *name == type_name.value) {
        Some((name, blocks, parse)) => {
            check_param_blocks(r, name, blocks)?;
            parse(r, type_name.span)
        }
        None => Err(Diagnostic::new(
            format!("unknown layer type \"{}\"", type_name.value),
            type_name.span,
            "not a layer type graphc knows",
        )
        .suggest(&type_name.value, layer_type_names())
        .note("supported types are listed in docs/language.md")),
    }
}

/// Rejects a `*_param` block that belongs to another layer type, naming the types it belongs to.
fn check_param_blocks(r: &Reader, type_name: &str, blocks: &[&str]) -> Result<()> {
    for (key, span) in r.field_keys() {
        let is_block = key.ends_with("_param") && !matches!(key, "param");
        if !is_block || blocks.contains(&key) {
            continue;
        }
        let owners: Vec<&str> = REGISTRY.iter().filter(|(_, b, _)| b.contains(&key)).map(|(n, _, _)| *n).collect();
        if owners.is_empty() {
            continue; // not a known block: reported as an unknown field
        }
        let takes = match blocks {
            [] => format!("this {type_name} layer takes no parameter block"),
            _ => format!("this {type_name} layer takes `{}`", blocks.join("` or `")),
        };
        return Err(Diagnostic::new(
            format!("`{key}` belongs to {} layers, not to {type_name}", owners.join(" and ")),
            span,
            takes,
        ));
    }
    Ok(())
}

impl LayerKind {
    /// The type name as written in files.
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerKind::Data { .. } => "Data",
            LayerKind::DummyData { .. } => "DummyData",
            LayerKind::InnerProduct { .. } => "InnerProduct",
            LayerKind::Convolution(_) => "Convolution",
            LayerKind::Deconvolution(_) => "Deconvolution",
            LayerKind::Pooling(_) => "Pooling",
            LayerKind::Upsample { .. } => "Upsample",
            LayerKind::RandomAffine { .. } => "RandomAffine",
            LayerKind::ReLU { .. } => "ReLU",
            LayerKind::TanH => "TanH",
            LayerKind::Sigmoid => "Sigmoid",
            LayerKind::BatchNorm { .. } => "BatchNorm",
            LayerKind::Scale { .. } => "Scale",
            LayerKind::Bias { .. } => "Bias",
            LayerKind::Eltwise { .. } => "Eltwise",
            LayerKind::Power(_) => "Power",
            LayerKind::Exp(_) => "Exp",
            LayerKind::Log(_) => "Log",
            LayerKind::Reduction { .. } => "Reduction",
            LayerKind::Reshape { .. } => "Reshape",
            LayerKind::Flatten { .. } => "Flatten",
            LayerKind::Concat { .. } => "Concat",
            LayerKind::Slice { .. } => "Slice",
            LayerKind::Split => "Split",
            LayerKind::Softmax { .. } => "Softmax",
            LayerKind::LogSoftmax { .. } => "LogSoftmax",
            LayerKind::SigmoidCrossEntropyLoss => "SigmoidCrossEntropyLoss",
            LayerKind::SoftmaxWithLoss { .. } => "SoftmaxWithLoss",
            LayerKind::EuclideanLoss => "EuclideanLoss",
            LayerKind::Accuracy { .. } => "Accuracy",
            LayerKind::GaussianLogLikelihood { .. } => "GaussianLogLikelihood",
            LayerKind::StopGradient => "StopGradient",
            LayerKind::Subnet { .. } => "Subnet",
        }
    }

    /// Whether this is a loss layer (loss weight 1 by default, scalar output).
    pub fn is_loss(&self) -> bool {
        matches!(
            self,
            LayerKind::SigmoidCrossEntropyLoss | LayerKind::SoftmaxWithLoss { .. } | LayerKind::EuclideanLoss
        )
    }

    /// Allowed (min, max) numbers of bottoms and tops.
    pub fn arity(&self) -> ((usize, usize), (usize, usize)) {
        const ANY: usize = usize::MAX;
        match self {
            LayerKind::Data { .. } => ((0, 0), (1, 2)),
            LayerKind::DummyData { shapes, .. } => ((0, 0), (shapes.len(), shapes.len())),
            LayerKind::Eltwise { .. } | LayerKind::Concat { .. } => ((2, ANY), (1, 1)),
            LayerKind::Slice { points, .. } if points.is_empty() => ((1, 1), (2, ANY)),
            LayerKind::Slice { points, .. } => ((1, 1), (points.len() + 1, points.len() + 1)),
            LayerKind::Split => ((1, 1), (1, ANY)),
            LayerKind::SigmoidCrossEntropyLoss
            | LayerKind::SoftmaxWithLoss { .. }
            | LayerKind::EuclideanLoss
            | LayerKind::Accuracy { .. } => ((2, 2), (1, 1)),
            LayerKind::GaussianLogLikelihood { .. } => ((1, 3), (1, 1)),
            LayerKind::Subnet { .. } => ((0, ANY), (1, ANY)),
            _ => ((1, 1), (1, 1)),
        }
    }

    /// How many learnable blobs the layer has (the number of `param` blocks it accepts).
    pub fn learnable_blob_count(&self) -> usize {
        match self {
            LayerKind::InnerProduct { bias_term, .. } | LayerKind::Scale { bias_term, .. } => 1 + *bias_term as usize,
            LayerKind::Convolution(c) | LayerKind::Deconvolution(c) => 1 + c.bias_term as usize,
            LayerKind::Bias { .. } => 1,
            LayerKind::BatchNorm { .. } => 3,
            _ => 0,
        }
    }
}

fn block<'a>(r: &mut Reader<'a>, key: &'static str) -> Result<Option<Reader<'a>>> {
    let what = format!("`{key}` of {}", r.what());
    Ok(r.opt_msg(key)?.map(|m| Reader::new(what, m)))
}

fn with_block<T>(r: &mut Reader, key: &'static str, read: impl FnOnce(&mut Reader) -> Result<T>) -> Result<T> {
    let span = r.span();
    let empty = crate::syntax::Message { fields: Vec::new(), span };
    let absent = Reader::absent(r, key, &empty);
    let mut inner = block(r, key)?.unwrap_or(absent);
    let value = read(&mut inner)?;
    inner.finish()?;
    Ok(value)
}

fn axis_param(r: &mut Reader, key: &'static str, field: &'static str, default: i64) -> Result<i64> {
    with_block(r, key, |p| Ok(p.opt_i64(field)?.unwrap_or(default)))
}

fn data(r: &mut Reader, _: Span) -> Result<LayerKind> {
    let (source, batch_size) = with_block(r, "data_param", |p| {
        let source = p.opt_str("source")?.map_or_else(|| "mnist".to_string(), |s| s.value);
        let batch = p.req_positive("batch_size")?.value;
        p.opt_enum("backend", &["LEVELDB", "LMDB"])?;
        Ok((source, batch))
    })?;
    let (scale, mean) = with_block(r, "transform_param", |p| {
        let scale = p.f32_or("scale", 1.0)?;
        let means = p.f32s("mean_value")?;
        if means.len() > 1 {
            return Err(Diagnostic::new("only one `mean_value` is supported (images have one channel)", p.span(), ""));
        }
        Ok((scale, means.first().copied().unwrap_or(0.0)))
    })?;
    Ok(LayerKind::Data { source, batch_size, scale, mean })
}

fn dummy_data(r: &mut Reader, type_span: Span) -> Result<LayerKind> {
    with_block(r, "dummy_data_param", |p| {
        let what = format!("`shape` of {}", p.what());
        let mut shapes = Vec::new();
        for m in p.msgs("shape")? {
            let mut s = Reader::new(what.clone(), m);
            let dims = s.i64s("dim")?;
            s.finish()?;
            if dims.is_empty() || dims.iter().any(|d| *d <= 0) {
                return Err(Diagnostic::new("a DummyData shape needs positive `dim`s", m.span, "bad shape"));
            }
            shapes.push(Spanned::new(dims, m.span));
        }
        if shapes.is_empty() {
            return Err(p.missing("shape").note_at("in this DummyData layer", type_span));
        }
        let what = format!("`data_filler` of {}", p.what());
        let fillers = p
            .msgs("data_filler")?
            .into_iter()
            .map(|m| super::filler::parse_filler(m, &what))
            .collect::<Result<Vec<_>>>()?;
        if fillers.len() > 1 && fillers.len() != shapes.len() {
            return Err(Diagnostic::new(
                "DummyData needs one `data_filler` for all tops or one per top",
                p.span(),
                format!("{} fillers for {} shapes", fillers.len(), shapes.len()),
            ));
        }
        Ok(LayerKind::DummyData { shapes, fillers })
    })
}

fn inner_product(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "inner_product_param", |p| {
        Ok(LayerKind::InnerProduct {
            num_output: p.req_positive("num_output")?.value,
            bias_term: p.bool_or("bias_term", true)?,
            axis: p.opt_i64("axis")?.unwrap_or(1),
            weight_filler: filler_or(p, "weight_filler", Filler::Constant { value: 0.0 })?,
            bias_filler: filler_or(p, "bias_filler", Filler::Constant { value: 0.0 })?,
        })
    })
}

/// Reads Caffe's square-or-rectangular size fields: `kernel_size` or `kernel_h`/`kernel_w`.
fn pair(p: &mut Reader, key: &'static str, h: &'static str, w: &'static str, default: usize) -> Result<[usize; 2]> {
    let square = p.opt_usize(key)?.map(|s| s.value);
    let (hv, wv) = (p.opt_usize(h)?.map(|s| s.value), p.opt_usize(w)?.map(|s| s.value));
    let side = square.unwrap_or(default);
    Ok([hv.unwrap_or(side), wv.unwrap_or(side)])
}

fn conv(r: &mut Reader) -> Result<ConvParams> {
    with_block(r, "convolution_param", |p| {
        let num_output = p.req_positive("num_output")?.value;
        let has_kernel = p.msg_has("kernel_size") || p.msg_has("kernel_h");
        let kernel = pair(p, "kernel_size", "kernel_h", "kernel_w", 0)?;
        if !has_kernel {
            return Err(p.missing("kernel_size"));
        }
        if kernel.contains(&0) {
            return Err(Diagnostic::new("convolution kernel must be at least 1×1", p.span(), "kernel is 0"));
        }
        let stride = pair(p, "stride", "stride_h", "stride_w", 1)?;
        if stride.contains(&0) {
            return Err(Diagnostic::new("convolution stride must be positive", p.span(), "stride is 0"));
        }
        Ok(ConvParams {
            num_output,
            kernel,
            stride,
            pad: pair(p, "pad", "pad_h", "pad_w", 0)?,
            bias_term: p.bool_or("bias_term", true)?,
            weight_filler: filler_or(p, "weight_filler", Filler::Constant { value: 0.0 })?,
            bias_filler: filler_or(p, "bias_filler", Filler::Constant { value: 0.0 })?,
        })
    })
}

fn pooling(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "pooling_param", |p| {
        let method = match p.opt_enum("pool", &["MAX", "AVE"])? {
            Some(m) if m.value == "AVE" => PoolMethod::Ave,
            _ => PoolMethod::Max,
        };
        if !(p.msg_has("kernel_size") || p.msg_has("kernel_h")) {
            return Err(p.missing("kernel_size"));
        }
        let kernel = pair(p, "kernel_size", "kernel_h", "kernel_w", 0)?;
        let stride = pair(p, "stride", "stride_h", "stride_w", 1)?;
        if kernel.contains(&0) || stride.contains(&0) {
            return Err(Diagnostic::new("pooling kernel and stride must be positive", p.span(), "is 0"));
        }
        let pad = pair(p, "pad", "pad_h", "pad_w", 0)?;
        if pad[0] >= kernel[0] || pad[1] >= kernel[1] {
            return Err(Diagnostic::new(
                "pooling padding must be smaller than the kernel",
                p.span(),
                "pad ≥ kernel_size",
            ));
        }
        Ok(LayerKind::Pooling(PoolParams { method, kernel, stride, pad }))
    })
}

fn upsample(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "upsample_param", |p| Ok(LayerKind::Upsample { scale: p.positive_or("scale", 2)? }))
}

fn random_affine(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "random_affine_param", |p| {
        // Each range as (key, valid, what it means), checked where it is written.
        let mut range = |key: &'static str, valid: fn(f32) -> bool, meaning: &str| -> Result<f32> {
            match p.opt_f32(key)? {
                None => Ok(0.0),
                Some(v) if valid(v.value) => Ok(v.value),
                Some(v) => {
                    Err(Diagnostic::new(format!("{key} {} is out of range: {meaning}", v.value), v.span, "here"))
                }
            }
        };
        Ok(LayerKind::RandomAffine {
            rotation: range("rotation", |v| (0.0..=180.0).contains(&v), "the largest angle in degrees, 0 to 180")?,
            scale: range(
                "scale",
                |v| (0.0..1.0).contains(&v),
                "the largest relative change of size, at least 0 and below 1",
            )?,
            translation: range("translation", |v| (0.0..=1e6).contains(&v), "the largest shift in pixels, at least 0")?,
        })
    })
}

fn relu(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "relu_param", |p| Ok(LayerKind::ReLU { negative_slope: p.f32_or("negative_slope", 0.0)? }))
}

fn batch_norm(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "batch_norm_param", |p| {
        let use_global_stats =
            if p.msg_has("use_global_stats") { Some(p.bool_or("use_global_stats", false)?) } else { None };
        Ok(LayerKind::BatchNorm {
            use_global_stats,
            moving_average_fraction: p.f32_or("moving_average_fraction", 0.999)?,
            eps: p.f32_or("eps", 1e-5)?,
        })
    })
}

fn scale(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "scale_param", |p| {
        Ok(LayerKind::Scale {
            axis: p.opt_i64("axis")?.unwrap_or(1),
            num_axes: p.opt_i64("num_axes")?.unwrap_or(1),
            bias_term: p.bool_or("bias_term", false)?,
            filler: filler_or(p, "filler", Filler::Constant { value: 1.0 })?,
            bias_filler: filler_or(p, "bias_filler", Filler::Constant { value: 0.0 })?,
        })
    })
}

fn bias(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "bias_param", |p| {
        Ok(LayerKind::Bias {
            axis: p.opt_i64("axis")?.unwrap_or(1),
            num_axes: p.opt_i64("num_axes")?.unwrap_or(1),
            filler: filler_or(p, "filler", Filler::Constant { value: 0.0 })?,
        })
    })
}

fn eltwise(r: &mut Reader, _: Span) -> Result<LayerKind> {
    let span = r.span();
    with_block(r, "eltwise_param", |p| {
        let op = match p.opt_enum("operation", &["PROD", "SUM", "MAX"])? {
            Some(o) if o.value == "PROD" => EltwiseOp::Prod,
            Some(o) if o.value == "MAX" => EltwiseOp::Max,
            _ => EltwiseOp::Sum,
        };
        let coeff = p.f32s("coeff")?;
        let coeff_span = if coeff.is_empty() { span } else { p.span() };
        if !coeff.is_empty() && op != EltwiseOp::Sum {
            return Err(Diagnostic::new("Eltwise `coeff` applies only to operation SUM", p.span(), "has coeff"));
        }
        Ok(LayerKind::Eltwise { op, coeff, coeff_span })
    })
}

fn affine_fn(r: &mut Reader, key: &'static str, param: &'static str, default: f32) -> Result<AffineFn> {
    with_block(r, key, |p| {
        let value = p.f32_or(param, default)?;
        if param == "base" && value <= 0.0 && value != -1.0 {
            return Err(Diagnostic::new(format!("`base` of {key} must be positive or -1 (e)"), p.span(), "bad base"));
        }
        Ok(AffineFn { param: value, scale: p.f32_or("scale", 1.0)?, shift: p.f32_or("shift", 0.0)? })
    })
}

fn reduction(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "reduction_param", |p| {
        let op = match p.opt_enum("operation", &["SUM", "ASUM", "SUMSQ", "MEAN"])?.map(|o| o.value) {
            Some("ASUM") => ReductionOp::Asum,
            Some("SUMSQ") => ReductionOp::Sumsq,
            Some("MEAN") => ReductionOp::Mean,
            _ => ReductionOp::Sum,
        };
        Ok(LayerKind::Reduction { op, axis: p.opt_i64("axis")?.unwrap_or(0), coeff: p.f32_or("coeff", 1.0)? })
    })
}

fn reshape(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "reshape_param", |p| {
        let shape = p.opt_msg("shape")?.ok_or_else(|| p.missing("shape"))?;
        let mut s = Reader::new(format!("`shape` of {}", p.what()), shape);
        let dims = s.i64s("dim")?;
        s.finish()?;
        if dims.iter().filter(|d| **d == -1).count() > 1 || dims.iter().any(|d| *d < -1) {
            return Err(Diagnostic::new("reshape dims must be positive, 0 (copy) or one -1 (infer)", shape.span, ""));
        }
        Ok(LayerKind::Reshape { dims })
    })
}

fn flatten(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "flatten_param", |p| {
        Ok(LayerKind::Flatten { axis: p.opt_i64("axis")?.unwrap_or(1), end_axis: p.opt_i64("end_axis")?.unwrap_or(-1) })
    })
}

fn slice(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "slice_param", |p| {
        let axis = p.opt_i64("axis")?.unwrap_or(1);
        let points: Vec<usize> = p.usizes("slice_point")?.into_iter().map(|s| s.value).collect();
        if points.windows(2).any(|w| w[0] >= w[1]) || points.first() == Some(&0) {
            return Err(Diagnostic::new("slice points must be positive and increasing", p.span(), ""));
        }
        Ok(LayerKind::Slice { axis, points })
    })
}

fn accuracy(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "accuracy_param", |p| Ok(LayerKind::Accuracy { top_k: p.positive_or("top_k", 1)? }))
}

fn gaussian_ll(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "gaussian_param", |p| {
        let std = p.opt_f32("std")?;
        if let Some(s) = std.as_ref().filter(|s| s.value.is_nan() || s.value <= 0.0) {
            return Err(Diagnostic::new("`std` must be positive", s.span, "not positive"));
        }
        Ok(LayerKind::GaussianLogLikelihood { std: std.map_or(1.0, |s| s.value) })
    })
}

fn subnet(r: &mut Reader, _: Span) -> Result<LayerKind> {
    with_block(r, "subnet_param", |p| Ok(LayerKind::Subnet { name: p.req_str("name")? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registered type name parses to a kind that reports the same name.
    #[test]
    fn registry_names_round_trip() {
        for name in layer_type_names() {
            let block = match name {
                "Data" => "data_param { batch_size: 1 }",
                "DummyData" => "dummy_data_param { shape { dim: 1 } }",
                "InnerProduct" => "inner_product_param { num_output: 1 }",
                "Convolution" | "Deconvolution" => "convolution_param { num_output: 1 kernel_size: 1 }",
                "Pooling" => "pooling_param { kernel_size: 2 }",
                "Reshape" => "reshape_param { shape { dim: 1 } }",
                "Subnet" => "subnet_param { name: \"s\" }",
                _ => "",
            };
            let text = format!("name: \"l\" type: \"{name}\" {block}");
            let msg = crate::syntax::parse(&text).unwrap();
            let mut r = Reader::new("layer", &msg);
            let type_name = r.req_str("type").unwrap();
            let kind = parse_kind(&type_name, &mut r).unwrap();
            assert_eq!(kind.type_name(), name);
        }
    }
}
