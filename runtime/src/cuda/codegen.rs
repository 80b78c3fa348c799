//! CUDA C generated from the IR: one kernel per [`FusedExpr`], generated from the same expression the
//! CPU backend interprets, named after a hash of its source so that a backend compiles each
//! distinct expression once. Each input is read with a stride of 1 (a tensor) or 0 (a scalar
//! broadcast to every element), or periodically (a broadcast read in place: element `i / d % m`
//! of a per-channel tensor); the per-element math follows the CPU kernels' definitions.

use std::fmt::Write as _;

use crate::fused::{FusedExpr, ScalarInstr};
use crate::ops::{BinaryOp, UnaryOp};

/// A generated kernel: its entry point and its CUDA C function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSource {
    /// The `extern "C"` function name.
    pub name: String,
    /// The function, after a comment saying what it computes (compiled after the prelude).
    pub function: String,
}

impl KernelSource {
    /// The kernel named `{prefix}_{hash}` from a function whose signature and body are given
    /// with `NAME` for its name: the hash covers everything but the name, so that equal kernels
    /// get equal names in every build and process.
    fn named(prefix: &str, comment: &str, function: &str) -> Self {
        let name = format!("{prefix}_{:016x}", fnv1a(function.as_bytes()));
        let function = format!("// {comment}\n{}", function.replacen("NAME", &name, 1));
        KernelSource { name, function }
    }

    /// The kernel as a translation unit of its own.
    pub fn source(&self) -> String {
        translation_unit(std::slice::from_ref(self))
    }
}

/// One translation unit holding `kernels` (so that NVRTC is started once for all of them).
pub fn translation_unit(kernels: &[KernelSource]) -> String {
    let mut source = super::PRELUDE.to_string();
    for kernel in kernels {
        source.push('\n');
        source.push_str(&kernel.function);
    }
    source
}

/// How a generated kernel reads its input `k` at element `index` of what it iterates over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Read {
    /// At `index * s{k}`: a tensor of the iteration's shape (1) or a scalar (0).
    Strided,
    /// At `index / d{k} % m{k}`: a broadcast read from its source in place (a per-channel
    /// statistic: `d` elements per channel, `m` channels).
    Periodic,
}

impl Read {
    /// Input `k` of the kernel at element `index`.
    fn at(self, k: usize, index: &str) -> String {
        match self {
            Read::Strided => format!("x{k}[({index}) * s{k}]"),
            Read::Periodic => format!("x{k}[({index}) / d{k} % m{k}]"),
        }
    }
}

/// The statements computing `expr` for element `index` of its inputs, read as `reads` say:
/// `t0 … tN` for its instructions; returns them and the result's name.
fn statements(expr: &FusedExpr, index: &str, reads: &[Read]) -> (String, String) {
    statements_reading(expr, "t", &|k| reads[k].at(k, index))
}

/// The statements computing `expr`, input `k` being the value `input(k)`: `{prefix}0 …
/// {prefix}N` for its instructions; returns them and the result's name.
fn statements_reading(expr: &FusedExpr, prefix: &str, input: &dyn Fn(usize) -> String) -> (String, String) {
    let mut body = String::new();
    for (i, instr) in expr.instrs.iter().enumerate() {
        let value = match *instr {
            ScalarInstr::Input(k) => input(k as usize),
            ScalarInstr::Unary(op, x) => unary(op, &format!("{prefix}{x}")),
            ScalarInstr::Binary(op, a, b) => binary(op, &format!("{prefix}{a}"), &format!("{prefix}{b}")),
        };
        let _ = writeln!(body, "        const float {prefix}{i} = {value};");
    }
    (body, format!("{prefix}{}", expr.instrs.len().saturating_sub(1)))
}

/// The parameters of inputs read as `reads` say: pointers `x0..`, then each input's stride
/// `s{k}` (1 for a tensor, 0 for a scalar broadcast to every element) or period `d{k}, m{k}`.
fn input_params(reads: &[Read]) -> String {
    let pointers = (0..reads.len()).map(|k| format!("const float* __restrict__ x{k}, "));
    let indexing = reads.iter().enumerate().map(|(k, read)| match read {
        Read::Strided => format!("u64 s{k}, "),
        Read::Periodic => format!("u64 d{k}, u64 m{k}, "),
    });
    pointers.chain(indexing).collect()
}

/// The kernel evaluating `expr` for `n` elements into `out`, its inputs read as `reads` say.
pub fn fused_kernel(expr: &FusedExpr, reads: &[Read]) -> KernelSource {
    let (body, result) = statements(expr, "i", reads);
    let function = format!(
        "extern \"C\" __global__ void NAME(float* __restrict__ out, {}u64 n) {{\n    FOR_EACH(i, n) {{\n{body}        \
         out[i] = {result};\n    }}\n}}\n",
        input_params(reads)
    );
    KernelSource::named("fused", &expr.to_string(), &function)
}

/// Where a member of a fused group reads one of its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberInput {
    /// The group kernel's input `k` (`x{k}`, read as its [`Read`] says).
    External(usize),
    /// The value an earlier member computed for the same element, in a register.
    Member(usize),
}

/// One member of a fused group: its expression and where it reads each of its inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupMember {
    /// What the member computes.
    pub expr: FusedExpr,
    /// Where its input `k` comes from.
    pub inputs: Vec<MemberInput>,
}

/// The kernel evaluating a group of fused steps of one size (Adam's update of one parameter:
/// its decayed gradient, two moments and new value) for `n` elements: member `j` writes
/// `out{j}`, and a member reading an earlier member's output takes it from the register that
/// member computed, so each element is read once and written once per output. `externals` is
/// how the group reads each of the distinct inputs it reads from memory.
pub fn fused_group_kernel(members: &[GroupMember], externals: &[Read]) -> KernelSource {
    let mut body = String::new();
    for (j, member) in members.iter().enumerate() {
        let input = |k: usize| match member.inputs[k] {
            MemberInput::External(x) => externals[x].at(x, "i"),
            MemberInput::Member(m) => format!("r{m}"),
        };
        let (statements, result) = statements_reading(&member.expr, &format!("m{j}_t"), &input);
        let _ = write!(body, "{statements}        const float r{j} = {result};\n        out{j}[i] = r{j};\n");
    }
    let outputs: String = (0..members.len()).map(|j| format!("float* __restrict__ out{j}, ")).collect();
    let function = format!(
        "extern \"C\" __global__ void NAME({outputs}{}u64 n) {{\n    FOR_EACH(i, n) {{\n{body}    }}\n}}\n",
        input_params(externals)
    );
    let comment = members.iter().map(|m| m.expr.to_string()).collect::<Vec<_>>().join("; then ");
    KernelSource::named("fused_group", &comment, &function)
}

/// The kernel reducing `expr` (inputs shaped as the reduction's input, or scalars) as the
/// hand-written `reduce` does: output `i` sums, in f64, the expression at offsets `kept`(i) +
/// `reduced`(j) for j < count, times `scale` (1, or 1/count for a mean). `wide` gives each output
/// a block, as `reduce_wide` does. Its inputs are read as `reads` say, at the element's offset.
pub fn fused_reduce_kernel(expr: &FusedExpr, wide: bool, reads: &[Read]) -> KernelSource {
    let (body, result) = statements(expr, "e", reads);
    let params = format!(
        "float* __restrict__ out, {}u64 n, View kept, View reduced, u64 count, double scale",
        input_params(reads)
    );
    let (prefix, shared, outer, start, step, finish) = match wide {
        false => ("fused_reduce", "", "FOR_EACH(i, n)", "0", "1", "out[i] = (float)(sum * scale);"),
        true => (
            "fused_reduce_wide",
            "    __shared__ double partial[WIDE_BLOCK];\n",
            "FOR_EACH_BLOCK(i, n)",
            "threadIdx.x",
            "blockDim.x",
            "const double total = block_sum(partial, sum);\n        if (threadIdx.x == 0) out[i] = (float)(total * scale);",
        ),
    };
    let function = format!(
        "extern \"C\" __global__ void NAME({params}) {{\n{shared}    {outer} {{\n        const i64 base = offset_of(kept, i);\n        \
         double sum = 0.0;\n        for (u64 j = {start}; j < count; j += {step}) {{\n        const i64 e = base + \
         offset_of(reduced, j);\n{body}        sum += (double){result};\n        }}\n        {finish}\n    }}\n}}\n"
    );
    KernelSource::named(prefix, &format!("sum of {expr}"), &function)
}

/// The epilogue kernel: `out = activation(out + bias)` in place, the bias indexed by axis 1 of
/// an n-element tensor with `channels` along it and `inner` elements per channel.
pub fn bias_activation_kernel(activation: Option<UnaryOp>) -> KernelSource {
    let value = activation.map_or_else(|| "v".to_string(), |op| unary(op, "v"));
    let function = format!(
        "extern \"C\" __global__ void NAME(float* __restrict__ out, const float* __restrict__ bias, u64 n, u64 channels, \
         u64 inner) {{\n    FOR_EACH(i, n) {{\n        const float v = out[i] + bias[i / inner % channels];\n        \
         out[i] = {value};\n    }}\n}}\n"
    );
    KernelSource::named("bias", &format!("bias then {activation:?}"), &function)
}

/// A float literal that reads back as exactly `v`.
fn literal(v: f32) -> String {
    if v.is_finite() {
        // `{:?}` prints the shortest decimal that rounds back to `v`, always with a `.` or `e`.
        format!("{v:?}f")
    } else {
        format!("__int_as_float(0x{:08x})", v.to_bits())
    }
}

/// `op(x)` in CUDA C.
fn unary(op: UnaryOp, x: &str) -> String {
    match op {
        UnaryOp::Affine { scale, shift } => format!("{} * {x} + {}", literal(scale.get()), literal(shift.get())),
        UnaryOp::Pow(p) if p.get() == 1.0 => x.to_string(),
        UnaryOp::Pow(p) if p.get() == 2.0 => format!("{x} * {x}"),
        UnaryOp::Pow(p) if p.get() == 0.5 => format!("sqrtf({x})"),
        UnaryOp::Pow(p) => format!("powf({x}, {})", literal(p.get())),
        UnaryOp::Exp => format!("expf({x})"),
        UnaryOp::Log => format!("logf({x})"),
        UnaryOp::Abs => format!("fabsf({x})"),
        UnaryOp::Sign => format!("({x} > 0.0f ? 1.0f : ({x} < 0.0f ? -1.0f : {x} * 0.0f))"),
        UnaryOp::LeakyRelu(s) => format!("({x} > 0.0f ? {x} : {} * {x})", literal(s.get())),
        UnaryOp::LeakyReluSlope(s) => format!("({x} > 0.0f ? 1.0f : {})", literal(s.get())),
        UnaryOp::Tanh => format!("tanhf({x})"),
        UnaryOp::Sigmoid => format!("1.0f / (1.0f + expf(-{x}))"),
    }
}

/// `op(a, b)` in CUDA C.
fn binary(op: BinaryOp, a: &str, b: &str) -> String {
    match op {
        BinaryOp::Add => format!("{a} + {b}"),
        BinaryOp::Sub => format!("{a} - {b}"),
        BinaryOp::Mul => format!("{a} * {b}"),
        BinaryOp::Div => format!("{a} / {b}"),
        BinaryOp::Max => format!("({a} >= {b} ? {a} : {b})"),
        BinaryOp::GreaterEqual => format!("({a} >= {b} ? 1.0f : 0.0f)"),
        BinaryOp::SigmoidCrossEntropy => format!("fmaxf({a}, 0.0f) - {a} * {b} + log1pf(expf(-fabsf({a})))"),
    }
}

/// 64-bit FNV-1a: a stable hash (the same in every build and process) for kernel names.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::F32;

    fn adam_like() -> FusedExpr {
        // (x0 + (x1 / (sqrt(x2) + 1e-8)) * x3), x3 a scalar.
        FusedExpr {
            inputs: 4,
            instrs: vec![
                ScalarInstr::Input(0),
                ScalarInstr::Input(1),
                ScalarInstr::Input(2),
                ScalarInstr::Unary(UnaryOp::Pow(F32::new(0.5)), 2),
                ScalarInstr::Unary(UnaryOp::Affine { scale: F32::new(1.0), shift: F32::new(1e-8) }, 3),
                ScalarInstr::Binary(BinaryOp::Div, 1, 4),
                ScalarInstr::Input(3),
                ScalarInstr::Binary(BinaryOp::Mul, 5, 6),
                ScalarInstr::Binary(BinaryOp::Add, 0, 7),
            ],
        }
    }

    #[test]
    fn the_kernel_reads_every_input_with_its_stride_and_writes_the_last_value() {
        let k = fused_kernel(&adam_like(), &[Read::Strided; 4]);
        assert!(k.function.contains(&format!("void {}(float* __restrict__ out, const float* __restrict__ x0", k.name)));
        assert!(k.function.contains("u64 s3, u64 n)"), "{}", k.function);
        assert!(k.function.contains("const float t3 = sqrtf(t2);"), "{}", k.function);
        assert!(k.function.contains("const float t4 = 1.0f * t3 + 1e-8f;"), "{}", k.function);
        assert!(k.function.contains("const float t6 = x3[(i) * s3];"));
        assert!(k.function.contains("out[i] = t8;"));
    }

    #[test]
    fn a_periodic_input_is_read_at_its_channel() {
        let k = fused_kernel(&adam_like(), &[Read::Strided, Read::Periodic, Read::Strided, Read::Strided]);
        assert!(k.function.contains("u64 s0, u64 d1, u64 m1, u64 s2, u64 s3, u64 n)"), "{}", k.function);
        assert!(k.function.contains("const float t1 = x1[(i) / d1 % m1];"), "{}", k.function);
        assert_ne!(k.name, fused_kernel(&adam_like(), &[Read::Strided; 4]).name);
    }

    #[test]
    fn names_are_stable_and_distinguish_expressions() {
        let (a, b) = (fused_kernel(&adam_like(), &[Read::Strided; 4]), fused_kernel(&adam_like(), &[Read::Strided; 4]));
        assert_eq!(a, b);
        let mut other = adam_like();
        other.instrs[4] = ScalarInstr::Unary(UnaryOp::Affine { scale: F32::new(1.0), shift: F32::new(1e-7) }, 3);
        assert_ne!(fused_kernel(&other, &[Read::Strided; 4]).name, a.name);
    }

    #[test]
    fn literals_read_back_exactly() {
        for v in [0.1f32, 1.0, -0.0009999871, 1e-8, 3.4028235e38, f32::MIN_POSITIVE] {
            let text = literal(v);
            let parsed: f32 = text.trim_end_matches('f').parse().unwrap();
            assert_eq!(parsed.to_bits(), v.to_bits(), "{text}");
        }
        assert_eq!(literal(f32::INFINITY), "__int_as_float(0x7f800000)");
    }

    #[test]
    fn a_fused_reduction_sums_the_expression_at_each_reduced_offset() {
        let square =
            FusedExpr { inputs: 1, instrs: vec![ScalarInstr::Input(0), ScalarInstr::Binary(BinaryOp::Mul, 0, 0)] };
        let k = fused_reduce_kernel(&square, false, &[Read::Strided]);
        assert!(k.name.starts_with("fused_reduce_"));
        assert!(k.function.contains("const float t0 = x0[(e) * s0];"), "{}", k.function);
        assert!(k.function.contains("sum += (double)t1;"));
        assert_ne!(k.name, fused_kernel(&square, &[Read::Strided]).name);
        let wide = fused_reduce_kernel(&square, true, &[Read::Strided]);
        assert!(wide.name.starts_with("fused_reduce_wide_"));
        assert!(wide.function.contains("for (u64 j = threadIdx.x; j < count; j += blockDim.x)"), "{}", wide.function);
        assert!(wide.function.contains("block_sum(partial, sum)"));
    }

    #[test]
    fn a_group_keeps_earlier_members_outputs_in_registers() {
        // m = 0.9·x0 + x1 (x1 read by both members), then x2 + m / (sqrt(m) + 1e-8) · x3.
        let moment = FusedExpr {
            inputs: 2,
            instrs: vec![
                ScalarInstr::Input(0),
                ScalarInstr::Unary(UnaryOp::Affine { scale: F32::new(0.9), shift: F32::new(0.0) }, 0),
                ScalarInstr::Input(1),
                ScalarInstr::Binary(BinaryOp::Add, 1, 2),
            ],
        };
        let update = GroupMember {
            expr: adam_like(),
            inputs: vec![
                MemberInput::External(2),
                MemberInput::Member(0),
                MemberInput::Member(0),
                MemberInput::External(1),
            ],
        };
        let members =
            [GroupMember { expr: moment, inputs: vec![MemberInput::External(0), MemberInput::External(1)] }, update];
        let k = fused_group_kernel(&members, &[Read::Strided; 3]);
        let f = &k.function;
        assert!(k.name.starts_with("fused_group_"));
        assert!(f.contains("(float* __restrict__ out0, float* __restrict__ out1, const float* __restrict__ x0"), "{f}");
        assert!(f.contains("u64 s2, u64 n)"), "{f}");
        assert!(f.contains("const float m0_t0 = x0[(i) * s0];"), "{f}");
        assert!(f.contains("const float m0_t2 = x1[(i) * s1];"), "{f}");
        assert!(f.contains("const float r0 = m0_t3;\n        out0[i] = r0;"), "{f}");
        // The second member reads the first one's value from its register, not from out0.
        assert!(f.contains("const float m1_t1 = r0;") && f.contains("const float m1_t2 = r0;"), "{f}");
        assert!(
            f.contains("const float m1_t0 = x2[(i) * s2];") && f.contains("const float m1_t6 = x1[(i) * s1];"),
            "{f}"
        );
        assert!(f.contains("out1[i] = r1;") && !f.contains("= out0["), "{f}");
        assert_eq!(f.matches("FOR_EACH").count(), 1, "one pass over the elements");
    }

    #[test]
    fn epilogues_differ_by_activation() {
        let relu = bias_activation_kernel(Some(UnaryOp::LeakyRelu(F32::new(0.0))));
        assert!(relu.function.contains("out[i] = (v > 0.0f ? v : 0.0f * v);"), "{}", relu.function);
        assert_ne!(relu.name, bias_activation_kernel(None).name);
        assert!(bias_activation_kernel(None).function.contains("out[i] = v;"));
    }
}
