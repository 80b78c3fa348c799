//! `--emit memory`: per solver phase, the training step's size (IR nodes, kernel calls) and its
//! memory: the temporaries without and with buffer planning, and the state it reads.

use super::table::{Align, Frame, Table};
use super::thousands;
use crate::lower::{report, MemoryReport};
use crate::schema::NetPhase;
use crate::{autodiff, lower, Compiled};

/// The table for every solver phase of `compiled` (without a solver: its graph, keeping the
/// losses).
pub fn memory(compiled: &Compiled) -> String {
    let mut table = Table::new(&[
        ("phase", Align::Left),
        ("nodes", Align::Right),
        ("kernels", Align::Right),
        ("temporaries", Align::Right),
        ("unplanned", Align::Right),
        ("planned", Align::Right),
        ("saved", Align::Right),
        ("state", Align::Right),
    ]);
    let mut row = |name: &str, nodes: usize, kernels: usize, m: MemoryReport| {
        let saved = 100.0 * (1.0 - m.planned as f64 / m.unplanned.max(1) as f64);
        table.row(vec![
            name.to_string(),
            thousands(nodes as u64),
            thousands(kernels as u64),
            thousands(m.temps as u64),
            megabytes(m.unplanned),
            megabytes(m.planned),
            format!("{saved:.0}%"),
            megabytes(m.state),
        ]);
    };
    if compiled.phases.is_empty() {
        let mut plan = lower::to_plan(&compiled.graph, &[]);
        let losses: Vec<&str> = compiled.graph.losses.iter().map(|l| l.blob.as_str()).collect();
        lower::plan_memory(&mut plan, &losses);
        row("(forward)", compiled.graph.node_count(), plan.steps.len(), report(&plan));
    }
    let train =
        (!compiled.phases.is_empty()).then(|| crate::train::build_phase(compiled, NetPhase::Train).ok()).flatten();
    for (phase, train) in train.iter().flat_map(|train| compiled.phases.iter().map(move |phase| (phase, train))) {
        let nodes = autodiff::training_program_with(train, phase, &compiled.passes).node_count();
        let plan = crate::training_plan(train, phase, &compiled.passes);
        row(&phase.name, nodes, plan.steps.len(), report(&plan));
    }
    let mut out =
        format!("passes: {}\n", if compiled.passes.is_empty() { "none".into() } else { compiled.passes.join(", ") });
    table.render(&mut out, "", Frame::Header);
    out.push_str("unplanned: every temporary in its own buffer; planned: buffers shared by values whose lifetimes do not overlap\n");
    out
}

/// `elements` f32 values in MB (10^6 bytes), one decimal.
fn megabytes(elements: usize) -> String {
    format!("{:.1} MB", elements as f64 * 4.0 / 1e6)
}
