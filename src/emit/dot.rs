//! The Graphviz drawing of a graph (`graphc compile --emit dot`), in the style of Caffe's
//! `draw_net.py`: a box per layer, an octagon per blob value, edges from bottoms to layers and from
//! layers to tops, drawn bottom to top. Loss layers are bold, each sub-network application is a
//! cluster (nested applications nest), and parameters used by several layers are dashed ellipses
//! joined by dashed edges to every layer that uses them.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::{learned_by_owner, numbering, shapes, thousands, uses_shared};
use crate::ir::{Graph, LayerRecord, NodeId};
use crate::Compiled;

/// Renders `c.graph` as a Graphviz `digraph`.
pub fn dot(c: &Compiled) -> String {
    let graph = &c.graph;
    let live = numbering(graph);
    let owned = learned_by_owner(graph);

    // Applications with layers of their own become clusters; an empty one stays a box.
    let apps: Vec<&LayerRecord> = graph
        .layers
        .iter()
        .filter(|l| l.applies.as_deref().is_some())
        .filter(|a| graph.layers.iter().any(|l| l.path.starts_with(&format!("{}/", a.path))))
        .collect();
    let cluster_of = |path: &str| -> Option<usize> {
        (0..apps.len())
            .filter(|i| path.strip_prefix(apps[*i].path.as_str()).is_some_and(|rest| rest.starts_with('/')))
            .max_by_key(|i| apps[*i].path.len())
    };
    let drawn: Vec<&LayerRecord> = graph.layers.iter().filter(|l| !apps.iter().any(|a| std::ptr::eq(*a, *l))).collect();

    let mut body = Clusters {
        top: Vec::new(),
        inner: apps
            .iter()
            .map(|a| Cluster {
                path: a.path.clone(),
                label: format!("{} : {}", a.path, a.applies.as_deref().unwrap_or_default()),
                parent: cluster_of(&a.path),
                statements: Vec::new(),
            })
            .collect(),
    };
    let mut declared: HashSet<NodeId> = HashSet::new();
    let mut edges = String::new();
    for layer in &drawn {
        let cluster = cluster_of(&layer.path);
        body.push(cluster, layer_node(c, layer, cluster.is_some(), &owned, &live));
        for bottom in layer.bottoms.iter().filter(|b| live.contains_key(b)) {
            let _ = writeln!(edges, "  {} -> {};", blob_id(&live, *bottom), layer_id(layer));
        }
        for top in layer.tops.iter().filter(|t| live.contains_key(t)) {
            let _ = writeln!(edges, "  {} -> {};", layer_id(layer), blob_id(&live, *top));
            if declared.insert(*top) {
                body.push(cluster, blob_node(graph, &live, *top));
            }
        }
    }
    // Values no drawn layer writes: an application's output that is its input, or a bottom whose
    // producer a phase restriction removed.
    let referenced = drawn.iter().flat_map(|l| l.bottoms.iter().chain(&l.tops));
    let mut rest: Vec<NodeId> = referenced.filter(|n| live.contains_key(n) && !declared.contains(n)).copied().collect();
    rest.sort_by_key(|n| live[n]);
    rest.dedup();
    for node in rest {
        body.push(None, blob_node(graph, &live, node));
    }

    let mut out = String::new();
    let name = c.net.name.as_deref().unwrap_or("net");
    let _ = writeln!(out, "digraph {} {{", quote(name));
    let _ = writeln!(out, "  graph [rankdir=BT, label={}, labelloc=t, fontname=\"Helvetica\"];", quote(name));
    out.push_str("  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
    body.render(&mut out, None, 1);
    out.push_str(&edges);
    out.push_str(&shared_params(graph, &drawn));
    out.push_str("}\n");
    out
}

/// Node statements grouped by cluster, in order of appearance.
struct Clusters {
    /// Statements outside every cluster.
    top: Vec<String>,
    /// One cluster per drawn application.
    inner: Vec<Cluster>,
}

/// A sub-network application drawn as a cluster.
struct Cluster {
    path: String,
    label: String,
    /// The innermost application containing this one.
    parent: Option<usize>,
    statements: Vec<String>,
}

impl Clusters {
    fn push(&mut self, cluster: Option<usize>, statement: String) {
        match cluster {
            Some(i) => self.inner[i].statements.push(statement),
            None => self.top.push(statement),
        }
    }

    /// Writes the statements of `cluster` (`None`: the top level) and, nested, its child clusters.
    fn render(&self, out: &mut String, cluster: Option<usize>, depth: usize) {
        let indent = "  ".repeat(depth);
        let statements = cluster.map_or(&self.top, |i| &self.inner[i].statements);
        for statement in statements {
            let _ = writeln!(out, "{indent}{statement}");
        }
        for (i, child) in self.inner.iter().enumerate().filter(|(_, c)| c.parent == cluster) {
            // Graphviz draws a subgraph as a box only if its id starts with `cluster`; the index
            // keeps ids unique where two paths differ only in punctuation.
            let path: String = child.path.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' }).collect();
            let fill = if depth % 2 == 1 { "#F4F4F4" } else { "#E6E6E6" };
            let _ = writeln!(out, "{indent}subgraph {} {{", quote(&format!("cluster_{path}_{i}")));
            // With rankdir=BT, `labelloc=b` puts the label at the top, by the application's outputs.
            let _ = writeln!(
                out,
                "{indent}  graph [label={}, labelloc=b, style=\"rounded,filled\", fillcolor=\"{fill}\", color=\"#999999\"];",
                quote(&child.label)
            );
            self.render(out, Some(i), depth + 1);
            let _ = writeln!(out, "{indent}}}");
        }
    }
}

/// The box of a layer: its name (the last path component inside a cluster, whose label gives the
/// rest), type, output shapes and the learned parameters it owns or shares; bold for losses.
fn layer_node(
    c: &Compiled,
    layer: &LayerRecord,
    in_cluster: bool,
    owned: &HashMap<&str, u64>,
    live: &HashMap<NodeId, usize>,
) -> String {
    let graph = &c.graph;
    let name = if in_cluster { layer.path.rsplit('/').next().unwrap_or(&layer.path) } else { &layer.path };
    let mut lines = vec![name.to_string(), format!("({})", layer.type_name), shapes(graph, &layer.tops, live)];
    let params = owned.get(layer.path.as_str()).copied().unwrap_or(0);
    match (params, uses_shared(graph, layer)) {
        (0, false) => {}
        (0, true) => lines.push("shared params".into()),
        (n, false) => lines.push(format!("{} params", thousands(n))),
        (n, true) => lines.push(format!("{} params + shared", thousands(n))),
    }
    // Loss layers, and layers whose output the net minimizes with a weight (a `Reduction` with
    // a `loss_weight`, say).
    let minimized = graph.losses.iter().any(|l| layer.tops.contains(&l.node));
    let style = if layer.is_loss || minimized {
        "filled,bold\", penwidth=3, fillcolor=\"#F4A582"
    } else {
        "filled\", fillcolor=\"#9EC3F0"
    };
    format!("{} [shape=box, style=\"{style}\", label={}];", layer_id(layer), label(&lines))
}

/// The octagon of a blob value, labelled with every name it has (an application's output is also
/// the caller's top).
fn blob_node(graph: &Graph, live: &HashMap<NodeId, usize>, node: NodeId) -> String {
    let mut names: Vec<String> = Vec::new();
    for blob in graph.blobs.iter().filter(|b| b.node == node) {
        if !names.contains(&blob.name) {
            names.push(blob.name.clone());
        }
    }
    if names.is_empty() {
        names.push(format!("%{}", live[&node]));
    }
    format!("{} [shape=octagon, style=filled, fillcolor=\"#E0E0E0\", label={}];", blob_id(live, node), label(&names))
}

/// Dashed ellipses for parameters with several users, one per set of parameters with the same
/// users (a layer's weight and bias), with dashed edges to each user.
fn shared_params(graph: &Graph, drawn: &[&LayerRecord]) -> String {
    let paths: HashSet<&str> = drawn.iter().map(|l| l.path.as_str()).collect();
    let mut groups: Vec<(Vec<&str>, &str, Vec<String>)> = Vec::new();
    for p in &graph.params {
        let users: Vec<&str> = p.users.iter().map(String::as_str).filter(|u| paths.contains(u)).collect();
        if users.len() < 2 {
            continue;
        }
        let line = format!("{} {}", p.name, p.shape);
        match groups.iter_mut().find(|g| g.0 == users) {
            Some(group) => group.2.push(line),
            None => groups.push((users, &p.name, vec![line])),
        }
    }
    let mut out = String::new();
    for (users, first, lines) in &groups {
        let id = quote(&format!("param:{first}"));
        let _ = writeln!(out, "  {id} [shape=ellipse, style=dashed, label={}];", label(lines));
        for user in users {
            let _ = writeln!(out, "  {id} -> {} [style=dashed, arrowhead=none];", quote(&format!("layer:{user}")));
        }
    }
    out
}

fn layer_id(layer: &LayerRecord) -> String {
    quote(&format!("layer:{}", layer.path))
}

fn blob_id(live: &HashMap<NodeId, usize>, node: NodeId) -> String {
    quote(&format!("blob:%{}", live[&node]))
}

/// A DOT string literal.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// A multi-line label: each line escaped, joined by DOT's centred line break.
fn label(lines: &[String]) -> String {
    quote(&lines.join("\n"))
}
