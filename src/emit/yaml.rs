//! The IR as YAML (`graphc compile --emit yaml`), for tools: parameters, nodes with their ops,
//! inputs, shapes and source locations, blobs, layers, losses, solver phases and the generation
//! block. Nodes are numbered as in the `--emit ir` listing (topological order); enums are written
//! as single-key maps (`Conv2d: {stride: [2, 2], pad: [1, 1]}`) so that any YAML reader can load
//! them.

use serde::Serialize;
use serde_yaml_ng::Value;

use super::{node_flops, numbering};
use crate::error::{SourceFile, Span};
use crate::ir::{NodeId, Op, ParamKind};
use crate::schema::{Filler, OptimizerDef};
use crate::Compiled;

/// Serializes `c` to YAML; locations are `file:line:col` of `src`.
pub fn yaml(c: &Compiled, src: &SourceFile) -> String {
    let graph = &c.graph;
    let number = numbering(graph);
    let ids = |nodes: &[NodeId]| -> Vec<usize> { nodes.iter().filter_map(|n| number.get(n).copied()).collect() };
    let file = src.name.rsplit('/').next().unwrap_or(&src.name);
    let location = |span: Span| {
        let (line, col) = src.line_col(span.start);
        format!("{file}:{line}:{col}")
    };
    let mut order: Vec<(NodeId, usize)> = number.iter().map(|(n, i)| (*n, *i)).collect();
    order.sort_by_key(|(_, i)| *i);

    let doc = Document {
        name: c.net.name.as_deref(),
        params: graph
            .params
            .iter()
            .map(|p| ParamDoc {
                name: &p.name,
                node: number[&p.node],
                shape: &p.shape.0,
                numel: p.shape.numel(),
                kind: p.kind,
                filler: &p.filler,
                lr_mult: p.lr_mult,
                decay_mult: p.decay_mult,
                owner: &p.owner,
                subnet: p.subnet.as_deref(),
                users: &p.users,
            })
            .collect(),
        nodes: order
            .iter()
            .map(|(id, i)| {
                let node = graph.node(*id);
                NodeDoc {
                    id: *i,
                    op: node.op.name(),
                    attrs: &node.op,
                    inputs: ids(&graph.inputs(*id)),
                    shape: &node.shape.0,
                    flops: node_flops(graph, *id),
                    layer: &node.origin.layer,
                    location: location(node.origin.span),
                }
            })
            .collect(),
        blobs: graph.blobs.iter().map(|b| BlobDoc { name: &b.name, node: number[&b.node] }).collect(),
        layers: graph
            .layers
            .iter()
            .map(|l| LayerDoc {
                path: &l.path,
                r#type: l.type_name,
                bottoms: ids(&l.bottoms),
                tops: ids(&l.tops),
                params: &l.params,
                loss: l.is_loss,
                location: location(l.span),
            })
            .collect(),
        losses: graph
            .losses
            .iter()
            .map(|l| LossDoc { blob: &l.blob, node: number.get(&l.node).copied(), weight: l.weight, start_iter: 0 })
            .collect(),
        phases: c
            .phases
            .iter()
            .map(|p| PhaseDoc {
                name: &p.name,
                steps: p.steps,
                losses: p
                    .losses
                    .iter()
                    .map(|l| LossDoc { blob: &l.blob, node: None, weight: l.weight, start_iter: l.start_iter })
                    .collect(),
                params: &p.params,
                optimizer: &p.optimizer,
            })
            .collect(),
        generate: c.generate.as_ref().map(|g| GenerateDoc {
            image: &g.image.0,
            latents: g.latents.iter().map(|(name, _)| name.as_str()).collect(),
        }),
    };
    let mut value = serde_yaml_ng::with::singleton_map_recursive::serialize(&doc, serde_yaml_ng::value::Serializer)
        .expect("the document has only string keys");
    shorten_floats(&mut value);
    serde_yaml_ng::to_string(&value).expect("a YAML value serializes")
}

/// Writes every number that is an `f32` widened to `f64` (as the value tree stores them) in its
/// shortest `f32` form: `0.02`, not `0.019999999552965164`.
fn shorten_floats(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(wide) = n.as_f64().filter(|_| n.is_f64()) {
                let narrow = wide as f32;
                if f64::from(narrow) == wide {
                    if let Ok(short) = narrow.to_string().parse::<f64>() {
                        *n = short.into();
                    }
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(shorten_floats),
        Value::Mapping(map) => map.values_mut().for_each(shorten_floats),
        Value::Tagged(tagged) => shorten_floats(&mut tagged.value),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// The whole file.
#[derive(Serialize)]
struct Document<'a> {
    name: Option<&'a str>,
    params: Vec<ParamDoc<'a>>,
    nodes: Vec<NodeDoc<'a>>,
    blobs: Vec<BlobDoc<'a>>,
    layers: Vec<LayerDoc<'a>>,
    losses: Vec<LossDoc<'a>>,
    phases: Vec<PhaseDoc<'a>>,
    generate: Option<GenerateDoc<'a>>,
}

/// A parameter; `node` is its `param` node.
#[derive(Serialize)]
struct ParamDoc<'a> {
    name: &'a str,
    node: usize,
    shape: &'a [usize],
    numel: usize,
    kind: ParamKind,
    filler: &'a Filler,
    lr_mult: f32,
    decay_mult: f32,
    owner: &'a str,
    subnet: Option<&'a str>,
    users: &'a [String],
}

/// A node: `op` is the op's listing name, `attrs` the op with all its attributes.
#[derive(Serialize)]
struct NodeDoc<'a> {
    id: usize,
    op: &'static str,
    attrs: &'a Op,
    inputs: Vec<usize>,
    shape: &'a [usize],
    flops: u64,
    layer: &'a str,
    location: String,
}

/// A named blob and the node holding its value.
#[derive(Serialize)]
struct BlobDoc<'a> {
    name: &'a str,
    node: usize,
}

/// A layer as applied: the nodes it reads and writes and the parameters it uses.
#[derive(Serialize)]
struct LayerDoc<'a> {
    path: &'a str,
    r#type: &'static str,
    bottoms: Vec<usize>,
    tops: Vec<usize>,
    params: &'a [String],
    loss: bool,
    location: String,
}

/// A weighted loss; `node` is given for the graph's own losses, and omitted for a phase's
/// (numbered in the TRAIN graph, which may not be the one written).
#[derive(Serialize)]
struct LossDoc<'a> {
    blob: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<usize>,
    weight: f32,
    #[serde(skip_serializing_if = "is_zero")]
    start_iter: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A solver phase.
#[derive(Serialize)]
struct PhaseDoc<'a> {
    name: &'a str,
    steps: usize,
    losses: Vec<LossDoc<'a>>,
    params: &'a [String],
    optimizer: &'a OptimizerDef,
}

/// The generation block, by blob names (its nodes are in the TEST graph).
#[derive(Serialize)]
struct GenerateDoc<'a> {
    image: &'a str,
    latents: Vec<&'a str>,
}
