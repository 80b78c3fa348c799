//! Optimization passes over the IR, each in its own file with its contract, run in a fixed order
//! by [`optimize`]. `--opt-level 0` runs none.

mod cse;
mod dce;
mod fuse_elementwise;

use crate::ir::Graph;

/// A graph-to-graph optimization.
pub trait Pass {
    /// Its name (kebab-case), as listings and `--passes` use it.
    fn name(&self) -> &'static str;
    /// Runs the pass; returns how many nodes it changed or removed.
    fn run(&self, graph: &mut Graph) -> usize;
}

/// The passes of an optimization level, in order.
pub fn pipeline(opt_level: u8) -> Vec<Box<dyn Pass>> {
    match opt_level {
        0 => Vec::new(),
        _ => vec![Box::new(cse::Cse), Box::new(dce::Dce), Box::new(fuse_elementwise::FuseElementwise)],
    }
}

/// The passes of `opt_level` that keep a graph differentiable (all but fusion), in order.
pub fn pipeline_for_autodiff(opt_level: u8) -> Vec<Box<dyn Pass>> {
    pipeline(opt_level).into_iter().filter(|pass| pass.name() != "fuse-elementwise").collect()
}

/// Runs the passes of `opt_level` on `graph`; returns (pass name, changes) per pass.
pub fn optimize(graph: &mut Graph, opt_level: u8) -> Vec<(&'static str, usize)> {
    run_all(&pipeline(opt_level), graph)
}

/// Runs the passes of `opt_level` that keep `graph` differentiable: for a forward graph that
/// autodiff extends afterwards.
pub fn optimize_for_autodiff(graph: &mut Graph, opt_level: u8) -> Vec<(&'static str, usize)> {
    run_all(&pipeline_for_autodiff(opt_level), graph)
}

/// Runs the passes of level 2 named in `names`, in the level's order (tests compare programs
/// with and without one pass this way); returns (pass name, changes) per pass run.
pub fn optimize_with(graph: &mut Graph, names: &[&str]) -> Vec<(&'static str, usize)> {
    let passes: Vec<Box<dyn Pass>> = pipeline(2).into_iter().filter(|pass| names.contains(&pass.name())).collect();
    run_all(&passes, graph)
}

fn run_all(passes: &[Box<dyn Pass>], graph: &mut Graph) -> Vec<(&'static str, usize)> {
    passes.iter().map(|pass| (pass.name(), pass.run(graph))).collect()
}
