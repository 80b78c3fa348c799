//! Lowering of one layer to primitive IR ops, one arm per layer type. Every layer-level shape
//! check happens here, so errors name the layer, its bottoms and the layers that wrote them.

use super::params::{intern, ParamRequest};
use crate::error::{Diagnostic, Result, Span};
use crate::ir::{
    AddError, BinaryOp, ConvAttrs, Distribution, Graph, InputField, NodeId, Op, Origin, ParamKind, PoolAttrs, ReduceOp,
    Shape, StateUpdate, UnaryOp, WarpAttrs, F32,
};
use crate::schema::{AffineFn, EltwiseOp, Filler, LayerDef, LayerKind, NetPhase, ReductionOp};

/// A bottom as seen by the consuming layer.
#[derive(Clone, Debug)]
pub struct BlobSource {
    /// The value.
    pub node: NodeId,
    /// The blob name the consumer wrote.
    pub name: String,
    /// The layer path and top span that wrote it (`None` for sub-network inputs).
    pub producer: Option<(String, Span)>,
}

/// Everything a layer's lowering needs.
pub struct LayerCx<'a> {
    /// The graph being built.
    pub graph: &'a mut Graph,
    /// The layer.
    pub layer: &'a LayerDef,
    /// Its path (`d_real/conv1`).
    pub path: &'a str,
    /// The sub-network declaring it.
    pub subnet: Option<&'a str>,
    /// Its bottoms.
    pub bottoms: &'a [BlobSource],
    /// The Caffe phase.
    pub phase: NetPhase,
    /// Batch-size override.
    pub batch_size: Option<usize>,
    /// Counter giving each noise source its own stream.
    pub streams: &'a mut u32,
    /// Where each parameter's owner is written.
    pub owner_spans: &'a mut Vec<(String, Span)>,
}

const LN_2PI: f32 = 1.837_877_1;

impl LayerCx<'_> {
    fn add(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        let origin = Origin { layer: self.path.to_string(), span: self.layer.name.span };
        self.graph.add(op, inputs, origin).map_err(|e| match e {
            AddError::Shape(detail) => self.shape_error(&detail),
            AddError::TooLarge(shape) => self.error(
                format!(
                    "layer \"{}\" would make a blob of shape {shape}, more than 2^40 elements",
                    self.layer.name.value
                ),
                "too large",
            ),
        })
    }

    fn shape(&self, id: NodeId) -> Vec<usize> {
        self.graph.shape(id).0.clone()
    }

    fn bottom_shape(&self, i: usize) -> Vec<usize> {
        self.shape(self.bottoms[i].node)
    }

    /// A shape error naming the layer, each bottom's shape and the layer that wrote it.
    fn shape_error(&self, detail: &str) -> Diagnostic {
        let mut d = Diagnostic::new(
            format!(
                "shape mismatch in layer \"{}\" ({}): {detail}",
                self.layer.name.value,
                self.layer.kind.type_name()
            ),
            self.layer.name.span,
            "in this layer",
        );
        for b in self.bottoms {
            let shape = self.graph.shape(b.node);
            d = match &b.producer {
                Some((layer, span)) => {
                    d.note_at(format!("bottom \"{}\" is {shape}, written by layer \"{layer}\"", b.name), *span)
                }
                None => d.note(format!("bottom \"{}\" is {shape}, a sub-network input", b.name)),
            };
        }
        d
    }

    fn error(&self, message: String, label: &str) -> Diagnostic {
        Diagnostic::new(message, self.layer.name.span, label.to_string())
    }

    fn param(
        &mut self,
        index: usize,
        suffix: &str,
        shape: Vec<usize>,
        filler: Filler,
        kind: ParamKind,
    ) -> Result<NodeId> {
        let owner = self.subnet.map_or(String::new(), |s| format!("{s}/"));
        let req = ParamRequest {
            default_name: format!("{owner}{}.{suffix}", self.layer.name.value),
            shape,
            filler,
            kind,
            spec: self.layer.params.get(index),
            layer: self.path,
            subnet: self.subnet,
            span: self.layer.name.span,
        };
        intern(self.graph, req, self.owner_spans)
    }

    fn unary(&mut self, op: UnaryOp, x: NodeId) -> Result<NodeId> {
        self.add(Op::Unary(op), &[x])
    }

    fn affine(&mut self, x: NodeId, scale: f32, shift: f32) -> Result<NodeId> {
        self.unary(UnaryOp::Affine { scale: F32::new(scale), shift: F32::new(shift) }, x)
    }

    fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.add(Op::Binary(op), &[a, b])
    }

    /// Adds `bias` (shape = `shape[axis..axis+k]`) to `x`, broadcast over the other axes.
    fn add_broadcast(&mut self, op: BinaryOp, x: NodeId, p: NodeId, axis: usize) -> Result<NodeId> {
        let to = self.shape(x);
        let dims: Vec<usize> = (axis..axis + self.graph.shape(p).rank()).collect();
        let b = self.add(Op::Broadcast { to, dims }, &[p])?;
        self.binary(op, x, b)
    }

    fn reduce_all(&mut self, op: ReduceOp, x: NodeId) -> Result<NodeId> {
        let axes = (0..self.graph.shape(x).rank()).collect();
        self.add(Op::Reduce { op, axes }, &[x])
    }

    fn reshape(&mut self, x: NodeId, to: Vec<usize>) -> Result<NodeId> {
        self.add(Op::Reshape { to }, &[x])
    }

    /// Resolves a possibly negative Caffe axis against a rank.
    fn axis(&self, axis: i64, rank: usize, allow_end: bool) -> Result<usize> {
        let limit = rank as i64 + allow_end as i64;
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if a < 0 || a >= limit {
            return Err(self.error(
                format!("axis {axis} is out of range for a {rank}-D bottom in layer \"{}\"", self.layer.name.value),
                "bad axis",
            ));
        }
        Ok(a as usize)
    }

    fn batched(&self, dim0: usize) -> usize {
        self.batch_size.unwrap_or(dim0)
    }

    /// Makes `t` the shape of `x` when their element counts agree (Caffe checks counts only).
    fn match_count(&mut self, x: NodeId, t: NodeId) -> Result<NodeId> {
        let (xs, ts) = (self.graph.shape(x).clone(), self.graph.shape(t).clone());
        if xs == ts {
            return Ok(t);
        }
        if xs.numel() != ts.numel() {
            return Err(self.shape_error(&format!("the bottoms need the same number of elements, got {xs} and {ts}")));
        }
        self.reshape(t, xs.0)
    }
}

/// Lowers `kind` (the layer in `cx`) and returns its top values.
pub fn lower_layer(cx: &mut LayerCx, kind: &LayerKind) -> Result<Vec<NodeId>> {
    let b: Vec<NodeId> = cx.bottoms.iter().map(|s| s.node).collect();
    let one = |n: NodeId| Ok(vec![n]);
    match kind {
        LayerKind::Data { batch_size, scale, mean, .. } => {
            let n = cx.batched(*batch_size);
            let raw = cx.add(Op::Input { field: InputField::Image, shape: vec![n, 1, 28, 28] }, &[])?;
            let mut tops = vec![cx.affine(raw, *scale, -mean * scale + 0.0)?];
            if cx.layer.tops.len() == 2 {
                tops.push(cx.add(Op::Input { field: InputField::Label, shape: vec![n] }, &[])?);
            }
            Ok(tops)
        }
        LayerKind::DummyData { shapes, fillers } => dummy_data(cx, shapes, fillers),
        LayerKind::InnerProduct { num_output, bias_term, axis, weight_filler, bias_filler } => {
            let shape = cx.bottom_shape(0);
            let axis = cx.axis(*axis, shape.len(), false)?;
            let (m, k): (usize, usize) = (shape[..axis].iter().product(), shape[axis..].iter().product());
            let x = if shape.len() == 2 && axis == 1 { b[0] } else { cx.reshape(b[0], vec![m, k])? };
            let w = cx.param(0, "weight", vec![*num_output, k], weight_filler.clone(), ParamKind::Learned)?;
            let mut y = cx.add(Op::MatMul { trans_a: false, trans_b: true }, &[x, w])?;
            if *bias_term {
                let bias = cx.param(1, "bias", vec![*num_output], bias_filler.clone(), ParamKind::Learned)?;
                y = cx.add_broadcast(BinaryOp::Add, y, bias, 1)?;
            }
            if axis != 1 {
                let mut out = shape[..axis].to_vec();
                out.push(*num_output);
                y = cx.reshape(y, out)?;
            }
            one(y)
        }
        LayerKind::Convolution(c) | LayerKind::Deconvolution(c) => {
            let shape = cx.bottom_shape(0);
            if shape.len() != 4 {
                return Err(cx.shape_error(&format!("a {} needs a 4-D N×C×H×W bottom", kind.type_name())));
            }
            let deconv = matches!(kind, LayerKind::Deconvolution(_));
            let w_shape = if deconv { [shape[1], c.num_output] } else { [c.num_output, shape[1]] };
            let w = cx.param(
                0,
                "weight",
                vec![w_shape[0], w_shape[1], c.kernel[0], c.kernel[1]],
                c.weight_filler.clone(),
                ParamKind::Learned,
            )?;
            let attrs = ConvAttrs { stride: c.stride, pad: c.pad, output_pad: [0, 0] };
            let op = if deconv { Op::ConvTranspose2d(attrs) } else { Op::Conv2d(attrs) };
            let mut y = cx.add(op, &[b[0], w])?;
            if c.bias_term {
                let bias = cx.param(1, "bias", vec![c.num_output], c.bias_filler.clone(), ParamKind::Learned)?;
                y = cx.add_broadcast(BinaryOp::Add, y, bias, 1)?;
            }
            one(y)
        }
        LayerKind::Pooling(p) => {
            let attrs = PoolAttrs { method: p.method, kernel: p.kernel, stride: p.stride, pad: p.pad };
            one(cx.add(Op::Pool2d(attrs), &b)?)
        }
        LayerKind::Upsample { scale } => one(cx.add(Op::Upsample2d { scale: *scale }, &b)?),
        LayerKind::RandomAffine { rotation, scale, translation } => {
            if cx.phase == NetPhase::Test {
                return one(b[0]);
            }
            let attrs = WarpAttrs {
                rotation: F32::new(*rotation),
                scale: F32::new(*scale),
                translation: F32::new(*translation),
            };
            let batch = cx.bottom_shape(0).first().copied().unwrap_or(0);
            let unit = Distribution::Uniform { min: F32::new(-1.0), max: F32::new(1.0) };
            let draws = noise_source(cx, unit, vec![batch, WarpAttrs::DRAWS])?;
            one(cx.add(Op::Warp2d(attrs), &[b[0], draws])?)
        }
        LayerKind::ReLU { negative_slope } => one(cx.unary(UnaryOp::LeakyRelu(F32::new(*negative_slope)), b[0])?),
        LayerKind::TanH => one(cx.unary(UnaryOp::Tanh, b[0])?),
        LayerKind::Sigmoid => one(cx.unary(UnaryOp::Sigmoid, b[0])?),
        LayerKind::BatchNorm { use_global_stats, moving_average_fraction, eps } => {
            let global = use_global_stats.unwrap_or(cx.phase == NetPhase::Test);
            one(batch_norm(cx, b[0], global, *moving_average_fraction, *eps)?)
        }
        LayerKind::Scale { axis, num_axes, bias_term, filler, bias_filler } => {
            let (axis, shape) = channel_axes(cx, *axis, *num_axes)?;
            let s = cx.param(0, "weight", shape.clone(), filler.clone(), ParamKind::Learned)?;
            let mut y = cx.add_broadcast(BinaryOp::Mul, b[0], s, axis)?;
            if *bias_term {
                let bias = cx.param(1, "bias", shape, bias_filler.clone(), ParamKind::Learned)?;
                y = cx.add_broadcast(BinaryOp::Add, y, bias, axis)?;
            }
            one(y)
        }
        LayerKind::Bias { axis, num_axes, filler } => {
            let (axis, shape) = channel_axes(cx, *axis, *num_axes)?;
            let bias = cx.param(0, "bias", shape, filler.clone(), ParamKind::Learned)?;
            one(cx.add_broadcast(BinaryOp::Add, b[0], bias, axis)?)
        }
        LayerKind::Eltwise { op, coeff, coeff_span } => eltwise(cx, *op, coeff, *coeff_span, &b),
        LayerKind::Power(f) => {
            let mut y = b[0];
            if f.scale != 1.0 || f.shift != 0.0 || f.param == 1.0 {
                y = cx.affine(y, f.scale, f.shift)?;
            }
            if f.param != 1.0 {
                y = cx.unary(UnaryOp::Pow(F32::new(f.param)), y)?;
            }
            one(y)
        }
        LayerKind::Exp(f) => {
            let ln_base = base_log(f);
            let mut y = b[0];
            if ln_base * f.scale != 1.0 || f.shift != 0.0 {
                y = cx.affine(y, ln_base * f.scale, ln_base * f.shift)?;
            }
            one(cx.unary(UnaryOp::Exp, y)?)
        }
        LayerKind::Log(f) => {
            let mut y = b[0];
            if f.scale != 1.0 || f.shift != 0.0 {
                y = cx.affine(y, f.scale, f.shift)?;
            }
            y = cx.unary(UnaryOp::Log, y)?;
            let ln_base = base_log(f);
            if ln_base != 1.0 {
                y = cx.affine(y, 1.0 / ln_base, 0.0)?;
            }
            one(y)
        }
        LayerKind::Reduction { op, axis, coeff } => {
            let rank = cx.bottom_shape(0).len();
            let axis = cx.axis(*axis, rank, false)?;
            let x = match op {
                ReductionOp::Asum => cx.unary(UnaryOp::Abs, b[0])?,
                ReductionOp::Sumsq => cx.unary(UnaryOp::Pow(F32::new(2.0)), b[0])?,
                _ => b[0],
            };
            let rop = if *op == ReductionOp::Mean { ReduceOp::Mean } else { ReduceOp::Sum };
            let mut y = cx.add(Op::Reduce { op: rop, axes: (axis..rank).collect() }, &[x])?;
            if *coeff != 1.0 {
                y = cx.affine(y, *coeff, 0.0)?;
            }
            one(y)
        }
        LayerKind::Reshape { dims } => {
            let to = reshape_dims(cx, dims)?;
            one(cx.reshape(b[0], to)?)
        }
        LayerKind::Flatten { axis, end_axis } => {
            let shape = cx.bottom_shape(0);
            let start = cx.axis(*axis, shape.len(), false)?;
            let end = cx.axis(*end_axis, shape.len(), false)?;
            if end < start {
                return Err(cx.error(format!("Flatten end_axis {end_axis} comes before axis {axis}"), "bad axes"));
            }
            let mut to = shape[..start].to_vec();
            to.push(shape[start..=end].iter().product());
            to.extend_from_slice(&shape[end + 1..]);
            one(cx.reshape(b[0], to)?)
        }
        LayerKind::Concat { axis } => {
            let axis = cx.axis(*axis, cx.bottom_shape(0).len(), false)?;
            one(cx.add(Op::Concat { axis }, &b)?)
        }
        LayerKind::Slice { axis, points } => slice(cx, *axis, points, b[0]),
        LayerKind::Split => Ok(vec![b[0]; cx.layer.tops.len()]),
        LayerKind::Softmax { axis } | LayerKind::LogSoftmax { axis } => {
            let axis = cx.axis(*axis, cx.bottom_shape(0).len(), false)?;
            let op =
                if matches!(kind, LayerKind::Softmax { .. }) { Op::Softmax { axis } } else { Op::LogSoftmax { axis } };
            one(cx.add(op, &b)?)
        }
        LayerKind::SigmoidCrossEntropyLoss => {
            let t = cx.match_count(b[0], b[1])?;
            let per_element = cx.binary(BinaryOp::SigmoidCrossEntropy, b[0], t)?;
            let total = cx.reduce_all(ReduceOp::Sum, per_element)?;
            let n = cx.bottom_shape(0).first().copied().unwrap_or(1);
            one(cx.affine(total, 1.0 / n as f32, 0.0)?)
        }
        LayerKind::SoftmaxWithLoss { axis } => {
            let (scores, labels, n, _) = class_scores(cx, *axis, &b)?;
            let log_p = cx.add(Op::LogSoftmax { axis: 1 }, &[scores])?;
            let classes = cx.shape(scores)[1];
            let onehot = cx.add(Op::OneHot { classes }, &[labels])?;
            let picked = cx.binary(BinaryOp::Mul, log_p, onehot)?;
            let total = cx.reduce_all(ReduceOp::Sum, picked)?;
            one(cx.affine(total, -1.0 / n as f32, 0.0)?)
        }
        LayerKind::EuclideanLoss => {
            let t = cx.match_count(b[0], b[1])?;
            let diff = cx.binary(BinaryOp::Sub, b[0], t)?;
            let sq = cx.unary(UnaryOp::Pow(F32::new(2.0)), diff)?;
            let total = cx.reduce_all(ReduceOp::Sum, sq)?;
            let n = cx.bottom_shape(0).first().copied().unwrap_or(1);
            one(cx.affine(total, 0.5 / n as f32, 0.0)?)
        }
        LayerKind::Accuracy { top_k } => {
            let (scores, labels, _, classes) = class_scores(cx, 1, &b)?;
            if *top_k > classes {
                return Err(
                    cx.error(format!("Accuracy top_k {top_k} exceeds the {classes} classes"), "top_k too large")
                );
            }
            one(cx.add(Op::Accuracy { top_k: *top_k }, &[scores, labels])?)
        }
        LayerKind::GaussianLogLikelihood { std } => gaussian_log_likelihood(cx, *std, &b),
        LayerKind::StopGradient => one(cx.add(Op::StopGradient, &b)?),
        LayerKind::Subnet { .. } => unreachable!("sub-network applications are lowered by the driver"),
    }
}

fn base_log(f: &AffineFn) -> f32 {
    if f.param == -1.0 {
        1.0
    } else {
        f.param.ln()
    }
}

fn dummy_data(cx: &mut LayerCx, shapes: &[crate::error::Spanned<Vec<i64>>], fillers: &[Filler]) -> Result<Vec<NodeId>> {
    let mut tops = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let mut dims: Vec<usize> = shape.value.iter().map(|d| *d as usize).collect();
        dims[0] = cx.batched(dims[0]);
        let filler = fillers.get(i).or(fillers.first()).cloned().unwrap_or(Filler::Constant { value: 0.0 });
        let dist = match filler {
            Filler::Constant { value } => {
                tops.push(cx.add(Op::Const { value: F32::new(value), shape: dims }, &[])?);
                continue;
            }
            Filler::Uniform { min, max } => Distribution::Uniform { min: F32::new(min), max: F32::new(max) },
            Filler::Gaussian { mean, std, sparse: None } => {
                Distribution::Gaussian { mean: F32::new(mean), std: F32::new(std) }
            }
            Filler::Categorical if dims.len() >= 2 => Distribution::Categorical,
            Filler::Categorical => {
                return Err(Diagnostic::new(
                    "a categorical DummyData shape needs a class axis (e.g. N×10)",
                    shape.span,
                    "1-D shape",
                ))
            }
            other => {
                return Err(Diagnostic::new(
                    format!(
                        "DummyData filler {} is not supported; use constant, uniform, gaussian or categorical",
                        other.describe()
                    ),
                    shape.span,
                    "for this top",
                ))
            }
        };
        tops.push(noise_source(cx, dist, dims)?);
    }
    Ok(tops)
}

/// A noise source of its own stream, resampled every step.
fn noise_source(cx: &mut LayerCx, dist: Distribution, shape: Vec<usize>) -> Result<NodeId> {
    let stream = *cx.streams;
    *cx.streams += 1;
    cx.add(Op::Sample { dist, stream, shape }, &[])
}

/// The axis and shape of a Scale or Bias layer's parameter: `shape[axis..axis + num_axes]`.
fn channel_axes(cx: &LayerCx, axis: i64, num_axes: i64) -> Result<(usize, Vec<usize>)> {
    let shape = cx.bottom_shape(0);
    let axis = cx.axis(axis, shape.len(), false)?;
    if num_axes < -1 {
        return Err(
            cx.error(format!("num_axes {num_axes} is invalid: use -1 (to the last axis) or a count"), "bad num_axes")
        );
    }
    let end = if num_axes == -1 { shape.len() } else { axis + num_axes as usize };
    if end > shape.len() {
        return Err(cx.shape_error(&format!(
            "num_axes {num_axes} from axis {axis} runs past the bottom's {} axes",
            shape.len()
        )));
    }
    Ok((axis, shape[axis..end].to_vec()))
}

fn eltwise(cx: &mut LayerCx, op: EltwiseOp, coeff: &[f32], coeff_span: Span, b: &[NodeId]) -> Result<Vec<NodeId>> {
    let first = cx.bottom_shape(0);
    if let Some(i) = (1..b.len()).find(|i| cx.bottom_shape(*i) != first) {
        let (s0, si) = (Shape(first), Shape(cx.bottom_shape(i)));
        return Err(cx.shape_error(&format!("Eltwise needs bottoms of one shape, got {s0} and {si}")));
    }
    if !coeff.is_empty() && coeff.len() != b.len() {
        return Err(Diagnostic::new(
            format!("Eltwise layer \"{}\" has {} coeff for {} bottoms", cx.layer.name.value, coeff.len(), b.len()),
            coeff_span,
            "one coeff per bottom",
        ));
    }
    let (bin, mut acc) = match op {
        EltwiseOp::Prod => (BinaryOp::Mul, b[0]),
        EltwiseOp::Max => (BinaryOp::Max, b[0]),
        EltwiseOp::Sum => (BinaryOp::Add, scaled(cx, b[0], coeff.first())?),
    };
    for (i, x) in b.iter().enumerate().skip(1) {
        let term = if op == EltwiseOp::Sum { scaled(cx, *x, coeff.get(i))? } else { *x };
        acc = cx.binary(bin, acc, term)?;
    }
    Ok(vec![acc])
}

fn scaled(cx: &mut LayerCx, x: NodeId, coeff: Option<&f32>) -> Result<NodeId> {
    match coeff {
        Some(c) if *c != 1.0 => cx.affine(x, *c, 0.0),
        _ => Ok(x),
    }
}

fn reshape_dims(cx: &LayerCx, dims: &[i64]) -> Result<Vec<usize>> {
    let shape = cx.bottom_shape(0);
    let mut out = Vec::with_capacity(dims.len());
    for (i, d) in dims.iter().enumerate() {
        out.push(match *d {
            0 => *shape.get(i).ok_or_else(|| {
                cx.shape_error(&format!("dim {i} is 0 (copy) but the bottom has only {} axes", shape.len()))
            })?,
            -1 => 1,
            d => d as usize,
        });
    }
    let total: usize = shape.iter().product();
    let Some(known) = out.iter().try_fold(1usize, |n, d| n.checked_mul(*d)) else {
        return Err(cx.shape_error(&format!("reshape to {} is too large", Shape(out))));
    };
    if let Some(pos) = dims.iter().position(|d| *d == -1) {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(
                cx.shape_error(&format!("cannot infer the -1 dimension: {total} elements do not divide by {known}"))
            );
        }
        out[pos] = total / known;
    }
    if out.iter().try_fold(1usize, |n, d| n.checked_mul(*d)) != Some(total) {
        return Err(cx.shape_error(&format!("cannot reshape {} ({total} elements) to {}", Shape(shape), Shape(out))));
    }
    Ok(out)
}

fn slice(cx: &mut LayerCx, axis: i64, points: &[usize], x: NodeId) -> Result<Vec<NodeId>> {
    let shape = cx.shape(x);
    let axis = cx.axis(axis, shape.len(), false)?;
    let n = cx.layer.tops.len();
    let bounds: Vec<usize> = if points.is_empty() {
        if !shape[axis].is_multiple_of(n) {
            return Err(
                cx.shape_error(&format!("axis {axis} of size {} does not split evenly into {n} tops", shape[axis]))
            );
        }
        (0..=n).map(|i| i * shape[axis] / n).collect()
    } else {
        if *points.last().expect("non-empty") >= shape[axis] {
            return Err(cx.shape_error(&format!(
                "slice point {} is beyond axis {axis} of size {}",
                points.last().unwrap_or(&0),
                shape[axis]
            )));
        }
        std::iter::once(0).chain(points.iter().copied()).chain([shape[axis]]).collect()
    };
    bounds.windows(2).map(|w| cx.add(Op::Slice { axis, start: w[0], end: w[1] }, &[x])).collect()
}

/// Scores as N×C and labels as N, for SoftmaxWithLoss and Accuracy; returns (scores, labels, N, C).
fn class_scores(cx: &mut LayerCx, axis: i64, b: &[NodeId]) -> Result<(NodeId, NodeId, usize, usize)> {
    let shape = cx.bottom_shape(0);
    let axis = cx.axis(axis, shape.len(), false)?;
    if axis != 1 || shape[2..].iter().product::<usize>() != 1 {
        return Err(cx.shape_error("class scores must be N×C (trailing axes of size 1 are allowed)"));
    }
    let (n, c) = (shape[0], shape[1]);
    let scores = if shape.len() == 2 { b[0] } else { cx.reshape(b[0], vec![n, c])? };
    let labels = cx.bottom_shape(1);
    if labels.iter().product::<usize>() != n || labels.first() != Some(&n) {
        return Err(cx.shape_error(&format!("labels must hold one class per example ({n}), got {}", Shape(labels))));
    }
    let labels = if labels.len() == 1 { b[1] } else { cx.reshape(b[1], vec![n])? };
    Ok((scores, labels, n, c))
}

fn gaussian_log_likelihood(cx: &mut LayerCx, std: f32, b: &[NodeId]) -> Result<Vec<NodeId>> {
    let shape = cx.bottom_shape(0);
    if let Some(i) = (1..b.len()).find(|i| cx.bottom_shape(*i) != shape) {
        let (s0, si) = (Shape(shape.clone()), Shape(cx.bottom_shape(i)));
        return Err(
            cx.shape_error(&format!("GaussianLogLikelihood needs x, mean and log_std of one shape, got {s0} and {si}"))
        );
    }
    let diff = if b.len() >= 2 { cx.binary(BinaryOp::Sub, b[0], b[1])? } else { b[0] };
    let per_element = if b.len() == 3 {
        // log N(x; μ, e^s) = −½((x − μ)·e^−s)² − s − ½ ln 2π
        let neg = cx.affine(b[2], -1.0, 0.0)?;
        let inv_std = cx.unary(UnaryOp::Exp, neg)?;
        let z = cx.binary(BinaryOp::Mul, diff, inv_std)?;
        let sq = cx.unary(UnaryOp::Pow(F32::new(2.0)), z)?;
        let half = cx.affine(sq, -0.5, -0.5 * LN_2PI)?;
        cx.binary(BinaryOp::Sub, half, b[2])?
    } else {
        // log N(x; μ, σ) = −(x − μ)²/2σ² − ln σ − ½ ln 2π
        let sq = cx.unary(UnaryOp::Pow(F32::new(2.0)), diff)?;
        cx.affine(sq, -0.5 / (std * std), -std.ln() - 0.5 * LN_2PI)?
    };
    if shape.len() <= 1 {
        return Ok(vec![per_element]);
    }
    Ok(vec![cx.add(Op::Reduce { op: ReduceOp::Sum, axes: (1..shape.len()).collect() }, &[per_element])?])
}

/// BatchNorm lowered to primitives: normalization over every axis but the channel axis (1), by
/// batch statistics in training (and running-statistic updates, with the unbiased variance as
/// Caffe and PyTorch keep it) or by the running statistics.
fn batch_norm(cx: &mut LayerCx, x: NodeId, global: bool, fraction: f32, eps: f32) -> Result<NodeId> {
    let shape = cx.shape(x);
    if shape.len() < 2 {
        return Err(cx.shape_error("BatchNorm needs a bottom with a channel axis"));
    }
    let c = shape[1];
    let running_mean = cx.param(0, "running_mean", vec![c], Filler::Constant { value: 0.0 }, ParamKind::RunningStat)?;
    let running_var = cx.param(1, "running_var", vec![c], Filler::Constant { value: 1.0 }, ParamKind::RunningStat)?;
    let axes: Vec<usize> = (0..shape.len()).filter(|a| *a != 1).collect();
    let (centered, var) = if global {
        (cx.add_broadcast(BinaryOp::Sub, x, running_mean, 1)?, running_var)
    } else {
        let mean = cx.add(Op::Reduce { op: ReduceOp::Mean, axes: axes.clone() }, &[x])?;
        let centered = cx.add_broadcast(BinaryOp::Sub, x, mean, 1)?;
        let sq = cx.unary(UnaryOp::Pow(F32::new(2.0)), centered)?;
        let var = cx.add(Op::Reduce { op: ReduceOp::Mean, axes }, &[sq])?;
        let count = (shape.iter().product::<usize>() / c) as f32;
        let unbiased = if count > 1.0 { count / (count - 1.0) } else { 1.0 };
        running_update(cx, "running_mean", running_mean, mean, fraction, 1.0)?;
        running_update(cx, "running_var", running_var, var, fraction, unbiased)?;
        (centered, var)
    };
    let shifted = cx.affine(var, 1.0, eps)?;
    let inv_std = cx.unary(UnaryOp::Pow(F32::new(-0.5)), shifted)?;
    cx.add_broadcast(BinaryOp::Mul, centered, inv_std, 1)
}

/// Records `running ← fraction·running + (1 − fraction)·scale·batch` as a state update. When a
/// shared BatchNorm runs several times in one program, the updates chain in execution order, as
/// calling a PyTorch module several times does; the last one is the new value.
fn running_update(
    cx: &mut LayerCx,
    suffix: &str,
    running: NodeId,
    batch: NodeId,
    fraction: f32,
    scale: f32,
) -> Result<()> {
    let Op::Param { name, .. } = &cx.graph.node(running).op else { unreachable!("running statistics are parameters") };
    debug_assert!(name.ends_with(suffix));
    let param = name.clone();
    let previous = cx.graph.updates.iter().rev().find(|u| u.param == param).map_or(running, |u| u.value);
    let kept = cx.affine(previous, fraction, 0.0)?;
    let fresh = cx.affine(batch, (1.0 - fraction) * scale, 0.0)?;
    let value = cx.binary(BinaryOp::Add, kept, fresh)?;
    cx.graph.updates.push(StateUpdate { param, value });
    Ok(())
}
