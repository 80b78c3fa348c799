//! Parameter interning: Caffe's `ParamSpec` sharing. The first layer to use a name owns the
//! parameter; later users must agree on its shape and learning-rate multiplier.

use crate::error::{Diagnostic, Result, Span};
use crate::ir::{Graph, NodeId, Op, Origin, ParamInfo, ParamKind, Shape};
use crate::schema::{Filler, ParamSpec};

/// What a layer asks for when it needs a learnable blob.
pub struct ParamRequest<'a> {
    /// Default name when the `param` block gives none.
    pub default_name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Initial values.
    pub filler: Filler,
    /// Learned or running statistic.
    pub kind: ParamKind,
    /// The layer's `param` block for this blob, if written.
    pub spec: Option<&'a ParamSpec>,
    /// The requesting layer's path.
    pub layer: &'a str,
    /// The sub-network declaring the layer.
    pub subnet: Option<&'a str>,
    /// The requesting layer's span.
    pub span: Span,
}

/// Returns the parameter's node, creating it on first use or checking a sharer against the owner.
pub fn intern(graph: &mut Graph, req: ParamRequest, owner_spans: &mut Vec<(String, Span)>) -> Result<NodeId> {
    let name = req.spec.and_then(|s| s.name.as_ref()).map_or_else(|| req.default_name.clone(), |n| n.value.clone());
    let (lr_mult, decay_mult) = match (req.spec, req.kind) {
        (_, ParamKind::RunningStat) => (0.0, 0.0),
        (Some(s), _) => (s.lr_mult, s.decay_mult),
        (None, _) => (1.0, 1.0),
    };
    let at = req.spec.and_then(|s| s.name.as_ref()).map_or(req.span, |n| n.span);
    if let Some(existing) = graph.params.iter_mut().find(|p| p.name == name) {
        let owner_span = owner_spans.iter().find(|(n, _)| *n == name).map_or(req.span, |(_, s)| *s);
        if existing.shape.0 != req.shape {
            return Err(Diagnostic::new(
                format!(
                    "shared parameter \"{name}\" has shape {} in layer \"{}\" but {} in its owner \"{}\"",
                    Shape(req.shape.clone()),
                    req.layer,
                    existing.shape,
                    existing.owner
                ),
                at,
                "shape differs from the owner's",
            )
            .note_at(format!("owned by layer \"{}\"", existing.owner), owner_span));
        }
        if existing.lr_mult != lr_mult {
            return Err(Diagnostic::new(
                format!(
                    "shared parameter \"{name}\" has lr_mult {lr_mult} in layer \"{}\" but {} in its owner \"{}\"",
                    req.layer, existing.lr_mult, existing.owner
                ),
                at,
                "lr_mult differs from the owner's",
            )
            .note_at(format!("owned by layer \"{}\"", existing.owner), owner_span));
        }
        if !existing.users.iter().any(|u| u == req.layer) {
            existing.users.push(req.layer.to_string());
        }
        return Ok(existing.node);
    }
    let origin = Origin { layer: req.layer.to_string(), span: req.span };
    let node = graph
        .add(Op::Param { name: name.clone(), shape: req.shape.clone() }, &[], origin)
        .map_err(|e| Diagnostic::new(format!("internal error creating parameter \"{name}\": {e}"), req.span, ""))?;
    owner_spans.push((name.clone(), req.span));
    graph.params.push(ParamInfo {
        name,
        shape: Shape(req.shape),
        filler: req.filler,
        lr_mult,
        decay_mult,
        kind: req.kind,
        node,
        owner: req.layer.to_string(),
        subnet: req.subnet.map(str::to_string),
        users: vec![req.layer.to_string()],
    });
    Ok(node)
}
