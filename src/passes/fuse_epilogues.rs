//! Epilogue fusion: the bias add (and the activation after it) of a matrix product or a
//! (transposed) convolution are folded into the kernel that computes the product, which applies
//! them to its output in place: no broadcast bias tensor, no separate add and activation
//! kernels, no intermediate buffers.
//!
//! Requires: shapes inferred; runs on whole training programs after differentiation, before
//! elementwise fusion (which would otherwise absorb the add). Ensures: `add(p, broadcast(bias))`
//! (either order) with `p` a `MatMul`, `Conv2d` or `ConvTranspose2d` read only by the add, the
//! bias a vector along axis 1 of `p`, neither `p` nor the broadcast named by a table, becomes
//! `Epilogue { base: p's op, activation }` over `p`'s inputs and the bias. The activation
//! (leaky ReLU, tanh or sigmoid) is absorbed when it is the add's only reader and the add is not
//! named. Results are bit-identical: the same f32 add, then the same activation function.
//! Preserves: every value the tables name. Invalidates: node ids of the replaced nodes.

use std::collections::HashSet;

use super::{drop_unread, named_nodes, use_counts, Pass};
use crate::ir::{BinaryOp, Graph, NodeId, Op, UnaryOp};

/// The pass.
pub struct FuseEpilogues;

impl Pass for FuseEpilogues {
    fn name(&self) -> &'static str {
        "fuse-epilogues"
    }

    fn run(&self, graph: &mut Graph) -> usize {
        let (uses, named) = (use_counts(graph), named_nodes(graph));
        let sole_unnamed_use = |id: NodeId| uses.get(&id) == Some(&1) && !named.contains(&id);
        let mut readers: std::collections::HashMap<NodeId, Vec<NodeId>> = Default::default();
        for id in graph.topo_order() {
            for input in graph.inputs(id) {
                readers.entry(input).or_default().push(id);
            }
        }
        let mut fused = 0;
        let mut absorbed: HashSet<NodeId> = HashSet::new();
        for add in graph.topo_order() {
            if absorbed.contains(&add) || graph.node(add).op != Op::Binary(BinaryOp::Add) {
                continue;
            }
            let Some((product, broadcast, bias)) = product_and_bias(graph, add) else { continue };
            if !sole_unnamed_use(product) || named.contains(&broadcast) {
                continue;
            }
            // The activation reading the add, when it is the add's only reader.
            let activation = readers.get(&add).and_then(|r| match r.as_slice() {
                [act] if sole_unnamed_use(add) => match graph.node(*act).op {
                    Op::Unary(op @ (UnaryOp::LeakyRelu(_) | UnaryOp::Tanh | UnaryOp::Sigmoid)) => Some((*act, op)),
                    _ => None,
                },
                _ => None,
            });
            let root = activation.map_or(add, |(act, _)| act);
            let base = Box::new(graph.node(product).op.clone());
            let mut inputs = graph.inputs(product);
            inputs.push(bias);
            let origin = graph.node(root).origin.clone();
            let op = Op::Epilogue { base, activation: activation.map(|(_, op)| op) };
            // The base op's and the bias's shapes were checked when they were built.
            let Ok(node) = graph.add(op, &inputs, origin) else { continue };
            graph.replace_all_uses(root, node);
            absorbed.extend([add, product, broadcast, root]);
            fused += 1;
        }
        // The broadcast bias may have other readers; everything else absorbed has none left.
        drop_unread(graph, &absorbed);
        fused
    }
}

/// For `add(p, broadcast(bias))` in either order: `p`, the broadcast and the bias vector, when
/// `p` is a matrix product or a (transposed) convolution and the bias runs along its axis 1.
fn product_and_bias(graph: &Graph, add: NodeId) -> Option<(NodeId, NodeId, NodeId)> {
    let inputs = graph.inputs(add);
    let is_product =
        |id: NodeId| matches!(graph.node(id).op, Op::MatMul { .. } | Op::Conv2d(_) | Op::ConvTranspose2d(_));
    let (product, broadcast) = match (is_product(inputs[0]), is_product(inputs[1])) {
        (true, _) => (inputs[0], inputs[1]),
        (_, true) => (inputs[1], inputs[0]),
        _ => return None,
    };
    let Op::Broadcast { dims, .. } = &graph.node(broadcast).op else { return None };
    let bias = *graph.inputs(broadcast).first()?;
    let channels = graph.shape(product).0.get(1).copied();
    (dims.as_slice() == [1] && Some(graph.shape(bias).0.as_slice()) == channels.as_ref().map(std::slice::from_ref))
        .then_some((product, broadcast, bias))
}
