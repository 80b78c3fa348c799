//! The CPU kernels against hand-computed values, naive reference loops and the adjoint
//! identities between a convolution and its gradients. Shapes are small so the suite runs fast
//! in debug builds.

use graphc_runtime::cpu::{execute, NoiseKey, View};
use graphc_runtime::ops::{BinaryOp, ConvAttrs, Distribution, PoolAttrs, PoolMethod, ReduceOp, UnaryOp, F32};
use graphc_runtime::rng::Rng;
use graphc_runtime::Kernel;

/// A kernel input: its data and shape.
type Input<'a> = (&'a [f32], &'a [usize]);
/// A scalar reference function of one argument.
type Scalar1 = fn(f32) -> f32;
/// A scalar reference function of two arguments.
type Scalar2 = fn(f32, f32) -> f32;

/// Runs `kernel` on `(data, shape)` inputs into a fresh output of `out_shape`.
fn run(kernel: &Kernel, inputs: &[Input], out_shape: &[usize]) -> Vec<f32> {
    let views: Vec<View> = inputs.iter().map(|&(data, shape)| View { data, shape }).collect();
    let mut out = vec![f32::NAN; out_shape.iter().product()];
    execute(kernel, &views, &mut out, out_shape, &NoiseKey { seed: 1, draw: 0 });
    out
}

/// `len` uniform values in [−1, 1) from a seeded stream.
fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::keyed(seed, 0, 0);
    (0..len).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "element {i}: got {g}, want {w}");
    }
}

fn conv_attrs(stride: usize, pad: usize, output_pad: usize) -> ConvAttrs {
    ConvAttrs { stride: [stride; 2], pad: [pad; 2], output_pad: [output_pad; 2] }
}

/// Naive convolution of x (N×C×H×W) by w (O×C×kh×kw).
fn conv_reference(x: &[f32], xs: [usize; 4], w: &[f32], ws: [usize; 4], s: usize, p: usize) -> (Vec<f32>, [usize; 4]) {
    let ([n, c, h, wd], [o, _, kh, kw]) = (xs, ws);
    let (ho, wo) = ((h + 2 * p - kh) / s + 1, (wd + 2 * p - kw) / s + 1);
    let mut out = vec![0.0; n * o * ho * wo];
    for (b, oc, y, xx) in itertools(n, o, ho, wo) {
        let mut acc = 0.0f64;
        for ic in 0..c {
            for i in 0..kh {
                for j in 0..kw {
                    let (iy, ix) = ((y * s + i) as isize - p as isize, (xx * s + j) as isize - p as isize);
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                        let xv = x[((b * c + ic) * h + iy as usize) * wd + ix as usize];
                        acc += xv as f64 * w[((oc * c + ic) * kh + i) * kw + j] as f64;
                    }
                }
            }
        }
        out[((b * o + oc) * ho + y) * wo + xx] = acc as f32;
    }
    (out, [n, o, ho, wo])
}

/// Every index of a 4-D shape in row-major order.
fn itertools(a: usize, b: usize, c: usize, d: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..a).flat_map(move |i| (0..b).flat_map(move |j| (0..c).flat_map(move |k| (0..d).map(move |l| (i, j, k, l)))))
}

#[test]
fn fill_and_samples() {
    assert_eq!(run(&Kernel::Fill(F32::new(2.5)), &[], &[2, 2]), vec![2.5; 4]);
    let uniform = Kernel::Sample { dist: Distribution::Uniform { min: F32::new(2.0), max: F32::new(3.0) }, stream: 4 };
    let u = run(&uniform, &[], &[1000]);
    assert!(u.iter().all(|v| (2.0..3.0).contains(v)));
    let mut rng = Rng::keyed(1, 4, 0);
    assert_eq!(u[..3], [0, 1, 2].map(|_| rng.uniform_in(2.0, 3.0)));
    let one_hot = run(&Kernel::Sample { dist: Distribution::Categorical, stream: 0 }, &[], &[50, 4]);
    assert!(one_hot.chunks(4).all(|r| r.iter().sum::<f32>() == 1.0));
    // Every class turns up.
    assert!((0..4).all(|c| one_hot.chunks(4).any(|r| r[c] == 1.0)));
}

#[test]
fn matmul_all_transposes_match_a_naive_loop() {
    let (m, k, n) = (5, 7, 3);
    let (a, b) = (random(m * k, 1), random(k * n, 2));
    let mut want = vec![0.0; m * n];
    for (i, j) in (0..m).flat_map(|i| (0..n).map(move |j| (i, j))) {
        want[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
    }
    let transpose = |x: &[f32], rows: usize, cols: usize| -> Vec<f32> {
        (0..cols).flat_map(|j| (0..rows).map(move |i| x[i * cols + j])).collect()
    };
    let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
    for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
        let (a, a_shape) = if trans_a { (&at, [k, m]) } else { (&a, [m, k]) };
        let (b, b_shape) = if trans_b { (&bt, [n, k]) } else { (&b, [k, n]) };
        let got = run(&Kernel::MatMul { trans_a, trans_b }, &[(a, &a_shape), (b, &b_shape)], &[m, n]);
        assert_close(&got, &want, 1e-5);
    }
}

#[test]
fn conv2d_by_hand() {
    // A 3×3 all-ones kernel over 1..16 as a 4×4 image: each output is its window's sum.
    let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
    let w = vec![1.0; 9];
    let got = run(&Kernel::Conv2d(conv_attrs(1, 0, 0)), &[(&x, &[1, 1, 4, 4]), (&w, &[1, 1, 3, 3])], &[1, 1, 2, 2]);
    assert_eq!(got, [54.0, 63.0, 90.0, 99.0]);
    // With padding 1 and stride 2 the corner window sees only 1, 2, 5, 6; the last one 6..16.
    let got = run(&Kernel::Conv2d(conv_attrs(2, 1, 0)), &[(&x, &[1, 1, 4, 4]), (&w, &[1, 1, 3, 3])], &[1, 1, 2, 2]);
    assert_eq!(got, [14.0, 30.0, 57.0, 99.0]);
}

#[test]
fn conv2d_matches_a_naive_loop() {
    // Small outputs group several images into one product; larger ones take one image each.
    // Output rows wider than a GEMM panel (37 columns) split across panels; no padding reads
    // the image as it lies.
    for (n, c, o, h, w, k, s, p) in [
        (2, 3, 4, 7, 6, 3, 1, 1),
        (3, 2, 5, 9, 9, 4, 2, 1),
        (1, 1, 2, 5, 5, 5, 1, 2),
        (10, 2, 3, 16, 16, 3, 1, 1),
        (2, 3, 8, 40, 37, 3, 1, 1),
        (5, 5, 16, 7, 7, 4, 2, 1),
        (2, 4, 12, 14, 14, 5, 1, 2),
        (3, 2, 6, 9, 8, 3, 1, 0),
    ] {
        let (xs, ws) = ([n, c, h, w], [o, c, k, k]);
        let (x, wt) = (random(xs.iter().product(), 3), random(ws.iter().product(), 4));
        let (want, out_shape) = conv_reference(&x, xs, &wt, ws, s, p);
        let got = run(&Kernel::Conv2d(conv_attrs(s, p, 0)), &[(&x, &xs), (&wt, &ws)], &out_shape);
        assert_close(&got, &want, 1e-5);
    }
}

#[test]
fn conv_gradients_are_adjoints() {
    // (N, C, O, H, W, k, stride, pad): kernel 4 and 5, stride 2, pad 1, sizes that need
    // output_pad 1 (8×10 with k 5, s 2, p 2; width 8 with k 3, s 2, p 1), odd sizes, a batch
    // that splits into many groups, and products of several tiles whose weight gradient sums six
    // image ranges (O 16 and 20: the unfolded product, computed transposed).
    let cases = [
        (2, 3, 2, 8, 8, 4, 2, 1),
        (1, 2, 3, 8, 10, 5, 2, 2),
        (3, 1, 2, 6, 5, 3, 1, 1),
        (2, 2, 2, 9, 8, 3, 2, 1),
        (10, 1, 2, 16, 16, 3, 1, 1),
        (12, 5, 16, 9, 9, 3, 1, 1),
        (4, 6, 20, 10, 10, 4, 2, 1),
        // Wide channels both ways: the forward pass, the input gradient and the weight gradient
        // take the channel-vector kernels on a CPU with AVX-512 (the products elsewhere).
        (2, 32, 32, 9, 9, 5, 1, 2),
        // And at stride 2 (the forward pass and the weight gradient; the input gradient is a
        // product), with 7-wide output rows.
        (3, 16, 64, 14, 14, 4, 2, 1),
    ];
    for (seed, (n, c, o, h, w, k, s, p)) in cases.into_iter().enumerate() {
        let (xs, ws) = ([n, c, h, w], [o, c, k, k]);
        let (x, wt) = (random(xs.iter().product(), 10 + seed as u64), random(ws.iter().product(), 20 + seed as u64));
        let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let ys = [n, o, ho, wo];
        let g = random(ys.iter().product(), 30 + seed as u64);
        // Output padding restores the sizes the strided convolution rounded away.
        let (oph, opw) = ((h + 2 * p - k) % s, (w + 2 * p - k) % s);
        let attrs = ConvAttrs { stride: [s; 2], pad: [p; 2], output_pad: [oph, opw] };
        let y = run(&Kernel::Conv2d(attrs), &[(&x, &xs), (&wt, &ws)], &ys);
        let dx = run(&Kernel::ConvTranspose2d(attrs), &[(&g, &ys), (&wt, &ws)], &xs);
        let dw = run(&Kernel::Conv2dGradWeight(attrs), &[(&x, &xs), (&g, &ys)], &ws);
        let (yg, xdx, wdw) = (dot(&y, &g), dot(&x, &dx), dot(&wt, &dw));
        assert!((yg - xdx).abs() < 1e-4 * (1.0 + yg.abs()), "case {seed}: ⟨y,g⟩ {yg} vs ⟨x,dx⟩ {xdx}");
        assert!((yg - wdw).abs() < 1e-4 * (1.0 + yg.abs()), "case {seed}: ⟨y,g⟩ {yg} vs ⟨w,dw⟩ {wdw}");
    }
}

/// Naive input gradient of a stride-1 convolution by w (O×C×kh×kw): g (N×O×Ho×Wo) back to
/// N×C×H×W, dx[b, c, y, x] = Σ_o Σ_i Σ_j g[b, o, y + p − i, x + p − j]·w[o, c, i, j].
fn conv_input_grad_reference(g: &[f32], gs: [usize; 4], w: &[f32], ws: [usize; 4], p: usize) -> (Vec<f32>, [usize; 4]) {
    let ([n, o, ho, wo], [_, c, kh, kw]) = (gs, ws);
    let (h, wd) = (ho + kh - 1 - 2 * p, wo + kw - 1 - 2 * p);
    let mut dx = vec![0.0; n * c * h * wd];
    for (b, ic, y, xx) in itertools(n, c, h, wd) {
        let mut acc = 0.0f64;
        for oc in 0..o {
            for i in 0..kh {
                for j in 0..kw {
                    let (gy, gx) = ((y + p) as isize - i as isize, (xx + p) as isize - j as isize);
                    if gy >= 0 && gx >= 0 && (gy as usize) < ho && (gx as usize) < wo {
                        let gv = g[((b * o + oc) * ho + gy as usize) * wo + gx as usize];
                        acc += gv as f64 * w[((oc * c + ic) * kh + i) * kw + j] as f64;
                    }
                }
            }
        }
        dx[((b * c + ic) * h + y) * wd + xx] = acc as f32;
    }
    (dx, [n, c, h, wd])
}

/// Naive weight gradient of a convolution of x (N×C×H×W) at stride `s` and padding `p` from its
/// output gradient g (N×O×Ho×Wo): dw[o, c, i, j] = Σ_b Σ_y Σ_x g[b, o, y, x]·x[b, c, s·y − p + i,
/// s·x − p + j].
fn conv_weight_grad_reference(
    x: &[f32],
    xs: [usize; 4],
    g: &[f32],
    gs: [usize; 4],
    k: usize,
    s: usize,
    p: usize,
) -> Vec<f32> {
    let ([n, c, h, wd], [_, o, ho, wo]) = (xs, gs);
    let mut dw = vec![0.0; o * c * k * k];
    for (oc, ic, i, j) in itertools(o, c, k, k) {
        let mut acc = 0.0f64;
        for (b, y, xx) in (0..n).flat_map(|b| (0..ho).flat_map(move |y| (0..wo).map(move |xx| (b, y, xx)))) {
            let (iy, ix) = ((y * s + i) as isize - p as isize, (xx * s + j) as isize - p as isize);
            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                let xv = x[((b * c + ic) * h + iy as usize) * wd + ix as usize];
                acc += xv as f64 * g[((b * o + oc) * ho + y) * wo + xx] as f64;
            }
        }
        dw[((oc * c + ic) * k + i) * k + j] = acc as f32;
    }
    dw
}

/// Checks a convolution of random N×C×H×W images by random O×C×k×k weights at stride `s` and
/// padding `p`, and its weight gradient, against [`conv_reference`] and
/// [`conv_weight_grad_reference`]; returns the weights and the output shape.
fn check_conv_forward([n, c, o, h, w, k]: [usize; 6], s: usize, p: usize, seed: u64) -> (Vec<f32>, [usize; 4]) {
    let (xs, ws) = ([n, c, h, w], [o, c, k, k]);
    let (x, wt) = (random(xs.iter().product(), seed), random(ws.iter().product(), seed + 1));
    let (want, ys) = conv_reference(&x, xs, &wt, ws, s, p);
    let got = run(&Kernel::Conv2d(conv_attrs(s, p, 0)), &[(&x, &xs), (&wt, &ws)], &ys);
    assert_close(&got, &want, 2e-5);
    let g = random(ys.iter().product(), seed + 3);
    let want = conv_weight_grad_reference(&x, xs, &g, ys, k, s, p);
    let got = run(&Kernel::Conv2dGradWeight(conv_attrs(s, p, 0)), &[(&x, &xs), (&g, &ys)], &ws);
    assert_close(&got, &want, 5e-5);
    (wt, ys)
}

#[test]
fn wide_convolutions_match_naive_loops() {
    // (N, C, O, H, W, k) and pad at stride 1 with 32 or 64 channels on the side the vectors run
    // over: output rows of 9 (one partial register block), 31 (two whole blocks of 14 and a
    // 3-wide one) and 6 (no padding, as DC-GAN's d_conv2: its input gradient, which would pad
    // by 4, stays with the unfolded product).
    for (seed, ([n, c, o, h, w, k], p)) in
        [([2, 16, 32, 7, 9, 3], 1), ([1, 17, 64, 6, 31, 5], 2), ([2, 24, 32, 10, 10, 5], 0)].into_iter().enumerate()
    {
        let seed = 70 + 10 * seed as u64;
        let (wt, ys) = check_conv_forward([n, c, o, h, w, k], 1, p, seed);
        // The input gradient of the convolution with the roles swapped: O's side narrow, C's
        // wide.
        let (ws_t, gs) = ([c, o, k, k], [n, c, ys[2], ys[3]]);
        let g = random(gs.iter().product(), seed + 2);
        let w_t = &wt[..ws_t.iter().product()];
        let (want, dxs) = conv_input_grad_reference(&g, gs, w_t, ws_t, p);
        let got = run(&Kernel::ConvTranspose2d(conv_attrs(1, p, 0)), &[(&g, &gs), (w_t, &ws_t)], &dxs);
        assert_close(&got, &want, 2e-5);
    }
    // Stride 2 (InfoGAN's d_conv2, 64 → 128 at 4×4, and the input gradient of its g_deconv3):
    // output rows of 7 (two-row register blocks) and 16 (a whole block of 14 and a 2-wide one).
    check_conv_forward([2, 16, 32, 14, 14, 4], 2, 1, 100);
    check_conv_forward([1, 16, 64, 9, 31, 3], 2, 1, 110);
    // A kernel row wider than a register block (15 taps) goes to the product, whose weight
    // gradient takes it: the wide one's would not fit it into one block.
    check_conv_forward([1, 16, 32, 16, 17, 15], 1, 0, 120);
}

/// Naive transposed convolution of x (N×C×H×W) by w (C×O×k×k) at stride `s`, padding `p` and
/// output padding `op`: out[b, o, y, x] = Σ_c Σ_i Σ_j x[b, c, iy, ix]·w[c, o, i, j] over
/// s·iy − p + i = y and s·ix − p + j = x.
fn conv_transpose_reference(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    o: usize,
    [k, s, p, op]: [usize; 4],
) -> (Vec<f32>, [usize; 4]) {
    let [n, c, h, wd] = xs;
    let (hout, wout) = ((h - 1) * s + k + op - 2 * p, (wd - 1) * s + k + op - 2 * p);
    let mut out = vec![0.0f64; n * o * hout * wout];
    for (b, ic, iy, ix) in itertools(n, c, h, wd) {
        for (oc, i, j) in (0..o).flat_map(|oc| (0..k).flat_map(move |i| (0..k).map(move |j| (oc, i, j)))) {
            let (y, xx) = ((iy * s + i) as isize - p as isize, (ix * s + j) as isize - p as isize);
            if y >= 0 && xx >= 0 && (y as usize) < hout && (xx as usize) < wout {
                let xv = x[((b * c + ic) * h + iy) * wd + ix] as f64;
                out[((b * o + oc) * hout + y as usize) * wout + xx as usize] +=
                    xv * w[((ic * o + oc) * k + i) * k + j] as f64;
            }
        }
    }
    (out.into_iter().map(|v| v as f32).collect(), [n, o, hout, wout])
}

#[test]
fn strided_transposed_convolutions_match_a_naive_loop() {
    // (N, C, O, H, W) and (k, s, pad, output pad): InfoGAN's g_deconv3 and d_conv2's input
    // gradient (7×7 → 14×14 at 4×4, stride 2, pad 1: four phases of 2×2 taps in two-row
    // blocks); an output padding and odd sizes (phases of different sizes); stride 3 with a
    // 2-tap kernel, whose third phase meets no tap at all; a 5-tap kernel at stride 2 (phases of
    // 3 and 2 taps) over rows of 26 outputs, phases of 13 (a block of 14 needs one).
    let cases = [
        ([2, 16, 32, 7, 7], [4, 2, 1, 0]),
        ([1, 17, 64, 5, 9], [3, 2, 1, 1]),
        ([2, 16, 32, 4, 6], [2, 3, 0, 0]),
        ([1, 20, 32, 6, 13], [5, 2, 2, 1]),
    ];
    for (seed, ([n, c, o, h, w], [k, s, p, op])) in cases.into_iter().enumerate() {
        let seed = 130 + 10 * seed as u64;
        let (xs, ws) = ([n, c, h, w], [c, o, k, k]);
        let (x, wt) = (random(xs.iter().product(), seed), random(ws.iter().product(), seed + 1));
        let (want, ys) = conv_transpose_reference(&x, xs, &wt, o, [k, s, p, op]);
        let got = run(&Kernel::ConvTranspose2d(conv_attrs(s, p, op)), &[(&x, &xs), (&wt, &ws)], &ys);
        assert_close(&got, &want, 2e-5);
    }
}

#[test]
fn narrow_convolutions_match_the_unfolded_product() {
    // One output channel at stride 1 runs the direct kernels; the same weights as the first of
    // five channels run the unfolded product. Widths 28 (DC-GAN's last layer), 17 (a second,
    // nearly empty vector chunk) and 5 (less than one).
    for (seed, (n, c, h, w, k, p)) in
        [(3, 4, 28, 28, 5, 2), (2, 3, 9, 17, 3, 1), (2, 2, 6, 5, 3, 0)].into_iter().enumerate()
    {
        let seed = 40 + 10 * seed as u64;
        let attrs = conv_attrs(1, p, 0);
        let (ho, wo) = (h + 2 * p + 1 - k, w + 2 * p + 1 - k);
        let (xs, ws1, ws5) = ([n, c, h, w], [1, c, k, k], [5, c, k, k]);
        let (x, w5) = (random(xs.iter().product(), seed), random(ws5.iter().product(), seed + 1));
        let w1 = &w5[..c * k * k];
        let (ys1, ys5) = ([n, 1, ho, wo], [n, 5, ho, wo]);
        let g5 = random(ys5.iter().product(), seed + 2);
        // The first output channel of each image.
        let first = |v: &[f32], planes: usize| -> Vec<f32> {
            v.chunks(planes * ho * wo).flat_map(|i| i[..ho * wo].to_vec()).collect()
        };
        let g1 = first(&g5, 5);
        let y1 = run(&Kernel::Conv2d(attrs), &[(&x, &xs), (w1, &ws1)], &ys1);
        let y5 = run(&Kernel::Conv2d(attrs), &[(&x, &xs), (&w5, &ws5)], &ys5);
        assert_close(&y1, &first(&y5, 5), 1e-5);
        // The input gradient from the first channel's gradient alone: the five-channel product
        // with zero gradients in the other four.
        let g5_first: Vec<f32> = g5
            .chunks(5 * ho * wo)
            .flat_map(|i| i[..ho * wo].iter().copied().chain(std::iter::repeat_n(0.0, 4 * ho * wo)))
            .collect();
        let dx1 = run(&Kernel::ConvTranspose2d(attrs), &[(&g1, &ys1), (w1, &ws1)], &xs);
        let dx5 = run(&Kernel::ConvTranspose2d(attrs), &[(&g5_first, &ys5), (&w5, &ws5)], &xs);
        assert_close(&dx1, &dx5, 1e-5);
        let dw1 = run(&Kernel::Conv2dGradWeight(attrs), &[(&x, &xs), (&g1, &ys1)], &ws1);
        let dw5 = run(&Kernel::Conv2dGradWeight(attrs), &[(&x, &xs), (&g5, &ys5)], &ws5);
        assert_close(&dw1, &dw5[..c * k * k], 1e-4);
    }
}

#[test]
fn conv_transpose_output_padding_only_receives_reached_positions() {
    // 1×1 input, 3×3 kernel, stride 2: the output is the kernel; output_pad 1 adds a zero row and
    // column that no window reaches.
    let w: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let got = run(
        &Kernel::ConvTranspose2d(conv_attrs(2, 0, 1)),
        &[(&[2.0], &[1, 1, 1, 1]), (&w, &[1, 1, 3, 3])],
        &[1, 1, 4, 4],
    );
    let want = [2., 4., 6., 0., 8., 10., 12., 0., 14., 16., 18., 0., 0., 0., 0., 0.];
    assert_eq!(got, want);
}

fn pool(method: PoolMethod, k: usize, s: usize, p: usize) -> PoolAttrs {
    PoolAttrs { method, kernel: [k; 2], stride: [s; 2], pad: [p; 2] }
}

/// Caffe's pooled size.
fn pooled(size: usize, k: usize, s: usize, p: usize) -> usize {
    let out = (size + 2 * p - k).div_ceil(s) + 1;
    if p > 0 && (out - 1) * s >= size + p {
        out - 1
    } else {
        out
    }
}

#[test]
fn pool2d_by_hand() {
    let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
    let max = run(&Kernel::Pool2d(pool(PoolMethod::Max, 2, 2, 0)), &[(&x, &[1, 1, 4, 4])], &[1, 1, 2, 2]);
    assert_eq!(max, [6.0, 8.0, 14.0, 16.0]);
    // k 3, s 2, pad 1 on 4×4: Caffe's size is ceil(3/2)+1 = 3; every window is clipped at the
    // padded edge 5, so the divisors are 2·2, 2·3, 2·2 … in padded units (3 − 1 = 2 at the start).
    assert_eq!(pooled(4, 3, 2, 1), 3);
    let ave = run(&Kernel::Pool2d(pool(PoolMethod::Ave, 3, 2, 1)), &[(&x, &[1, 1, 4, 4])], &[1, 1, 3, 3]);
    // Window (0,0) covers rows −1..2, cols −1..2: inputs 1,2,5,6 over a 3×3 divisor.
    assert!((ave[0] - 14.0 / 9.0).abs() < 1e-6);
    // Window (2,2) starts at 3 and ends at the padded edge 5: inputs 16 over a 2×2 divisor.
    assert!((ave[8] - 16.0 / 4.0).abs() < 1e-6);
    // Window (0,2): rows −1..2 (3), cols 3..5 (2): inputs 4, 8.
    assert!((ave[2] - 12.0 / 6.0).abs() < 1e-6);
}

#[test]
fn ave_pool_grad_matches_finite_differences() {
    for (h, w, k, s, p) in [(5, 5, 3, 2, 1), (5, 4, 2, 2, 0), (6, 6, 3, 1, 1)] {
        let attrs = pool(PoolMethod::Ave, k, s, p);
        let xs = [2, 2, h, w];
        let ys = [2, 2, pooled(h, k, s, p), pooled(w, k, s, p)];
        let x = random(xs.iter().product(), 5);
        let g = random(ys.iter().product(), 6);
        let loss = |x: &[f32]| dot(&run(&Kernel::Pool2d(attrs), &[(x, &xs)], &ys), &g);
        let dx = run(&Kernel::Pool2dGrad(attrs), &[(&x, &xs), (&g, &ys)], &xs);
        let eps = 1e-2;
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += eps;
            minus[i] -= eps;
            let fd = ((loss(&plus) - loss(&minus)) / (2.0 * eps as f64)) as f32;
            assert!((fd - dx[i]).abs() < 1e-3, "element {i}: finite difference {fd}, gradient {}", dx[i]);
        }
    }
}

#[test]
fn max_pool_grad_routes_to_the_first_maximum() {
    for (h, w, k, s, p) in [(5, 5, 3, 2, 1), (4, 5, 2, 2, 0), (6, 6, 3, 1, 1)] {
        let attrs = pool(PoolMethod::Max, k, s, p);
        let xs = [1, 2, h, w];
        let (ho, wo) = (pooled(h, k, s, p), pooled(w, k, s, p));
        let ys = [1, 2, ho, wo];
        // Few distinct values, so windows have ties.
        let x: Vec<f32> = random(xs.iter().product(), 7).iter().map(|v| (v * 3.0).round()).collect();
        let g = random(ys.iter().product(), 8);
        let y = run(&Kernel::Pool2d(attrs), &[(&x, &xs)], &ys);
        let dx = run(&Kernel::Pool2dGrad(attrs), &[(&x, &xs), (&g, &ys)], &xs);
        let mut want = vec![0.0; x.len()];
        for (plane, oy, ox) in (0..2).flat_map(|c| (0..ho).flat_map(move |oy| (0..wo).map(move |ox| (c, oy, ox)))) {
            let rows = (oy * s).saturating_sub(p)..(oy * s + k - p).min(h);
            let cols = (ox * s).saturating_sub(p)..(ox * s + k - p).min(w);
            let mut best: Option<usize> = None;
            for (y, xx) in rows.flat_map(|y| cols.clone().map(move |xx| (y, xx))) {
                let i = (plane * h + y) * w + xx;
                if best.is_none_or(|b| x[i] > x[b]) {
                    best = Some(i);
                }
            }
            let best = best.expect("non-empty window");
            let o = (plane * ho + oy) * wo + ox;
            assert_eq!(y[o], x[best]);
            want[best] += g[o];
        }
        assert_close(&dx, &want, 1e-6);
    }
}

#[test]
fn upsample_repeats_pixels() {
    let got = run(&Kernel::Upsample2d { scale: 2 }, &[(&[1., 2., 3., 4.], &[1, 1, 2, 2])], &[1, 1, 4, 4]);
    assert_eq!(got, [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]);
}

#[test]
fn upsample_matches_the_index_formula_across_planes_and_chunks() {
    // Odd sizes and scale 3; then enough 14×14 planes for several chunks run in parallel.
    for (shape, scale) in [([2, 3, 5, 7], 3), ([3, 40, 14, 14], 2)] {
        let [n, c, h, w] = shape;
        let x: Vec<f32> = (0..n * c * h * w).map(|i| i as f32).collect();
        let (ho, wo) = (h * scale, w * scale);
        let got = run(&Kernel::Upsample2d { scale }, &[(&x, &shape)], &[n, c, ho, wo]);
        let want: Vec<f32> = (0..n * c * ho * wo)
            .map(|i| x[(i / (ho * wo)) * h * w + (i / wo % ho / scale) * w + i % wo / scale])
            .collect();
        assert_eq!(got, want, "{shape:?} scale {scale}");
    }
}

#[test]
fn unary_ops_match_their_formulas() {
    let x = [-2.0f32, -0.5, 0.0, 0.3, 1.5];
    let pos = [0.1f32, 0.5, 1.0, 2.0, 3.5];
    let cases: [(UnaryOp, &[f32], Scalar1); 10] = [
        (UnaryOp::Affine { scale: F32::new(2.0), shift: F32::new(-1.0) }, &x, |v| 2.0 * v - 1.0),
        (UnaryOp::Pow(F32::new(2.0)), &x, |v| v * v),
        (UnaryOp::Pow(F32::new(-0.5)), &pos, |v| v.powf(-0.5)),
        (UnaryOp::Exp, &x, f32::exp),
        (UnaryOp::Log, &pos, f32::ln),
        (UnaryOp::Abs, &x, f32::abs),
        (UnaryOp::Sign, &x, |v| if v == 0.0 { 0.0 } else { v.signum() }),
        (UnaryOp::LeakyRelu(F32::new(0.0)), &x, |v| v.max(0.0)),
        (UnaryOp::Tanh, &x, f32::tanh),
        (UnaryOp::Sigmoid, &x, |v| 1.0 / (1.0 + (-v).exp())),
    ];
    for (op, input, f) in cases {
        let got = run(&Kernel::Unary(op), &[(input, &[5])], &[5]);
        let want: Vec<f32> = input.iter().map(|&v| f(v)).collect();
        assert_close(&got, &want, 1e-6);
    }
    let slope = run(&Kernel::Unary(UnaryOp::LeakyReluSlope(F32::new(0.2))), &[(&x, &[5])], &[5]);
    assert_eq!(slope, [0.2, 0.2, 0.2, 1.0, 1.0]);
}

#[test]
fn binary_ops_match_their_formulas() {
    let a = [-2.0f32, 0.5, 3.0, 1.0];
    let b = [1.0f32, 0.5, -4.0, 2.0];
    let cases: [(BinaryOp, Scalar2); 6] = [
        (BinaryOp::Add, |a, b| a + b),
        (BinaryOp::Sub, |a, b| a - b),
        (BinaryOp::Mul, |a, b| a * b),
        (BinaryOp::Div, |a, b| a / b),
        (BinaryOp::Max, f32::max),
        (BinaryOp::GreaterEqual, |a, b| if a >= b { 1.0 } else { 0.0 }),
    ];
    for (op, f) in cases {
        let got = run(&Kernel::Binary(op), &[(&a, &[4]), (&b, &[4])], &[4]);
        let want: Vec<f32> = a.iter().zip(&b).map(|(&a, &b)| f(a, b)).collect();
        assert_eq!(got, want, "{op:?}");
    }
}

#[test]
fn sigmoid_cross_entropy_is_stable() {
    let logits = [-3.0f32, -0.5, 0.0, 0.7, 4.0, 100.0, -100.0];
    let targets = [0.0f32, 1.0, 0.5, 0.0, 1.0, 0.0, 1.0];
    let got = run(&Kernel::Binary(BinaryOp::SigmoidCrossEntropy), &[(&logits, &[7]), (&targets, &[7])], &[7]);
    for i in 0..5 {
        let (a, b) = (logits[i] as f64, targets[i] as f64);
        let sigmoid = 1.0 / (1.0 + (-a).exp());
        let naive = -(b * sigmoid.ln() + (1.0 - b) * (1.0 - sigmoid).ln());
        assert!((got[i] as f64 - naive).abs() < 1e-5, "logit {a}: {} vs {naive}", got[i]);
    }
    // |a| = 100: the loss is the logit's distance on the wrong side, finite.
    assert_eq!(got[5], 100.0);
    assert_eq!(got[6], 100.0);
}

/// Naive sum or mean of a 2×3×4 tensor over `axes`.
fn reduce_reference(x: &[f32], shape: [usize; 3], axes: &[usize], mean: bool) -> Vec<f32> {
    let kept: Vec<usize> = (0..3).filter(|a| !axes.contains(a)).collect();
    let out_len: usize = kept.iter().map(|&a| shape[a]).product();
    let mut out = vec![0.0f64; out_len];
    for (i, j, k, _) in itertools(shape[0], shape[1], shape[2], 1) {
        let idx = [i, j, k];
        let o = kept.iter().fold(0, |acc, &a| acc * shape[a] + idx[a]);
        out[o] += x[(i * shape[1] + j) * shape[2] + k] as f64;
    }
    let count: usize = axes.iter().map(|&a| shape[a]).product();
    out.iter().map(|v| (if mean { v / count as f64 } else { *v }) as f32).collect()
}

#[test]
fn reduce_over_every_axis_set() {
    let shape = [2, 3, 4];
    let x = random(24, 9);
    for axes in [vec![], vec![0], vec![1], vec![2], vec![0, 1], vec![0, 2], vec![1, 2], vec![0, 1, 2]] {
        let out_shape: Vec<usize> = (0..3).filter(|a| !axes.contains(a)).map(|a| shape[a]).collect();
        for (op, mean) in [(ReduceOp::Sum, false), (ReduceOp::Mean, true)] {
            let got = run(&Kernel::Reduce { op, axes: axes.clone() }, &[(&x, &shape)], &out_shape);
            assert_close(&got, &reduce_reference(&x, shape, &axes, mean), 1e-6);
        }
    }
}

#[test]
fn large_sums_are_accurate() {
    // 0.1 has no exact f32; a naive f32 running sum of 2^20 of them drifts by far more than this.
    let x = vec![0.1f32; 1 << 20];
    let got = run(&Kernel::Reduce { op: ReduceOp::Sum, axes: vec![0] }, &[(&x, &[1 << 20])], &[]);
    let want = 0.1f32 as f64 * (1 << 20) as f64;
    assert!((got[0] as f64 - want).abs() < 1e-2, "{} vs {want}", got[0]);
    let naive: f32 = x.iter().sum();
    assert!((naive as f64 - want).abs() > 1.0, "the test should need accurate summation");
    let columns = run(&Kernel::Reduce { op: ReduceOp::Mean, axes: vec![0] }, &[(&x, &[1 << 12, 1 << 8])], &[1 << 8]);
    assert!(columns.iter().all(|&v| v == 0.1));
}

#[test]
fn broadcast_expands_size_one_axes() {
    let got = run(&Kernel::Broadcast { dims: vec![1] }, &[(&[1., 2., 3.], &[3])], &[2, 3]);
    assert_eq!(got, [1., 2., 3., 1., 2., 3.]);
    let got = run(&Kernel::Broadcast { dims: vec![0, 1] }, &[(&[1., 2.], &[2, 1])], &[2, 3]);
    assert_eq!(got, [1., 1., 1., 2., 2., 2.]);
    let got = run(&Kernel::Broadcast { dims: vec![] }, &[(&[7.], &[])], &[2, 2]);
    assert_eq!(got, [7.; 4]);
    // A per-channel vector over N×C×H×W, and a 2×1×2 block into 2×2×3×2.
    let got = run(&Kernel::Broadcast { dims: vec![1] }, &[(&[1., 2.], &[2])], &[2, 2, 1, 2]);
    assert_eq!(got, [1., 1., 2., 2., 1., 1., 2., 2.]);
    let got = run(&Kernel::Broadcast { dims: vec![0, 2, 3] }, &[(&[1., 2., 3., 4.], &[2, 1, 2])], &[2, 2, 1, 2]);
    assert_eq!(got, [1., 2., 1., 2., 3., 4., 3., 4.]);
}

#[test]
fn copy_concat_and_slice() {
    let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
    assert_eq!(run(&Kernel::Copy, &[(&x, &[2, 3])], &[3, 2]), x);
    let y = [10., 11., 12., 13.];
    let got = run(&Kernel::Concat { axis: 1 }, &[(&x, &[2, 3]), (&y, &[2, 2])], &[2, 5]);
    assert_eq!(got, [0., 1., 2., 10., 11., 3., 4., 5., 12., 13.]);
    let got = run(&Kernel::Concat { axis: 0 }, &[(&x, &[3, 2]), (&y, &[2, 2])], &[5, 2]);
    assert_eq!(got, [0., 1., 2., 3., 4., 5., 10., 11., 12., 13.]);
    let got = run(&Kernel::Slice { axis: 1, start: 1, end: 3 }, &[(&x, &[2, 3])], &[2, 2]);
    assert_eq!(got, [1., 2., 4., 5.]);
    let got = run(&Kernel::Slice { axis: 0, start: 1, end: 2 }, &[(&x, &[2, 3])], &[1, 3]);
    assert_eq!(got, [3., 4., 5.]);
}

#[test]
fn softmax_and_log_softmax() {
    let x = [1.0, 2.0, 3.0, 1000.0, 1001.0, 999.0];
    for (axis, shape) in [(1, [2, 3]), (0, [2, 3])] {
        let p = run(&Kernel::Softmax { axis }, &[(&x, &shape)], &shape);
        let lp = run(&Kernel::LogSoftmax { axis }, &[(&x, &shape)], &shape);
        assert!(p.iter().chain(&lp).all(|v| v.is_finite()));
        let ln_p: Vec<f32> = p.iter().map(|v| v.ln()).collect();
        assert_close(&lp, &ln_p, 1e-5);
        // Sums along the axis are 1.
        let sums = run(&Kernel::Reduce { op: ReduceOp::Sum, axes: vec![axis] }, &[(&p, &shape)], &[3 - axis]);
        assert_close(&sums, &vec![1.0; 3 - axis], 1e-6);
    }
    let p = run(&Kernel::Softmax { axis: 1 }, &[(&x, &[2, 3])], &[2, 3]);
    let e = [1.0f32.exp(), 2.0f32.exp(), 3.0f32.exp()];
    assert_close(&p[..3], &e.map(|v| v / e.iter().sum::<f32>()), 1e-6);
}

#[test]
fn one_hot_and_accuracy() {
    let labels = [2.0, 0.0, 5.0, -1.0];
    let got = run(&Kernel::OneHot { classes: 3 }, &[(&labels, &[4])], &[4, 3]);
    assert_eq!(got, [0., 0., 1., 1., 0., 0., 0., 0., 0., 0., 0., 0.]);
    let scores = [0.1, 0.7, 0.2, 0.5, 0.5, 0.0, 0.3, 0.3, 0.4];
    let labels = [1.0, 0.0, 1.0];
    // Row 0: label best. Row 1: tied with class 1 (counts against). Row 2: third.
    let top1 = run(&Kernel::Accuracy { top_k: 1 }, &[(&scores, &[3, 3]), (&labels, &[3])], &[]);
    assert_eq!(top1, [1.0 / 3.0]);
    let top2 = run(&Kernel::Accuracy { top_k: 2 }, &[(&scores, &[3, 3]), (&labels, &[3])], &[]);
    assert_eq!(top2, [2.0 / 3.0]);
}

/// Runs `f` on rayon pools of one, two and three threads.
fn on_pools<T: Send>(f: impl Fn() -> T + Send + Sync) -> [T; 3] {
    [1, 2, 3].map(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("pool").install(&f))
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // 16×16 outputs take one image per group: twelve groups, summed as six partial weight
    // gradients.
    let attrs = conv_attrs(1, 1, 0);
    let (xs, ws, ys) = ([12, 3, 16, 16], [4, 3, 3, 3], [12, 4, 16, 16]);
    let (x, w, g) = (random(xs.iter().product(), 11), random(ws.iter().product(), 12), random(ys.iter().product(), 13));
    let big = random(300 * 400, 14);
    // Large and ragged enough for the matrix product itself to split across threads.
    let (a, b) = (random(97 * 131, 15), random(131 * 203, 16));
    let kernels: [(Kernel, Vec<Input>, Vec<usize>); 6] = [
        (Kernel::MatMul { trans_a: false, trans_b: false }, vec![(&a, &[97, 131]), (&b, &[131, 203])], vec![97, 203]),
        (Kernel::Conv2d(attrs), vec![(&x, &xs), (&w, &ws)], ys.to_vec()),
        (Kernel::ConvTranspose2d(attrs), vec![(&g, &ys), (&w, &ws)], xs.to_vec()),
        (Kernel::Conv2dGradWeight(attrs), vec![(&x, &xs), (&g, &ys)], ws.to_vec()),
        (Kernel::Reduce { op: ReduceOp::Sum, axes: vec![0] }, vec![(&big, &[300, 400])], vec![400]),
        (Kernel::Reduce { op: ReduceOp::Mean, axes: vec![0, 1] }, vec![(&big, &[300, 400])], vec![]),
    ];
    for (kernel, inputs, out_shape) in &kernels {
        let [one, two, three] = on_pools(|| run(kernel, inputs, out_shape));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&two), "{kernel:?}");
        assert_eq!(bits(&one), bits(&three), "{kernel:?}");
    }
}
