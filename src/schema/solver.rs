//! The `solver` block: training phases in order, each with its losses, the parameters it updates
//! and its optimizer (Caffe `SolverParameter` names), plus the run's schedule.

use super::reader::Reader;
use crate::error::{Diagnostic, Result, Span, Spanned};
use crate::syntax::Message;

/// Optimizer algorithm (Caffe's solver `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum OptimizerKind {
    /// SGD with (heavy-ball) momentum.
    Sgd,
    /// SGD with Nesterov momentum.
    Nesterov,
    /// Adam.
    Adam,
}

/// An optimizer and its hyper-parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OptimizerDef {
    /// The algorithm.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub base_lr: f32,
    /// Momentum (SGD), β1 (Adam).
    pub momentum: f32,
    /// β2 (Adam).
    pub momentum2: f32,
    /// ε (Adam).
    pub delta: f32,
    /// L2 weight decay.
    pub weight_decay: f32,
}

/// One weighted loss of a phase.
#[derive(Clone, Debug, PartialEq)]
pub struct LossRef {
    /// The scalar blob minimized.
    pub blob: Spanned<String>,
    /// Its weight (negative to maximize).
    pub weight: f32,
    /// The first iteration (counted from 0) at which the term counts: its weight is 0 before
    /// (a warm-up, `start_iter`).
    pub start_iter: u64,
}

/// One training phase.
#[derive(Clone, Debug)]
pub struct PhaseDef {
    /// Its name.
    pub name: Spanned<String>,
    /// Steps per iteration (the book's K for the discriminator).
    pub steps: usize,
    /// Losses minimized; empty means every loss layer by its `loss_weight`.
    pub losses: Vec<LossRef>,
    /// Sub-networks, layers or parameters updated; empty means all with `lr_mult` ≠ 0.
    pub updates: Vec<Spanned<String>>,
    /// Its optimizer.
    pub optimizer: OptimizerDef,
    /// The block.
    pub span: Span,
}

/// How long training runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Duration {
    /// A number of iterations.
    Iterations(usize),
    /// A number of passes over the training data.
    Epochs(usize),
}

/// The whole `solver` block.
#[derive(Clone, Debug)]
pub struct SolverDef {
    /// Phases, run in order each iteration.
    pub phases: Vec<PhaseDef>,
    /// Training length.
    pub duration: Duration,
    /// Log interval in iterations.
    pub display: usize,
    /// Checkpoint interval in iterations (0: only at the end).
    pub snapshot: usize,
    /// Seed of every random number.
    pub random_seed: u64,
    /// Overrides the batch dimension of data and noise layers.
    pub batch_size: Option<Spanned<usize>>,
    /// The block.
    pub span: Span,
}

/// Parses the `solver` block.
pub fn parse_solver(msg: &Message) -> Result<SolverDef> {
    let mut r = Reader::new("`solver`", msg);
    let max_iter = r.opt_usize("max_iter")?;
    let epochs = r.opt_usize("epochs")?;
    let duration = match (max_iter, epochs) {
        (Some(i), None) => Duration::Iterations(i.value),
        (None, Some(e)) => Duration::Epochs(e.value),
        (None, None) => return Err(r.missing("max_iter")),
        (Some(_), Some(e)) => {
            return Err(Diagnostic::new("give either `max_iter` or `epochs`, not both", e.span, "second length"))
        }
    };
    let display = r.positive_or("display", 100)?;
    let snapshot = r.usize_or("snapshot", 0)?;
    let random_seed = r.usize_or("random_seed", 1)? as u64;
    let batch_size = r.opt_usize("batch_size")?;
    let phases = r.msgs("phase")?.into_iter().map(parse_phase).collect::<Result<Vec<_>>>()?;
    r.finish()?;
    if let Some(b) = batch_size.as_ref().filter(|b| b.value == 0) {
        return Err(Diagnostic::new("`batch_size` must be positive", b.span, "is 0"));
    }
    if phases.is_empty() {
        return Err(r_missing_phase(msg.span));
    }
    for (i, phase) in phases.iter().enumerate() {
        if let Some(first) = phases[..i].iter().find(|p| p.name.value == phase.name.value) {
            return Err(Diagnostic::new(
                format!("two phases are named \"{}\"", phase.name.value),
                phase.name.span,
                "second phase",
            )
            .note_at("first defined", first.name.span));
        }
    }
    Ok(SolverDef { phases, duration, display, snapshot, random_seed, batch_size, span: msg.span })
}

fn r_missing_phase(span: Span) -> Diagnostic {
    Diagnostic::new("`solver` has no `phase`", Span::new(span.start, span.start + 1), "in this block")
        .help("add `phase { name: \"train\" type: \"Adam\" base_lr: 0.001 }`")
}

fn parse_phase(msg: &Message) -> Result<PhaseDef> {
    let mut r = Reader::new("`phase`", msg);
    let name = r.req_str("name")?;
    let mut r = Reader::new(format!("phase \"{}\"", name.value), msg);
    let _ = r.req_str("name")?;
    let steps = r.positive_or("steps", 1)?;
    let what = format!("`loss` of phase \"{}\"", name.value);
    let mut losses = Vec::new();
    for m in r.msgs("loss")? {
        let mut l = Reader::new(what.clone(), m);
        let (blob, weight) = (l.req_str("blob")?, l.f32_or("weight", 1.0)?);
        losses.push(LossRef { blob, weight, start_iter: l.usize_or("start_iter", 0)? as u64 });
        l.finish()?;
    }
    let updates = r.strs("update")?;
    let kind = match r.opt_enum("type", &["SGD", "Nesterov", "Adam"])?.map(|t| t.value) {
        Some("Nesterov") => OptimizerKind::Nesterov,
        Some("Adam") => OptimizerKind::Adam,
        _ => OptimizerKind::Sgd,
    };
    let base_lr = r.opt_f32("base_lr")?.ok_or_else(|| r.missing("base_lr"))?.value;
    let default_momentum = if kind == OptimizerKind::Adam { 0.9 } else { 0.0 };
    let optimizer = OptimizerDef {
        kind,
        base_lr,
        momentum: r.f32_or("momentum", default_momentum)?,
        momentum2: r.f32_or("momentum2", 0.999)?,
        delta: r.f32_or("delta", 1e-8)?,
        weight_decay: r.f32_or("weight_decay", 0.0)?,
    };
    r.finish()?;
    Ok(PhaseDef { name, steps, losses, updates, optimizer, span: msg.span })
}
