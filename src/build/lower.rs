//! The build driver: walks the net in dependency order, applies sub-networks by lowering their
//! layers in a fresh scope, and records layers, blobs and losses in the graph.

use super::layers::{lower_layer, BlobSource, LayerCx};
use super::resolve::{final_version, resolve, ValueRef};
use crate::error::{Diagnostic, Result, Span, Spanned};
use crate::ir::{Blob, Graph, LayerRecord, LossTerm, NodeId};
use crate::schema::{LayerDef, LayerKind, NetDef, NetPhase};

/// What to build.
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// Caffe phase: selects layers by `include`/`exclude` and BatchNorm's statistics.
    pub phase: NetPhase,
    /// Overrides the batch dimension of Data and DummyData layers.
    pub batch_size: Option<usize>,
}

/// Builds the IR of `net` for one phase.
pub fn build(net: &NetDef, opts: &BuildOptions) -> Result<Graph> {
    let mut b = Builder { net, opts, graph: Graph::default(), streams: 0, owner_spans: Vec::new(), stack: Vec::new() };
    let layers: Vec<&LayerDef> = net.layers.iter().filter(|l| l.in_phase(opts.phase)).collect();
    b.lower_scope(&layers, &[], &[], &Scope { prefix: String::new(), subnet: None })?;
    Ok(b.graph)
}

struct Scope<'a> {
    /// Prepended to layer and blob names (`d_real/`).
    prefix: String,
    /// The sub-network whose layers these are.
    subnet: Option<&'a str>,
}

struct Builder<'a> {
    net: &'a NetDef,
    opts: &'a BuildOptions,
    graph: Graph,
    streams: u32,
    owner_spans: Vec<(String, Span)>,
    /// Sub-networks being applied, outermost first (to detect recursion).
    stack: Vec<&'a str>,
}

impl<'a> Builder<'a> {
    /// Lowers one scope; returns each layer's top sources, by layer index.
    fn lower_scope(
        &mut self,
        layers: &[&'a LayerDef],
        input_names: &[Spanned<String>],
        inputs: &[BlobSource],
        scope: &Scope<'a>,
    ) -> Result<Vec<Vec<BlobSource>>> {
        let resolved = resolve(layers, input_names)?;
        let mut tops: Vec<Vec<BlobSource>> = vec![Vec::new(); layers.len()];
        for &i in &resolved.order {
            let layer = layers[i];
            let bottoms: Vec<BlobSource> = resolved.bottoms[i]
                .iter()
                .zip(&layer.bottoms)
                .map(|(r, name)| {
                    let mut src = match r {
                        ValueRef::Input(k) => inputs[*k].clone(),
                        ValueRef::Top { layer, top } => tops[*layer][*top].clone(),
                    };
                    src.name = name.value.clone();
                    src
                })
                .collect();
            let path = format!("{}{}", scope.prefix, layer.name.value);
            let nodes = match &layer.kind {
                LayerKind::Subnet { name } => self.apply_subnet(layer, name, &bottoms, &path)?,
                kind => {
                    let mut cx = LayerCx {
                        graph: &mut self.graph,
                        layer,
                        path: &path,
                        subnet: scope.subnet,
                        bottoms: &bottoms,
                        phase: self.opts.phase,
                        batch_size: self.opts.batch_size,
                        streams: &mut self.streams,
                        owner_spans: &mut self.owner_spans,
                    };
                    lower_layer(&mut cx, kind)?
                }
            };
            tops[i] = nodes
                .iter()
                .zip(&layer.tops)
                .map(|(node, top)| BlobSource {
                    node: *node,
                    name: top.value.clone(),
                    producer: Some((path.clone(), top.span)),
                })
                .collect();
            self.record(layer, &path, &scope.prefix, &bottoms, &nodes)?;
        }
        Ok(tops)
    }

    fn record(
        &mut self,
        layer: &LayerDef,
        path: &str,
        prefix: &str,
        bottoms: &[BlobSource],
        nodes: &[NodeId],
    ) -> Result<()> {
        let top_names: Vec<String> = layer.tops.iter().map(|t| format!("{prefix}{}", t.value)).collect();
        for (i, (name, node)) in top_names.into_iter().zip(nodes).enumerate() {
            self.graph.blobs.push(Blob { name: name.clone(), node: *node });
            let name = name.as_str();
            let weight = layer.loss_weight(i);
            if weight != 0.0 {
                let shape = self.graph.shape(*node);
                if shape.rank() != 0 {
                    return Err(Diagnostic::new(
                        format!(
                            "layer \"{}\" has a loss weight on top \"{}\", which is not a scalar but {shape}",
                            layer.name.value, layer.tops[i].value
                        ),
                        layer.tops[i].span,
                        "a loss must be a scalar",
                    )
                    .help("reduce it first, e.g. with a Reduction layer"));
                }
                self.graph.losses.push(LossTerm { blob: name.to_string(), node: *node, weight, start_iter: 0 });
            }
        }
        let params =
            self.graph.params.iter().filter(|p| p.users.iter().any(|u| u == path)).map(|p| p.name.clone()).collect();
        self.graph.layers.push(LayerRecord {
            path: path.to_string(),
            type_name: layer.kind.type_name(),
            bottoms: bottoms.iter().map(|b| b.node).collect(),
            tops: nodes.to_vec(),
            params,
            is_loss: layer.kind.is_loss(),
            applies: match &layer.kind {
                LayerKind::Subnet { name } => Some(name.value.clone()),
                _ => None,
            },
            span: layer.name.span,
        });
        Ok(())
    }

    fn apply_subnet(
        &mut self,
        layer: &LayerDef,
        name: &Spanned<String>,
        bottoms: &[BlobSource],
        path: &str,
    ) -> Result<Vec<NodeId>> {
        let net = self.net;
        let Some(def) = net.subnet(&name.value) else {
            return Err(Diagnostic::new(
                format!("unknown sub-network \"{}\"", name.value),
                name.span,
                "no `subnet` has this name",
            )
            .suggest(&name.value, net.subnets.iter().map(|s| s.name.value.as_str())));
        };
        if self.stack.contains(&def.name.value.as_str()) {
            let chain: Vec<&str> = self.stack.iter().copied().chain([def.name.value.as_str()]).collect();
            return Err(Diagnostic::new(
                format!("sub-networks apply each other in a cycle: {}", chain.join(" applies ")),
                name.span,
                "applied again here",
            )
            .note_at(format!("sub-network \"{}\" is defined", def.name.value), def.name.span));
        }
        let count_error = |what: &str, given: usize, wanted: usize| {
            Diagnostic::new(
                format!(
                    "layer \"{}\" gives sub-network \"{}\" {given} {what}s but it declares {wanted}",
                    layer.name.value, def.name.value
                ),
                layer.kind_span,
                format!("expected {wanted} {what}(s)"),
            )
            .note_at(format!("sub-network \"{}\" is defined", def.name.value), def.name.span)
        };
        if bottoms.len() != def.inputs.len() {
            return Err(count_error("bottom", bottoms.len(), def.inputs.len()));
        }
        if layer.tops.len() != def.outputs.len() {
            return Err(count_error("top", layer.tops.len(), def.outputs.len()));
        }
        let layers: Vec<&LayerDef> = def.layers.iter().filter(|l| l.in_phase(self.opts.phase)).collect();
        self.stack.push(def.name.value.as_str());
        let scope = Scope { prefix: format!("{path}/"), subnet: Some(def.name.value.as_str()) };
        let tops = self.lower_scope(&layers, &def.inputs, bottoms, &scope)?;
        self.stack.pop();
        def.outputs
            .iter()
            .map(|out| match final_version(&layers, &def.inputs, &out.value) {
                Some(ValueRef::Input(k)) => Ok(bottoms[k].node),
                Some(ValueRef::Top { layer, top }) => Ok(tops[layer][top].node),
                None => Err(Diagnostic::new(
                    format!(
                        "output \"{}\" of sub-network \"{}\" is not written by any of its layers",
                        out.value, def.name.value
                    ),
                    out.span,
                    "never written",
                )),
            })
            .collect()
    }
}
