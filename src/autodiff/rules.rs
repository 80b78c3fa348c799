//! Vector-Jacobian products: one arm per op. Given a node and the gradient of the objective with
//! respect to its output, each rule adds the IR nodes computing the gradient with respect to one
//! input. Gradient nodes are ordinary IR nodes, so every later pass applies to them.

use crate::ir::{BinaryOp, ConvAttrs, Graph, NodeId, Op, Origin, PoolAttrs, PoolMethod, ReduceOp, UnaryOp, F32};

/// Adds nodes to a graph on behalf of one forward node, all with the same origin.
pub struct GradBuilder<'a> {
    /// The graph being extended.
    pub graph: &'a mut Graph,
    /// Origin given to every node added.
    pub origin: Origin,
}

impl GradBuilder<'_> {
    /// Adds a node; the shapes are consistent by construction, so a failure is a bug in a rule.
    pub fn add(&mut self, op: Op, inputs: &[NodeId]) -> NodeId {
        match self.graph.add(op.clone(), inputs, self.origin.clone()) {
            Ok(id) => id,
            Err(e) => panic!("internal error in autodiff rule for {}: {e}", op.name()),
        }
    }

    fn shape(&self, id: NodeId) -> Vec<usize> {
        self.graph.shape(id).0.clone()
    }

    /// `f(x)` for an elementwise function.
    pub fn unary(&mut self, op: UnaryOp, x: NodeId) -> NodeId {
        self.add(Op::Unary(op), &[x])
    }

    /// `scale·x + shift`.
    pub fn affine(&mut self, x: NodeId, scale: f32, shift: f32) -> NodeId {
        self.unary(UnaryOp::Affine { scale: F32::new(scale), shift: F32::new(shift) }, x)
    }

    /// `f(a, b)` elementwise.
    pub fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
        self.add(Op::Binary(op), &[a, b])
    }

    /// `x` broadcast to `to`, its axes mapped to `dims`.
    pub fn broadcast(&mut self, x: NodeId, to: Vec<usize>, dims: Vec<usize>) -> NodeId {
        if self.shape(x) == to {
            return x;
        }
        self.add(Op::Broadcast { to, dims }, &[x])
    }

    /// Sums `g` down to `shape` (the inverse of broadcasting `shape` along `dims`).
    fn unbroadcast(&mut self, g: NodeId, shape: &[usize], dims: &[usize]) -> NodeId {
        let out = self.shape(g);
        let summed: Vec<usize> =
            (0..out.len()).filter(|a| dims.iter().position(|d| d == a).is_none_or(|i| shape[i] != out[*a])).collect();
        let mut r = g;
        if !summed.is_empty() {
            r = self.add(Op::Reduce { op: ReduceOp::Sum, axes: summed }, &[g]);
        }
        if self.shape(r) != shape {
            r = self.add(Op::Reshape { to: shape.to_vec() }, &[r]);
        }
        r
    }
}

/// The gradient with respect to input `slot` of `node`, given `grad` of its output; `None` when
/// the input receives no gradient (labels, noise, stop-gradient).
pub fn vjp(b: &mut GradBuilder, node: NodeId, slot: usize, grad: NodeId) -> Option<NodeId> {
    let op = b.graph.node(node).op.clone();
    let ins = b.graph.inputs(node);
    let x = ins.get(slot).copied()?;
    let x_shape = b.shape(x);
    let g = grad;
    Some(match op {
        Op::Input { .. } | Op::Param { .. } | Op::Const { .. } | Op::Sample { .. } => return None,
        Op::OneHot { .. } | Op::Accuracy { .. } | Op::StopGradient => return None,
        Op::Conv2dGradWeight { .. } | Op::Pool2dGrad(_) | Op::Warp2dGrad(_) => return None,
        // The draws are noise: only the images get a gradient.
        Op::Warp2d(w) if slot == 0 => b.add(Op::Warp2dGrad(w), &[g, ins[1]]),
        Op::Warp2d(_) => return None,
        Op::Unary(u) => unary_vjp(b, u, x, node, g),
        Op::Binary(op) => binary_vjp(b, op, &ins, slot, g),
        // Fusion runs only on whole training programs, after differentiation: the forward graph
        // is optimized without it (`autodiff::training_program_logged`), so no fused node is
        // ever differentiated.
        Op::Fused(_) | Op::FusedReduce { .. } | Op::Epilogue { .. } => {
            unreachable!("fused nodes are made after differentiation")
        }
        Op::MatMul { trans_a, trans_b } => {
            let (a, w) = (ins[0], ins[1]);
            match (slot, trans_a, trans_b) {
                (0, false, tb) => b.add(Op::MatMul { trans_a: false, trans_b: !tb }, &[g, w]),
                (0, true, tb) => b.add(Op::MatMul { trans_a: tb, trans_b: true }, &[w, g]),
                (_, ta, false) => b.add(Op::MatMul { trans_a: !ta, trans_b: false }, &[a, g]),
                (_, ta, true) => b.add(Op::MatMul { trans_a: true, trans_b: ta }, &[g, a]),
            }
        }
        Op::Conv2d(c) => {
            let w = ins[1];
            if slot == 0 {
                let w_shape = b.shape(w);
                let output_pad = [0, 1].map(|i| (x_shape[2 + i] + 2 * c.pad[i] - w_shape[2 + i]) % c.stride[i]);
                b.add(Op::ConvTranspose2d(ConvAttrs { output_pad, ..c }), &[g, w])
            } else {
                let kernel = [b.shape(w)[2], b.shape(w)[3]];
                b.add(Op::Conv2dGradWeight { attrs: c, kernel }, &[ins[0], g])
            }
        }
        Op::ConvTranspose2d(c) => {
            let w = ins[1];
            let conv = ConvAttrs { output_pad: [0, 0], ..c };
            if slot == 0 {
                b.add(Op::Conv2d(conv), &[g, w])
            } else {
                let kernel = [b.shape(w)[2], b.shape(w)[3]];
                b.add(Op::Conv2dGradWeight { attrs: conv, kernel }, &[g, ins[0]])
            }
        }
        Op::Pool2d(p) => b.add(Op::Pool2dGrad(p), &[x, g]),
        Op::Upsample2d { scale } => {
            let pool = PoolAttrs { method: PoolMethod::Ave, kernel: [scale; 2], stride: [scale; 2], pad: [0, 0] };
            let mean = b.add(Op::Pool2d(pool), &[g]);
            b.affine(mean, (scale * scale) as f32, 0.0)
        }
        Op::Reduce { op, axes } => {
            let kept: Vec<usize> = (0..x_shape.len()).filter(|a| !axes.contains(a)).collect();
            let spread = b.broadcast(g, x_shape.clone(), kept);
            match op {
                ReduceOp::Sum => spread,
                ReduceOp::Mean => {
                    let count: usize = axes.iter().map(|a| x_shape[*a]).product();
                    b.affine(spread, 1.0 / count as f32, 0.0)
                }
            }
        }
        Op::Broadcast { dims, .. } => b.unbroadcast(g, &x_shape, &dims),
        Op::Reshape { .. } => b.add(Op::Reshape { to: x_shape }, &[g]),
        Op::Concat { axis } => {
            let start: usize = ins[..slot].iter().map(|i| b.graph.shape(*i).0[axis]).sum();
            b.add(Op::Slice { axis, start, end: start + x_shape[axis] }, &[g])
        }
        Op::Slice { axis, start, end } => {
            let mut parts = Vec::new();
            for (from, to) in [(0, start), (end, x_shape[axis])] {
                if to > from {
                    let mut shape = x_shape.clone();
                    shape[axis] = to - from;
                    parts.push(b.add(Op::Const { value: F32::new(0.0), shape }, &[]));
                }
            }
            match parts.len() {
                0 => g,
                _ if start == 0 => b.add(Op::Concat { axis }, &[g, parts[0]]),
                1 => b.add(Op::Concat { axis }, &[parts[0], g]),
                _ => b.add(Op::Concat { axis }, &[parts[0], g, parts[1]]),
            }
        }
        Op::Softmax { axis } => {
            // dx = y ⊙ (g − Σ_axis g ⊙ y)
            let gy = b.binary(BinaryOp::Mul, g, node);
            let dot = sum_along(b, gy, axis);
            let centered = b.binary(BinaryOp::Sub, g, dot);
            b.binary(BinaryOp::Mul, node, centered)
        }
        Op::LogSoftmax { axis } => {
            // dx = g − softmax(x) ⊙ Σ_axis g
            let p = b.unary(UnaryOp::Exp, node);
            let total = sum_along(b, g, axis);
            let scaled = b.binary(BinaryOp::Mul, p, total);
            b.binary(BinaryOp::Sub, g, scaled)
        }
    })
}

/// Σ along `axis`, broadcast back to the input's shape.
fn sum_along(b: &mut GradBuilder, x: NodeId, axis: usize) -> NodeId {
    let shape = b.shape(x);
    let s = b.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![axis] }, &[x]);
    let kept = (0..shape.len()).filter(|a| *a != axis).collect();
    b.broadcast(s, shape, kept)
}

fn unary_vjp(b: &mut GradBuilder, op: UnaryOp, x: NodeId, y: NodeId, g: NodeId) -> NodeId {
    let local = match op {
        UnaryOp::Affine { scale, .. } => return b.affine(g, scale.get(), 0.0),
        UnaryOp::Pow(p) if p.get() == 2.0 => b.affine(x, 2.0, 0.0),
        UnaryOp::Pow(p) => {
            let lowered = b.unary(UnaryOp::Pow(F32::new(p.get() - 1.0)), x);
            b.affine(lowered, p.get(), 0.0)
        }
        UnaryOp::Exp => y,
        UnaryOp::Log => return b.binary(BinaryOp::Div, g, x),
        UnaryOp::Abs => b.unary(UnaryOp::Sign, x),
        UnaryOp::LeakyRelu(slope) => b.unary(UnaryOp::LeakyReluSlope(slope), x),
        UnaryOp::Tanh => {
            let sq = b.unary(UnaryOp::Pow(F32::new(2.0)), y);
            b.affine(sq, -1.0, 1.0)
        }
        UnaryOp::Sigmoid => {
            let one_minus = b.affine(y, -1.0, 1.0);
            b.binary(BinaryOp::Mul, y, one_minus)
        }
        // Piecewise constant: zero gradient almost everywhere.
        UnaryOp::Sign | UnaryOp::LeakyReluSlope(_) => return b.affine(g, 0.0, 0.0),
    };
    b.binary(BinaryOp::Mul, g, local)
}

fn binary_vjp(b: &mut GradBuilder, op: BinaryOp, ins: &[NodeId], slot: usize, g: NodeId) -> NodeId {
    let (x, other) = (ins[slot], ins[1 - slot]);
    match (op, slot) {
        (BinaryOp::Add, _) | (BinaryOp::Sub, 0) => g,
        (BinaryOp::Sub, _) => b.affine(g, -1.0, 0.0),
        (BinaryOp::Mul, _) => b.binary(BinaryOp::Mul, g, other),
        (BinaryOp::Div, 0) => b.binary(BinaryOp::Div, g, other),
        (BinaryOp::Div, _) => {
            // d(a/b)/db = −a/b² = −(a/b)/b
            let ratio = b.binary(BinaryOp::Div, ins[0], x);
            let over = b.binary(BinaryOp::Div, ratio, x);
            let neg = b.affine(over, -1.0, 0.0);
            b.binary(BinaryOp::Mul, g, neg)
        }
        (BinaryOp::Max, _) => {
            // The gradient goes to `a` where a ≥ b, else to `b`.
            let a_wins = b.binary(BinaryOp::GreaterEqual, ins[0], ins[1]);
            let mask = if slot == 0 { a_wins } else { b.affine(a_wins, -1.0, 1.0) };
            b.binary(BinaryOp::Mul, g, mask)
        }
        (BinaryOp::GreaterEqual, _) => b.affine(g, 0.0, 0.0),
        (BinaryOp::SigmoidCrossEntropy, 0) => {
            // d/da [softplus(a) − a·t] = σ(a) − t
            let s = b.unary(UnaryOp::Sigmoid, x);
            let d = b.binary(BinaryOp::Sub, s, other);
            b.binary(BinaryOp::Mul, g, d)
        }
        (BinaryOp::SigmoidCrossEntropy, _) => {
            let neg = b.affine(other, -1.0, 0.0);
            b.binary(BinaryOp::Mul, g, neg)
        }
    }
}
