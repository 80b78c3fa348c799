//! graphc: a compiler from Caffe-style graph files to an IR and execution plans.
//!
//! The pipeline, in order, all in [`compile`]:
//! 1. [`syntax::parse`]: pest grammar → schema-free field tree;
//! 2. [`schema::parse_net`]: the typed net (layers, sub-networks, solver, generate block);
//! 3. [`build::build`]: sub-networks applied, blobs resolved, layers lowered to IR ops with shapes;
//! 4. [`phases::check_phases`] and [`phases::check_generate`]: the solver's phases and the
//!    generation block checked against the built graphs.

pub mod autodiff;
pub mod build;
pub mod data;
pub mod emit;
pub mod error;
pub mod eval;
pub mod ir;
pub mod lower;
pub mod passes;
pub mod phases;
pub mod schema;
pub mod syntax;
pub mod train;

use build::BuildOptions;
use error::{Diagnostic, SourceFile};
use ir::Graph;
use phases::{GenerateInfo, PhaseInfo};
use schema::{NetDef, NetPhase};

/// Which graph `compile` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhaseSelect {
    /// The whole net in a Caffe phase (TRAIN or TEST).
    Net(NetPhase),
    /// What one solver phase computes: the TRAIN net restricted to that phase's losses.
    Solver(String),
}

impl PhaseSelect {
    /// Parses `TRAIN`, `TEST` or a solver phase name.
    pub fn parse(name: &str) -> Self {
        match name {
            "TRAIN" => PhaseSelect::Net(NetPhase::Train),
            "TEST" => PhaseSelect::Net(NetPhase::Test),
            other => PhaseSelect::Solver(other.to_string()),
        }
    }
}

/// Compilation options.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// The graph to return.
    pub phase: PhaseSelect,
    /// Overrides the batch dimension (default: the solver's `batch_size`, else the file's).
    pub batch_size: Option<usize>,
    /// With a solver phase: return the phase's whole training program (forward, gradients,
    /// optimizer updates) instead of its forward graph.
    pub train: bool,
    /// Optimization level of training programs: 0 none, 1 simplification, CSE and dead-code
    /// elimination, 2 also fusion (see [`passes::pipeline`]).
    pub opt_level: u8,
    /// The passes to run instead of the level's (checked names, see [`passes::select`]).
    pub passes: Option<Vec<&'static str>>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            phase: PhaseSelect::Net(NetPhase::Train),
            batch_size: None,
            train: false,
            opt_level: 2,
            passes: None,
        }
    }
}

/// The result of compiling a graph file.
#[derive(Debug)]
pub struct Compiled {
    /// The typed net.
    pub net: NetDef,
    /// The selected graph.
    pub graph: Graph,
    /// The solver's phases, checked against the TRAIN graph (empty without a solver).
    pub phases: Vec<PhaseInfo>,
    /// The generation block, checked against the TEST graph.
    pub generate: Option<GenerateInfo>,
    /// The batch-size override in effect (from the options or the solver), if any.
    pub batch_size: Option<usize>,
    /// The passes training programs are built with, in order.
    pub passes: Vec<&'static str>,
}

/// Compiles a graph file: parses, checks and builds it, and checks its solver and generation
/// blocks. Every error is a [`Diagnostic`] pointing into `src`.
pub fn compile(src: &SourceFile, opts: &CompileOptions) -> Result<Compiled, Diagnostic> {
    let tree = syntax::parse(&src.text)?;
    let net = schema::parse_net(&tree)?;
    let batch_size = opts.batch_size.or(net.solver.as_ref().and_then(|s| s.batch_size.as_ref().map(|b| b.value)));
    let build_phase = |phase| build::build(&net, &BuildOptions { phase, batch_size });
    let pass_names = opts.passes.clone().unwrap_or_else(|| passes::level_names(opts.opt_level));
    let train = build_phase(NetPhase::Train)?;
    let phases = match &net.solver {
        Some(solver) => phases::check_phases(&net, solver, &train)?,
        None => Vec::new(),
    };
    let test = build_phase(NetPhase::Test)?;
    let generate = net.generate.as_ref().map(|g| phases::check_generate(g, &test)).transpose()?;
    let graph = match &opts.phase {
        PhaseSelect::Net(NetPhase::Train) => train,
        PhaseSelect::Net(NetPhase::Test) => test,
        PhaseSelect::Solver(name) => {
            let Some(phase) = phases.iter().find(|p| p.name == *name) else {
                let known: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
                let span = net.solver.as_ref().map_or(error::Span::default(), |s| s.span);
                let listed = if known.is_empty() {
                    "the file has no solver phases".to_string()
                } else {
                    format!("phases are TRAIN, TEST, {}", known.join(", "))
                };
                return Err(Diagnostic::new(format!("no phase named \"{name}\""), span, listed).suggest(name, known));
            };
            if opts.train {
                autodiff::training_program_with(&train, phase, &pass_names)
            } else {
                phases::restrict_to_phase(train, phase)
            }
        }
    };
    if opts.train && !matches!(opts.phase, PhaseSelect::Solver(_)) {
        let span = net.solver.as_ref().map_or(error::Span::default(), |s| s.span);
        return Err(Diagnostic::new("a training program is built per solver phase", span, "name one with --phase"));
    }
    Ok(Compiled { net, graph, phases, generate, batch_size, passes: pass_names })
}

/// The executable plan of one training step of solver phase `phase`: its training program
/// (forward, gradients and updates, built from the TRAIN graph `train` with `passes`), lowered to
/// kernel calls, with its memory planned so that the phase's losses stay readable after a run.
pub fn training_plan(train: &Graph, phase: &PhaseInfo, passes: &[&str]) -> graphc_runtime::Plan {
    let program = autodiff::training_program_with(train, phase, passes);
    let mut plan = lower::to_plan(&program, &[]);
    let losses: Vec<&str> = phase.losses.iter().map(|l| l.blob.as_str()).collect();
    lower::plan_memory(&mut plan, &losses);
    plan
}
