//! The execution plan: the contract between the compiler and the backends. A plan is a list of
//! kernel calls over numbered buffers; it knows nothing of graph files or the IR.

use crate::fused::FusedExpr;
use crate::ops::{BinaryOp, ConvAttrs, Distribution, PoolAttrs, ReduceOp, UnaryOp, WarpAttrs, F32};

/// A buffer's index in [`Plan::buffers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

/// What a buffer holds between steps.
#[derive(Clone, Debug, PartialEq)]
pub enum BufferRole {
    /// Persistent state by name: a parameter, a running statistic or optimizer state. It keeps its
    /// value between runs of the plan and is what checkpoints save.
    State(String),
    /// Fed by the caller before each run (a data batch, a step counter).
    Feed(String),
    /// An intermediate value, recomputed every run.
    Temp,
}

/// One buffer: its shape and role.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    /// Row-major shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// What it holds.
    pub role: BufferRole,
}

impl Buffer {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A kernel: what one step computes. Shapes are those of the step's buffers.
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// Fills the output with one value.
    Fill(F32),
    /// Draws the output from a distribution; `stream` separates noise sources.
    Sample { dist: Distribution, stream: u32 },
    /// `op(A)·op(B)` of two matrices.
    MatMul { trans_a: bool, trans_b: bool },
    /// Convolution of N×C×H×W by O×C×kh×kw.
    Conv2d(ConvAttrs),
    /// Transposed convolution of N×C×H×W by C×O×kh×kw (also a convolution's input gradient).
    ConvTranspose2d(ConvAttrs),
    /// A convolution's weight gradient from its input (N×C×H×W) and output gradient
    /// (N×O×Ho×Wo): O×C×kh×kw, the kernel size taken from the output buffer.
    Conv2dGradWeight(ConvAttrs),
    /// Pooling.
    Pool2d(PoolAttrs),
    /// Pooling's input gradient from its input and output gradient.
    Pool2dGrad(PoolAttrs),
    /// Nearest-neighbour upsampling.
    Upsample2d { scale: usize },
    /// Affine warp of N×C×H×W images (input 0), each by its row of N×4 draws (input 1).
    Warp2d(WarpAttrs),
    /// The warp's adjoint: the images' gradient from the output gradient (input 0) and draws.
    Warp2dGrad(WarpAttrs),
    /// Elementwise function of one input.
    Unary(UnaryOp),
    /// Elementwise function of two same-shaped inputs.
    Binary(BinaryOp),
    /// A fused elementwise expression of inputs shaped as the output or scalars (broadcast).
    Fused(FusedExpr),
    /// `base` (a matrix product or convolution), then a bias per column or channel (axis 1, the
    /// last input) and an optional activation applied to its output in place.
    Epilogue { base: Box<Kernel>, activation: Option<UnaryOp> },
    /// Reduction over `axes` of a fused expression whose inputs are shaped as the reduction's
    /// input (or scalars), without materializing the expression's value.
    FusedReduce { expr: FusedExpr, op: ReduceOp, axes: Vec<usize> },
    /// Reduction over `axes` (removed from the shape).
    Reduce { op: ReduceOp, axes: Vec<usize> },
    /// Broadcast: input axis i is output axis `dims[i]` (size equal, or 1 and repeated).
    Broadcast { dims: Vec<usize> },
    /// Copies the input (reshapes and stop-gradients).
    Copy,
    /// Concatenation along `axis`.
    Concat { axis: usize },
    /// Elements `start..end` along `axis`.
    Slice { axis: usize, start: usize, end: usize },
    /// Softmax along `axis`.
    Softmax { axis: usize },
    /// log(softmax) along `axis`.
    LogSoftmax { axis: usize },
    /// One-hot rows from integer labels.
    OneHot { classes: usize },
    /// Fraction of rows whose label is among the `top_k` highest scores.
    Accuracy { top_k: usize },
}

/// One kernel call.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What to compute.
    pub kernel: Kernel,
    /// Input buffers, in order.
    pub inputs: Vec<BufId>,
    /// The output buffer.
    pub output: BufId,
    /// What the step computes, for messages and profiles (e.g. `d_real/conv1 (conv2d)`).
    pub label: String,
}

/// A lowered program.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Every buffer.
    pub buffers: Vec<Buffer>,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// After all steps, `(source, target)`: the target state buffer takes the source's value
    /// (parameter, running-statistic and optimizer-state updates). Each source is a distinct
    /// `Temp` buffer, which the runtime may swap with the state rather than copy.
    pub writebacks: Vec<(BufId, BufId)>,
    /// Values the caller reads after a run, by name (losses, named blobs).
    pub outputs: Vec<(String, BufId)>,
    /// Where temporaries live: `None` gives each its own storage.
    pub memory: Option<MemoryPlan>,
}

/// Shared storage for temporaries whose lifetimes do not overlap: a set of slots, each as large
/// as the largest buffer it holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryPlan {
    /// For each buffer of the plan, its slot (`None` for state and feeds).
    pub slot_of: Vec<Option<u32>>,
    /// The length in elements of each slot.
    pub slot_len: Vec<usize>,
}

impl MemoryPlan {
    /// For each buffer, the index of its slot (`usize::MAX` for state and feeds): where a
    /// backend finds a temporary's storage.
    pub fn homes(&self) -> Vec<usize> {
        self.slot_of.iter().map(|slot| slot.map_or(usize::MAX, |s| s as usize)).collect()
    }

    /// No sharing: a slot of its own for every temporary of `buffers`.
    pub fn unshared(buffers: &[Buffer]) -> Self {
        let mut memory = MemoryPlan::default();
        for buffer in buffers {
            let temp = buffer.role == BufferRole::Temp;
            memory.slot_of.push(temp.then_some(memory.slot_len.len() as u32));
            if temp {
                memory.slot_len.push(buffer.numel());
            }
        }
        memory
    }
}

impl Plan {
    /// The plan's memory plan, or one slot per temporary when it has none.
    pub fn memory_or_unshared(&self) -> std::borrow::Cow<'_, MemoryPlan> {
        match &self.memory {
            Some(memory) => std::borrow::Cow::Borrowed(memory),
            None => std::borrow::Cow::Owned(MemoryPlan::unshared(&self.buffers)),
        }
    }

    /// The buffer of output `name`.
    pub fn output(&self, name: &str) -> Option<BufId> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, b)| *b)
    }

    /// The shape of buffer `id`.
    pub fn shape(&self, id: BufId) -> &[usize] {
        &self.buffers[id.0 as usize].shape
    }
}
