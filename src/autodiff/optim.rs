//! Optimizer updates as IR: PyTorch's update rules for SGD (momentum, Nesterov) and Adam, with
//! L2 weight decay, each parameter's `lr_mult` and `decay_mult`. The new parameter and optimizer
//! state are recorded as state updates; the runtime writes them back after the step.

use super::rules::GradBuilder;
use crate::ir::{BinaryOp, Graph, NodeId, Op, Origin, ParamInfo, ParamKind, Shape, StateUpdate, UnaryOp, F32};
use crate::schema::{Filler, OptimizerDef, OptimizerKind};

/// Adds the update of parameter `name` from its gradient `grad`; `step` is the 1-based step
/// number (a scalar input).
pub fn add_update(g: &mut Graph, opt: &OptimizerDef, name: &str, grad: NodeId, step: NodeId) {
    let param = g.param(name).expect("updated parameters exist").clone();
    let origin = Origin { layer: format!("solver:{name}"), span: g.node(param.node).origin.span };
    let lr = opt.base_lr * param.lr_mult;
    let decay = opt.weight_decay * param.decay_mult;
    let mut b = GradBuilder { graph: g, origin };
    let p = param.node;
    let grad = if decay != 0.0 {
        let decayed = b.affine(p, decay, 0.0);
        b.binary(BinaryOp::Add, grad, decayed)
    } else {
        grad
    };
    let (new_param, states) = match opt.kind {
        OptimizerKind::Sgd | OptimizerKind::Nesterov => sgd(&mut b, &param, opt, lr, grad),
        OptimizerKind::Adam => adam(&mut b, &param, opt, lr, grad, step),
    };
    g.updates.push(StateUpdate { param: name.to_string(), value: new_param });
    g.updates.extend(states);
}

/// PyTorch SGD: buf ← μ·buf + g; p ← p − lr·(Nesterov ? g + μ·buf : buf).
fn sgd(
    b: &mut GradBuilder,
    param: &ParamInfo,
    opt: &OptimizerDef,
    lr: f32,
    grad: NodeId,
) -> (NodeId, Vec<StateUpdate>) {
    let mu = opt.momentum;
    if mu == 0.0 {
        let step = b.affine(grad, -lr, 0.0);
        return (b.binary(BinaryOp::Add, param.node, step), Vec::new());
    }
    let (buf_name, buf) = state(b.graph, param, "momentum");
    let kept = b.affine(buf, mu, 0.0);
    let new_buf = b.binary(BinaryOp::Add, kept, grad);
    let direction = if opt.kind == OptimizerKind::Nesterov {
        let ahead = b.affine(new_buf, mu, 0.0);
        b.binary(BinaryOp::Add, grad, ahead)
    } else {
        new_buf
    };
    let step = b.affine(direction, -lr, 0.0);
    let new_param = b.binary(BinaryOp::Add, param.node, step);
    (new_param, vec![StateUpdate { param: buf_name, value: new_buf }])
}

/// PyTorch Adam: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
/// p ← p − lr/(1−β1^t) · m / (√v / √(1−β2^t) + ε).
fn adam(
    b: &mut GradBuilder,
    param: &ParamInfo,
    opt: &OptimizerDef,
    lr: f32,
    grad: NodeId,
    step: NodeId,
) -> (NodeId, Vec<StateUpdate>) {
    let (b1, b2) = (opt.momentum, opt.momentum2);
    let (m_name, m) = state(b.graph, param, "adam_m");
    let (v_name, v) = state(b.graph, param, "adam_v");
    let new_m = ema(b, m, grad, b1);
    let grad_sq = b.unary(UnaryOp::Pow(F32::new(2.0)), grad);
    let new_v = ema(b, v, grad_sq, b2);
    // Bias corrections 1 − β^t = 1 − exp(t·ln β), computed on the scalar step.
    let correction = |b: &mut GradBuilder, beta: f32| {
        let log_pow = b.affine(step, beta.ln(), 0.0);
        let pow = b.unary(UnaryOp::Exp, log_pow);
        b.affine(pow, -1.0, 1.0)
    };
    let c1 = correction(b, b1);
    let c2 = correction(b, b2);
    let inv_c1 = b.unary(UnaryOp::Pow(F32::new(-1.0)), c1);
    let step_size = b.affine(inv_c1, -lr, 0.0);
    let inv_sqrt_c2 = b.unary(UnaryOp::Pow(F32::new(-0.5)), c2);
    let shape = param.shape.0.clone();
    let root_v = b.unary(UnaryOp::Pow(F32::new(0.5)), new_v);
    let inv_sqrt_c2 = b.broadcast(inv_sqrt_c2, shape.clone(), Vec::new());
    let scaled_root_v = b.binary(BinaryOp::Mul, root_v, inv_sqrt_c2);
    let denom = b.affine(scaled_root_v, 1.0, opt.delta);
    let ratio = b.binary(BinaryOp::Div, new_m, denom);
    let step_size = b.broadcast(step_size, shape, Vec::new());
    let delta = b.binary(BinaryOp::Mul, ratio, step_size);
    let new_param = b.binary(BinaryOp::Add, param.node, delta);
    (new_param, vec![StateUpdate { param: m_name, value: new_m }, StateUpdate { param: v_name, value: new_v }])
}

/// β·old + (1 − β)·new.
fn ema(b: &mut GradBuilder, old: NodeId, new: NodeId, beta: f32) -> NodeId {
    let kept = b.affine(old, beta, 0.0);
    let fresh = b.affine(new, 1.0 - beta, 0.0);
    b.binary(BinaryOp::Add, kept, fresh)
}

/// Creates the optimizer state `<param>.<suffix>`, zero-filled, shaped as the parameter.
fn state(g: &mut Graph, param: &ParamInfo, suffix: &str) -> (String, NodeId) {
    let name = format!("{}.{suffix}", param.name);
    let origin = Origin { layer: format!("solver:{}", param.name), span: g.node(param.node).origin.span };
    let node = g
        .add(Op::Param { name: name.clone(), shape: param.shape.0.clone() }, &[], origin)
        .expect("optimizer state has its parameter's shape");
    g.params.push(ParamInfo {
        name: name.clone(),
        shape: Shape(param.shape.0.clone()),
        filler: Filler::Constant { value: 0.0 },
        lr_mult: 0.0,
        decay_mult: 0.0,
        kind: ParamKind::OptimizerState,
        node,
        owner: "solver".to_string(),
        subnet: None,
        users: Vec::new(),
    });
    (name, node)
}
