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

fn run_all(passes: &[Box<dyn Pass>], graph: &mut Graph) -> Vec<(&'static str, usize)> {
    passes.iter().map(|pass| (pass.name(), pass.run(graph))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_keeps_the_pipeline_order_and_rejects_unknown_names() {
        let names = |s: &[&str]| s.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(select(&names(&["dce", "cse"])).unwrap(), ["cse", "dce"]);
        let err = select(&names(&["cse", "fuse"])).unwrap_err();
        assert!(err.contains("unknown pass \"fuse\""), "{err}");
        assert_eq!(level_names(0), Vec::<&str>::new());
        assert_eq!(level_names(2), ["cse", "dce", "fuse-elementwise"]);
    }
}
