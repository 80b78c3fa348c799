//! The deterministic text listing of a graph (`graphc compile --emit ir`), the form users snapshot.
//! Values are numbered `%0, %1, …` in topological order, ties broken by creation order.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::graph::{Graph, NodeId, ParamKind};
use crate::error::SourceFile;

/// Renders `graph` as text; locations are given as `file:line:col` of `src`.
pub fn print_graph(graph: &Graph, src: &SourceFile) -> String {
    let order = graph.topo_order();
    let number: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut names: HashMap<NodeId, Vec<&str>> = HashMap::new();
    for blob in &graph.blobs {
        names.entry(blob.node).or_default().push(&blob.name);
    }
    let file = src.name.rsplit('/').next().unwrap_or(&src.name);
    let mut out = String::new();
    out.push_str("params:\n");
    for p in &graph.params {
        let kind = match p.kind {
            ParamKind::Learned => String::new(),
            ParamKind::RunningStat => " running-stat".to_string(),
            ParamKind::OptimizerState => " optimizer-state".to_string(),
        };
        let _ = writeln!(
            out,
            "  %{} \"{}\" : f32{}{kind} filler={} lr_mult={} decay_mult={} used_by=[{}]",
            number[&p.node],
            p.name,
            p.shape,
            p.filler.describe(),
            p.lr_mult,
            p.decay_mult,
            p.users.join(", ")
        );
    }
    out.push_str("nodes:\n");
    for id in &order {
        let node = graph.node(*id);
        let args: Vec<String> = graph.inputs(*id).iter().map(|i| format!("%{}", number[i])).collect();
        let attrs = node.op.attrs();
        let attrs = if attrs.is_empty() { String::new() } else { format!(" {{{attrs}}}") };
        let blob = names.get(id).map_or(String::new(), |n| format!(" -> {}", n.join(", ")));
        let (line, col) = src.line_col(node.origin.span.start);
        let _ = writeln!(
            out,
            "  %{} = {}({}){attrs} : f32{}{blob}  # {} @ {file}:{line}:{col}",
            number[id],
            node.op.name(),
            args.join(", "),
            node.shape,
            node.origin.layer
        );
    }
    if !graph.losses.is_empty() {
        out.push_str("losses:\n");
        for loss in &graph.losses {
            let _ = writeln!(out, "  {} * %{}  ({})", loss.weight, number[&loss.node], loss.blob);
        }
    }
    if !graph.updates.is_empty() {
        out.push_str("updates:\n");
        for update in &graph.updates {
            let _ = writeln!(out, "  \"{}\" <- %{}", update.param, number[&update.value]);
        }
    }
    out
}
