//! Reverse-mode differentiation as an IR → IR transform. For one solver phase it builds the
//! phase's training program: the forward graph its losses need, gradient nodes for the parameters
//! it updates, and the optimizer's update of each parameter, recorded as state updates. Gradients
//! flow only where they reach an updated parameter, so a discriminator step computes nothing for
//! the generator's parameters.

mod optim;
mod rules;

use std::collections::{HashMap, HashSet};

use crate::error::Span;
use crate::ir::{BinaryOp, Graph, InputField, LossTerm, NodeId, Op, Origin};
use crate::passes::PassRecord;
use crate::phases::PhaseInfo;
use rules::{vjp, GradBuilder};

/// The training program of `phase`: `graph` (a TRAIN graph) restricted to what the phase needs,
/// with gradients and optimizer updates added. The passes of `opt_level` run on the forward graph
/// first (so that a trunk computed once is differentiated once; all but fusion, which autodiff
/// cannot see through) and on the whole program after.
pub fn training_program(graph: &Graph, phase: &PhaseInfo, opt_level: u8) -> Graph {
    training_program_with(graph, phase, &crate::passes::level_names(opt_level))
}

/// [`training_program`] with the passes named in `passes` (in the pipeline's order).
pub fn training_program_with(graph: &Graph, phase: &PhaseInfo, passes: &[&str]) -> Graph {
    training_program_logged(graph, phase, passes).0
}

/// Where a pass ran while building a training program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassStage {
    /// On the forward graph, before differentiation (every pass but fusion).
    Forward,
    /// On the whole training program: forward, gradients and updates.
    Program,
}

/// [`training_program_with`], also returning what each pass did, in the order they ran.
pub fn training_program_logged(
    graph: &Graph,
    phase: &PhaseInfo,
    passes: &[&str],
) -> (Graph, Vec<(PassStage, PassRecord)>) {
    let mut g = crate::phases::restrict_to_phase(graph.clone(), phase);
    let differentiable: Vec<&str> = passes.iter().copied().filter(|p| !p.starts_with("fuse-")).collect();
    let mut log: Vec<(PassStage, PassRecord)> =
        crate::passes::optimize_with(&mut g, &differentiable).into_iter().map(|r| (PassStage::Forward, r)).collect();
    let params: Vec<(String, NodeId)> =
        phase.params.iter().filter_map(|name| g.param(name).map(|p| (name.clone(), p.node))).collect();
    let grads = gradients(&mut g, &phase.losses, &params.iter().map(|(_, n)| *n).collect::<Vec<_>>());
    let step = g
        .add(
            Op::Input { field: InputField::Step, shape: vec![] },
            &[],
            Origin { layer: "solver".into(), span: Span::default() },
        )
        .expect("a scalar input always has a shape");
    for (name, node) in &params {
        if let Some(grad) = grads.get(node) {
            optim::add_update(&mut g, &phase.optimizer, name, *grad, step);
        }
    }
    log.extend(crate::passes::optimize_with(&mut g, passes).into_iter().map(|r| (PassStage::Program, r)));
    (g, log)
}

/// `graph` with the gradient of Σ weight·loss with respect to each parameter in `params` added;
/// returns the graph and, per parameter that the losses depend on, its gradient node.
pub fn gradient_graph(graph: &Graph, losses: &[LossTerm], params: &[&str]) -> (Graph, Vec<(String, NodeId)>) {
    let mut g = graph.clone();
    let nodes: Vec<(String, NodeId)> =
        params.iter().filter_map(|name| g.param(name).map(|p| (name.to_string(), p.node))).collect();
    let grads = gradients(&mut g, losses, &nodes.iter().map(|(_, n)| *n).collect::<Vec<_>>());
    let found = nodes.into_iter().filter_map(|(name, node)| grads.get(&node).map(|grad| (name, *grad))).collect();
    (g, found)
}

/// Adds the gradient of Σ weight·loss with respect to each of `wrt` (where it is non-zero).
fn gradients(g: &mut Graph, losses: &[LossTerm], wrt: &[NodeId]) -> HashMap<NodeId, NodeId> {
    let roots: Vec<NodeId> = losses.iter().map(|l| l.node).collect();
    let needed = g.ancestors(&roots);
    let reaches_param = descendants(g, wrt);
    let order: Vec<NodeId> =
        g.topo_order().into_iter().filter(|n| needed.contains(n) && reaches_param.contains(n)).collect();
    let mut grads: HashMap<NodeId, NodeId> = HashMap::new();
    for loss in losses {
        let origin = Origin { layer: format!("grad:{}", loss.blob), span: g.node(loss.node).origin.span };
        let seed = GradBuilder { graph: g, origin }
            .add(Op::Const { value: crate::ir::F32::new(loss.weight), shape: vec![] }, &[]);
        accumulate(g, &mut grads, loss.node, seed);
    }
    for &node in order.iter().rev() {
        let Some(&grad) = grads.get(&node) else { continue };
        let inputs = g.inputs(node);
        let origin = Origin { layer: format!("grad:{}", g.node(node).origin.layer), span: g.node(node).origin.span };
        for (slot, input) in inputs.iter().enumerate() {
            if !reaches_param.contains(input) {
                continue;
            }
            let mut b = GradBuilder { graph: g, origin: origin.clone() };
            if let Some(contribution) = vjp(&mut b, node, slot, grad) {
                accumulate(g, &mut grads, *input, contribution);
            }
        }
    }
    grads
}

fn accumulate(g: &mut Graph, grads: &mut HashMap<NodeId, NodeId>, node: NodeId, contribution: NodeId) {
    let total = match grads.get(&node) {
        Some(&previous) => {
            let origin = g.node(contribution).origin.clone();
            GradBuilder { graph: g, origin }.binary(BinaryOp::Add, previous, contribution)
        }
        None => contribution,
    };
    grads.insert(node, total);
}

/// Nodes that depend on any of `roots` (roots included).
fn descendants(g: &Graph, roots: &[NodeId]) -> HashSet<NodeId> {
    let mut seen: HashSet<NodeId> = roots.iter().copied().collect();
    for n in g.topo_order() {
        if g.inputs(n).iter().any(|i| seen.contains(i)) {
            seen.insert(n);
        }
    }
    seen
}
