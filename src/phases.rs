//! Checks the solver's phases and the generation block against the built graphs, and resolves
//! them to nodes and parameters: each phase's weighted losses and the learned parameters it
//! updates; the generated image and its latent noise sources.

use std::collections::HashSet;

use crate::error::{Diagnostic, Result, Spanned};
use crate::ir::{Graph, LossTerm, NodeId, Op, ParamKind};
use crate::schema::{GenerateDef, LossRef, NetDef, OptimizerDef, PhaseDef, SolverDef};

/// A checked training phase.
#[derive(Clone, Debug)]
pub struct PhaseInfo {
    /// Its name.
    pub name: String,
    /// Steps per iteration.
    pub steps: usize,
    /// Weighted losses it minimizes.
    pub losses: Vec<LossTerm>,
    /// Learned parameters it updates, in creation order.
    pub params: Vec<String>,
    /// Its optimizer.
    pub optimizer: OptimizerDef,
}

impl PhaseInfo {
    /// The first iteration of the stage that contains `iteration`: the latest `start_iter` not
    /// after it, or 0. Within a stage the same losses count.
    pub fn stage_start(&self, iteration: u64) -> u64 {
        self.losses.iter().map(|l| l.start_iter).filter(|&s| s <= iteration).max().unwrap_or(0)
    }

    /// The phase as it trains at `iteration`: the losses that have not started yet weigh 0 (they
    /// are still computed and logged).
    pub fn at_iteration(&self, iteration: u64) -> PhaseInfo {
        let mut info = self.clone();
        for loss in info.losses.iter_mut().filter(|l| l.start_iter > iteration) {
            loss.weight = 0.0;
        }
        info
    }
}

/// The checked generation block.
#[derive(Clone, Debug)]
pub struct GenerateInfo {
    /// Image blob name and node (in the TEST graph).
    pub image: (String, NodeId),
    /// Latent blob names and their noise-source nodes.
    pub latents: Vec<(String, NodeId)>,
}

/// Checks every phase of `solver` against the TRAIN graph.
pub fn check_phases(net: &NetDef, solver: &SolverDef, train: &Graph) -> Result<Vec<PhaseInfo>> {
    solver.phases.iter().map(|p| check_phase(net, p, train)).collect()
}

fn check_phase(net: &NetDef, phase: &PhaseDef, g: &Graph) -> Result<PhaseInfo> {
    let losses = if phase.losses.is_empty() {
        if g.losses.is_empty() {
            return Err(Diagnostic::new(
                format!("phase \"{}\" lists no `loss` and the net has no loss layer", phase.name.value),
                phase.name.span,
                "nothing to minimize",
            ));
        }
        g.losses.clone()
    } else {
        phase.losses.iter().map(|l| loss_term(g, l, &phase.name.value)).collect::<Result<_>>()?
    };
    let mut params: Vec<String> = Vec::new();
    if phase.updates.is_empty() {
        params.extend(g.params.iter().map(|p| p.name.clone()));
    }
    for target in &phase.updates {
        params.extend(update_targets(net, g, target)?);
    }
    let params: Vec<String> = g
        .params
        .iter()
        .filter(|p| params.contains(&p.name) && p.kind == ParamKind::Learned && p.lr_mult != 0.0)
        .map(|p| p.name.clone())
        .collect();
    if params.is_empty() {
        return Err(Diagnostic::new(
            format!("phase \"{}\" updates no parameters", phase.name.value),
            phase.name.span,
            "its `update` entries name only frozen parameters (lr_mult 0) or none",
        ));
    }
    let roots: Vec<NodeId> = losses.iter().map(|l| l.node).collect();
    let needed = g.ancestors(&roots);
    if !params.iter().any(|p| g.param(p).is_some_and(|p| needed.contains(&p.node))) {
        return Err(Diagnostic::new(
            format!("the losses of phase \"{}\" do not depend on any parameter it updates", phase.name.value),
            phase.name.span,
            "training it would change nothing",
        ));
    }
    Ok(PhaseInfo {
        name: phase.name.value.clone(),
        steps: phase.steps,
        losses,
        params,
        optimizer: phase.optimizer.clone(),
    })
}

fn loss_term(g: &Graph, loss: &LossRef, phase: &str) -> Result<LossTerm> {
    let blob = &loss.blob;
    let Some(node) = g.blob(&blob.value) else {
        return Err(Diagnostic::new(
            format!("phase \"{phase}\" minimizes unknown blob \"{}\"", blob.value),
            blob.span,
            "no layer of the TRAIN net writes this blob",
        )
        .suggest(&blob.value, g.blobs.iter().map(|b| b.name.as_str())));
    };
    let shape = g.shape(node);
    if shape.rank() != 0 {
        return Err(Diagnostic::new(
            format!("phase \"{phase}\" minimizes blob \"{}\", which is {shape}, not a scalar", blob.value),
            blob.span,
            "a loss must be a scalar",
        ));
    }
    Ok(LossTerm { blob: blob.value.clone(), node, weight: loss.weight, start_iter: loss.start_iter })
}

/// The parameters an `update` entry names: a sub-network (with those it applies), a parameter, a
/// layer by its path, or a layer of a sub-network's definition (`q_network/q_fc1`).
fn update_targets(net: &NetDef, g: &Graph, target: &Spanned<String>) -> Result<Vec<String>> {
    let name = target.value.as_str();
    if net.subnet(name).is_some() {
        let subnets = subnet_closure(net, name);
        return Ok(g
            .params
            .iter()
            .filter(|p| p.subnet.as_ref().is_some_and(|s| subnets.contains(s.as_str())))
            .map(|p| p.name.clone())
            .collect());
    }
    if g.param(name).is_some() {
        return Ok(vec![name.to_string()]);
    }
    if let Some(layer) = g.layers.iter().find(|l| l.path == name) {
        return Ok(layer.params.clone());
    }
    // A layer of a sub-network's definition (`q_network/q_fc1`), named as its parameters are.
    let declared: Vec<String> =
        g.params.iter().filter(|p| param_layer(&p.name) == Some(name)).map(|p| p.name.clone()).collect();
    if !declared.is_empty() {
        return Ok(declared);
    }
    let candidates = net
        .subnets
        .iter()
        .map(|s| s.name.value.as_str())
        .chain(g.layers.iter().map(|l| l.path.as_str()))
        .chain(g.params.iter().filter_map(|p| param_layer(&p.name)))
        .chain(g.params.iter().map(|p| p.name.as_str()));
    Err(Diagnostic::new(
        format!("`update` names \"{name}\", which is no sub-network, layer or parameter"),
        target.span,
        "unknown",
    )
    .suggest(name, candidates))
}

/// The layer part of a generated parameter name (`q_network/q_fc1` of `q_network/q_fc1.weight`).
fn param_layer(param: &str) -> Option<&str> {
    param.rsplit_once('.').map(|(layer, _)| layer)
}

/// `root` and every sub-network it applies, directly or not.
fn subnet_closure<'a>(net: &'a NetDef, root: &'a str) -> HashSet<&'a str> {
    let mut seen = HashSet::from([root]);
    let mut stack = vec![root];
    while let Some(name) = stack.pop() {
        for layer in net.subnet(name).map_or(&[][..], |s| &s.layers) {
            if let crate::schema::LayerKind::Subnet { name } = &layer.kind {
                if seen.insert(name.value.as_str()) {
                    stack.push(name.value.as_str());
                }
            }
        }
    }
    seen
}

/// Checks the generation block against the TEST graph.
pub fn check_generate(def: &GenerateDef, test: &Graph) -> Result<GenerateInfo> {
    let find = |blob: &Spanned<String>| {
        test.blob(&blob.value).ok_or_else(|| {
            Diagnostic::new(
                format!("`generate` names unknown blob \"{}\"", blob.value),
                blob.span,
                "no layer of the TEST net writes this blob",
            )
            .suggest(&blob.value, test.blobs.iter().map(|b| b.name.as_str()))
        })
    };
    let image = find(&def.image)?;
    if test.shape(image).rank() != 4 {
        return Err(Diagnostic::new(
            format!("the generated image \"{}\" is {}, not N×C×H×W", def.image.value, test.shape(image)),
            def.image.span,
            "add a Reshape to N×C×H×W",
        ));
    }
    let mut latents = Vec::new();
    for latent in &def.latents {
        let node = find(latent)?;
        if !matches!(test.node(node).op, Op::Sample { .. }) {
            return Err(Diagnostic::new(
                format!("latent \"{}\" is not a noise source", latent.value),
                latent.span,
                "latents must be DummyData tops with a random filler",
            ));
        }
        if !test.ancestors(&[image]).contains(&node) {
            return Err(Diagnostic::new(
                format!("the generated image does not depend on latent \"{}\"", latent.value),
                latent.span,
                "not an input of the image",
            ));
        }
        latents.push((latent.value.clone(), node));
    }
    Ok(GenerateInfo { image: (def.image.value.clone(), image), latents })
}

/// The TRAIN graph restricted to what `phase`'s losses need.
pub fn restrict_to_phase(mut graph: Graph, phase: &PhaseInfo) -> Graph {
    let roots: Vec<NodeId> = phase.losses.iter().map(|l| l.node).collect();
    let keep = graph.ancestors(&roots);
    graph.retain(&keep);
    graph.losses = phase.losses.clone();
    graph
}
