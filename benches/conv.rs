//! The convolutions of the model files at their shapes, batch 64: each layer's forward pass, its
//! input gradient (backward-data) and its weight gradient (backward-filter), as the training
//! programs run them (`Conv2d`, `ConvTranspose2d`, `Conv2dGradWeight` on the CPU backend). A
//! transposed convolution's (a deconvolution's) backward-data is a convolution. Reports
//! milliseconds per batch and GFLOP/s (2 multiply-add operands per tap), the best of several
//! timed repetitions.
//!
//! `RAYON_NUM_THREADS=2 cargo bench --bench conv [-- [--json] NAME...]` (NAME keeps the layers
//! whose names start with it). With `--json`, one JSON object per layer and pass instead of the
//! table, with the layer's geometry, which `benches/peers/conv.py` reads to time PyTorch on the
//! same passes (`scripts/compare_pytorch.sh`'s conv table).

use graphc_runtime::cpu::gemm::Isa;
use graphc_runtime::cpu::{execute, NoiseKey, View};
use graphc_runtime::ops::ConvAttrs;
use graphc_runtime::Kernel;
use std::hint::black_box;
use std::time::Duration;

mod harness;
use harness::{best_time, filled};

/// One convolution layer: its name, the (forward) convolution's input N×C×H×W, output channels,
/// square kernel, stride and padding, and whether the layer is the transposed convolution of it
/// (a deconvolution whose output has the convolution's input shape).
struct Layer {
    name: &'static str,
    input: [usize; 4],
    outputs: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    transposed: bool,
}

const BATCH: usize = 64;

/// A layer: its (convolution's) input N×C×H×W, output channels, [kernel, stride, padding], and
/// whether it is the transposed convolution.
const fn layer(name: &'static str, input: [usize; 4], outputs: usize, window: [usize; 3], transposed: bool) -> Layer {
    let [kernel, stride, pad] = window;
    Layer { name, input, outputs, kernel, stride, pad, transposed }
}

const LAYERS: [Layer; 8] = [
    layer("dcgan/g_conv3", [BATCH, 128, 14, 14], 64, [5, 1, 2], false),
    layer("dcgan/g_conv4", [BATCH, 64, 28, 28], 1, [5, 1, 2], false),
    layer("dcgan/d_conv1", [BATCH, 1, 28, 28], 64, [5, 1, 2], false),
    layer("dcgan/d_conv2", [BATCH, 64, 14, 14], 128, [5, 1, 0], false),
    // InfoGAN's deconvolutions, given as the convolutions they transpose.
    layer("infogan/g_deconv3", [BATCH, 64, 14, 14], 128, [4, 2, 1], true),
    layer("infogan/g_deconv4", [BATCH, 1, 28, 28], 64, [4, 2, 1], true),
    layer("infogan/d_conv1", [BATCH, 1, 28, 28], 64, [4, 2, 1], false),
    layer("infogan/d_conv2", [BATCH, 64, 14, 14], 128, [4, 2, 1], false),
];

/// Times `kernel` on inputs of shapes `a` and `b` writing shape `out`; returns milliseconds.
fn time(kernel: &Kernel, a: &[usize], b: &[usize], out: &[usize]) -> f64 {
    let (x, y) = (filled(a.iter().product(), 1), filled(b.iter().product(), 2));
    let mut result = vec![0.0; out.iter().product()];
    let noise = NoiseKey { seed: 1, draw: 0 };
    let seconds = best_time(Duration::from_millis(700), 200, || {
        let inputs = [View { data: black_box(&x), shape: a }, View { data: black_box(&y), shape: b }];
        execute(kernel, &inputs, &mut result, out, &noise);
    });
    seconds * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let names: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if !json {
        println!("CPU: {} GEMM kernels, {} threads; batch {BATCH}", Isa::best().name(), rayon::current_num_threads());
        println!("{:<20} {:<16} {:>9} {:>9}", "layer", "pass", "ms", "GFLOP/s");
    }
    for layer in LAYERS.iter().filter(|l| names.is_empty() || names.iter().any(|n| l.name.starts_with(n.as_str()))) {
        let [n, c, h, w] = layer.input;
        let (k, s, p) = (layer.kernel, layer.stride, layer.pad);
        let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let attrs = ConvAttrs { stride: [s, s], pad: [p, p], output_pad: [0, 0] };
        let (image, weight, output) = ([n, c, h, w], [layer.outputs, c, k, k], [n, layer.outputs, ho, wo]);
        let conv = || time(&Kernel::Conv2d(attrs), &image, &weight, &output);
        let transpose = || time(&Kernel::ConvTranspose2d(attrs), &output, &weight, &image);
        // Of a deconvolution too: its output gradient is image-shaped, its input output-shaped.
        let grad_weight = || time(&Kernel::Conv2dGradWeight(attrs), &image, &output, &weight);
        let flops = 2.0 * (n * layer.outputs * c * k * k * ho * wo) as f64;
        let passes: [(&str, f64); 3] = if layer.transposed {
            [("forward", transpose()), ("backward-data", conv()), ("backward-filter", grad_weight())]
        } else {
            [("forward", conv()), ("backward-data", transpose()), ("backward-filter", grad_weight())]
        };
        for (pass, ms) in passes {
            if json {
                let geometry = format!(
                    r#""input": {:?}, "outputs": {}, "kernel": {k}, "stride": {s}, "pad": {p}, "transposed": {}"#,
                    layer.input, layer.outputs, layer.transposed
                );
                println!(r#"{{"layer": "{}", "pass": "{pass}", "ms": {ms:.3}, {geometry}}}"#, layer.name);
            } else {
                println!("{:<20} {pass:<16} {ms:>9.2} {:>9.1}", layer.name, flops / ms / 1e6);
            }
        }
    }
}
