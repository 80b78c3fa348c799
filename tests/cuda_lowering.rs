//! The CUDA backend's lowering, checked on the host (no GPU needed) for every model file's
//! training programs:
//! - every launch passes arguments of its kernel's parameter types, in order (parsed from the
//!   CUDA C of the hand-written and generated kernels);
//! - an emulator that runs the device operations as the CUDA C and cuBLAS define them, reading
//!   each argument by the kernel's parameter order and bounds-checking every access against the
//!   allocation it points into, computes what the CPU backend computes, step by step, both in
//!   the plan's order and in the schedule a run takes (groups of fused steps as one launch).
//!
//! So the layouts (the convolutions' unfold-GEMM-permute, the row-major GEMM as cuBLAS's
//! column-major one, the views of slices, concatenations, broadcasts and reductions) are tested
//! here; what only a GPU can test is the CUDA C itself compiling and running (tests/nvrtc.rs
//! compiles it).

mod common;

use std::collections::HashMap;

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{build, compile, train::init, CompileOptions};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::cuda::codegen::MemberInput;
use graphc_runtime::cuda::lowering::{lower, Arg, Base, DeviceOp, Gemm, Generated, Lowered, Place, Scheduled};
use graphc_runtime::cuda::{hand_written, signatures};
use graphc_runtime::exec::{CpuProgram, State};
use graphc_runtime::fused::{FusedExpr, ScalarInstr};
use graphc_runtime::ops::{WarpAttrs, F32};
use graphc_runtime::{BufferRole, Plan};

const MODELS: &[&str] = &["graphs/vae.g", "graphs/vae_2d.g", "graphs/dcgan.g", "graphs/infogan.g", "graphs/lenet.g"];

/// Every phase's training plan of `file` at batch `batch`, with its parameters.
fn training_plans(file: &str, batch: usize) -> Vec<(String, Plan, Vec<graphc::ir::ParamInfo>)> {
    let src = SourceFile::read(file).unwrap();
    let c = compile(&src, &CompileOptions { batch_size: Some(batch), ..CompileOptions::default() }).unwrap();
    let train = build::build(&c.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: Some(batch) }).unwrap();
    c.phases
        .iter()
        .map(|phase| {
            (format!("{file} {}", phase.name), graphc::training_plan(&train, phase, &c.passes), train.params.clone())
        })
        .collect()
}

#[test]
fn every_launch_passes_its_kernels_parameter_types() {
    let hand = hand_written();
    let mut parameters: HashMap<String, Vec<String>> =
        signatures(&hand).into_iter().map(|(name, types)| (name.to_string(), types)).collect();
    let mut launches = 0;
    for file in MODELS {
        for (what, plan, _) in training_plans(file, 4) {
            let lowered = lower(&plan);
            for generated in lowered.generated.values() {
                let source = generated.source();
                for (name, types) in signatures(&source.function) {
                    parameters.insert(name.to_string(), types);
                }
            }
            let groups = lowered.schedule.iter().filter_map(|unit| match unit {
                Scheduled::Group { members, launch } => Some((&plan.steps[members[0]], std::slice::from_ref(launch))),
                Scheduled::Step(_) => None,
            });
            for (step, ops) in plan.steps.iter().zip(lowered.steps.iter().map(|ops| &ops[..])).chain(groups) {
                for op in ops {
                    let DeviceOp::Launch { kernel, args, .. } = op else { continue };
                    let expected = parameters.get(kernel).unwrap_or_else(|| panic!("{what}: no kernel {kernel}"));
                    let passed: Vec<&str> = args.iter().map(Arg::c_type).collect();
                    assert_eq!(&passed, expected, "{what}: {} launches {kernel}", step.label);
                    launches += 1;
                }
            }
        }
    }
    assert!(launches > 1000, "only {launches} launches checked");
}

/// Device memory as the emulator sees it: one allocation per buffer and one workspace, every
/// access bounds-checked against the allocation its pointer points into.
struct Memory {
    buffers: Vec<Vec<f32>>,
    workspace: Vec<f32>,
}

/// A pointer argument: an allocation and an element offset into it.
#[derive(Clone, Copy)]
struct Ptr(Place);

impl Memory {
    fn region(&mut self, base: Base) -> &mut Vec<f32> {
        match base {
            Base::Buffer(id) => &mut self.buffers[id.0 as usize],
            Base::Workspace => &mut self.workspace,
        }
    }

    fn get(&mut self, p: Ptr, i: i64) -> f32 {
        let (offset, region) = (p.0.offset as i64 + i, self.region(p.0.base));
        assert!(offset >= 0 && (offset as usize) < region.len(), "read at {offset} of {} elements", region.len());
        region[offset as usize]
    }

    fn set(&mut self, p: Ptr, i: i64, v: f32) {
        let (offset, region) = (p.0.offset as i64 + i, self.region(p.0.base));
        assert!(offset >= 0 && (offset as usize) < region.len(), "write at {offset} of {} elements", region.len());
        region[offset as usize] = v;
    }
}

/// A launch's arguments, taken in the kernel's parameter order.
struct Args<'a>(std::slice::Iter<'a, Arg>);

impl Args<'_> {
    fn next(&mut self) -> Arg {
        *self.0.next().expect("fewer arguments than the kernel has parameters")
    }
    fn ptr(&mut self) -> Ptr {
        let Arg::Ptr(p) = self.next() else { panic!("expected a pointer") };
        Ptr(p)
    }
    fn u64(&mut self) -> u64 {
        let Arg::U64(v) = self.next() else { panic!("expected a u64") };
        v
    }
    fn i64(&mut self) -> i64 {
        let Arg::I64(v) = self.next() else { panic!("expected an i64") };
        v
    }
    fn int(&mut self) -> i32 {
        let Arg::I32(v) = self.next() else { panic!("expected an int") };
        v
    }
    fn float(&mut self) -> f32 {
        let Arg::F32(v) = self.next() else { panic!("expected a float") };
        v
    }
    fn view(&mut self) -> graphc_runtime::cuda::launch::View {
        let Arg::View(v) = self.next() else { panic!("expected a View") };
        v
    }
}

/// The kernel `kernel` (of kernels.cu or generated) run as its CUDA C defines it.
fn emulate_launch(memory: &mut Memory, kernel: &str, args: &[Arg], generated: &Lowered) {
    let mut a = Args(args.iter());
    match kernel {
        "fill" => {
            let out = a.ptr();
            let Arg::F32(value) = a.next() else { panic!("fill's value") };
            (0..a.u64() as i64).for_each(|i| memory.set(out, i, value));
        }
        "gather" => {
            let (out, input, n, view, base) = (a.ptr(), a.ptr(), a.u64(), a.view(), a.i64());
            for i in 0..n {
                let v = memory.get(input, base + view.offset(i));
                memory.set(out, i as i64, v);
            }
        }
        "scatter" => {
            let (out, input, n, view, base) = (a.ptr(), a.ptr(), a.u64(), a.view(), a.i64());
            for i in 0..n {
                let v = memory.get(input, i as i64);
                memory.set(out, base + view.offset(i), v);
            }
        }
        "reduce" | "reduce_wide" => {
            let (out, input, n, kept, reduced) = (a.ptr(), a.ptr(), a.u64(), a.view(), a.view());
            let (count, scale) = (a.u64(), f64_arg(&mut a));
            for i in 0..n {
                let base = kept.offset(i);
                let sum: f64 = (0..count).map(|j| memory.get(input, base + reduced.offset(j)) as f64).sum();
                memory.set(out, i as i64, (sum * scale) as f32);
            }
        }
        "softmax" => {
            let (out, input, outer, axis, inner, log) = (a.ptr(), a.ptr(), a.u64(), a.u64(), a.u64(), a.int());
            for i in 0..outer * inner {
                let (o, k) = (i / inner, i % inner);
                let at = |a: u64| (o * axis * inner + k + a * inner) as i64;
                let x: Vec<f32> = (0..axis).map(|j| memory.get(input, at(j))).collect();
                let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = x.iter().map(|v| ((v - max).exp()) as f64).sum();
                for j in 0..axis {
                    let shifted = x[j as usize] - max;
                    let y = if log != 0 { shifted - (sum.ln() as f32) } else { shifted.exp() / sum as f32 };
                    memory.set(out, at(j), y);
                }
            }
        }
        "pool2d" => {
            let (out, input, planes, p) = (a.ptr(), a.ptr(), a.u64() as i64, pool_arg(&mut a));
            for i in 0..planes * (p.ho * p.wo) as i64 {
                let plane = i / (p.ho * p.wo) as i64;
                let (oy, ox) = ((i / p.wo as i64) as i32 % p.ho, (i % p.wo as i64) as i32);
                let x = Ptr(Place { offset: (plane * (p.h * p.w) as i64) as usize + input.0.offset, ..input.0 });
                let (y0, y1, ey) = window(oy, p.kh, p.sh, p.ph, p.h);
                let (x0, x1, ex) = window(ox, p.kw, p.sw, p.pw, p.w);
                let value = if p.max != 0 {
                    argmax(memory, x, &p, oy, ox).map_or(0.0, |best| memory.get(x, best as i64))
                } else {
                    let mut sum = 0.0f32;
                    for y in y0..y1 {
                        for xx in x0..x1 {
                            sum += memory.get(x, (y * p.w + xx) as i64);
                        }
                    }
                    sum / (ey * ex) as f32
                };
                memory.set(out, i, value);
            }
        }
        "pool2d_grad" => {
            let (dx, input, g, planes, p) = (a.ptr(), a.ptr(), a.ptr(), a.u64() as i64, pool_arg(&mut a));
            for i in 0..planes * (p.h * p.w) as i64 {
                let plane = i / (p.h * p.w) as i64;
                let (y, x) = ((i / p.w as i64) as i32 % p.h, (i % p.w as i64) as i32);
                let xs = Ptr(Place { offset: (plane * (p.h * p.w) as i64) as usize + input.0.offset, ..input.0 });
                let gs = Ptr(Place { offset: (plane * (p.ho * p.wo) as i64) as usize + g.0.offset, ..g.0 });
                let (oy0, oy1) = covering(y, p.kh, p.sh, p.ph, p.ho);
                let (ox0, ox1) = covering(x, p.kw, p.sw, p.pw, p.wo);
                let mut sum = 0.0f32;
                for oy in oy0..=oy1 {
                    for ox in ox0..=ox1 {
                        let (y0, y1, ey) = window(oy, p.kh, p.sh, p.ph, p.h);
                        let (x0, x1, ex) = window(ox, p.kw, p.sw, p.pw, p.w);
                        if y < y0 || y >= y1 || x < x0 || x >= x1 {
                            continue;
                        }
                        let grad = memory.get(gs, (oy * p.wo + ox) as i64);
                        if p.max == 0 {
                            sum += grad / (ey * ex) as f32;
                        } else if argmax(memory, xs, &p, oy, ox) == Some(y * p.w + x) {
                            sum += grad;
                        }
                    }
                }
                memory.set(dx, i, sum);
            }
        }
        "warp2d" | "warp2d_grad" => {
            let (out, input, draws) = (a.ptr(), a.ptr(), a.ptr());
            let (images, channels, h, w) = (a.u64() as i64, a.int() as i64, a.int(), a.int());
            let attrs = WarpAttrs {
                rotation: F32::new(a.float()),
                scale: F32::new(a.float()),
                translation: F32::new(a.float()),
            };
            let tent = |sx: f32, sy: f32, px: i32, py: i32| {
                (1.0 - (sx - px as f32).abs()).max(0.0) * (1.0 - (sy - py as f32).abs()).max(0.0)
            };
            let plane_len = (h * w) as i64;
            for i in 0..images * channels * plane_len {
                let plane = i / plane_len;
                let (y, x) = ((i / w as i64) as i32 % h, (i % w as i64) as i32);
                let d: Vec<f32> = (0..4).map(|k| memory.get(draws, plane / channels * 4 + k)).collect();
                let m = attrs.inverse_map(&d, h as usize, w as usize);
                let at = |x: i32, y: i32| {
                    (m[0] * x as f32 + m[1] * y as f32 + m[2], m[3] * x as f32 + m[4] * y as f32 + m[5])
                };
                let mut sum = 0.0f32;
                if kernel == "warp2d" {
                    // Gathers the (up to) four taps of the sampling point.
                    let (sx, sy) = at(x, y);
                    let (x0, y0) = (sx.floor() as i32, sy.floor() as i32);
                    for py in (y0..=y0 + 1).filter(|py| (0..h).contains(py)) {
                        for px in (x0..=x0 + 1).filter(|px| (0..w).contains(px)) {
                            sum += tent(sx, sy, px, py) * memory.get(input, plane * plane_len + (py * w + px) as i64);
                        }
                    }
                } else {
                    // Gathers from the output pixels in the box around the forward image of (x, y).
                    let det = m[0] * m[4] - m[1] * m[3];
                    let (fa, fb, fd, fe) = (m[4] / det, -m[1] / det, -m[3] / det, m[0] / det);
                    let (rx, ry) = (x as f32 - m[2], y as f32 - m[5]);
                    let (qx, qy) = (fa * rx + fb * ry, fd * rx + fe * ry);
                    let (reach_x, reach_y) = (fa.abs() + fb.abs(), fd.abs() + fe.abs());
                    let (qx0, qx1) =
                        (((qx - reach_x).floor() as i32).max(0), ((qx + reach_x).ceil() as i32).min(w - 1));
                    let (qy0, qy1) =
                        (((qy - reach_y).floor() as i32).max(0), ((qy + reach_y).ceil() as i32).min(h - 1));
                    for oy in qy0..=qy1 {
                        for ox in qx0..=qx1 {
                            let (sx, sy) = at(ox, oy);
                            sum += tent(sx, sy, x, y) * memory.get(input, plane * plane_len + (oy * w + ox) as i64);
                        }
                    }
                }
                memory.set(out, i, sum);
            }
        }
        "upsample2d" => {
            let (out, input, planes, h, w, scale) = (a.ptr(), a.ptr(), a.u64() as i64, a.int(), a.int(), a.int());
            let (ho, wo) = (h * scale, w * scale);
            for i in 0..planes * (ho * wo) as i64 {
                let plane = i / (ho * wo) as i64;
                let (y, x) = ((i / wo as i64) as i32 % ho, (i % wo as i64) as i32);
                let v = memory.get(input, plane * (h * w) as i64 + ((y / scale) * w + x / scale) as i64);
                memory.set(out, i, v);
            }
        }
        "im2col" => {
            let (cols, images, g, batch) = (a.ptr(), a.ptr(), conv_arg(&mut a), a.u64() as i64);
            let (plane, ld) = ((g.ho * g.wo) as i64, batch * (g.ho * g.wo) as i64);
            for i in 0..(g.c * g.kh * g.kw) as i64 * ld {
                let (row, col) = (i / ld, i % ld);
                let (image, oy, ox) = (col / plane, (col % plane) as i32 / g.wo, (col % g.wo as i64) as i32);
                let (ch, ky, kx) = (row as i32 / (g.kh * g.kw), row as i32 / g.kw % g.kh, row as i32 % g.kw);
                let (y, x) = (oy * g.sh - g.ph + ky, ox * g.sw - g.pw + kx);
                let inside = y >= 0 && y < g.h && x >= 0 && x < g.w;
                let at = ((image * g.c as i64 + ch as i64) * g.h as i64 + y as i64) * g.w as i64 + x as i64;
                let v = if inside { memory.get(images, at) } else { 0.0 };
                memory.set(cols, i, v);
            }
        }
        "col2im" => {
            let (images, cols, g, batch) = (a.ptr(), a.ptr(), conv_arg(&mut a), a.u64() as i64);
            let (plane, ld) = ((g.ho * g.wo) as i64, batch * (g.ho * g.wo) as i64);
            for i in 0..batch * (g.c * g.h * g.w) as i64 {
                let image = i / (g.c * g.h * g.w) as i64;
                let (ch, y, x) =
                    ((i / (g.h * g.w) as i64) as i32 % g.c, (i / g.w as i64) as i32 % g.h, (i % g.w as i64) as i32);
                let mut sum = 0.0f32;
                for ky in 0..g.kh {
                    let ty = y + g.ph - ky;
                    if ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.ho {
                        continue;
                    }
                    for kx in 0..g.kw {
                        let tx = x + g.pw - kx;
                        if tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.wo {
                            continue;
                        }
                        let row = ((ch * g.kh + ky) * g.kw + kx) as i64;
                        sum += memory.get(cols, row * ld + image * plane + ((ty / g.sh) * g.wo + tx / g.sw) as i64);
                    }
                }
                memory.set(images, i, sum);
            }
        }
        "one_hot" => {
            let (out, labels, rows, classes) = (a.ptr(), a.ptr(), a.u64(), a.u64());
            for i in 0..rows * classes {
                let hit = memory.get(labels, (i / classes) as i64) as u64 == i % classes;
                memory.set(out, i as i64, if hit { 1.0 } else { 0.0 });
            }
        }
        "accuracy" => {
            let (out, scores, labels, rows, classes, top_k) = (a.ptr(), a.ptr(), a.ptr(), a.u64(), a.u64(), a.u64());
            let mut hits = 0;
            for r in 0..rows {
                let label = memory.get(labels, r as i64);
                if !(label >= 0.0 && label < classes as f32 && label.floor() == label) {
                    continue;
                }
                let c = label as u64;
                let s = |k: u64, m: &mut Memory| m.get(scores, (r * classes + k) as i64);
                let own = s(c, memory);
                let rivals = (0..classes).filter(|&k| k != c && s(k, memory) >= own).count() as u64;
                hits += u64::from(rivals < top_k);
            }
            memory.set(out, 0, if rows == 0 { 0.0 } else { (hits as f64 / rows as f64) as f32 });
        }
        name => match generated.generated.get(name) {
            Some(Generated::Fused(expr)) => {
                let (out, inputs) = (a.ptr(), expression_inputs(&mut a, expr.inputs));
                let mut values = Vec::with_capacity(inputs.len());
                for i in 0..a.u64() as i64 {
                    values.clear();
                    values.extend(inputs.iter().map(|&(p, s)| memory.get(p, i * s)));
                    memory.set(out, i, expr.eval_scalar(&values));
                }
            }
            Some(Generated::FusedReduce { expr, .. }) => {
                let (out, inputs) = (a.ptr(), expression_inputs(&mut a, expr.inputs));
                let (n, kept, reduced, count, scale) = (a.u64(), a.view(), a.view(), a.u64(), f64_arg(&mut a));
                for i in 0..n {
                    let mut sum = 0.0f64;
                    for j in 0..count {
                        let e = kept.offset(i) + reduced.offset(j);
                        let values: Vec<f32> = inputs.iter().map(|&(p, s)| memory.get(p, e * s)).collect();
                        sum += expr.eval_scalar(&values) as f64;
                    }
                    memory.set(out, i as i64, (sum * scale) as f32);
                }
            }
            Some(Generated::Bias(activation)) => {
                let (out, bias, n, channels, inner) = (a.ptr(), a.ptr(), a.u64(), a.u64(), a.u64());
                let apply = activation
                    .map(|op| FusedExpr { inputs: 1, instrs: vec![ScalarInstr::Input(0), ScalarInstr::Unary(op, 0)] });
                for i in 0..n {
                    let v = memory.get(out, i as i64) + memory.get(bias, (i / inner % channels) as i64);
                    memory.set(out, i as i64, apply.as_ref().map_or(v, |e| e.eval_scalar(&[v])));
                }
            }
            Some(Generated::FusedGroup { members, externals }) => {
                let outs: Vec<Ptr> = members.iter().map(|_| a.ptr()).collect();
                let inputs = expression_inputs(&mut a, *externals);
                let mut results = Vec::with_capacity(members.len());
                for i in 0..a.u64() as i64 {
                    results.clear();
                    for (member, &out) in members.iter().zip(&outs) {
                        let read = |input: &MemberInput| match *input {
                            MemberInput::External(x) => memory.get(inputs[x].0, i * inputs[x].1),
                            MemberInput::Member(j) => results[j],
                        };
                        let values: Vec<f32> = member.inputs.iter().map(read).collect();
                        let value = member.expr.eval_scalar(&values);
                        memory.set(out, i, value);
                        results.push(value);
                    }
                }
            }
            None => panic!("the emulator does not know kernel {name}"),
        },
    }
    assert!(a.0.next().is_none(), "{kernel}: more arguments than parameters");
}

fn f64_arg(a: &mut Args) -> f64 {
    let Arg::F64(v) = a.next() else { panic!("expected a double") };
    v
}

fn pool_arg(a: &mut Args) -> graphc_runtime::cuda::launch::PoolGeometry {
    let Arg::Pool(p) = a.next() else { panic!("expected a Pool") };
    p
}

/// kernels.cu's `window`: the input range of output `o` along one axis and the divisor's extent.
fn window(o: i32, k: i32, s: i32, p: i32, size: i32) -> (i32, i32, i32) {
    let start = o * s - p;
    let end = (start + k).min(size + p);
    let lo = start.max(0);
    (lo, end.min(size).max(lo), end - start)
}

/// kernels.cu's `covering`: the outputs whose windows can contain input position `y`.
fn covering(y: i32, k: i32, s: i32, p: i32, outputs: i32) -> (i32, i32) {
    let num = y + p - k + 1;
    let first = if num <= 0 { 0 } else { (num + s - 1) / s };
    (first, (outputs - 1).min((y + p) / s))
}

/// kernels.cu's `argmax`: the first maximal element of window (oy, ox) of a plane.
fn argmax(
    memory: &mut Memory,
    plane: Ptr,
    p: &graphc_runtime::cuda::launch::PoolGeometry,
    oy: i32,
    ox: i32,
) -> Option<i32> {
    let (y0, y1, _) = window(oy, p.kh, p.sh, p.ph, p.h);
    let (x0, x1, _) = window(ox, p.kw, p.sw, p.pw, p.w);
    let mut best: Option<i32> = None;
    for y in y0..y1 {
        for x in x0..x1 {
            let at = y * p.w + x;
            if best.is_none_or(|b| memory.get(plane, at as i64) > memory.get(plane, b as i64)) {
                best = Some(at);
            }
        }
    }
    best
}

fn conv_arg(a: &mut Args) -> graphc_runtime::cuda::launch::ConvGeometry {
    let Arg::Conv(g) = a.next() else { panic!("expected a Conv") };
    g
}

/// A generated expression's `inputs` pointers, then their strides.
fn expression_inputs(a: &mut Args, inputs: usize) -> Vec<(Ptr, i64)> {
    let pointers: Vec<Ptr> = (0..inputs).map(|_| a.ptr()).collect();
    pointers.into_iter().map(|p| (p, a.u64() as i64)).collect()
}

/// cuBLAS sgemm (column-major, alpha 1, beta 0), summed in f64. The operands are first checked
/// to lie inside their allocations (their last element is read), then copied out.
fn emulate_gemm(memory: &mut Memory, g: &Gemm) {
    let (lda, ldb, ldc) = (g.a.1, g.b.1, g.c.1);
    assert!(lda >= (if g.trans_a { g.k } else { g.m }).max(1), "lda");
    assert!(ldb >= (if g.trans_b { g.n } else { g.k }).max(1), "ldb");
    assert!(ldc >= g.m.max(1), "ldc");
    let mut operand = |place: Place, ld: usize, rows: usize, cols: usize| -> Vec<f32> {
        memory.get(Ptr(place), ((cols - 1) * ld + rows - 1) as i64);
        let region = memory.region(place.base);
        region[place.offset..place.offset + (cols - 1) * ld + rows].to_vec()
    };
    let (a_rows, a_cols) = if g.trans_a { (g.k, g.m) } else { (g.m, g.k) };
    let (b_rows, b_cols) = if g.trans_b { (g.n, g.k) } else { (g.k, g.n) };
    let (a, b) = (operand(g.a.0, lda, a_rows, a_cols), operand(g.b.0, ldb, b_rows, b_cols));
    for j in 0..g.n {
        for i in 0..g.m {
            let mut sum = 0.0f64;
            for l in 0..g.k {
                let x = if g.trans_a { a[l + i * lda] } else { a[i + l * lda] };
                let y = if g.trans_b { b[j + l * ldb] } else { b[l + j * ldb] };
                sum += x as f64 * y as f64;
            }
            memory.set(Ptr(g.c.0), (i + j * ldc) as i64, sum as f32);
        }
    }
}

fn emulate(memory: &mut Memory, op: &DeviceOp, lowered: &Lowered, noise: &NoiseKey) {
    match op {
        DeviceOp::Launch { kernel, args, .. } => emulate_launch(memory, kernel, args, lowered),
        DeviceOp::Gemm(g) => emulate_gemm(memory, g),
        DeviceOp::Copy { from, to, len } => {
            for i in 0..*len as i64 {
                let v = memory.get(Ptr(*from), i);
                memory.set(Ptr(*to), i, v);
            }
        }
        DeviceOp::Sample { dist, stream, out, len, row_len } => {
            let region = &mut memory.buffers[out.0 as usize];
            assert_eq!(region.len(), *len, "noise fills its whole buffer");
            graphc_runtime::cpu::sample::sample(*dist, *stream, noise, region, *row_len);
        }
    }
}

/// The order the emulator runs a lowered plan in.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// Each step's operations in the plan's order (how the first non-finite step is found).
    PlanSteps,
    /// The schedule a run takes, groups of fused steps as one launch.
    Schedule,
}

/// Emulates every model file's training programs in `order`, comparing the outputs of each unit
/// with the CPU backend's as soon as they are written; returns the number of group launches.
fn emulate_in(order: Order) -> usize {
    let noise = NoiseKey { seed: 3, draw: 2 };
    let mut groups = 0;
    for file in MODELS {
        for (what, plan, params) in training_plans(file, 3) {
            let mut unplanned = plan.clone();
            unplanned.memory = None;
            let mut cpu = CpuProgram::new(unplanned);
            let mut state = State::default();
            init::fill_state(&mut state, &params, &[cpu.plan()], 5);
            let feeds = init::synthetic_feeds(cpu.plan());
            // In the plan's order, so that every step's output is kept to compare.
            cpu.compute_in_plan_order(&state, &feeds, &noise).unwrap();

            let lowered = lower(&plan);
            let buffers = plan
                .buffers
                .iter()
                .map(|b| match &b.role {
                    BufferRole::State(name) => state.values[name].clone(),
                    BufferRole::Feed(name) => feeds[name.as_str()].clone(),
                    BufferRole::Temp => vec![f32::NAN; b.numel()],
                })
                .collect();
            let mut memory = Memory { buffers, workspace: vec![f32::NAN; lowered.workspace] };
            let units: Vec<(Vec<usize>, &[DeviceOp])> = match order {
                Order::PlanSteps => lowered.steps.iter().enumerate().map(|(i, ops)| (vec![i], &ops[..])).collect(),
                Order::Schedule => lowered
                    .schedule
                    .iter()
                    .map(|unit| match unit {
                        Scheduled::Step(i) => (vec![*i], &lowered.steps[*i][..]),
                        Scheduled::Group { members, launch } => (members.clone(), std::slice::from_ref(launch)),
                    })
                    .collect(),
            };
            for (steps, ops) in units {
                groups += usize::from(steps.len() > 1);
                ops.iter().for_each(|op| emulate(&mut memory, op, &lowered, &noise));
                for step in steps.iter().map(|&i| &plan.steps[i]) {
                    let expected = cpu.value(&state, step.output);
                    let got = &memory.buffers[step.output.0 as usize];
                    common::assert_close(&format!("{what} ({order:?})"), &step.label, expected, got, 2e-4);
                    // The next steps read the CPU's values, so that a difference is reported where
                    // it arises rather than where it has grown past the tolerance.
                    memory.buffers[step.output.0 as usize] = expected.to_vec();
                }
            }
        }
    }
    groups
}

#[test]
fn the_emulated_device_operations_compute_what_the_cpu_backend_computes() {
    assert_eq!(emulate_in(Order::PlanSteps), 0);
}

#[test]
fn the_emulated_schedule_with_its_fused_groups_computes_what_the_cpu_backend_computes() {
    let groups = emulate_in(Order::Schedule);
    println!("{groups} group launches");
    assert!(groups > 50, "only {groups} groups of fused steps were launched");
}
