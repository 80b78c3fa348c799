//! IR → execution plan: the runtime's contract. Each value becomes a buffer (parameters and
//! optimizer state are named state buffers, data and the step counter are feeds), each op a
//! kernel call in topological order, each state update a write-back.

mod memory;

use std::collections::HashMap;

use graphc_runtime::{BufId, Buffer, BufferRole, Kernel, Plan, Step};

use crate::ir::{Graph, InputField, NodeId, Op};

pub use memory::{plan_memory, report, MemoryReport};

/// The feed name of a data field, as the runtime's callers use it.
pub fn feed_name(field: InputField) -> &'static str {
    match field {
        InputField::Image => "image",
        InputField::Label => "label",
        InputField::Step => "step",
    }
}

/// Lowers `graph` to a plan whose outputs are every named blob, plus `extra` values by name.
pub fn to_plan(graph: &Graph, extra: &[(String, NodeId)]) -> Plan {
    to_plan_feeding(graph, extra, &[])
}

/// As [`to_plan`], with the values of the nodes in `fed` given by the caller as named feeds
/// instead of computed (latent traversals set noise sources this way).
pub fn to_plan_feeding(graph: &Graph, extra: &[(String, NodeId)], fed: &[(NodeId, String)]) -> Plan {
    let mut plan = Plan::default();
    let mut buffer_of: HashMap<NodeId, BufId> = HashMap::new();
    for id in graph.topo_order() {
        let node = graph.node(id);
        let shape = node.shape.0.clone();
        let feed = fed.iter().find(|(n, _)| *n == id).map(|(_, name)| name.clone());
        let role = match (&node.op, feed) {
            (_, Some(name)) => BufferRole::Feed(name),
            (Op::Param { name, .. }, None) => BufferRole::State(name.clone()),
            (Op::Input { field, .. }, None) => BufferRole::Feed(feed_name(*field).to_string()),
            _ => BufferRole::Temp,
        };
        let buf = BufId(plan.buffers.len() as u32);
        let computed = role == BufferRole::Temp;
        plan.buffers.push(Buffer { shape, role });
        buffer_of.insert(id, buf);
        if let Some(kernel) = kernel_of(&node.op).filter(|_| computed) {
            let inputs = graph.inputs(id).iter().map(|i| buffer_of[i]).collect();
            let label = format!("{} ({})", node.origin.layer, node.op.name());
            plan.steps.push(Step { kernel, inputs, output: buf, label });
        }
    }
    let state_buffer: HashMap<&str, BufId> =
        graph.params.iter().filter_map(|p| buffer_of.get(&p.node).map(|b| (p.name.as_str(), *b))).collect();
    let mut last_update: Vec<(BufId, BufId)> = Vec::new();
    for update in &graph.updates {
        let target = state_buffer[update.param.as_str()];
        last_update.retain(|(_, t)| *t != target);
        last_update.push((buffer_of[&update.value], target));
    }
    // The runtime swaps each write-back source into its state value, so every source must be a
    // computed value of its own: copy a state, a feed or a value written back twice first.
    let mut used = std::collections::HashSet::new();
    for (source, _) in &mut last_update {
        if plan.buffers[source.0 as usize].role != BufferRole::Temp || !used.insert(*source) {
            let copy = BufId(plan.buffers.len() as u32);
            plan.buffers.push(Buffer { shape: plan.buffers[source.0 as usize].shape.clone(), role: BufferRole::Temp });
            plan.steps.push(Step {
                kernel: Kernel::Copy,
                inputs: vec![*source],
                output: copy,
                label: "write-back (copy)".into(),
            });
            *source = copy;
        }
    }
    plan.writebacks = last_update;
    for (name, node) in graph.blobs.iter().map(|b| (&b.name, &b.node)).chain(extra.iter().map(|(n, id)| (n, id))) {
        plan.outputs.push((name.clone(), buffer_of[node]));
    }
    plan
}

/// The kernel computing `op`, or `None` for values that are state or fed.
fn kernel_of(op: &Op) -> Option<Kernel> {
    Some(match op {
        Op::Epilogue { base, activation } => {
            Kernel::Epilogue { base: Box::new(kernel_of(base)?), activation: *activation }
        }
        Op::Input { .. } | Op::Param { .. } => return None,
        Op::Const { value, .. } => Kernel::Fill(*value),
        Op::Sample { dist, stream, .. } => Kernel::Sample { dist: *dist, stream: *stream },
        Op::MatMul { trans_a, trans_b } => Kernel::MatMul { trans_a: *trans_a, trans_b: *trans_b },
        Op::Conv2d(c) => Kernel::Conv2d(*c),
        Op::ConvTranspose2d(c) => Kernel::ConvTranspose2d(*c),
        Op::Conv2dGradWeight { attrs, .. } => Kernel::Conv2dGradWeight(*attrs),
        Op::Pool2d(p) => Kernel::Pool2d(*p),
        Op::Pool2dGrad(p) => Kernel::Pool2dGrad(*p),
        Op::Upsample2d { scale } => Kernel::Upsample2d { scale: *scale },
        Op::Warp2d(w) => Kernel::Warp2d(*w),
        Op::Warp2dGrad(w) => Kernel::Warp2dGrad(*w),
        Op::Unary(u) => Kernel::Unary(*u),
        Op::Binary(b) => Kernel::Binary(*b),
        Op::Fused(expr) => Kernel::Fused(expr.clone()),
        Op::FusedReduce { expr, op, axes } => Kernel::FusedReduce { expr: expr.clone(), op: *op, axes: axes.clone() },
        Op::Reduce { op, axes } => Kernel::Reduce { op: *op, axes: axes.clone() },
        Op::Broadcast { dims, .. } => Kernel::Broadcast { dims: dims.clone() },
        Op::Reshape { .. } | Op::StopGradient => Kernel::Copy,
        Op::Concat { axis } => Kernel::Concat { axis: *axis },
        Op::Slice { axis, start, end } => Kernel::Slice { axis: *axis, start: *start, end: *end },
        Op::Softmax { axis } => Kernel::Softmax { axis: *axis },
        Op::LogSoftmax { axis } => Kernel::LogSoftmax { axis: *axis },
        Op::OneHot { classes } => Kernel::OneHot { classes: *classes },
        Op::Accuracy { top_k } => Kernel::Accuracy { top_k: *top_k },
    })
}
