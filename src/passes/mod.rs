//! Optimization passes over the IR, each in its own file with its contract, run in a fixed order
//! by [`optimize_with`]. `--opt-level 0` runs none.

mod cse;
mod dce;
mod fuse_elementwise;
mod fuse_epilogues;
mod fuse_reductions;
mod simplify;

use std::collections::{HashMap, HashSet};

use crate::ir::{Graph, NodeId};

/// A graph-to-graph optimization.
pub trait Pass {
    /// Its name (kebab-case), as listings and `--passes` use it.
    fn name(&self) -> &'static str;
    /// Runs the pass; returns how many nodes it changed or removed.
    fn run(&self, graph: &mut Graph) -> usize;
}

/// The passes of an optimization level, in order: none at 0; simplification, CSE and dead-code
/// elimination at 1; and epilogue, elementwise and reduction fusion at 2.
pub fn pipeline(opt_level: u8) -> Vec<Box<dyn Pass>> {
    let mut passes: Vec<Box<dyn Pass>> = Vec::new();
    if opt_level >= 1 {
        passes.extend([Box::new(simplify::Simplify) as Box<dyn Pass>, Box::new(cse::Cse), Box::new(dce::Dce)]);
    }
    if opt_level >= 2 {
        passes.extend([
            Box::new(fuse_epilogues::FuseEpilogues) as Box<dyn Pass>,
            Box::new(fuse_elementwise::FuseElementwise),
            Box::new(fuse_reductions::FuseReductions),
        ]);
    }
    passes
}

/// What one pass did: the changes it reports, the nodes left after it and its run time.
#[derive(Clone, Debug)]
pub struct PassRecord {
    /// The pass's name.
    pub name: &'static str,
    /// Nodes it changed or removed.
    pub changed: usize,
    /// Nodes in the graph after it.
    pub nodes: usize,
    /// Its run time.
    pub time: std::time::Duration,
}

/// Runs the passes of level 2 named in `names`, in the level's order (tests compare programs
/// with and without one pass this way); returns what each pass did.
pub fn optimize_with(graph: &mut Graph, names: &[&str]) -> Vec<PassRecord> {
    let passes = pipeline(2).into_iter().filter(|pass| names.contains(&pass.name()));
    passes
        .map(|pass| {
            let started = std::time::Instant::now();
            let changed = pass.run(graph);
            PassRecord { name: pass.name(), changed, nodes: graph.node_count(), time: started.elapsed() }
        })
        .collect()
}

/// The names of the passes of `opt_level`, in the pipeline's order.
pub fn level_names(opt_level: u8) -> Vec<&'static str> {
    pipeline(opt_level).iter().map(|pass| pass.name()).collect()
}

/// Checks `names` (as `--passes` gives them) against the known passes and returns them in the
/// pipeline's fixed order, whatever order they were written in.
pub fn select(names: &[String]) -> Result<Vec<&'static str>, String> {
    let known = level_names(2);
    if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
        let hint = crate::error::did_you_mean(unknown, known.iter().copied())
            .map_or(String::new(), |best| format!(" (did you mean \"{best}\"?)"));
        return Err(format!("unknown pass \"{unknown}\"{hint}; the passes are {}", known.join(", ")));
    }
    Ok(known.into_iter().filter(|k| names.iter().any(|n| n == k)).collect())
}

/// Removes the nodes of `candidates` that no node outside them reads (directly or through other
/// candidates that are read).
fn drop_unread(graph: &mut Graph, candidates: &HashSet<NodeId>) {
    let mut keep: HashSet<NodeId> = HashSet::new();
    let mut read: HashSet<NodeId> = HashSet::new();
    for id in graph.topo_order().into_iter().rev() {
        if !candidates.contains(&id) || read.contains(&id) {
            keep.insert(id);
            read.extend(graph.inputs(id));
        }
    }
    graph.retain(&keep);
}

/// How many inputs of other nodes each node is.
fn use_counts(graph: &Graph) -> HashMap<NodeId, usize> {
    let mut uses: HashMap<NodeId, usize> = HashMap::new();
    for id in graph.topo_order() {
        for input in graph.inputs(id) {
            *uses.entry(input).or_default() += 1;
        }
    }
    uses
}

/// The nodes the graph's tables name (blobs, losses, updates, layer tops and bottoms): fusion
/// never absorbs them, so their values stay computed.
fn named_nodes(graph: &Graph) -> HashSet<NodeId> {
    graph
        .blobs
        .iter()
        .map(|b| b.node)
        .chain(graph.losses.iter().map(|l| l.node))
        .chain(graph.updates.iter().map(|u| u.value))
        .chain(graph.layers.iter().flat_map(|l| l.bottoms.iter().chain(&l.tops).copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_keeps_the_pipeline_order_and_rejects_unknown_names() {
        let names = |s: &[&str]| s.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(select(&names(&["dce", "cse"])).unwrap(), ["cse", "dce"]);
        assert_eq!(select(&names(&["cse", "simplify"])).unwrap(), ["simplify", "cse"]);
        let err = select(&names(&["cse", "fuse"])).unwrap_err();
        assert!(err.contains("unknown pass \"fuse\""), "{err}");
        assert_eq!(level_names(0), Vec::<&str>::new());
        assert_eq!(level_names(1), ["simplify", "cse", "dce"]);
        assert_eq!(level_names(2), ["simplify", "cse", "dce", "fuse-epilogues", "fuse-elementwise", "fuse-reductions"]);
    }
}
