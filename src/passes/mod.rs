//! Optimization passes over the IR, each in its own file with its contract, run in a fixed order
//! by [`optimize`]. `--opt-level 0` runs none.

mod cse;
mod dce;

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
        _ => vec![Box::new(cse::Cse), Box::new(dce::Dce)],
    }
}

/// Runs the passes of `opt_level` on `graph`; returns (pass name, changes) per pass.
pub fn optimize(graph: &mut Graph, opt_level: u8) -> Vec<(&'static str, usize)> {
    pipeline(opt_level).iter().map(|pass| (pass.name(), pass.run(graph))).collect()
}
