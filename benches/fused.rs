//! The fused elementwise kernel on its heaviest use: Adam's update, as the optimizer builds it for
//! one weight matrix (a group of four members: the decayed gradient, both moments and the
//! parameter), of 3.1M parameters (about the VAE's 2.8M: arrays larger than the caches, as in a
//! training step), against the memory roof: one plain pass that reads the same four arrays and
//! writes the same three. Prints the time, the bytes moved per second and the ratio.
//!
//! `RAYON_NUM_THREADS=2 cargo bench --bench fused`

mod harness;

use graphc_runtime::cpu::fused::{fused_group, GroupInput, GroupOutput};
use graphc_runtime::fused::{FusedExpr, ScalarInstr};
use graphc_runtime::ops::{BinaryOp, UnaryOp, F32};
use rayon::prelude::*;
use std::time::Duration;

/// Parameters updated per call: four 1000×784 matrices.
const N: usize = 4 * 1000 * 784;

/// `scale·x + shift` of instruction `x`.
fn affine(x: u16, scale: f32, shift: f32) -> ScalarInstr {
    ScalarInstr::Unary(UnaryOp::Affine { scale: F32::new(scale), shift: F32::new(shift) }, x)
}

/// Adam's four members, as `graphc compile graphs/vae.g --phase train --train` lists them:
/// g + 0.0005·w; 0.9·m + 0.1·g; 0.999·v + 0.001·g²; w + m/(√v·c2 + 1e-8)·step.
fn adam() -> [FusedExpr; 4] {
    use ScalarInstr::{Binary, Input, Unary};
    let decay =
        FusedExpr { inputs: 2, instrs: vec![Input(0), Input(1), affine(1, 0.0005, 0.0), Binary(BinaryOp::Add, 0, 2)] };
    let ema = |beta: f32, square: bool| {
        let mut instrs = vec![Input(0), affine(0, beta, 0.0), Input(1)];
        if square {
            instrs.push(Unary(UnaryOp::Pow(F32::new(2.0)), 2));
        }
        let fresh = instrs.len() as u16 - 1;
        instrs.extend([affine(fresh, 1.0 - beta, 0.0), Binary(BinaryOp::Add, 1, fresh + 1)]);
        FusedExpr { inputs: 2, instrs }
    };
    let update = FusedExpr {
        inputs: 5,
        instrs: vec![
            Input(0),
            Input(1),
            Input(2),
            Unary(UnaryOp::Pow(F32::new(0.5)), 2),
            Input(3),
            Binary(BinaryOp::Mul, 3, 4),
            affine(5, 1.0, 1e-8),
            Binary(BinaryOp::Div, 1, 6),
            Input(4),
            Binary(BinaryOp::Mul, 7, 8),
            Binary(BinaryOp::Add, 0, 9),
        ],
    };
    [decay, ema(0.9, false), ema(0.999, true), update]
}

fn main() {
    graphc_runtime::cpu::denormals::init_threads(None).expect("thread pool");
    let avx512 = cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("avx512f");
    println!("threads: {}; avx512f: {avx512}; {N} parameters", rayon::current_num_threads());
    let (grad, weight) = (harness::filled(N, 1), harness::filled(N, 2));
    let (m, v) = (harness::filled(N, 3), harness::filled(N, 4));
    let (c2, step) = ([1.02f32], [-1e-3f32]);
    let exprs = adam();
    let (mut new_m, mut new_v, mut new_w) = (vec![0.0; N], vec![0.0; N], vec![0.0; N]);
    let budget = Duration::from_secs(3);
    let fused = harness::best_time(budget, 200, || {
        use GroupInput::{Data, Member};
        let decay_in = [Data(&grad), Data(&weight)];
        let (m_in, v_in) = ([Data(&m), Member(0)], [Data(&v), Member(0)]);
        let w_in = [Data(&weight), Member(1), Member(2), Data(&c2), Data(&step)];
        let members =
            [(&exprs[0], &decay_in[..]), (&exprs[1], &m_in[..]), (&exprs[2], &v_in[..]), (&exprs[3], &w_in[..])];
        let mut outs = [
            GroupOutput::Chunk,
            GroupOutput::Buffer(&mut new_m),
            GroupOutput::Buffer(&mut new_v),
            GroupOutput::Buffer(&mut new_w),
        ];
        fused_group(&members, &mut outs, N);
    });
    // The roof: the same four reads and three writes in one plain pass per chunk.
    let chunk = 1 << 14;
    let inputs =
        || grad.par_chunks(chunk).zip(weight.par_chunks(chunk)).zip(m.par_chunks(chunk).zip(v.par_chunks(chunk)));
    let roof = harness::best_time(budget, 200, || {
        let outputs = new_m.par_chunks_mut(chunk).zip(new_v.par_chunks_mut(chunk).zip(new_w.par_chunks_mut(chunk)));
        inputs().zip(outputs).for_each(|(((g, w), (m, v)), (om, (ov, ow)))| {
            for (((((g, w), (m, v)), om), ov), ow) in g.iter().zip(w).zip(m.iter().zip(v)).zip(om).zip(ov).zip(ow) {
                *om = m + g;
                *ov = v + g;
                *ow = w + g;
            }
        });
    });
    let gb = |t: f64| 7.0 * 4.0 * N as f64 / t / 1e9;
    println!("| kernel | ms | GB/s |");
    println!("|---|---:|---:|");
    println!("| Adam, fused group of 4 | {:.2} | {:.1} |", fused * 1e3, gb(fused));
    println!("| memory roof (4 reads, 3 writes) | {:.2} | {:.1} |", roof * 1e3, gb(roof));
    println!("\nAdam at {:.0}% of the memory roof", 100.0 * roof / fused);
}
