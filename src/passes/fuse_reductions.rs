//! Reduction fusion: a sum or mean whose input is an elementwise expression computed only for
//! it becomes one `FusedReduce` node, which evaluates the expression block by block into the
//! running sums instead of writing it to memory and reading it back (the VAE's KL term, the
//! losses, BatchNorm's statistics, bias gradients).
//!
//! Requires: shapes inferred; runs after elementwise fusion (so an expression is one `Fused`
//! node) and, like it, only on whole training programs, never before differentiation.
//! Ensures: a `Reduce` whose input is a `Fused`, unary or binary node with no other consumer,
//! named by no table, is replaced by a `FusedReduce` over that node's inputs, computing the same
//! sums in the same order (bit for bit). Preserves: every value the tables name. Invalidates:
//! node ids of the replaced reductions and of the absorbed expressions.

use graphc_runtime::fused::{FusedExpr, ScalarInstr};

use std::collections::HashSet;

use super::{drop_unread, named_nodes, use_counts, Pass};
use crate::ir::{Graph, Op};

/// The pass.
pub struct FuseReductions;

impl Pass for FuseReductions {
    fn name(&self) -> &'static str {
        "fuse-reductions"
    }

    fn run(&self, graph: &mut Graph) -> usize {
        let (uses, named) = (use_counts(graph), named_nodes(graph));
        let mut absorbed = HashSet::new();
        for id in graph.topo_order() {
            let Op::Reduce { op, axes } = graph.node(id).op.clone() else { continue };
            let input = graph.inputs(id)[0];
            if uses.get(&input) != Some(&1) || named.contains(&input) {
                continue;
            }
            let Some(expr) = expression_of(&graph.node(input).op) else { continue };
            let origin = graph.node(id).origin.clone();
            let inputs = graph.inputs(input);
            // The expression's inputs have the reduction input's shape, so this cannot fail; if
            // it did, the reduction would stay as it is.
            let Ok(node) = graph.add(Op::FusedReduce { expr, op, axes }, &inputs, origin) else { continue };
            graph.replace_all_uses(id, node);
            absorbed.insert(input);
        }
        // The absorbed expressions have no consumer left.
        drop_unread(graph, &absorbed);
        absorbed.len()
    }
}

/// The expression an elementwise node computes over its inputs.
fn expression_of(op: &Op) -> Option<FusedExpr> {
    let single = |instr: ScalarInstr, inputs: usize| {
        let mut instrs: Vec<ScalarInstr> = (0..inputs as u8).map(ScalarInstr::Input).collect();
        instrs.push(instr);
        FusedExpr { inputs, instrs }
    };
    match op {
        Op::Fused(expr) => Some(expr.clone()),
        Op::Unary(u) => Some(single(ScalarInstr::Unary(*u, 0), 1)),
        Op::Binary(b) => Some(single(ScalarInstr::Binary(*b, 0, 1), 2)),
        _ => None,
    }
}
