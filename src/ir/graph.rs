//! The IR container: a petgraph `StableDiGraph` of [`Node`]s plus the tables that give the graph
//! its meaning to users: parameters, named blobs, layers and losses.

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::op::Op;
use super::shape::{infer_shape, Shape};
use crate::error::Span;
use crate::schema::Filler;

/// The most elements one value may have (2^40): bounds every size product in the compiler.
pub const MAX_ELEMENTS: usize = 1 << 40;

/// Why [`Graph::add`] refused a node.
#[derive(Clone, Debug, PartialEq)]
pub enum AddError {
    /// The inputs' shapes do not fit the op's shape rule.
    Shape(String),
    /// The result would have more than [`MAX_ELEMENTS`] elements.
    TooLarge(Shape),
}

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            AddError::Shape(detail) => f.write_str(detail),
            AddError::TooLarge(shape) => write!(f, "the result {shape} would have more than 2^40 elements"),
        }
    }
}

/// A node's id; stable across removals.
pub type NodeId = NodeIndex;

/// Where a node came from: the layer (with its sub-network path) and the layer's source span.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// Layer path, e.g. `d_real/conv1` for layer `conv1` applied by layer `d_real`.
    pub layer: String,
    /// The layer block in the source file.
    pub span: Span,
}

/// An IR node: one op, its output shape and its origin.
#[derive(Clone, Debug)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Output shape.
    pub shape: Shape,
    /// The layer that produced it.
    pub origin: Origin,
}

/// An edge: the input slot of the consumer it feeds.
#[derive(Clone, Copy, Debug)]
pub struct Edge {
    /// Input position.
    pub slot: u8,
}

/// Whether a parameter is learned or running statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ParamKind {
    /// Learned by the optimizer.
    Learned,
    /// Updated by the forward pass (BatchNorm running mean and variance).
    RunningStat,
    /// An optimizer's state for one parameter (momentum, Adam's moments).
    OptimizerState,
}

/// A parameter: one `Param` node with its filler and optimizer multipliers.
#[derive(Clone, Debug)]
pub struct ParamInfo {
    /// Unique name (`discriminator/conv1.weight`, or a `param { name }`).
    pub name: String,
    /// Shape.
    pub shape: Shape,
    /// Initial values.
    pub filler: Filler,
    /// Learning-rate multiplier.
    pub lr_mult: f32,
    /// Weight-decay multiplier.
    pub decay_mult: f32,
    /// Learned or running statistic.
    pub kind: ParamKind,
    /// Its node.
    pub node: NodeId,
    /// The layer that owns it (the first to use it).
    pub owner: String,
    /// The sub-network that declares the owning layer (`None` at top level).
    pub subnet: Option<String>,
    /// Every layer that uses it, owner first.
    pub users: Vec<String>,
}

/// A named blob (a layer top) and the node holding its value.
#[derive(Clone, Debug)]
pub struct Blob {
    /// Blob name, with the sub-network path for blobs inside applications.
    pub name: String,
    /// Its value.
    pub node: NodeId,
}

/// A layer as applied in this graph, for summaries and drawings.
#[derive(Clone, Debug)]
pub struct LayerRecord {
    /// Layer path.
    pub path: String,
    /// Layer type name.
    pub type_name: &'static str,
    /// Input values.
    pub bottoms: Vec<NodeId>,
    /// Output values.
    pub tops: Vec<NodeId>,
    /// Parameters it uses.
    pub params: Vec<String>,
    /// Whether it is a loss layer.
    pub is_loss: bool,
    /// For a `Subnet` layer, the sub-network it applies.
    pub applies: Option<String>,
    /// Where it is written.
    pub span: Span,
}

/// A weighted loss the net minimizes by default (Caffe's `loss_weight`).
#[derive(Clone, Debug)]
pub struct LossTerm {
    /// The blob.
    pub blob: String,
    /// Its node.
    pub node: NodeId,
    /// Its weight.
    pub weight: f32,
    /// The first iteration at which it counts (its weight is 0 before); 0 for a layer's
    /// `loss_weight`.
    pub start_iter: u64,
}

/// A new value for a state buffer, taken after each run of the program: running statistics in
/// the forward graph, parameters and optimizer state in a training program.
#[derive(Clone, Debug)]
pub struct StateUpdate {
    /// The parameter (or state) updated.
    pub param: String,
    /// Its new value.
    pub value: NodeId,
}

/// The IR graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    g: StableDiGraph<Node, Edge>,
    /// Parameters in creation order.
    pub params: Vec<ParamInfo>,
    /// Named blobs in creation order.
    pub blobs: Vec<Blob>,
    /// Layers in execution order.
    pub layers: Vec<LayerRecord>,
    /// Default losses.
    pub losses: Vec<LossTerm>,
    /// State updates.
    pub updates: Vec<StateUpdate>,
}

impl Graph {
    /// Adds a node after checking its inputs' shapes against the op's shape rule.
    pub fn add(&mut self, op: Op, inputs: &[NodeId], origin: Origin) -> Result<NodeId, AddError> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|i| self.g[*i].shape.0.as_slice()).collect();
        let shape = Shape(infer_shape(&op, &shapes).map_err(AddError::Shape)?);
        if shape.0.iter().try_fold(1usize, |n, d| n.checked_mul(*d)).is_none_or(|n| n > MAX_ELEMENTS) {
            return Err(AddError::TooLarge(shape));
        }
        let id = self.g.add_node(Node { op, shape, origin });
        for (slot, input) in inputs.iter().enumerate() {
            self.g.add_edge(*input, id, Edge { slot: slot as u8 });
        }
        Ok(id)
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id]
    }

    /// The shape of node `id`.
    pub fn shape(&self, id: NodeId) -> &Shape {
        &self.g[id].shape
    }

    /// Inputs of `id` in slot order.
    pub fn inputs(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(u8, NodeId)> =
            self.g.edges_directed(id, Direction::Incoming).map(|e| (e.weight().slot, e.source())).collect();
        edges.sort_by_key(|(slot, _)| *slot);
        edges.into_iter().map(|(_, n)| n).collect()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.g.node_count()
    }

    /// Node ids in a deterministic topological order (ties broken by creation order).
    pub fn topo_order(&self) -> Vec<NodeId> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut indegree: std::collections::HashMap<NodeId, usize> =
            self.g.node_indices().map(|n| (n, self.g.edges_directed(n, Direction::Incoming).count())).collect();
        let mut ready: BinaryHeap<Reverse<NodeId>> =
            indegree.iter().filter(|(_, d)| **d == 0).map(|(n, _)| Reverse(*n)).collect();
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let d = indegree.get_mut(&e.target()).expect("edge target is a node");
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(e.target()));
                }
            }
        }
        order
    }

    /// Nodes that `roots` depend on (roots included).
    pub fn ancestors(&self, roots: &[NodeId]) -> std::collections::HashSet<NodeId> {
        let mut seen: std::collections::HashSet<NodeId> = roots.iter().copied().collect();
        let mut stack = roots.to_vec();
        while let Some(n) = stack.pop() {
            for e in self.g.edges_directed(n, Direction::Incoming) {
                if seen.insert(e.source()) {
                    stack.push(e.source());
                }
            }
        }
        seen
    }

    /// Makes every use of `old` (edges and table entries) a use of `new`, then removes `old`.
    pub fn replace_all_uses(&mut self, old: NodeId, new: NodeId) {
        let uses: Vec<(NodeId, u8)> =
            self.g.edges_directed(old, Direction::Outgoing).map(|e| (e.target(), e.weight().slot)).collect();
        for (target, slot) in uses {
            self.g.add_edge(new, target, Edge { slot });
        }
        let swap = |id: &mut NodeId| {
            if *id == old {
                *id = new;
            }
        };
        self.blobs.iter_mut().for_each(|b| swap(&mut b.node));
        self.losses.iter_mut().for_each(|l| swap(&mut l.node));
        self.updates.iter_mut().for_each(|u| swap(&mut u.value));
        self.params.iter_mut().for_each(|p| swap(&mut p.node));
        for layer in &mut self.layers {
            layer.bottoms.iter_mut().chain(layer.tops.iter_mut()).for_each(swap);
        }
        self.g.remove_node(old);
    }

    /// Keeps only the nodes in `keep`, and the table entries that refer to them.
    pub fn retain(&mut self, keep: &std::collections::HashSet<NodeId>) {
        self.g.retain_nodes(|_, n| keep.contains(&n));
        self.params.retain(|p| keep.contains(&p.node));
        self.blobs.retain(|b| keep.contains(&b.node));
        self.layers.retain(|l| l.tops.iter().any(|t| keep.contains(t)));
        self.losses.retain(|l| keep.contains(&l.node));
        self.updates.retain(|u| keep.contains(&u.value));
    }

    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The node of the blob called `name`.
    pub fn blob(&self, name: &str) -> Option<NodeId> {
        self.blobs.iter().rev().find(|b| b.name == name).map(|b| b.node)
    }
}
