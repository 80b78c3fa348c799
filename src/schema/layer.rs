//! One `layer { ... }` block: Caffe's `LayerParameter` with its common fields; the per-type
//! parameters live in [`super::layer_kinds`].

use super::layer_kinds::{parse_kind, LayerKind};
use super::reader::Reader;
use crate::error::{Diagnostic, Result, Span, Spanned};
use crate::syntax::Message;

/// Caffe's two network phases, selected by `include`/`exclude` rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum NetPhase {
    /// Training: batch statistics, loss layers active.
    Train,
    /// Testing and generation: running statistics.
    Test,
}

impl NetPhase {
    /// The keyword as written in files.
    pub fn keyword(self) -> &'static str {
        match self {
            NetPhase::Train => "TRAIN",
            NetPhase::Test => "TEST",
        }
    }
}

/// A `param { ... }` block: how one learnable blob of a layer is named, scaled and regularized.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Sharing name; layers giving the same name share the parameter.
    pub name: Option<Spanned<String>>,
    /// Learning-rate multiplier; 0 freezes the parameter.
    pub lr_mult: f32,
    /// Weight-decay multiplier.
    pub decay_mult: f32,
    /// The block.
    pub span: Span,
}

/// A parsed layer.
#[derive(Clone, Debug)]
pub struct LayerDef {
    /// The layer's name.
    pub name: Spanned<String>,
    /// Its type and type-specific parameters.
    pub kind: LayerKind,
    /// Where the type is written.
    pub kind_span: Span,
    /// Input blob names.
    pub bottoms: Vec<Spanned<String>>,
    /// Output blob names.
    pub tops: Vec<Spanned<String>>,
    /// `param` blocks, in the order of the layer's learnable blobs.
    pub params: Vec<ParamSpec>,
    /// `loss_weight` per top, as written (empty: the type's default).
    pub loss_weights: Vec<f32>,
    /// Phases the layer is included in (empty: all).
    pub include: Vec<NetPhase>,
    /// Phases the layer is excluded from.
    pub exclude: Vec<NetPhase>,
    /// The whole block.
    pub span: Span,
}

impl LayerDef {
    /// Whether the layer is part of the net in `phase`.
    pub fn in_phase(&self, phase: NetPhase) -> bool {
        (self.include.is_empty() || self.include.contains(&phase)) && !self.exclude.contains(&phase)
    }

    /// The loss weight of top `i`: as written, else 1 for the first top of a loss layer, else 0.
    pub fn loss_weight(&self, i: usize) -> f32 {
        match self.loss_weights.get(i) {
            Some(w) => *w,
            None if self.loss_weights.is_empty() && i == 0 && self.kind.is_loss() => 1.0,
            None => 0.0,
        }
    }
}

/// Parses one `layer { ... }` block.
pub fn parse_layer(msg: &Message) -> Result<LayerDef> {
    let mut r = Reader::new("layer", msg);
    let name = r.opt_str("name")?;
    if let Some(name) = &name {
        r.set_what(format!("layer \"{}\"", name.value));
    }
    let type_name = r.opt_str("type")?;
    let bottoms = r.strs("bottom")?;
    let tops = r.strs("top")?;
    let label = name.as_ref().map_or("?", |n| n.value.as_str());
    let params = r.msgs("param")?.into_iter().map(|m| parse_param_spec(m, label)).collect::<Result<_>>()?;
    let loss_weights = r.f32s("loss_weight")?;
    let include = parse_rules(&mut r, "include")?;
    let exclude = parse_rules(&mut r, "exclude")?;
    // Required fields are checked once every common field has been read, so that a typo of
    // another field is not taken for the missing one.
    let name = name.ok_or_else(|| r.missing("name"))?;
    let type_name = type_name.ok_or_else(|| r.missing("type"))?;
    r.set_anchor(type_name.span);
    let kind = parse_kind(&type_name, &mut r)?;
    r.finish()?;
    let layer = LayerDef {
        name,
        kind,
        kind_span: type_name.span,
        bottoms,
        tops,
        params,
        loss_weights,
        include,
        exclude,
        span: msg.span,
    };
    check_arity(&layer)?;
    Ok(layer)
}

fn parse_param_spec(msg: &Message, layer: &str) -> Result<ParamSpec> {
    let mut r = Reader::new(format!("`param` of layer \"{layer}\""), msg);
    let spec = ParamSpec {
        name: r.opt_str("name")?,
        lr_mult: r.f32_or("lr_mult", 1.0)?,
        decay_mult: r.f32_or("decay_mult", 1.0)?,
        span: msg.span,
    };
    r.finish()?;
    Ok(spec)
}

fn parse_rules(r: &mut Reader, key: &'static str) -> Result<Vec<NetPhase>> {
    let what = format!("`{key}` of {}", r.what());
    let mut phases = Vec::new();
    for msg in r.msgs(key)? {
        let mut rule = Reader::new(what.clone(), msg);
        match rule.opt_enum("phase", &["TRAIN", "TEST"])? {
            Some(p) if p.value == "TRAIN" => phases.push(NetPhase::Train),
            Some(_) => phases.push(NetPhase::Test),
            None => return Err(rule.missing("phase")),
        }
        rule.finish()?;
    }
    Ok(phases)
}

fn check_arity(layer: &LayerDef) -> Result<()> {
    let (bottoms, tops) = layer.kind.arity();
    let count = |what: &str, n: usize, range: (usize, usize), span: Span| {
        if n < range.0 || n > range.1 {
            let expected = match range {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(Diagnostic::new(
                format!("layer \"{}\" ({}) has {n} {what}s", layer.name.value, layer.kind.type_name()),
                span,
                format!("a {} layer takes {expected} {what}(s)", layer.kind.type_name()),
            ));
        }
        Ok(())
    };
    count("bottom", layer.bottoms.len(), bottoms, layer.kind_span)?;
    count("top", layer.tops.len(), tops, layer.kind_span)?;
    if layer.params.len() > layer.kind.learnable_blob_count() && layer.kind.learnable_blob_count() != usize::MAX {
        let extra = &layer.params[layer.kind.learnable_blob_count()];
        return Err(Diagnostic::new(
            format!("layer \"{}\" has more `param` blocks than learnable blobs", layer.name.value),
            extra.span,
            format!("a {} layer has {} learnable blob(s)", layer.kind.type_name(), layer.kind.learnable_blob_count()),
        ));
    }
    Ok(())
}
