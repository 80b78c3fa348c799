//! The per-layer summary table (`graphc compile --emit summary`), in the manner of Keras'
//! `model.summary()` and torchinfo: each layer's output shapes, the learned parameters it owns and
//! its estimated forward FLOPs, then totals, parameters by sub-network and by solver phase.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::table::{Align, Frame, Table};
use super::{learned_by_owner, node_flops, numbering, shapes, thousands, uses_shared};
use crate::ir::{Graph, LossTerm, ParamKind};
use crate::phases::PhaseInfo;
use crate::schema::OptimizerKind;
use crate::Compiled;

/// Renders the summary of `c.graph` and, when the file has a solver, of its phases.
pub fn summary(c: &Compiled) -> String {
    let graph = &c.graph;
    let live = numbering(graph);
    let mut flops: HashMap<&str, u64> = HashMap::new();
    for id in live.keys() {
        *flops.entry(graph.node(*id).origin.layer.as_str()).or_default() += node_flops(graph, *id);
    }
    let owned = learned_by_owner(graph);

    let mut out = String::new();
    let name = c.net.name.as_deref().unwrap_or("(unnamed)");
    let _ = writeln!(out, "Model \"{name}\": {} layers, {} IR nodes\n", graph.layers.len(), live.len());
    let mut table = Table::new(&[
        ("Layer", Align::Left),
        ("Type", Align::Left),
        ("Output shape", Align::Left),
        ("Params", Align::Right),
        ("", Align::Left),
        ("FLOPs", Align::Right),
    ]);
    for layer in &graph.layers {
        let (kind, params, flops) = match layer.applies.as_deref() {
            // An application: its layers, listed before it, carry its parameters and FLOPs.
            Some(subnet) => (format!("Subnet({subnet})"), "-".to_string(), "-".to_string()),
            None => (
                layer.type_name.to_string(),
                thousands(owned.get(layer.path.as_str()).copied().unwrap_or(0)),
                thousands(flops.get(layer.path.as_str()).copied().unwrap_or(0)),
            ),
        };
        let shared = if uses_shared(graph, layer) { "(shared)" } else { "" };
        table.row(vec![layer.path.clone(), kind, shapes(graph, &layer.tops, &live), params, shared.into(), flops]);
    }
    table.render(&mut out, "", Frame::Full);

    let learned = |trainable: Option<bool>| -> u64 {
        let matches = |lr: f32| trainable.is_none_or(|t| (lr != 0.0) == t);
        let learned = graph.params.iter().filter(|p| p.kind == ParamKind::Learned && matches(p.lr_mult));
        learned.map(|p| p.shape.numel() as u64).sum()
    };
    let running: u64 =
        graph.params.iter().filter(|p| p.kind == ParamKind::RunningStat).map(|p| p.shape.numel() as u64).sum();
    let total_flops: u64 = live.keys().map(|id| node_flops(graph, *id)).sum();
    let mut totals = Table::new(&[("", Align::Left), ("", Align::Right), ("", Align::Left)]);
    totals.row(vec!["Learned parameters:".into(), thousands(learned(None)), String::new()]);
    totals.row(vec!["  trainable (lr_mult != 0):".into(), thousands(learned(Some(true))), String::new()]);
    totals.row(vec!["  frozen (lr_mult = 0):".into(), thousands(learned(Some(false))), String::new()]);
    totals.row(vec!["Running statistics (not learned):".into(), thousands(running), "values".into()]);
    totals.row(vec!["Forward FLOPs per batch:".into(), thousands(total_flops), approx(total_flops)]);
    out.push('\n');
    totals.render(&mut out, "", Frame::None);

    out.push_str("\nParameters by sub-network\n");
    subnet_table(graph).render(&mut out, "  ", Frame::Header);
    if !c.phases.is_empty() {
        out.push_str("\nParameters updated by phase\n");
        let (table, missing) = phase_table(graph, &c.phases);
        table.render(&mut out, "  ", Frame::Header);
        if missing {
            out.push_str("  * counts only the tensors in this graph; the phase updates more\n");
        }
    }
    out
}

/// Learned parameters grouped by the sub-network that declares them, in order of appearance.
fn subnet_table(graph: &Graph) -> Table {
    let mut groups: Vec<(&str, usize, u64)> = Vec::new();
    for p in graph.params.iter().filter(|p| p.kind == ParamKind::Learned) {
        let subnet = p.subnet.as_deref().unwrap_or("(top level)");
        let i = match groups.iter().position(|g| g.0 == subnet) {
            Some(i) => i,
            None => {
                groups.push((subnet, 0, 0));
                groups.len() - 1
            }
        };
        groups[i].1 += 1;
        groups[i].2 += p.shape.numel() as u64;
    }
    let mut table = Table::new(&[("sub-network", Align::Left), ("tensors", Align::Right), ("elements", Align::Right)]);
    for (subnet, tensors, elements) in groups {
        table.row(vec![subnet.to_string(), tensors.to_string(), thousands(elements)]);
    }
    table
}

/// Each solver phase: what it updates, with which optimizer, and what it minimizes; and whether
/// some phase updates parameters that `graph` (a TEST graph, say) lacks.
fn phase_table(graph: &Graph, phases: &[PhaseInfo]) -> (Table, bool) {
    let mut any_missing = false;
    let mut table = Table::new(&[
        ("phase", Align::Left),
        ("steps", Align::Right),
        ("tensors", Align::Right),
        ("elements", Align::Right),
        ("optimizer", Align::Left),
        ("minimizes", Align::Left),
    ]);
    for phase in phases {
        // A graph restricted to another phase may lack some of this phase's parameters.
        let found: Vec<u64> =
            phase.params.iter().filter_map(|n| graph.param(n)).map(|p| p.shape.numel() as u64).collect();
        let missing = found.len() < phase.params.len();
        any_missing |= missing;
        let elements = thousands(found.iter().sum::<u64>()) + if missing { "*" } else { "" };
        let optimizer = format!("{} lr={}", optimizer_name(phase.optimizer.kind), phase.optimizer.base_lr);
        table.row(vec![
            phase.name.clone(),
            phase.steps.to_string(),
            phase.params.len().to_string(),
            elements,
            optimizer,
            objective(&phase.losses),
        ]);
    }
    (table, any_missing)
}

/// Caffe's solver `type` name.
fn optimizer_name(kind: OptimizerKind) -> &'static str {
    match kind {
        OptimizerKind::Sgd => "SGD",
        OptimizerKind::Nesterov => "Nesterov",
        OptimizerKind::Adam => "Adam",
    }
}

/// A weighted sum of losses, e.g. `g_loss - disc_mi_est + 0.01*klloss`.
fn objective(losses: &[LossTerm]) -> String {
    let mut text = String::new();
    for (i, loss) in losses.iter().enumerate() {
        let sign = if loss.weight < 0.0 { "-" } else { "+" };
        let weight = loss.weight.abs();
        let mut term = if weight == 1.0 { loss.blob.clone() } else { format!("{weight}*{}", loss.blob) };
        if loss.start_iter > 0 {
            term = format!("{term} (from iteration {})", loss.start_iter);
        }
        match (i, sign) {
            (0, "+") => text.push_str(&term),
            (0, _) => text.push_str(&format!("-{term}")),
            _ => text.push_str(&format!(" {sign} {term}")),
        }
    }
    text
}

/// A large count in short form, e.g. `(~9.62 G)`; empty below ten thousand.
fn approx(n: u64) -> String {
    let (value, unit) = match n {
        0..=9_999 => return String::new(),
        10_000..=999_999 => (n as f64 / 1e3, "k"),
        1_000_000..=999_999_999 => (n as f64 / 1e6, "M"),
        _ => (n as f64 / 1e9, "G"),
    };
    format!("(~{value:.2} {unit})")
}
