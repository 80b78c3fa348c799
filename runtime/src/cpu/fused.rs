//! The fused elementwise kernel: evaluates a [`FusedExpr`] block by block. For each block of
//! [`BLOCK`] elements every instruction is one plain loop over the block into a scratch row, so
//! the inner loops stay as simple (and as vectorizable) as the unfused kernels', and the scratch
//! stays in cache. The per-element functions are the unfused kernels' own
//! ([`with_unary`], [`with_binary`]), so fused and unfused programs agree bit for bit.

use super::elementwise::{with_binary, with_unary, ApplyBinary, ApplyUnary};
use super::par::{for_each_chunk, SharedOut, ELEMENT_CHUNK};
use super::widest::{self, VectorLoop};
use super::View;
use crate::fused::{FusedExpr, ScalarInstr};

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
        for (b, block) in out.chunks_mut(BLOCK).enumerate() {
            eval_block(expr, inputs, start + b * BLOCK, &mut scratch[..rows], block);
        }
        SCRATCH.set(scratch);
    }
}

/// Evaluates `expr` for the elements `start..start + out.len()`.
#[inline(always)]
fn eval_block(expr: &FusedExpr, inputs: &[View], start: usize, scratch: &mut [f32], out: &mut [f32]) {
    let len = out.len();
    let last = expr.instrs.len() - 1;
    // A full-size input is read where it lies; a scalar input is spread over its scratch row.
    let full_input = |j: u16| match expr.instrs[j as usize] {
        ScalarInstr::Input(k) if inputs[k as usize].data.len() != 1 => Some(&inputs[k as usize].data[start..][..len]),
        _ => None,
    };
    for (i, instr) in expr.instrs.iter().enumerate() {
        let (done, rest) = scratch.split_at_mut(i * BLOCK);
        let dst: &mut [f32] = if i == last { &mut *out } else { &mut rest[..len] };
        let operand = |j: u16| full_input(j).unwrap_or_else(|| &done[j as usize * BLOCK..][..len]);
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

/// One block of a unary instruction: source and destination.
struct Block1<'a>(&'a [f32], &'a mut [f32]);

impl ApplyUnary for Block1<'_> {
    #[inline(always)]
    fn apply<F: Fn(f32) -> f32 + Copy + Sync + Send>(self, f: F) {
        super::elementwise::map_slice(self.0, self.1, f);
    }
}

/// One block of a binary instruction: sources and destination.
struct Block2<'a>(&'a [f32], &'a [f32], &'a mut [f32]);

impl ApplyBinary for Block2<'_> {
    #[inline(always)]
    fn apply<F: Fn(f32, f32) -> f32 + Copy + Sync + Send>(self, f: F) {
        super::elementwise::map2_slice(self.0, self.1, self.2, f);
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
}
