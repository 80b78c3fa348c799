//! Dead-code elimination.
//!
//! Requires: nothing. Ensures: every live node is needed by a loss or a state update (or is a
//! named blob's value when the graph has neither, as a plain forward graph). Preserves: losses,
//! updates, parameters that are still read. Invalidates: node ids of removed nodes.

use super::Pass;
use crate::ir::{Graph, NodeId};

/// The pass.
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&self, graph: &mut Graph) -> usize {
        let mut roots: Vec<NodeId> =
            graph.losses.iter().map(|l| l.node).chain(graph.updates.iter().map(|u| u.value)).collect();
        if roots.is_empty() {
            roots = graph.blobs.iter().map(|b| b.node).collect();
        }
        let keep = graph.ancestors(&roots);
        let before = graph.node_count();
        graph.retain(&keep);
        before - graph.node_count()
    }
}
