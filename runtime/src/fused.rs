//! Fused elementwise expressions: a small program of scalar instructions that one kernel call
//! evaluates for every element, instead of one kernel call (and one buffer) per op.

use std::fmt;

use serde::Serialize;

use crate::cpu::elementwise::{binary_scalar, unary_scalar};
use crate::ops::{BinaryOp, UnaryOp};

/// One instruction of a [`FusedExpr`]; operands are indices of earlier instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ScalarInstr {
    /// The element of input `k` (a scalar input gives its one value to every element).
    Input(u8),
    /// An elementwise function of one earlier result.
    Unary(UnaryOp, u16),
    /// An elementwise function of two earlier results.
    Binary(BinaryOp, u16, u16),
}

/// An elementwise expression of `inputs` inputs; the last instruction is the result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FusedExpr {
    /// Number of inputs.
    pub inputs: usize,
    /// Instructions in evaluation order.
    pub instrs: Vec<ScalarInstr>,
}

impl FusedExpr {
    /// The result for one element whose inputs are `inputs`: the reference the kernel matches bit
    /// for bit.
    pub fn eval_scalar(&self, inputs: &[f32]) -> f32 {
        let mut values: Vec<f32> = Vec::with_capacity(self.instrs.len());
        for instr in &self.instrs {
            let v = match *instr {
                ScalarInstr::Input(k) => inputs[k as usize],
                ScalarInstr::Unary(op, x) => unary_scalar(op, values[x as usize]),
                ScalarInstr::Binary(op, a, b) => binary_scalar(op, values[a as usize], values[b as usize]),
            };
            values.push(v);
        }
        *values.last().expect("a fused expression has at least one instruction")
    }

    /// Number of arithmetic instructions (inputs excluded).
    pub fn op_count(&self) -> usize {
        self.instrs.iter().filter(|i| !matches!(i, ScalarInstr::Input(_))).count()
    }

    fn write(&self, f: &mut fmt::Formatter, i: usize) -> fmt::Result {
        let arg = |f: &mut fmt::Formatter, j: u16| self.write(f, j as usize);
        match self.instrs[i] {
            ScalarInstr::Input(k) => write!(f, "x{k}"),
            ScalarInstr::Unary(op, x) => {
                let name = match op {
                    // Scale 1 and shift +0 are left out: `(0.9*x0)`, `(x0+1)`.
                    UnaryOp::Affine { scale, shift } => {
                        f.write_str("(")?;
                        if scale.get() != 1.0 {
                            write!(f, "{scale}*")?;
                        }
                        arg(f, x)?;
                        return match shift.get() {
                            s if s.to_bits() == 0 => f.write_str(")"),
                            s if s < 0.0 => write!(f, "{s})"),
                            s => write!(f, "+{s})"),
                        };
                    }
                    UnaryOp::Pow(p) => {
                        f.write_str("pow(")?;
                        arg(f, x)?;
                        return write!(f, ",{p})");
                    }
                    UnaryOp::LeakyRelu(s) => {
                        f.write_str("leaky_relu(")?;
                        arg(f, x)?;
                        return write!(f, ",{s})");
                    }
                    UnaryOp::LeakyReluSlope(s) => {
                        f.write_str("leaky_relu_slope(")?;
                        arg(f, x)?;
                        return write!(f, ",{s})");
                    }
                    UnaryOp::Exp => "exp",
                    UnaryOp::Log => "ln",
                    UnaryOp::Abs => "abs",
                    UnaryOp::Sign => "sign",
                    UnaryOp::Tanh => "tanh",
                    UnaryOp::Sigmoid => "sigmoid",
                };
                write!(f, "{name}(")?;
                arg(f, x)?;
                f.write_str(")")
            }
            ScalarInstr::Binary(op, a, b) => {
                let (open, mid) = match op {
                    BinaryOp::Add => ("(", "+"),
                    BinaryOp::Sub => ("(", "-"),
                    BinaryOp::Mul => ("(", "*"),
                    BinaryOp::Div => ("(", "/"),
                    BinaryOp::Max => ("max(", ","),
                    BinaryOp::GreaterEqual => ("ge(", ","),
                    BinaryOp::SigmoidCrossEntropy => ("sigmoid_ce(", ","),
                };
                f.write_str(open)?;
                arg(f, a)?;
                f.write_str(mid)?;
                arg(f, b)?;
                f.write_str(")")
            }
        }
    }
}

/// The expression as a formula over inputs `x0`, `x1`, … (an instruction used twice is
/// written twice), e.g. `((0.9*x0)+(0.1*x1))`.
impl fmt::Display for FusedExpr {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.instrs.len() {
            0 => f.write_str("?"),
            n => self.write(f, n - 1),
        }
    }
}
