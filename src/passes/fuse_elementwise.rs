//! Elementwise fusion: chains and trees of elementwise ops become one `Fused` node, evaluated by
//! one kernel call without intermediate buffers. Adam's update of a parameter is ~15 elementwise
//! ops; fused, it is three kernels (the two moments, which are state, and the new parameter).
//!
//! Requires: shapes inferred; the graph is not differentiated afterwards (autodiff has no rule
//! for `Fused`, so the forward graph is optimized without this pass). Ensures: each region is
//! grown greedily from its root (the last op, walking backwards in topological order) through
//! producers of the root's shape that only it reads; every `Fused` node has at most
//! [`MAX_INPUTS`] inputs, at least one of them shaped as its output unless it is a scalar, and
//! computes bit for bit what the ops it replaces computed. No value is computed twice: an op is
//! absorbed only into its only consumer (a broadcast scalar, which costs nothing to repeat, into
//! each). Preserves: every value the tables name (blobs, losses, updates, layer tops and bottoms):
//! such a value is never absorbed, only the root of a region, whose uses move to the fused node,
//! which keeps the root's origin. Invalidates: node ids of the ops replaced.

use std::collections::{HashMap, HashSet};

use graphc_runtime::fused::{FusedExpr, ScalarInstr};

use super::{drop_unread, named_nodes, use_counts, Pass};
use crate::ir::{Graph, NodeId, Op};

/// The most inputs a fused node takes.
pub const MAX_INPUTS: usize = 8;

/// The pass.
pub struct FuseElementwise;

impl Pass for FuseElementwise {
    fn name(&self) -> &'static str {
        "fuse-elementwise"
    }

    fn run(&self, graph: &mut Graph) -> usize {
        let order = graph.topo_order();
        let (uses, named) = (use_counts(graph), named_nodes(graph));
        let mut absorbed: HashSet<NodeId> = HashSet::new();
        let mut replaced = 0;
        for &root in order.iter().rev() {
            if absorbed.contains(&root) || !matches!(graph.node(root).op, Op::Unary(_) | Op::Binary(_)) {
                continue;
            }
            let region = grow(graph, root, &uses, &named);
            if region.len() < 2 {
                continue;
            }
            let (expr, leaves) = expression(graph, root, &region);
            let origin = graph.node(root).origin.clone();
            let fused = graph.add(Op::Fused(expr), &leaves, origin).expect("a region's inputs fit its output");
            graph.replace_all_uses(root, fused);
            absorbed.extend(region.iter().filter(|n| **n != root));
            replaced += region.len();
        }
        // Absorbed nodes are now read only by each other, except broadcast scalars that another
        // consumer still reads: keep those, drop the rest.
        drop_unread(graph, &absorbed);
        replaced
    }
}

/// Whether `id` is a broadcast of a scalar (folded into a fused node as a scalar input).
fn is_scalar_broadcast(graph: &Graph, id: NodeId) -> bool {
    matches!(graph.node(id).op, Op::Broadcast { .. }) && graph.inputs(id).iter().all(|i| graph.shape(*i).0.is_empty())
}

/// The region fused at `root`: `root` and the producers absorbed into it, grown greedily from
/// the root's inputs while the region keeps at most [`MAX_INPUTS`] inputs.
fn grow(graph: &Graph, root: NodeId, uses: &HashMap<NodeId, usize>, named: &HashSet<NodeId>) -> HashSet<NodeId> {
    let shape = &graph.shape(root).0;
    let absorbable = |id: NodeId| {
        let sole_use = uses.get(&id) == Some(&1) && matches!(graph.node(id).op, Op::Unary(_) | Op::Binary(_));
        (sole_use || is_scalar_broadcast(graph, id)) && !named.contains(&id) && graph.shape(id).0 == *shape
    };
    let mut region: HashSet<NodeId> = HashSet::from([root]);
    let mut refused: HashSet<NodeId> = HashSet::new();
    loop {
        let candidate = leaves(graph, root, &region).into_iter().find(|l| !refused.contains(l) && absorbable(*l));
        let Some(candidate) = candidate else { break };
        region.insert(candidate);
        if leaves(graph, root, &region).len() > MAX_INPUTS {
            region.remove(&candidate);
            refused.insert(candidate);
        }
    }
    // The output shape must come from an input: a region fed only by broadcast scalars keeps one
    // broadcast as an input.
    if !shape.is_empty() && leaves(graph, root, &region).iter().all(|l| graph.shape(*l).0.is_empty()) {
        let kept = dfs(graph, root, &region).into_iter().find(|n| is_scalar_broadcast(graph, *n));
        region.remove(&kept.expect("only broadcasts make a scalar input of a tensor region"));
    }
    region
}

/// The region's nodes and inputs in depth-first order from `root`, inputs by slot, each once.
fn dfs(graph: &Graph, root: NodeId, region: &HashSet<NodeId>) -> Vec<NodeId> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        order.push(n);
        if region.contains(&n) {
            stack.extend(graph.inputs(n).into_iter().rev());
        }
    }
    order
}

/// The region's inputs, in first-use order.
fn leaves(graph: &Graph, root: NodeId, region: &HashSet<NodeId>) -> Vec<NodeId> {
    dfs(graph, root, region).into_iter().filter(|n| !region.contains(n)).collect()
}

/// The region as an expression, and its inputs in the order the expression numbers them.
fn expression(graph: &Graph, root: NodeId, region: &HashSet<NodeId>) -> (FusedExpr, Vec<NodeId>) {
    let inputs = leaves(graph, root, region);
    let mut instrs = Vec::new();
    let mut index: HashMap<NodeId, u16> = HashMap::new();
    emit(graph, root, region, &inputs, &mut instrs, &mut index);
    (FusedExpr { inputs: inputs.len(), instrs }, inputs)
}

/// Appends the instructions computing `id` (post-order, each node once); returns its index.
fn emit(
    graph: &Graph,
    id: NodeId,
    region: &HashSet<NodeId>,
    inputs: &[NodeId],
    instrs: &mut Vec<ScalarInstr>,
    index: &mut HashMap<NodeId, u16>,
) -> u16 {
    if let Some(i) = index.get(&id) {
        return *i;
    }
    let args: Vec<u16> = if region.contains(&id) {
        graph.inputs(id).into_iter().map(|i| emit(graph, i, region, inputs, instrs, index)).collect()
    } else {
        Vec::new()
    };
    let instr = match &graph.node(id).op {
        _ if !region.contains(&id) => {
            let k = inputs.iter().position(|l| *l == id).expect("every region input is a leaf");
            ScalarInstr::Input(k as u8)
        }
        Op::Unary(op) => ScalarInstr::Unary(*op, args[0]),
        Op::Binary(op) => ScalarInstr::Binary(*op, args[0], args[1]),
        // A broadcast scalar is its input, read by every element.
        Op::Broadcast { .. } => {
            index.insert(id, args[0]);
            return args[0];
        }
        op => unreachable!("{} is not fusable", op.name()),
    };
    let i = instrs.len() as u16;
    instrs.push(instr);
    index.insert(id, i);
    i
}
