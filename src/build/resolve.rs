//! Blob resolution within one scope (the top-level net, or one sub-network), following Caffe's
//! rules: bottoms name blobs, a top equal to one of the layer's own bottoms is in-place and makes a
//! new version, any other blob has one writer. A layer may read a blob written further down the
//! file; the dependencies are then ordered topologically, and a cycle is an error.

use std::collections::HashMap;

use crate::error::{did_you_mean, Diagnostic, Result, Spanned};
use crate::schema::LayerDef;

/// Where a bottom's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRef {
    /// The scope's n-th input (a sub-network input).
    Input(usize),
    /// Top `top` of layer `layer` (an index into the scope's layer list).
    Top { layer: usize, top: usize },
}

/// A scope's layers in execution order, with every bottom resolved.
pub struct Resolved {
    /// Layer indices in execution order.
    pub order: Vec<usize>,
    /// Per layer index, where each bottom comes from.
    pub bottoms: Vec<Vec<ValueRef>>,
}

struct Writer {
    layer: usize,
    top: usize,
    in_place: bool,
}

/// Resolves the bottoms of `layers` (already filtered by phase) against each other and the scope's
/// `inputs`, and orders the layers.
pub fn resolve(layers: &[&LayerDef], inputs: &[Spanned<String>]) -> Result<Resolved> {
    // Undefined bottoms are reported before duplicate writers: a typo in a bottom often makes an
    // in-place layer look like a second writer.
    let (writers, duplicate) = collect_writers(layers, inputs);
    let mut bottoms = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let mut refs = Vec::new();
        for bottom in &layer.bottoms {
            refs.push(resolve_bottom(i, bottom, &writers, inputs, layers)?);
        }
        bottoms.push(refs);
    }
    if let Some(error) = duplicate {
        return Err(error);
    }
    let order = topo_sort(layers, &bottoms)?;
    Ok(Resolved { order, bottoms })
}

/// The final version of blob `name` in the scope (its last writer in file order).
pub fn final_version(layers: &[&LayerDef], inputs: &[Spanned<String>], name: &str) -> Option<ValueRef> {
    let last = layers
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| l.tops.iter().position(|t| t.value == name).map(|top| ValueRef::Top { layer: i, top }));
    last.or_else(|| inputs.iter().position(|n| n.value == name).map(ValueRef::Input))
}

/// Every writer of every blob, and the first error among them (a blob written twice).
fn collect_writers<'a>(
    layers: &[&'a LayerDef],
    inputs: &[Spanned<String>],
) -> (HashMap<&'a str, Vec<Writer>>, Option<Diagnostic>) {
    let mut writers: HashMap<&str, Vec<Writer>> = HashMap::new();
    let mut error = None;
    for (i, layer) in layers.iter().enumerate() {
        for (t, top) in layer.tops.iter().enumerate() {
            let in_place = layer.bottoms.iter().any(|b| b.value == top.value);
            if layer.tops[..t].iter().any(|earlier| earlier.value == top.value) {
                error = error.or(Some(Diagnostic::new(
                    format!("layer \"{}\" names top \"{}\" twice", layer.name.value, top.value),
                    top.span,
                    "second time",
                )));
                continue;
            }
            if !in_place {
                if let Some(input) = inputs.iter().find(|n| n.value == top.value) {
                    error = error.or(Some(
                        Diagnostic::new(
                            format!(
                                "blob \"{}\" is a sub-network input and cannot be written by layer \"{}\"",
                                top.value, layer.name.value
                            ),
                            top.span,
                            "written here",
                        )
                        .note_at("declared as an input", input.span),
                    ));
                    continue;
                }
                let list = writers.get(top.value.as_str());
                if let Some(first) = list.and_then(|w| w.iter().find(|w| !w.in_place)) {
                    let other = layers[first.layer];
                    error = error.or(Some(
                        Diagnostic::new(
                            format!(
                                "blob \"{}\" is written by two layers, \"{}\" and \"{}\"",
                                top.value, other.name.value, layer.name.value
                            ),
                            top.span,
                            "second writer",
                        )
                        .note_at(format!("first written by layer \"{}\"", other.name.value), other.tops[first.top].span)
                        .help("give the top a new name, or write it in place (top equal to a bottom)"),
                    ));
                    continue;
                }
            }
            writers.entry(top.value.as_str()).or_default().push(Writer { layer: i, top: t, in_place });
        }
    }
    (writers, error)
}

fn resolve_bottom(
    reader: usize,
    bottom: &Spanned<String>,
    writers: &HashMap<&str, Vec<Writer>>,
    inputs: &[Spanned<String>],
    layers: &[&LayerDef],
) -> Result<ValueRef> {
    let list = writers.get(bottom.value.as_str()).map(Vec::as_slice).unwrap_or(&[]);
    if let Some(w) = list.iter().rev().find(|w| w.layer < reader) {
        return Ok(ValueRef::Top { layer: w.layer, top: w.top });
    }
    if let Some(i) = inputs.iter().position(|n| n.value == bottom.value) {
        return Ok(ValueRef::Input(i));
    }
    if let Some(w) = list.iter().find(|w| !w.in_place && w.layer != reader) {
        return Ok(ValueRef::Top { layer: w.layer, top: w.top });
    }
    let known: Vec<&str> = writers.keys().copied().chain(inputs.iter().map(|n| n.value.as_str())).collect();
    let mut diag = Diagnostic::new(
        format!("layer \"{}\" reads undefined blob \"{}\"", layers[reader].name.value, bottom.value),
        bottom.span,
        "no layer writes this blob",
    );
    if let Some(best) = did_you_mean(&bottom.value, known.iter().copied()) {
        diag = diag.help(format!("did you mean \"{best}\"?"));
    }
    Err(diag)
}

fn topo_sort(layers: &[&LayerDef], bottoms: &[Vec<ValueRef>]) -> Result<Vec<usize>> {
    let n = layers.len();
    let deps: Vec<Vec<usize>> = bottoms
        .iter()
        .map(|refs| {
            refs.iter().filter_map(|r| if let ValueRef::Top { layer, .. } = r { Some(*layer) } else { None }).collect()
        })
        .collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    // Repeatedly take the first layer (in file order) whose dependencies are done: file order is
    // kept whenever it is already valid.
    while order.len() < n {
        let next = (0..n).find(|&i| !done[i] && deps[i].iter().all(|d| done[*d]));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => return Err(cycle_error(layers, &deps, &done)),
        }
    }
    Ok(order)
}

fn cycle_error(layers: &[&LayerDef], deps: &[Vec<usize>], done: &[bool]) -> Diagnostic {
    // Walk dependencies among the blocked layers until one repeats: that is a cycle.
    let start = (0..layers.len()).find(|i| !done[*i]).expect("a blocked layer exists");
    let mut path = vec![start];
    let mut current = start;
    loop {
        let next = *deps[current].iter().find(|d| !done[**d]).expect("a blocked layer waits on another");
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let cycle: Vec<&str> = path[pos..].iter().chain([&next]).map(|i| layers[*i].name.value.as_str()).collect();
            let first = layers[path[pos]];
            return Diagnostic::new(
                format!("layers form a cycle: {}", cycle.join(" needs ")),
                first.name.span,
                "this layer depends on itself through the cycle",
            );
        }
        path.push(next);
        current = next;
    }
}
