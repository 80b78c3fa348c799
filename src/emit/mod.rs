//! Output formats of `graphc compile --emit`: `summary`, `memory`, `passes`, `yaml` and `dot` (`ir` is
//! [`crate::ir::print_graph`]), and the measures they share: node numbering, per-node FLOP
//! estimates, parameter ownership and number formatting.

mod dot;
mod memory;
mod passes;
mod summary;
mod table;
mod yaml;

pub use dot::dot;
pub use memory::memory;
pub use passes::passes;
pub use summary::summary;
pub use yaml::yaml;

use std::collections::HashMap;

use crate::ir::{Graph, LayerRecord, NodeId, Op, ParamKind};

/// The topological number of every node still in `graph` (the `%n` of the IR listing). Tables of
/// a graph restricted to a solver phase may name nodes it no longer holds; they have no number.
fn numbering(graph: &Graph) -> HashMap<NodeId, usize> {
    graph.topo_order().into_iter().enumerate().map(|(i, n)| (n, i)).collect()
}

/// `n` with thousands separators, e.g. `2,844,844`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Estimated forward FLOPs of node `id` for one batch: multiply-adds count two, elementwise ops
/// one per output element; data movement (reshapes, slices, broadcasts, sources) counts nothing.
fn node_flops(graph: &Graph, id: NodeId) -> u64 {
    let flops = node_flops_wide(graph, id);
    u64::try_from(flops).unwrap_or(u64::MAX)
}

/// [`node_flops`] in 128 bits: sizes are bounded by 2^40 elements, so products of two fit.
fn node_flops_wide(graph: &Graph, id: NodeId) -> u128 {
    let node = graph.node(id);
    let out = node.shape.numel() as u128;
    let input = |slot: usize| graph.inputs(id).get(slot).map_or(Vec::new(), |i| graph.shape(*i).0.clone());
    let numel = |dims: &[usize]| dims.iter().product::<usize>() as u128;
    match &node.op {
        Op::MatMul { trans_a, .. } => {
            let a = input(0);
            let k = if *trans_a { a.first() } else { a.get(1) };
            2 * out * k.copied().unwrap_or(0) as u128
        }
        // Weight O×C×kh×kw: every output element is a dot product of length C·kh·kw.
        Op::Conv2d(_) => 2 * out * numel(input(1).get(1..).unwrap_or_default()),
        // Weight C×O×kh×kw: every input element is scattered into O·kh·kw outputs.
        Op::ConvTranspose2d(_) => 2 * numel(&input(0)) * numel(input(1).get(1..).unwrap_or_default()),
        Op::Pool2d(p) | Op::Pool2dGrad(p) => out * (p.kernel[0] * p.kernel[1]) as u128,
        // Four taps per pixel, a multiply and an add each.
        Op::Warp2d(_) | Op::Warp2dGrad(_) => 8 * out,
        Op::Conv2dGradWeight { .. } => 2 * out * numel(input(1).get(2..).unwrap_or_default()) * input(0)[0] as u128,
        Op::Unary(_) | Op::Binary(_) => out,
        // As the unfused ops: one operation per element and instruction.
        Op::Fused(expr) => out * expr.op_count() as u128,
        // The base op's FLOPs are counted as if it stood alone; the bias and activation add two
        // per element.
        Op::Epilogue { .. } => 2 * out,
        Op::FusedReduce { expr, .. } => {
            let elements = (0..expr.inputs).map(|i| numel(&input(i))).max().unwrap_or(0);
            elements * (expr.op_count() as u128 + 1)
        }
        Op::Softmax { .. } | Op::LogSoftmax { .. } => 3 * out,
        Op::Reduce { .. } | Op::Accuracy { .. } => numel(&input(0)),
        Op::Input { .. }
        | Op::Param { .. }
        | Op::Const { .. }
        | Op::Sample { .. }
        | Op::Reshape { .. }
        | Op::Broadcast { .. }
        | Op::Slice { .. }
        | Op::Concat { .. }
        | Op::Upsample2d { .. }
        | Op::OneHot { .. }
        | Op::StopGradient => 0,
    }
}

/// Learned parameter elements per owning layer path (running statistics are state, not counted).
fn learned_by_owner(graph: &Graph) -> HashMap<&str, u64> {
    let mut owned: HashMap<&str, u64> = HashMap::new();
    for p in graph.params.iter().filter(|p| p.kind == ParamKind::Learned) {
        *owned.entry(p.owner.as_str()).or_default() += p.shape.numel() as u64;
    }
    owned
}

/// Whether `layer` uses a parameter that another layer owns (a shared parameter).
fn uses_shared(graph: &Graph, layer: &LayerRecord) -> bool {
    layer.params.iter().filter_map(|name| graph.param(name)).any(|p| p.owner != layer.path)
}

/// The shapes of the nodes among `ids` that `graph` still holds, e.g. `[128,64,14,14] [128,10]`.
fn shapes(graph: &Graph, ids: &[NodeId], live: &HashMap<NodeId, usize>) -> String {
    let shapes: Vec<String> =
        ids.iter().filter(|id| live.contains_key(id)).map(|id| graph.shape(*id).to_string()).collect();
    shapes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(2_844_844), "2,844,844");
        assert_eq!(thousands(12_345_678_901), "12,345,678,901");
    }
}
