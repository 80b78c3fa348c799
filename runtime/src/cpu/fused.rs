//! The fused elementwise kernel: evaluates a [`FusedExpr`] block by block. For each block of
//! [`BLOCK`] elements every instruction is one plain loop over the block into a scratch row, so
//! the inner loops stay as simple (and as vectorizable) as the unfused kernels', and the scratch
//! stays in cache. The per-element functions are the unfused kernels' own
//! ([`with_unary`], [`with_binary`]), so fused and unfused programs agree bit for bit.

use super::elementwise::{affine, map2_slice, map_slice, with_binary, with_unary, ApplyBinary, ApplyUnary};
use super::par::{for_each_chunk, SharedOut, ELEMENT_CHUNK};
use super::widest::{self, VectorLoop};
use super::View;
use crate::fused::{FusedExpr, ScalarInstr};
use crate::ops::UnaryOp;
use smallvec::SmallVec;

/// Elements evaluated per instruction loop.
const BLOCK: usize = 1024;

/// `out[i] = expr(inputs[0][i], inputs[1][i], …)`; an input of one element is broadcast.
pub fn fused(expr: &FusedExpr, inputs: &[View], out: &mut [f32]) {
    assert!(!expr.instrs.is_empty(), "a fused expression has at least one instruction");
    debug_assert_eq!(inputs.len(), expr.inputs);
    debug_assert!(inputs.iter().all(|v| v.data.len() == 1 || v.data.len() == out.len()));
    for_each_chunk(out, ELEMENT_CHUNK, |c, chunk| eval_range(expr, inputs, c * ELEMENT_CHUNK, chunk));
}

/// An input of a member of a [`fused_group`]: a buffer (of the group's size, or a scalar), or
/// the output of an earlier member.
#[derive(Clone, Copy, Debug)]
pub enum GroupInput<'a> {
    /// A buffer read as [`fused`] reads its inputs.
    Data(&'a [f32]),
    /// The output of member `k` (an earlier one), read at the same element.
    Member(usize),
}

/// Where a member of a [`fused_group`] writes its output.
#[derive(Debug)]
pub enum GroupOutput<'a> {
    /// Into this buffer of the group's size.
    Buffer(&'a mut [f32]),
    /// Only into a chunk-sized scratch: only later members read it (a weight's decayed gradient,
    /// read by Adam's moments), so it never travels to memory.
    Chunk,
}

thread_local! {
    /// Each thread's chunk-sized scratch for [`GroupOutput::Chunk`] members.
    static CHUNK_OUTPUTS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Evaluates several fused expressions of `n` elements together, chunk by chunk: member k writes
/// `outs[k]` and may read earlier members' outputs, whose chunk is then still in cache. Each
/// element is computed exactly as [`fused`] computes it, member after member, so the results
/// are the same bits; what changes is memory traffic (Adam's moment and parameter updates read
/// the gradient and the new moments once from memory instead of three times).
///
/// # Panics
/// If a buffer output is not `n` long, or a member reads a later member or itself.
pub fn fused_group(members: &[(&FusedExpr, &[GroupInput])], outs: &mut [GroupOutput], n: usize) {
    assert_eq!(members.len(), outs.len(), "a fused group has an output per member");
    for (k, (expr, inputs)) in members.iter().enumerate() {
        assert!(!expr.instrs.is_empty() && inputs.len() == expr.inputs, "member {k} is a well-formed expression");
        if let GroupOutput::Buffer(out) = &outs[k] {
            assert_eq!(out.len(), n, "member {k}'s output holds the group's {n} elements");
        }
        for input in inputs.iter() {
            match input {
                GroupInput::Member(j) => assert!(*j < k, "member {k} reads member {j}, not an earlier one"),
                GroupInput::Data(d) => assert!(d.len() == 1 || d.len() == n, "member {k}'s inputs match its size"),
            }
        }
    }
    let pointers: smallvec::SmallVec<[Option<SharedOut>; 8]> = outs
        .iter_mut()
        .map(|o| match o {
            GroupOutput::Buffer(out) => Some(SharedOut(out.as_mut_ptr())),
            GroupOutput::Chunk => None,
        })
        .collect();
    let chunk_members = pointers.iter().filter(|p| p.is_none()).count();
    let chunk = |c: usize| {
        let range = c * ELEMENT_CHUNK..n.min((c + 1) * ELEMENT_CHUNK);
        let mut scratch = CHUNK_OUTPUTS.take();
        if scratch.len() < chunk_members * ELEMENT_CHUNK {
            scratch.resize(chunk_members * ELEMENT_CHUNK, 0.0);
        }
        {
            let mut rows = scratch.chunks_mut(ELEMENT_CHUNK);
            // SAFETY: the buffer outputs are distinct buffers of n values (each a separate `&mut`);
            // this task is the only one that touches chunk c of each, and they outlive the tasks.
            let mut chunks: smallvec::SmallVec<[&mut [f32]; 8]> = pointers
                .iter()
                .map(|p| match p {
                    Some(p) => unsafe { std::slice::from_raw_parts_mut(p.0.add(range.start), range.len()) },
                    None => &mut rows.next().expect("a scratch row per chunk member")[..range.len()],
                })
                .collect();
            for (k, (expr, inputs)) in members.iter().enumerate() {
                let (done, rest) = chunks.split_at_mut(k);
                let views: smallvec::SmallVec<[View; 8]> = inputs
                    .iter()
                    .map(|input| match *input {
                        GroupInput::Data(data) if data.len() == 1 => View { data, shape: &[] },
                        GroupInput::Data(data) => View { data: &data[range.clone()], shape: &[] },
                        GroupInput::Member(j) => View { data: &*done[j], shape: &[] },
                    })
                    .collect();
                eval_range(expr, &views, 0, rest[0]);
            }
        }
        CHUNK_OUTPUTS.set(scratch);
    };
    let chunks = n.div_ceil(ELEMENT_CHUNK);
    if n >= super::par::PAR_MIN {
        use rayon::prelude::*;
        (0..chunks).into_par_iter().for_each(chunk);
    } else {
        (0..chunks).for_each(chunk);
    }
}

/// Evaluates `expr` for the elements `start..start + out.len()` on the calling thread, block by
/// block, with the widest vector instructions the CPU has ([`widest`]).
pub(super) fn eval_range(expr: &FusedExpr, inputs: &[View], start: usize, out: &mut [f32]) {
    widest::run(EvalRange { expr, inputs, start, out });
}

/// The arguments of [`eval_range`], whose loop [`widest::run`] compiles per instruction set.
struct EvalRange<'a> {
    expr: &'a FusedExpr,
    inputs: &'a [View<'a>],
    start: usize,
    out: &'a mut [f32],
}

thread_local! {
    /// Each thread's scratch rows, grown to the largest expression it has evaluated and reused,
    /// so that evaluating allocates nothing once a training step has run.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl VectorLoop for EvalRange<'_> {
    /// The evaluation loop, inlined into each instruction-set variant.
    #[inline(always)]
    fn run(self) {
        let EvalRange { expr, inputs, start, out } = self;
        // Taken out of the thread-local for the loop (and put back after), so that the loop is
        // compiled in this function, with its instruction set, not in a closure.
        let mut scratch = SCRATCH.take();
        // Every instruction but the last (which writes to the output) has a scratch row. Rows are
        // written before they are read, so leftovers of earlier expressions do no harm.
        let rows = (expr.instrs.len() - 1) * BLOCK;
        if scratch.len() < rows {
            scratch.resize(rows, 0.0);
        }
        let folded = folded_instructions(expr, inputs);
        for (b, block) in out.chunks_mut(BLOCK).enumerate() {
            eval_block(expr, &folded, inputs, start + b * BLOCK, &mut scratch[..rows], block);
        }
        SCRATCH.set(scratch);
    }
}

/// Which instructions are computed inside their readers' loops rather than in loops of their
/// own, each saving a pass over the block (a store and a load per vector): scalar inputs (read
/// as constants instead of spread over a row) and affine maps (`scale·x + shift`, the form
/// constant factors take) read by exactly one later instruction; never the result. An Adam update
/// with weight decay (four members: decayed gradient, both moments, parameter) runs 9 loops
/// instead of 17 this way.
fn folded_instructions(expr: &FusedExpr, inputs: &[View]) -> SmallVec<[bool; 32]> {
    let mut readers: SmallVec<[u8; 32]> = smallvec::smallvec![0; expr.instrs.len()];
    let mut read = |j: u16| readers[j as usize] = readers[j as usize].saturating_add(1);
    for instr in &expr.instrs {
        match *instr {
            ScalarInstr::Input(_) => {}
            ScalarInstr::Unary(_, x) => read(x),
            ScalarInstr::Binary(_, a, b) => {
                read(a);
                read(b);
            }
        }
    }
    let last = expr.instrs.len() - 1;
    let mut folded: SmallVec<[bool; 32]> = SmallVec::with_capacity(expr.instrs.len());
    for (i, instr) in expr.instrs.iter().enumerate() {
        let folds = match *instr {
            ScalarInstr::Input(k) => inputs[k as usize].data.len() == 1,
            // The source must have values of its own (or be a scalar): an affine of a folded
            // affine would read a row nobody wrote.
            ScalarInstr::Unary(UnaryOp::Affine { .. }, x) => {
                readers[i] == 1 && !(folded[x as usize] && matches!(expr.instrs[x as usize], ScalarInstr::Unary(..)))
            }
            _ => false,
        };
        folded.push(i != last && folds);
    }
    folded
}

/// Evaluates `expr` for the elements `start..start + out.len()`; the instructions marked in
/// `folded` ([`folded_instructions`]) are computed by their readers.
#[inline(always)]
fn eval_block(expr: &FusedExpr, folded: &[bool], inputs: &[View], start: usize, scratch: &mut [f32], out: &mut [f32]) {
    let len = out.len();
    let last = expr.instrs.len() - 1;
    // A full-size input is read where it lies; a scalar input is spread over its scratch row
    // when it is the result (otherwise it is folded).
    let full_input = |j: u16| match expr.instrs[j as usize] {
        ScalarInstr::Input(k) if inputs[k as usize].data.len() != 1 => Some(&inputs[k as usize].data[start..][..len]),
        _ => None,
    };
    for (i, instr) in expr.instrs.iter().enumerate() {
        if folded[i] {
            continue;
        }
        let (done, rest) = scratch.split_at_mut(i * BLOCK);
        let dst: &mut [f32] = if i == last { &mut *out } else { &mut rest[..len] };
        let values = |j: u16| full_input(j).unwrap_or_else(|| &done[j as usize * BLOCK..][..len]);
        // An operand is an instruction's values, a folded scalar input, or a folded affine map
        // of either.
        let scalar = |j: u16| match expr.instrs[j as usize] {
            ScalarInstr::Input(k) if folded[j as usize] => Some(inputs[k as usize].data[0]),
            _ => None,
        };
        let operand = |j: u16| match expr.instrs[j as usize] {
            ScalarInstr::Unary(UnaryOp::Affine { scale, shift }, x) if folded[j as usize] => match scalar(x) {
                Some(v) => Operand::Scalar(affine(scale.get(), shift.get())(v)),
                None => Operand::Affine(values(x), scale.get(), shift.get()),
            },
            _ => scalar(j).map_or_else(|| Operand::Values(values(j)), Operand::Scalar),
        };
        match *instr {
            ScalarInstr::Input(k) => match inputs[k as usize].data {
                [v] => dst.fill(*v),
                data if i == last => dst.copy_from_slice(&data[start..][..len]),
                _ => {}
            },
            ScalarInstr::Unary(op, x) => with_unary(op, Block1(operand(x), dst)),
            ScalarInstr::Binary(op, a, b) => with_binary(op, Block2(operand(a), operand(b), dst)),
        }
    }
}

/// An instruction's operand over one block.
#[derive(Clone, Copy)]
enum Operand<'a> {
    /// The values.
    Values(&'a [f32]),
    /// `scale·v + shift` of the values v: a folded affine instruction.
    Affine(&'a [f32], f32, f32),
    /// One value for every element: a folded scalar input.
    Scalar(f32),
}

/// One block of a unary instruction: source and destination.
struct Block1<'a>(Operand<'a>, &'a mut [f32]);

impl ApplyUnary for Block1<'_> {
    #[inline(always)]
    fn apply<F: Fn(f32) -> f32 + Copy + Sync + Send>(self, f: F) {
        match self.0 {
            Operand::Values(x) => map_slice(x, self.1, f),
            Operand::Affine(x, scale, shift) => map_slice(x, self.1, move |v| f(affine(scale, shift)(v))),
            Operand::Scalar(v) => self.1.fill(f(v)),
        }
    }
}

/// One block of a binary instruction: sources and destination.
struct Block2<'a>(Operand<'a>, Operand<'a>, &'a mut [f32]);

impl ApplyBinary for Block2<'_> {
    #[inline(always)]
    fn apply<F: Fn(f32, f32) -> f32 + Copy + Sync + Send>(self, f: F) {
        use Operand::{Affine, Scalar, Values};
        let out = self.2;
        match (self.0, self.1) {
            (Values(a), Values(b)) => map2_slice(a, b, out, f),
            (Affine(a, sa, ha), Values(b)) => map2_slice(a, b, out, move |x, y| f(affine(sa, ha)(x), y)),
            (Values(a), Affine(b, sb, hb)) => map2_slice(a, b, out, move |x, y| f(x, affine(sb, hb)(y))),
            (Affine(a, sa, ha), Affine(b, sb, hb)) => {
                map2_slice(a, b, out, move |x, y| f(affine(sa, ha)(x), affine(sb, hb)(y)))
            }
            (Scalar(a), Values(b)) => map_slice(b, out, move |y| f(a, y)),
            (Scalar(a), Affine(b, sb, hb)) => map_slice(b, out, move |y| f(a, affine(sb, hb)(y))),
            (Values(a), Scalar(b)) => map_slice(a, out, move |x| f(x, b)),
            (Affine(a, sa, ha), Scalar(b)) => map_slice(a, out, move |x| f(affine(sa, ha)(x), b)),
            (Scalar(a), Scalar(b)) => out.fill(f(a, b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{BinaryOp, UnaryOp, F32};

    #[test]
    fn matches_the_scalar_reference_across_blocks_chunks_and_threads() {
        // (x0 * s) + tanh(x1), with s a broadcast scalar; long enough for the parallel path.
        let expr = FusedExpr {
            inputs: 3,
            instrs: vec![
                ScalarInstr::Input(0),
                ScalarInstr::Input(2),
                ScalarInstr::Binary(BinaryOp::Mul, 0, 1),
                ScalarInstr::Input(1),
                ScalarInstr::Unary(UnaryOp::Tanh, 3),
                ScalarInstr::Binary(BinaryOp::Add, 2, 4),
                ScalarInstr::Unary(UnaryOp::Pow(F32::new(0.5)), 5),
            ],
        };
        let n = super::super::par::PAR_MIN + 1234;
        let x0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() + 2.0).collect();
        let x1: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let s = [0.75f32];
        let views = [View { data: &x0, shape: &[n] }, View { data: &x1, shape: &[n] }, View { data: &s, shape: &[] }];
        let mut out = vec![0.0; n];
        fused(&expr, &views, &mut out);
        for i in 0..n {
            assert_eq!(out[i].to_bits(), expr.eval_scalar(&[x0[i], x1[i], s[0]]).to_bits(), "element {i}");
        }
    }

    fn affine(scale: f32, shift: f32, x: u16) -> ScalarInstr {
        ScalarInstr::Unary(UnaryOp::Affine { scale: F32::new(scale), shift: F32::new(shift) }, x)
    }

    /// Runs `expr` over one full-size input and scalar inputs, on the parallel path, and
    /// compares every element with the scalar reference bit for bit.
    fn assert_matches_reference(expr: &FusedExpr, scalars: &[f32]) {
        let n = super::super::par::PAR_MIN + 777;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.23).sin() * 3.0).collect();
        let shape = [n];
        let mut views = vec![View { data: &x, shape: &shape }];
        views.extend(scalars.iter().map(|s| View { data: std::slice::from_ref(s), shape: &[] }));
        let mut out = vec![0.0; n];
        fused(expr, &views, &mut out);
        for i in 0..n {
            let args: Vec<f32> = std::iter::once(x[i]).chain(scalars.iter().copied()).collect();
            assert_eq!(out[i].to_bits(), expr.eval_scalar(&args).to_bits(), "element {i} of {:?}", expr.instrs);
        }
    }

    #[test]
    fn folded_scalars_and_affine_maps_match_the_scalar_reference() {
        use ScalarInstr::{Binary, Input, Unary};
        // Folds: 1 (scalar, two readers), 2 (affine of a value row, one reader),
        // 5 (affine of the scalar). Not folded: 3 (affine of a folded affine), 4 (Scalar × Scalar
        // binary, whose row holds one value spread), and the result.
        let chain = FusedExpr {
            inputs: 2,
            instrs: vec![
                Input(0),
                Input(1),
                affine(0.5, -1.0, 0),
                affine(2.0, 0.25, 2),
                Binary(BinaryOp::Mul, 1, 1),
                affine(-3.0, 0.5, 1),
                Binary(BinaryOp::Add, 3, 4),
                Binary(BinaryOp::Mul, 6, 5),
                Unary(UnaryOp::Tanh, 7),
            ],
        };
        assert_eq!(
            folded_instructions(&chain, &[View { data: &[0.0; 2], shape: &[2] }, View { data: &[0.0], shape: &[] }])
                .to_vec(),
            [false, true, true, false, false, true, false, false, false]
        );
        assert_matches_reference(&chain, &[1.5]);
        // An affine read twice stays a row of its own; an affine as the result is computed.
        let shared = FusedExpr {
            inputs: 1,
            instrs: vec![Input(0), affine(0.5, 1.0, 0), Binary(BinaryOp::Mul, 1, 1), affine(4.0, -2.0, 2)],
        };
        assert_matches_reference(&shared, &[]);
        // A scalar as the result is spread over the output.
        let constant = FusedExpr { inputs: 2, instrs: vec![Input(1)] };
        assert_matches_reference(&constant, &[0.125]);
        // Scalar operands on either side of a binary, and an affine of a scalar read by a unary.
        let sides = FusedExpr {
            inputs: 3,
            instrs: vec![
                Input(1),
                Input(0),
                Binary(BinaryOp::Sub, 0, 1),
                Input(2),
                Binary(BinaryOp::Div, 2, 3),
                affine(0.5, 0.5, 3),
                Unary(UnaryOp::Exp, 5),
                Binary(BinaryOp::Add, 4, 6),
            ],
        };
        assert_matches_reference(&sides, &[2.0, -0.75]);
    }
}
