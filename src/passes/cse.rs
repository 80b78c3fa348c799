//! Common-subexpression elimination, parameter-aware.
//!
//! Requires: shapes inferred. Ensures: no two live nodes compute the same op with the same
//! attributes on the same inputs; parameters count as inputs (a parameter is one node, so two
//! applications of a sub-network to the same value merge). Noise sources and data inputs are never
//! merged: two `Sample` nodes are two independent draws. Preserves: every value the tables name
//! (blobs, losses, updates), redirected to the surviving node. Invalidates: node ids.
//!
//! In InfoGAN this computes the discriminator/Q trunk once on the fake images, as the book's
//! figure (and openai/InfoGAN) share it, although the graph file applies it twice.

use std::collections::HashMap;

use super::Pass;
use crate::ir::{Graph, NodeId, Op};

/// The pass.
pub struct Cse;

impl Pass for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn run(&self, graph: &mut Graph) -> usize {
        let mut seen: HashMap<(Op, Vec<NodeId>), NodeId> = HashMap::new();
        let mut merged = 0;
        for id in graph.topo_order() {
            let op = graph.node(id).op.clone();
            if matches!(op, Op::Sample { .. } | Op::Input { .. }) {
                continue;
            }
            let key = (op, graph.inputs(id));
            match seen.get(&key) {
                Some(&first) => {
                    graph.replace_all_uses(id, first);
                    merged += 1;
                }
                None => {
                    seen.insert(key, id);
                }
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SourceFile;

    fn graph(text: &str) -> Graph {
        crate::compile(&SourceFile::new("t.g", text), &crate::CompileOptions::default()).unwrap().graph
    }

    #[test]
    fn cse_merges_repeated_applications_but_not_noise() {
        let mut g = graph(
            r#"layer { name: "z" type: "DummyData" top: "z" top: "z2" dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 3 } data_filler { type: "gaussian" } } }
            subnet { name: "f" input: "x" output: "y" layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 2 } } }
            layer { name: "a" type: "Subnet" bottom: "z" top: "a" subnet_param { name: "f" } }
            layer { name: "b" type: "Subnet" bottom: "z" top: "b" subnet_param { name: "f" } }
            layer { name: "c" type: "Subnet" bottom: "z2" top: "c" subnet_param { name: "f" } }"#,
        );
        assert_ne!(g.blob("a"), g.blob("b"));
        let merged = Cse.run(&mut g);
        // The second application's matmul, bias broadcast and add, and the third application's
        // bias broadcast (which does not depend on its input).
        assert_eq!(merged, 4);
        assert_eq!(g.blob("a"), g.blob("b"));
        assert_ne!(g.blob("a"), g.blob("c"), "different noise, different values");
        assert_ne!(g.blob("z"), g.blob("z2"), "noise sources never merge");
    }
}
