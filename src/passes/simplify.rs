//! Algebraic simplification and constant folding.
//!
//! Requires: shapes inferred. Ensures, visiting nodes in topological order (so each rule sees
//! already simplified inputs):
//! - identities vanish: `affine(x; scale 1, shift 0)`, `pow(x, 1)`, a reshape or broadcast to
//!   the input's own shape, a slice that keeps the whole axis;
//! - a reshape of a reshape is one reshape, an affine map of an affine map is one;
//! - `x + c`, `x − c`, `c − x` and `x · c` with a constant `c` become one affine map of `x` (the
//!   constant's buffer is then dead), and `affine(x; scale 0, shift b)` becomes the constant `b`
//!   (Caffe's Eltwise coefficient 0 and Power's scale 0 mean "ignore this input": a NaN in it no
//!   longer propagates);
//! - an elementwise op, broadcast, reshape, slice, concatenation or reduction whose inputs are all
//!   constants is folded into one constant.
//!
//! Numerics: folding an elementwise op computes exactly what its kernel would; merged affine maps
//! round once instead of twice, and a folded sum is computed in f64 (the kernel sums in f32), so
//! results agree within a few ulps, not always bit for bit. Gradients are unchanged: constants
//! have none and the other rules are exact rewrites. `stop_gradient` is never removed.
//! Preserves: every value the tables name, redirected to its replacement. Invalidates: node ids
//! of replaced nodes.

use graphc_runtime::fused::{FusedExpr, ScalarInstr};

use super::Pass;
use crate::ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, UnaryOp, F32};

/// The pass.
pub struct Simplify;

impl Pass for Simplify {
    fn name(&self) -> &'static str {
        "simplify"
    }

    fn run(&self, graph: &mut Graph) -> usize {
        let mut changed = 0;
        for id in graph.topo_order() {
            let Some(rewrite) = rewrite(graph, id) else { continue };
            let replacement = match rewrite {
                Rewrite::Existing(node) => node,
                Rewrite::New(op, inputs) => {
                    let origin = graph.node(id).origin.clone();
                    // The rules keep the node's shape, so the shape check cannot fail; should it,
                    // the node is left as it was.
                    match graph.add(op, &inputs, origin) {
                        Ok(node) => node,
                        Err(_) => continue,
                    }
                }
            };
            graph.replace_all_uses(id, replacement);
            changed += 1;
        }
        changed
    }
}

/// What a node becomes.
enum Rewrite {
    /// An existing node (an identity removed).
    Existing(NodeId),
    /// A new node: op and inputs.
    New(Op, Vec<NodeId>),
}

/// The value of `id` if it is a constant.
fn constant(graph: &Graph, id: NodeId) -> Option<f32> {
    match graph.node(id).op {
        Op::Const { value, .. } => Some(value.get()),
        _ => None,
    }
}

/// The rewrite of node `id`, if a rule applies and changes something.
fn rewrite(graph: &Graph, id: NodeId) -> Option<Rewrite> {
    let node = graph.node(id);
    let inputs = graph.inputs(id);
    let rewrite = rule(graph, &node.op, &inputs, &node.shape.0)?;
    match &rewrite {
        Rewrite::New(op, new_inputs) if *op == node.op && *new_inputs == inputs => None,
        _ => Some(rewrite),
    }
}

/// The first rule that applies to `op` over `inputs`, giving a value of shape `shape`.
fn rule(graph: &Graph, op: &Op, inputs: &[NodeId], shape: &[usize]) -> Option<Rewrite> {
    let same_shape_as_input = inputs.len() == 1 && graph.shape(inputs[0]).0 == shape;
    let constants: Option<Vec<f32>> = inputs.iter().map(|i| constant(graph, *i)).collect();
    if let Some(values) = constants.filter(|v| !v.is_empty()) {
        let value = fold(op, &values, inputs, graph)?;
        return Some(Rewrite::New(Op::Const { value: F32::new(value), shape: shape.to_vec() }, vec![]));
    }
    match (op, inputs) {
        (Op::Unary(UnaryOp::Affine { scale, shift }), &[x]) => Some(affine(graph, x, scale.get(), shift.get())),
        (Op::Unary(UnaryOp::Pow(p)), &[x]) if p.get() == 1.0 => Some(Rewrite::Existing(x)),
        (Op::Reshape { .. }, &[x]) if same_shape_as_input => Some(Rewrite::Existing(x)),
        (Op::Reshape { to }, &[x]) => match graph.node(x).op {
            Op::Reshape { .. } => Some(Rewrite::New(Op::Reshape { to: to.clone() }, graph.inputs(x))),
            _ => None,
        },
        (Op::Broadcast { dims, .. }, &[x]) if same_shape_as_input && dims.iter().copied().eq(0..shape.len()) => {
            Some(Rewrite::Existing(x))
        }
        (Op::Slice { .. }, &[x]) if same_shape_as_input => Some(Rewrite::Existing(x)),
        (Op::Binary(op), &[a, b]) => with_constant_operand(graph, *op, a, b),
        _ => None,
    }
}

/// `scale · x + shift`, simplified: the identity is `x`, scale 0 a constant, and an affine map of
/// an affine map one map.
fn affine(graph: &Graph, x: NodeId, scale: f32, shift: f32) -> Rewrite {
    if scale == 1.0 && shift == 0.0 {
        return Rewrite::Existing(x);
    }
    if scale == 0.0 {
        return Rewrite::New(Op::Const { value: F32::new(shift), shape: graph.shape(x).0.clone() }, vec![]);
    }
    match (&graph.node(x).op, graph.inputs(x).as_slice()) {
        (Op::Unary(UnaryOp::Affine { scale: s, shift: t }), &[inner]) => {
            affine(graph, inner, scale * s.get(), scale * t.get() + shift)
        }
        _ => Rewrite::New(Op::Unary(UnaryOp::Affine { scale: F32::new(scale), shift: F32::new(shift) }), vec![x]),
    }
}

/// A sum, difference or product with one constant operand, as an affine map of the other.
fn with_constant_operand(graph: &Graph, op: BinaryOp, a: NodeId, b: NodeId) -> Option<Rewrite> {
    let (x, c, constant_first) = match (constant(graph, a), constant(graph, b)) {
        (None, Some(c)) => (a, c, false),
        (Some(c), None) => (b, c, true),
        _ => return None,
    };
    let (scale, shift) = match (op, constant_first) {
        (BinaryOp::Add, _) => (1.0, c),
        (BinaryOp::Sub, false) => (1.0, -c),
        (BinaryOp::Sub, true) => (-1.0, c),
        (BinaryOp::Mul, _) => (c, 0.0),
        _ => return None,
    };
    Some(affine(graph, x, scale, shift))
}

/// The value of `op` over constant inputs `values`, if it can be folded.
fn fold(op: &Op, values: &[f32], inputs: &[NodeId], graph: &Graph) -> Option<f32> {
    let elementwise = |instr: ScalarInstr| {
        let mut instrs: Vec<ScalarInstr> = (0..values.len() as u8).map(ScalarInstr::Input).collect();
        instrs.push(instr);
        FusedExpr { inputs: values.len(), instrs }.eval_scalar(values)
    };
    let all_equal = values.windows(2).all(|w| w[0].to_bits() == w[1].to_bits());
    match op {
        Op::Unary(u) => Some(elementwise(ScalarInstr::Unary(*u, 0))),
        Op::Binary(b) => Some(elementwise(ScalarInstr::Binary(*b, 0, 1))),
        Op::Fused(expr) => Some(expr.eval_scalar(values)),
        Op::Broadcast { .. } | Op::Reshape { .. } | Op::Slice { .. } => Some(values[0]),
        Op::Concat { .. } if all_equal => Some(values[0]),
        Op::Reduce { op: ReduceOp::Mean, .. } => Some(values[0]),
        Op::Reduce { op: ReduceOp::Sum, axes } => {
            let shape = &graph.shape(inputs[0]).0;
            let count: usize = axes.iter().map(|a| shape[*a]).product();
            Some((values[0] as f64 * count as f64) as f32)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Origin;

    fn origin() -> Origin {
        Origin { layer: "t".into(), span: Default::default() }
    }

    fn add(g: &mut Graph, op: Op, inputs: &[NodeId]) -> NodeId {
        g.add(op, inputs, origin()).unwrap()
    }

    fn affine_op(scale: f32, shift: f32) -> Op {
        Op::Unary(UnaryOp::Affine { scale: F32::new(scale), shift: F32::new(shift) })
    }

    /// A graph with input x: f32[2, 3] and the blob "y" = `build(x)`, simplified; returns the
    /// graph, x and what y became.
    fn simplified(build: impl Fn(&mut Graph, NodeId) -> NodeId) -> (Graph, NodeId, NodeId, usize) {
        let mut g = Graph::default();
        let x = add(&mut g, Op::Input { field: crate::ir::InputField::Image, shape: vec![2, 3] }, &[]);
        let y = build(&mut g, x);
        g.blobs.push(crate::ir::Blob { name: "y".into(), node: y });
        let changed = Simplify.run(&mut g);
        let y = g.blob("y").unwrap();
        (g, x, y, changed)
    }

    #[test]
    fn identities_vanish() {
        for op in [affine_op(1.0, 0.0), Op::Unary(UnaryOp::Pow(F32::new(1.0))), Op::Reshape { to: vec![2, 3] }] {
            let (_, x, y, changed) = simplified(|g, x| add(g, op.clone(), &[x]));
            assert_eq!((y, changed), (x, 1), "{op:?}");
        }
        let (_, x, y, _) = simplified(|g, x| add(g, Op::Slice { axis: 1, start: 0, end: 3 }, &[x]));
        assert_eq!(y, x);
    }

    #[test]
    fn affine_maps_compose_and_constant_operands_become_affine() {
        // 2·(3x + 1) − 4 = 6x − 2.
        let (g, x, y, _) = simplified(|g, x| {
            let inner = add(g, affine_op(3.0, 1.0), &[x]);
            let outer = add(g, affine_op(2.0, 0.0), &[inner]);
            let four = add(g, Op::Const { value: F32::new(4.0), shape: vec![2, 3] }, &[]);
            add(g, Op::Binary(BinaryOp::Sub), &[outer, four])
        });
        assert_eq!(g.node(y).op, affine_op(6.0, -2.0));
        assert_eq!(g.inputs(y), vec![x]);
        // c − x = −x + c; x · 0 = 0.
        let (g, _, y, _) = simplified(|g, x| {
            let c = add(g, Op::Const { value: F32::new(5.0), shape: vec![2, 3] }, &[]);
            add(g, Op::Binary(BinaryOp::Sub), &[c, x])
        });
        assert_eq!(g.node(y).op, affine_op(-1.0, 5.0));
        let (g, _, y, _) = simplified(|g, x| add(g, affine_op(0.0, 0.5), &[x]));
        assert_eq!(g.node(y).op, Op::Const { value: F32::new(0.5), shape: vec![2, 3] });
    }

    #[test]
    fn reshapes_collapse() {
        let (g, x, y, _) = simplified(|g, x| {
            let flat = add(g, Op::Reshape { to: vec![6] }, &[x]);
            add(g, Op::Reshape { to: vec![3, 2] }, &[flat])
        });
        assert_eq!(g.node(y).op, Op::Reshape { to: vec![3, 2] });
        assert_eq!(g.inputs(y), vec![x]);
    }

    #[test]
    fn constants_fold() {
        // sum over a 2×3 broadcast of exp(0)·0.5 = 6 · 0.5 = 3.
        let (g, _, y, _) = simplified(|g, _| {
            let zero = add(g, Op::Const { value: F32::new(0.0), shape: vec![] }, &[]);
            let one = add(g, Op::Unary(UnaryOp::Exp), &[zero]);
            let half = add(g, affine_op(0.5, 0.0), &[one]);
            let wide = add(g, Op::Broadcast { to: vec![2, 3], dims: vec![] }, &[half]);
            add(g, Op::Reduce { op: ReduceOp::Sum, axes: vec![0, 1] }, &[wide])
        });
        assert_eq!(g.node(y).op, Op::Const { value: F32::new(3.0), shape: vec![] });
    }

    #[test]
    fn noise_and_stop_gradient_stay() {
        let (g, x, y, changed) = simplified(|g, x| add(g, Op::StopGradient, &[x]));
        assert_eq!((g.inputs(y), changed), (vec![x], 0));
    }
}
