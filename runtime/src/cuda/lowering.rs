//! A plan lowered for the CUDA backend, all on the host and testable without a GPU: each step
//! becomes device operations (kernel launches with their arguments in parameter order, cuBLAS
//! matrix products, device copies, noise drawn on the host) over the plan's buffers and one
//! workspace.
//!
//! Convolutions unfold the whole batch into one matrix (`im2col`), so that each is one GEMM plus
//! a permutation between image-major (N×C×P) and channel-major (C×N·P) layouts. The groups of
//! fused steps the CPU evaluates chunk by chunk ([`crate::schedule`]) become one generated kernel
//! each: Adam's update of a parameter is one launch.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::codegen::{
    bias_activation_kernel, fused_group_kernel, fused_kernel, fused_reduce_kernel, GroupMember, KernelSource,
    MemberInput, Read,
};
use super::launch::{ConvGeometry, PoolGeometry, View, WIDE_BLOCK};
use crate::fused::{FusedExpr, ScalarInstr};
use crate::ops::{ConvAttrs, Distribution, PoolAttrs, PoolMethod, ReduceOp, UnaryOp};
use crate::schedule::Unit;
use crate::{BufId, BufferRole, Kernel, Plan};

/// Device memory an operation reads or writes: a plan buffer or the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// The storage of a plan buffer.
    Buffer(BufId),
    /// The program's scratch memory.
    Workspace,
}

/// A place in device memory: a base and an element offset from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// Which memory.
    pub base: Base,
    /// Elements from its start.
    pub offset: usize,
}

impl Place {
    /// The start of buffer `id`.
    pub fn buffer(id: BufId) -> Self {
        Place { base: Base::Buffer(id), offset: 0 }
    }

    /// `offset` elements into the workspace.
    pub fn workspace(offset: usize) -> Self {
        Place { base: Base::Workspace, offset }
    }
}

/// A kernel argument; the order of a launch's arguments is its kernel's parameter order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg {
    /// A `float*` into device memory.
    Ptr(Place),
    /// A `u64`.
    U64(u64),
    /// An `i64`.
    I64(i64),
    /// An `int`.
    I32(i32),
    /// A `float`.
    F32(f32),
    /// A `double`.
    F64(f64),
    /// A strided view.
    View(View),
    /// Pooling geometry.
    Pool(PoolGeometry),
    /// Convolution geometry.
    Conv(ConvGeometry),
}

impl Arg {
    /// The CUDA C type of the parameter this argument is passed to.
    pub fn c_type(&self) -> &'static str {
        match self {
            Arg::Ptr(_) => "float*",
            Arg::U64(_) => "u64",
            Arg::I64(_) => "i64",
            Arg::I32(_) => "int",
            Arg::F32(_) => "float",
            Arg::F64(_) => "double",
            Arg::View(_) => "View",
            Arg::Pool(_) => "Pool",
            Arg::Conv(_) => "Conv",
        }
    }
}

/// cuBLAS's single-precision GEMM in its own column-major terms: C (m×n, leading dimension
/// `ldc`) = op(A)·op(B) + beta·C.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gemm {
    /// Transpose A.
    pub trans_a: bool,
    /// Transpose B.
    pub trans_b: bool,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The inner dimension.
    pub k: usize,
    /// A and its leading dimension.
    pub a: (Place, usize),
    /// B and its leading dimension.
    pub b: (Place, usize),
    /// C and its leading dimension.
    pub c: (Place, usize),
}

impl Gemm {
    /// `out` (m×n, row-major) = op(A)·op(B) of row-major operands, A stored with `a_cols` columns
    /// (transposed when `trans_a`), B with `b_cols`. Row-major C is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ,
    /// and a row-major matrix read column-major is its transpose, so the operands swap places
    /// and keep their flags.
    pub fn row_major(
        (m, n, k): (usize, usize, usize),
        (a, a_cols, trans_a): (Place, usize, bool),
        (b, b_cols, trans_b): (Place, usize, bool),
        out: Place,
    ) -> Self {
        Gemm { trans_a: trans_b, trans_b: trans_a, m: n, n: m, k, a: (b, b_cols), b: (a, a_cols), c: (out, n) }
    }
}

/// One device operation.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceOp {
    /// Kernel `kernel` launched for `threads` work items (its grid-stride loop's count).
    Launch { kernel: String, threads: u64, args: Vec<Arg> },
    /// A matrix product on cuBLAS.
    Gemm(Gemm),
    /// Copies `len` elements.
    Copy { from: Place, to: Place, len: usize },
    /// Noise drawn on the host, as the CPU backend draws it, then copied into `out` (`len`
    /// elements, rows of `row_len`).
    Sample { dist: Distribution, stream: u32, out: BufId, len: usize, row_len: usize },
}

/// What a generated kernel computes.
#[derive(Clone, Debug, PartialEq)]
pub enum Generated {
    /// A fused elementwise expression ([`fused_kernel`]), its inputs read as `reads` say.
    Fused { expr: FusedExpr, reads: Vec<Read> },
    /// A reduction of a fused expression ([`fused_reduce_kernel`]), `wide` with a block per
    /// output.
    FusedReduce { expr: FusedExpr, wide: bool, reads: Vec<Read> },
    /// An epilogue's bias and activation ([`bias_activation_kernel`]).
    Bias(Option<UnaryOp>),
    /// A group of fused steps of one size ([`fused_group_kernel`]), reading one input from
    /// memory per entry of `externals`, as it says.
    FusedGroup { members: Vec<GroupMember>, externals: Vec<Read> },
}

impl Generated {
    /// The kernel's CUDA C.
    pub fn source(&self) -> KernelSource {
        match self {
            Generated::Fused { expr, reads } => fused_kernel(expr, reads),
            Generated::FusedReduce { expr, wide, reads } => fused_reduce_kernel(expr, *wide, reads),
            Generated::Bias(activation) => bias_activation_kernel(*activation),
            Generated::FusedGroup { members, externals } => fused_group_kernel(members, externals),
        }
    }
}

/// What a program runs next.
#[derive(Clone, Debug, PartialEq)]
pub enum Scheduled {
    /// The operations of step `i` ([`Lowered::steps`]).
    Step(usize),
    /// Fused steps of one size (their indices, in order) evaluated by one generated kernel.
    Group { members: Vec<usize>, launch: DeviceOp },
}

/// A plan lowered for the device.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lowered {
    /// The operations of each step of the plan, in step order (run one by one to find the first
    /// step whose output is not finite).
    pub steps: Vec<Vec<DeviceOp>>,
    /// The order a run takes: the steps, with the CPU's groups of fused steps each one launch
    /// (and the small steps it moves ahead of a group run first, as there).
    pub schedule: Vec<Scheduled>,
    /// The generated kernels the launches use, each once, by name.
    pub generated: BTreeMap<String, Generated>,
    /// Elements of workspace the most demanding step needs.
    pub workspace: usize,
    /// The broadcast steps left out: every step that reads one reads its source in place
    /// ([`Read::Periodic`]), so the step has no operations and its output is never written.
    pub elided: BTreeSet<usize>,
    /// The sources of the left-out broadcasts that are temporaries: they are read later than
    /// the memory plan expects (by the broadcast's readers), so each needs storage of its own.
    pub own_storage: BTreeSet<BufId>,
}

/// A broadcast whose element `i` is element `i / inner % period` of its source (a per-channel
/// statistic broadcast over a batch of images, a scalar over anything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Periodic {
    source: BufId,
    inner: u64,
    period: u64,
}

/// The broadcast steps of `plan` that can be left out, by output: periodic, read only by
/// (generated) elementwise steps and fused reductions over their shape, and neither a program
/// output nor a state update.
fn elidable_broadcasts(plan: &Plan) -> HashMap<BufId, (usize, Periodic)> {
    let mut found: HashMap<BufId, (usize, Periodic)> = HashMap::new();
    for (index, step) in plan.steps.iter().enumerate() {
        let Kernel::Broadcast { dims } = &step.kernel else { continue };
        let updates = |b: BufId| plan.writebacks.iter().any(|(source, _)| *source == b);
        let kept =
            plan.outputs.iter().any(|(_, b)| *b == step.output) || updates(step.output) || updates(step.inputs[0]);
        if let (false, Some((inner, period))) =
            (kept, periodic(plan.shape(step.inputs[0]), plan.shape(step.output), dims))
        {
            found.insert(step.output, (index, Periodic { source: step.inputs[0], inner, period }));
        }
    }
    let numel = |b: BufId| plan.buffers[b.0 as usize].numel();
    for step in &plan.steps {
        let iterated = match &step.kernel {
            Kernel::Fused(_) | Kernel::Unary(_) | Kernel::Binary(_) => Some(numel(step.output)),
            Kernel::FusedReduce { .. } => step.inputs.iter().map(|&b| numel(b)).max(),
            _ => None,
        };
        for input in &step.inputs {
            if found.contains_key(input) && iterated != Some(numel(*input)) {
                found.remove(input);
            }
        }
    }
    found
}

/// `(inner, period)` when broadcasting `input` to `output` along `dims` makes element `i` of
/// the output element `i / inner % period` of the input: the input's axes longer than 1 are
/// consecutive axes of the output.
fn periodic(input: &[usize], output: &[usize], dims: &[usize]) -> Option<(u64, u64)> {
    let kept: Vec<usize> = dims.iter().zip(input).filter(|(_, &n)| n > 1).map(|(&d, _)| d).collect();
    let (Some(&first), Some(&last)) = (kept.first(), kept.last()) else { return Some((1, 1)) };
    // Consecutive and in order (a broadcast that also transposes is not periodic).
    if kept.iter().enumerate().any(|(k, &d)| d != first + k) {
        return None;
    }
    let period: usize = output[first..=last].iter().product();
    (period == input.iter().product::<usize>())
        .then(|| (output[last + 1..].iter().product::<usize>() as u64, period as u64))
}

/// Lowers every step of `plan`.
pub fn lower(plan: &Plan) -> Lowered {
    let broadcasts = elidable_broadcasts(plan);
    let own_storage = broadcasts
        .values()
        .map(|(_, periodic)| periodic.source)
        .filter(|b| plan.buffers[b.0 as usize].role == BufferRole::Temp)
        .collect();
    let elided = broadcasts.values().map(|(step, _)| *step).collect();
    let mut lowered = Lowered { elided, own_storage, ..Lowered::default() };
    let reading = Reading { plan, broadcasts: &broadcasts };
    for (index, step) in plan.steps.iter().enumerate() {
        let mut ops = Vec::new();
        if !lowered.elided.contains(&index) {
            let out = Place::buffer(step.output);
            let need =
                lower_kernel(&reading, &step.kernel, &step.inputs, step.output, out, &mut ops, &mut lowered.generated);
            lowered.workspace = lowered.workspace.max(need);
        }
        lowered.steps.push(ops);
    }
    lowered.schedule = crate::schedule::schedule(plan, &plan.memory_or_unshared().homes(), 1)
        .into_iter()
        .map(|unit| match unit {
            Unit::Step(i) => Scheduled::Step(i),
            Unit::Group(members, _) => {
                let launch = group_launch(&reading, &members, &mut lowered.generated);
                Scheduled::Group { members: members.to_vec(), launch }
            }
        })
        .collect();
    lowered
}

/// The launch evaluating fused steps `members` together: every member's output is written, and
/// a member reading an earlier one's output takes it from that member's register.
fn group_launch(reading: &Reading, members: &[usize], generated: &mut BTreeMap<String, Generated>) -> DeviceOp {
    let plan = reading.plan;
    let outputs: Vec<BufId> = members.iter().map(|&m| plan.steps[m].output).collect();
    let mut externals: Vec<BufId> = Vec::new();
    let mut group = Vec::with_capacity(members.len());
    for &m in members {
        let Kernel::Fused(expr) = &plan.steps[m].kernel else { unreachable!("a group holds fused steps") };
        let inputs = plan.steps[m]
            .inputs
            .iter()
            .map(|b| match outputs.iter().position(|o| o == b) {
                Some(j) => MemberInput::Member(j),
                None => MemberInput::External(externals.iter().position(|x| x == b).unwrap_or_else(|| {
                    externals.push(*b);
                    externals.len() - 1
                })),
            })
            .collect();
        group.push(GroupMember { expr: expr.clone(), inputs });
    }
    let numel = plan.buffers[outputs[0].0 as usize].numel();
    let (inputs, reads) = reading.inputs(&externals, numel);
    let args =
        outputs.iter().map(|&o| Arg::Ptr(Place::buffer(o))).chain(inputs).chain([Arg::U64(numel as u64)]).collect();
    let kernel = Generated::FusedGroup { members: group, externals: reads };
    launch_generated(generated, kernel, numel, args)
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<i64> {
    View::contiguous(shape)
}

fn launch(kernel: &str, threads: usize, args: Vec<Arg>) -> DeviceOp {
    DeviceOp::Launch { kernel: kernel.to_string(), threads: threads as u64, args }
}

/// A generated kernel's launch; the kernel is recorded in `generated`.
fn launch_generated(
    generated: &mut BTreeMap<String, Generated>,
    kernel: Generated,
    threads: usize,
    args: Vec<Arg>,
) -> DeviceOp {
    let name = kernel.source().name;
    let op = launch(&name, threads, args);
    generated.entry(name).or_insert(kernel);
    op
}

/// A plan, with the broadcasts its generated kernels read in place.
struct Reading<'a> {
    plan: &'a Plan,
    broadcasts: &'a HashMap<BufId, (usize, Periodic)>,
}

impl Reading<'_> {
    /// The arguments of a generated expression's inputs, iterating over `numel` elements, and
    /// how it reads each: pointers, then a stride (1 for an input of `numel` elements, 0 for a
    /// scalar broadcast to every element), or, for a left-out broadcast, its source's pointer
    /// and period.
    fn inputs(&self, inputs: &[BufId], numel: usize) -> (Vec<Arg>, Vec<Read>) {
        let source = |b: &BufId| self.broadcasts.get(b).map(|(_, periodic)| *periodic);
        let pointers = inputs.iter().map(|b| Arg::Ptr(Place::buffer(source(b).map_or(*b, |p| p.source))));
        let mut indexing = Vec::new();
        let reads = inputs
            .iter()
            .map(|b| match source(b) {
                Some(p) => {
                    indexing.extend([Arg::U64(p.inner), Arg::U64(p.period)]);
                    Read::Periodic
                }
                None => {
                    indexing.push(Arg::U64(u64::from(self.plan.buffers[b.0 as usize].numel() == numel)));
                    Read::Strided
                }
            })
            .collect();
        (pointers.chain(indexing).collect(), reads)
    }
}

/// Appends the operations of `kernel` over `inputs` writing `out` (buffer `output`'s storage),
/// and returns the workspace they need.
fn lower_kernel(
    reading: &Reading,
    kernel: &Kernel,
    inputs: &[BufId],
    output: BufId,
    out: Place,
    ops: &mut Vec<DeviceOp>,
    generated: &mut BTreeMap<String, Generated>,
) -> usize {
    let plan = reading.plan;
    let shape = |b: BufId| plan.shape(b);
    let out_shape = shape(output);
    let numel: usize = out_shape.iter().product();
    let input = |i: usize| Place::buffer(inputs[i]);
    let conv_shapes = || (shape(inputs[0]), shape(inputs[1]), out_shape);
    let conv_places = || (input(0), input(1), out);
    match kernel {
        Kernel::Fill(v) => {
            ops.push(launch("fill", numel, vec![Arg::Ptr(out), Arg::F32(v.get()), Arg::U64(numel as u64)]))
        }
        Kernel::Sample { dist, stream } => {
            let row_len = out_shape.last().copied().unwrap_or(1);
            ops.push(DeviceOp::Sample { dist: *dist, stream: *stream, out: output, len: numel, row_len });
        }
        Kernel::MatMul { trans_a, trans_b } => {
            let (a, b) = (shape(inputs[0]), shape(inputs[1]));
            let k = if *trans_a { a[0] } else { a[1] };
            let gemm = Gemm::row_major(
                (out_shape[0], out_shape[1], k),
                (input(0), a[1], *trans_a),
                (input(1), b[1], *trans_b),
                out,
            );
            ops.push(DeviceOp::Gemm(gemm));
        }
        Kernel::Conv2d(attrs) => return conv2d(attrs, conv_shapes(), conv_places(), ops),
        Kernel::ConvTranspose2d(attrs) => return conv_transpose2d(attrs, conv_shapes(), conv_places(), ops),
        Kernel::Conv2dGradWeight(attrs) => return conv2d_grad_weight(attrs, conv_shapes(), conv_places(), ops),
        Kernel::Pool2d(attrs) => {
            let g = pool_geometry(attrs, shape(inputs[0]), out_shape);
            let planes = out_shape[0] * out_shape[1];
            ops.push(launch(
                "pool2d",
                numel,
                vec![Arg::Ptr(out), Arg::Ptr(input(0)), Arg::U64(planes as u64), Arg::Pool(g)],
            ));
        }
        Kernel::Pool2dGrad(attrs) => {
            let g = pool_geometry(attrs, shape(inputs[0]), shape(inputs[1]));
            let planes = out_shape[0] * out_shape[1];
            let args =
                vec![Arg::Ptr(out), Arg::Ptr(input(0)), Arg::Ptr(input(1)), Arg::U64(planes as u64), Arg::Pool(g)];
            ops.push(launch("pool2d_grad", numel, args));
        }
        Kernel::Upsample2d { scale } => {
            let x = shape(inputs[0]);
            let (planes, h, w) = (x[0] * x[1], x[2] as i32, x[3] as i32);
            let args = vec![
                Arg::Ptr(out),
                Arg::Ptr(input(0)),
                Arg::U64(planes as u64),
                Arg::I32(h),
                Arg::I32(w),
                Arg::I32(*scale as i32),
            ];
            ops.push(launch("upsample2d", numel, args));
        }
        Kernel::Warp2d(attrs) | Kernel::Warp2dGrad(attrs) => {
            let x = shape(inputs[0]);
            let name = if matches!(kernel, Kernel::Warp2d(_)) { "warp2d" } else { "warp2d_grad" };
            let args = vec![
                Arg::Ptr(out),
                Arg::Ptr(input(0)),
                Arg::Ptr(input(1)),
                Arg::U64(x[0] as u64),
                Arg::I32(x[1] as i32),
                Arg::I32(x[2] as i32),
                Arg::I32(x[3] as i32),
                Arg::F32(attrs.rotation.get()),
                Arg::F32(attrs.scale.get()),
                Arg::F32(attrs.translation.get()),
            ];
            ops.push(launch(name, numel, args));
        }
        Kernel::Unary(op) => {
            let expr = FusedExpr { inputs: 1, instrs: vec![ScalarInstr::Input(0), ScalarInstr::Unary(*op, 0)] };
            return lower_kernel(reading, &Kernel::Fused(expr), inputs, output, out, ops, generated);
        }
        Kernel::Binary(op) => {
            let instrs = vec![ScalarInstr::Input(0), ScalarInstr::Input(1), ScalarInstr::Binary(*op, 0, 1)];
            return lower_kernel(
                reading,
                &Kernel::Fused(FusedExpr { inputs: 2, instrs }),
                inputs,
                output,
                out,
                ops,
                generated,
            );
        }
        Kernel::Fused(expr) => {
            let (expression_inputs, reads) = reading.inputs(inputs, numel);
            let args =
                std::iter::once(Arg::Ptr(out)).chain(expression_inputs).chain([Arg::U64(numel as u64)]).collect();
            ops.push(launch_generated(generated, Generated::Fused { expr: expr.clone(), reads }, numel, args));
        }
        Kernel::Epilogue { base, activation } => {
            let (bias, base_inputs) = inputs.split_last().expect("an epilogue has a bias input");
            let need = lower_kernel(reading, base, base_inputs, output, out, ops, generated);
            let channels = out_shape[1];
            let inner: usize = out_shape[2..].iter().product();
            let args = vec![
                Arg::Ptr(out),
                Arg::Ptr(Place::buffer(*bias)),
                Arg::U64(numel as u64),
                Arg::U64(channels as u64),
                Arg::U64(inner as u64),
            ];
            ops.push(launch_generated(generated, Generated::Bias(*activation), numel, args));
            return need;
        }
        Kernel::FusedReduce { expr, op, axes } => {
            let source = inputs.iter().map(|&b| shape(b)).max_by_key(|s| s.iter().product::<usize>()).unwrap_or(&[]);
            let (kept, reduced, count, scale) = reduction(source, axes, *op);
            let (expression_inputs, reads) = reading.inputs(inputs, source.iter().product());
            let args = std::iter::once(Arg::Ptr(out))
                .chain(expression_inputs)
                .chain([Arg::U64(numel as u64), Arg::View(kept), Arg::View(reduced), Arg::U64(count), Arg::F64(scale)])
                .collect();
            let wide = is_wide(count);
            let kernel = Generated::FusedReduce { expr: expr.clone(), wide, reads };
            ops.push(launch_generated(generated, kernel, reduction_threads(numel, wide), args));
        }
        Kernel::Reduce { op, axes } => {
            let (kept, reduced, count, scale) = reduction(shape(inputs[0]), axes, *op);
            let args = vec![
                Arg::Ptr(out),
                Arg::Ptr(input(0)),
                Arg::U64(numel as u64),
                Arg::View(kept),
                Arg::View(reduced),
                Arg::U64(count),
                Arg::F64(scale),
            ];
            let wide = is_wide(count);
            ops.push(launch(if wide { "reduce_wide" } else { "reduce" }, reduction_threads(numel, wide), args));
        }
        Kernel::Broadcast { dims } => {
            let view = View::broadcast(shape(inputs[0]), out_shape, dims).expect("at most MAX_RANK axes");
            ops.push(gather(out, input(0), numel, view, 0));
        }
        Kernel::Copy => ops.push(DeviceOp::Copy { from: input(0), to: out, len: numel }),
        Kernel::Concat { axis } => {
            let out_strides = strides(out_shape);
            let mut start = 0;
            for (i, &b) in inputs.iter().enumerate() {
                let part = shape(b);
                let view = View::new(part, &out_strides).expect("at most MAX_RANK axes");
                let base = start as i64 * out_strides[*axis];
                let n = part.iter().product::<usize>();
                let args = vec![Arg::Ptr(out), Arg::Ptr(input(i)), Arg::U64(n as u64), Arg::View(view), Arg::I64(base)];
                ops.push(launch("scatter", n, args));
                start += part[*axis];
            }
        }
        Kernel::Slice { axis, start, .. } => {
            let in_strides = strides(shape(inputs[0]));
            let view = View::new(out_shape, &in_strides).expect("at most MAX_RANK axes");
            ops.push(gather(out, input(0), numel, view, *start as i64 * in_strides[*axis]));
        }
        Kernel::Softmax { axis } | Kernel::LogSoftmax { axis } => {
            let log = matches!(kernel, Kernel::LogSoftmax { .. });
            let outer: usize = out_shape[..*axis].iter().product();
            let inner: usize = out_shape[axis + 1..].iter().product();
            let args = vec![
                Arg::Ptr(out),
                Arg::Ptr(input(0)),
                Arg::U64(outer as u64),
                Arg::U64(out_shape[*axis] as u64),
                Arg::U64(inner as u64),
                Arg::I32(log as i32),
            ];
            ops.push(launch("softmax", outer * inner, args));
        }
        Kernel::OneHot { classes } => {
            let rows = numel / (*classes).max(1);
            let args = vec![Arg::Ptr(out), Arg::Ptr(input(0)), Arg::U64(rows as u64), Arg::U64(*classes as u64)];
            ops.push(launch("one_hot", numel, args));
        }
        Kernel::Accuracy { top_k } => {
            let scores = shape(inputs[0]);
            let (rows, classes) = (scores[0], scores[1..].iter().product::<usize>());
            let args = vec![
                Arg::Ptr(out),
                Arg::Ptr(input(0)),
                Arg::Ptr(input(1)),
                Arg::U64(rows as u64),
                Arg::U64(classes as u64),
                Arg::U64(*top_k as u64),
            ];
            ops.push(launch("accuracy", 1, args));
        }
    }
    0
}

fn gather(out: Place, input: Place, n: usize, view: View, base: i64) -> DeviceOp {
    launch("gather", n, vec![Arg::Ptr(out), Arg::Ptr(input), Arg::U64(n as u64), Arg::View(view), Arg::I64(base)])
}

/// Reductions summing at least this many elements per output give each output a block.
const WIDE_MIN: u64 = 256;

fn is_wide(count: u64) -> bool {
    count >= WIDE_MIN
}

/// Threads launched for a reduction to `n` outputs: one per output, or a block of
/// [`WIDE_BLOCK`] per output when `wide`.
fn reduction_threads(n: usize, wide: bool) -> usize {
    if wide {
        n * WIDE_BLOCK as usize
    } else {
        n
    }
}

/// The `reduce` kernels' walk over `shape` reduced over `axes`: kept and reduced views, the
/// count summed per output and the scale (1, or 1/count for a mean).
fn reduction(shape: &[usize], axes: &[usize], op: ReduceOp) -> (View, View, u64, f64) {
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    let (kept, reduced, count) = View::reduction(shape, &sorted).expect("at most MAX_RANK axes");
    let scale = match op {
        ReduceOp::Sum => 1.0,
        ReduceOp::Mean => 1.0 / count.max(1) as f64,
    };
    (kept, reduced, count, scale)
}

/// Pooling of `input` (N×C×H×W) to `output` (N×C×Ho×Wo).
fn pool_geometry(attrs: &PoolAttrs, input: &[usize], output: &[usize]) -> PoolGeometry {
    let i = |v: usize| v as i32;
    PoolGeometry {
        h: i(input[2]),
        w: i(input[3]),
        ho: i(output[2]),
        wo: i(output[3]),
        kh: i(attrs.kernel[0]),
        kw: i(attrs.kernel[1]),
        sh: i(attrs.stride[0]),
        sw: i(attrs.stride[1]),
        ph: i(attrs.pad[0]),
        pw: i(attrs.pad[1]),
        max: i32::from(attrs.method == PoolMethod::Max),
    }
}

/// The geometry of a convolution of `image` (N×C×H×W) by a kh×kw window giving `out` (N×O×Ho×Wo).
fn conv_geometry(attrs: &ConvAttrs, image: &[usize], window: [usize; 2], out: &[usize]) -> ConvGeometry {
    let i = |v: usize| v as i32;
    ConvGeometry {
        c: i(image[1]),
        h: i(image[2]),
        w: i(image[3]),
        kh: i(window[0]),
        kw: i(window[1]),
        sh: i(attrs.stride[0]),
        sw: i(attrs.stride[1]),
        ph: i(attrs.pad[0]),
        pw: i(attrs.pad[1]),
        ho: i(out[2]),
        wo: i(out[3]),
    }
}

/// A permutation of the first two axes of an A×B×P tensor at `from` into B×A×P at `to`.
fn swap_leading_axes(from: Place, to: Place, (a, b, p): (usize, usize, usize)) -> DeviceOp {
    let view = View::new(&[b, a, p], &[p as i64, (b * p) as i64, 1]).expect("three axes");
    gather(to, from, a * b * p, view, 0)
}

/// A convolution step's two input shapes and its output shape.
type Shapes<'a> = (&'a [usize], &'a [usize], &'a [usize]);
/// Where a convolution step's two inputs and its output are.
type Places = (Place, Place, Place);

fn im2col(cols: Place, images: Place, g: ConvGeometry, batch: usize) -> DeviceOp {
    let threads = (g.c * g.kh * g.kw * g.ho * g.wo) as usize * batch;
    launch("im2col", threads, vec![Arg::Ptr(cols), Arg::Ptr(images), Arg::Conv(g), Arg::U64(batch as u64)])
}

/// Convolution: the batch unfolded (K = C·kh·kw rows, N·P columns), W (O×K) times it (O×N·P),
/// permuted to N×O×P.
fn conv2d(
    attrs: &ConvAttrs,
    (x, w, out_shape): Shapes,
    (image, weight, out): Places,
    ops: &mut Vec<DeviceOp>,
) -> usize {
    let g = conv_geometry(attrs, x, [w[2], w[3]], out_shape);
    let (n, o, p, k) = (x[0], w[0], out_shape[2] * out_shape[3], w[1] * w[2] * w[3]);
    let (cols, product) = (Place::workspace(0), Place::workspace(k * n * p));
    ops.push(im2col(cols, image, g, n));
    ops.push(DeviceOp::Gemm(Gemm::row_major((o, n * p, k), (weight, k, false), (cols, n * p, false), product)));
    ops.push(swap_leading_axes(product, out, (o, n, p)));
    k * n * p + o * n * p
}

/// Transposed convolution: the batch permuted to C×N·P (P = H·W), Wᵀ (K×C, K = O·kh·kw) times it,
/// folded back (`col2im`) into N×O×Ho×Wo.
fn conv_transpose2d(
    attrs: &ConvAttrs,
    (x, w, out_shape): Shapes,
    (image, weight, out): Places,
    ops: &mut Vec<DeviceOp>,
) -> usize {
    // The convolution this one transposes maps the output's shape to the input's.
    let g = conv_geometry(attrs, out_shape, [w[2], w[3]], x);
    let (n, c, p, k) = (x[0], x[1], x[2] * x[3], w[1] * w[2] * w[3]);
    let (channel_major, cols) = (Place::workspace(0), Place::workspace(c * n * p));
    ops.push(swap_leading_axes(image, channel_major, (n, c, p)));
    ops.push(DeviceOp::Gemm(Gemm::row_major((k, n * p, c), (weight, k, true), (channel_major, n * p, false), cols)));
    let threads = out_shape.iter().product();
    ops.push(launch("col2im", threads, vec![Arg::Ptr(out), Arg::Ptr(cols), Arg::Conv(g), Arg::U64(n as u64)]));
    c * n * p + k * n * p
}

/// A convolution's weight gradient: the output gradient permuted to O×N·P times the unfolded
/// batch transposed (N·P×K).
fn conv2d_grad_weight(
    attrs: &ConvAttrs,
    (x, grad, out_shape): Shapes,
    (image, grad_out, out): Places,
    ops: &mut Vec<DeviceOp>,
) -> usize {
    let g = conv_geometry(attrs, x, [out_shape[2], out_shape[3]], grad);
    let (n, o, p, k) = (x[0], grad[1], grad[2] * grad[3], out_shape[1] * out_shape[2] * out_shape[3]);
    let (cols, channel_major) = (Place::workspace(0), Place::workspace(k * n * p));
    ops.push(im2col(cols, image, g, n));
    ops.push(swap_leading_axes(grad_out, channel_major, (n, o, p)));
    ops.push(DeviceOp::Gemm(Gemm::row_major((o, k, n * p), (channel_major, n * p, false), (cols, n * p, true), out)));
    k * n * p + o * n * p
}

#[cfg(test)]
mod tests {
    use super::periodic;

    #[test]
    fn a_per_channel_broadcast_is_periodic_over_the_images() {
        // A BatchNorm mean of 64 channels over 8 images of 7×7: element i is channel i / 49 % 64.
        assert_eq!(periodic(&[64], &[8, 64, 7, 7], &[1]), Some((49, 64)));
        assert_eq!(periodic(&[1, 64, 1, 1], &[8, 64, 7, 7], &[0, 1, 2, 3]), Some((49, 64)));
        // A row of 10 repeated down 4 rows, and a scalar.
        assert_eq!(periodic(&[10], &[4, 10], &[1]), Some((1, 10)));
        assert_eq!(periodic(&[1], &[4, 10], &[1]), Some((1, 1)));
    }

    #[test]
    fn broadcasts_over_axes_between_kept_ones_or_transposing_are_not() {
        assert_eq!(periodic(&[8, 7], &[8, 64, 7], &[0, 2]), None);
        assert_eq!(periodic(&[3, 5], &[5, 3], &[1, 0]), None);
    }
}
