//! Generation: the TEST graph's path from the latent noise sources to the generated image (the
//! `generate` block), run from a fixed latent batch or with a latent set by the caller (a grid
//! over a 2-D latent, as the book's manifold figure), written as a PNG grid.

use std::collections::HashMap;
use std::path::Path;

use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};
use graphc_runtime::BufId;

use super::grid;
use super::trainer::TrainError;
use crate::ir::{Distribution, Graph};
use crate::schema::LayerKind;
use crate::{lower, Compiled};

/// The draw number of the fixed latent batch that sample grids use.
const FIXED_DRAW: u64 = u64::MAX;

/// A compiled generation program.
pub struct Generator {
    program: CpuProgram,
    image: BufId,
    scale: f32,
    mean: f32,
}

impl Generator {
    /// The generation program of `compiled` (from its TEST graph `test`); `fed` names the latents
    /// whose values the caller supplies, each as a feed of the same name.
    pub fn new(compiled: &Compiled, test: &Graph, fed: &[&str]) -> Result<Self, TrainError> {
        let no_block = || TrainError::Data("the graph has no `generate` block, so it cannot generate images".into());
        let block = compiled.generate.as_ref().ok_or_else(no_block)?;
        let image = test.blob(&block.image.0).ok_or_else(no_block)?;
        let mut graph = test.clone();
        let keep = graph.ancestors(&[image]);
        graph.retain(&keep);
        graph.updates.clear();
        let fed: Vec<_> = fed.iter().filter_map(|name| test.blob(name).map(|node| (node, name.to_string()))).collect();
        let mut plan = lower::to_plan_feeding(&graph, &[("generated image".to_string(), image)], &fed);
        lower::plan_memory(&mut plan, &["generated image"]);
        let reads_data = plan.buffers.iter().any(|b| b.role == graphc_runtime::BufferRole::Feed("image".into()));
        if reads_data {
            return Err(TrainError::Data("the generated image depends on the data, so it cannot be sampled".into()));
        }
        let image = plan.output("generated image").expect("the image is an output");
        let (scale, mean) = data_transform(compiled);
        Ok(Generator { program: CpuProgram::new(plan), image, scale, mean })
    }

    /// Generates from the fixed latent batch (and `feeds`) and writes the images as a PNG grid.
    pub fn write_png(
        &mut self,
        state: &mut State,
        seed: u64,
        path: &Path,
        feeds: &HashMap<&str, Vec<f32>>,
    ) -> Result<(), TrainError> {
        let (pixels, shape) = self.generate(state, &NoiseKey { seed, draw: FIXED_DRAW }, feeds)?;
        let columns = (shape[0] as f64).sqrt().ceil() as usize;
        grid::write_grid(path, &pixels, shape, columns).map_err(|e| TrainError::Io(path.to_path_buf(), e))
    }

    /// Generates one batch from the latents drawn with `noise` (those in `feeds` as given): the
    /// images as pixels (the Data layer's transform undone), and their N×C×H×W shape.
    pub fn generate(
        &mut self,
        state: &mut State,
        noise: &NoiseKey,
        feeds: &HashMap<&str, Vec<f32>>,
    ) -> Result<(Vec<u8>, [usize; 4]), TrainError> {
        self.program.run(state, feeds, noise)?;
        let shape = self.program.plan().shape(self.image);
        let shape = [shape[0], shape[1], shape[2], shape[3]];
        let pixels = grid::to_pixels(self.program.value(state, self.image), self.scale, self.mean);
        Ok((pixels, shape))
    }

    /// The state values the program reads, with their sizes.
    pub fn state_sizes(&self) -> Vec<(String, usize)> {
        self.program
            .plan()
            .buffers
            .iter()
            .filter_map(|b| match &b.role {
                graphc_runtime::BufferRole::State(name) => Some((name.clone(), b.numel())),
                _ => None,
            })
            .collect()
    }
}

/// The Data layer's transform `(pixel − mean)·scale`, used to map generated values to pixels.
fn data_transform(compiled: &Compiled) -> (f32, f32) {
    let mut layers = compiled.net.layers.iter().chain(compiled.net.subnets.iter().flat_map(|s| &s.layers));
    layers
        .find_map(|l| match &l.kind {
            LayerKind::Data { scale, mean, .. } => Some((*scale, *mean)),
            _ => None,
        })
        .unwrap_or((1.0 / 255.0, 0.0))
}

/// A k×k grid over the plane for a 2-D Gaussian latent: evenly spaced probabilities 0.05…0.95
/// mapped through the inverse normal CDF (as Kingma and Welling's manifold figure), rows varying
/// the second coordinate.
pub fn manifold_grid(k: usize) -> Vec<f32> {
    let coords: Vec<f32> =
        (0..k).map(|i| inverse_normal_cdf(0.05 + 0.9 * i as f64 / (k.max(2) - 1) as f64) as f32).collect();
    (0..k)
        .flat_map(|row| {
            (0..k).flat_map({
                let c = coords.clone();
                move |col| [c[col], c[k - 1 - row]]
            })
        })
        .collect()
}

/// The standard normal quantile function (Acklam's rational approximation, relative error
/// below 1.2e-9).
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_known_values() {
        assert!(inverse_normal_cdf(0.5).abs() < 1e-9);
        assert!((inverse_normal_cdf(0.975) - 1.959_963_985).abs() < 1e-6);
        assert!((inverse_normal_cdf(0.05) + 1.644_853_627).abs() < 1e-6);
    }

    #[test]
    fn grid_spans_the_plane_row_by_row() {
        let g = manifold_grid(3);
        assert_eq!(g.len(), 18);
        // First row: the top (largest second coordinate), x from left to right.
        assert!(g[0] < 0.0 && g[1] > 0.0 && g[2].abs() < 1e-6 && g[4] > 0.0);
        assert_eq!((g[16], g[17]), (g[4], g[0]));
    }
}

/// What `graphc sample` makes.
#[derive(Clone, Debug)]
pub struct SampleOptions {
    /// Number of images (a square number of them for `--grid`).
    pub n: usize,
    /// A 2-D latent to lay out as a grid over the plane, instead of sampling it.
    pub grid: Option<String>,
    /// Seed of the latent batch.
    pub seed: u64,
}

/// Generates images from the checkpoint of the run in `run_dir` (which holds `graph.g` and
/// `checkpoint.safetensors`) and writes them to `out`.
pub fn sample_run(run_dir: &Path, opts: &SampleOptions, out: &Path) -> Result<(), TrainError> {
    let graph_path = run_dir.join("graph.g");
    let src = crate::error::SourceFile::read(&graph_path.to_string_lossy()).map_err(TrainError::Data)?;
    let n = match &opts.grid {
        Some(_) => (opts.n as f64).sqrt().round().max(2.0) as usize,
        None => opts.n.max(1),
    };
    let batch = if opts.grid.is_some() { n * n } else { n };
    let copts = crate::CompileOptions { batch_size: Some(batch), ..crate::CompileOptions::default() };
    let compiled = crate::compile(&src, &copts).map_err(|d| TrainError::Data(d.render(&src)))?;
    let test = super::trainer::build_phase(&compiled, crate::schema::NetPhase::Test)?;
    let mut feeds = HashMap::new();
    if let Some(latent) = &opts.grid {
        let shape = test.blob(latent).map(|node| test.shape(node).0.clone());
        if shape.as_deref() != Some(&[batch, 2][..]) {
            let found = shape.map_or("not a blob of the TEST graph".to_string(), |s| format!("of shape {s:?}"));
            return Err(TrainError::Data(format!("--grid needs a 2-D latent; \"{latent}\" is {found}")));
        }
        feeds.insert(latent.as_str(), manifold_grid(n));
    }
    let fed: Vec<&str> = opts.grid.iter().map(String::as_str).collect();
    let mut generator = Generator::new(&compiled, &test, &fed)?;
    let checkpoint_path = run_dir.join("checkpoint.safetensors");
    let (mut state, _) = super::checkpoint::load(&checkpoint_path)?;
    for (name, size) in generator.state_sizes() {
        if state.values.get(&name).map(Vec::len) != Some(size) {
            let why = format!("\"{name}\" is missing or has the wrong size");
            return Err(super::checkpoint::CheckpointError::Mismatch(checkpoint_path, why).into());
        }
    }
    generator.write_png(&mut state, opts.seed, out, &feeds)
}

/// Images per row of a traversal.
const TRAVERSAL_COLUMNS: usize = 10;

/// A latent of the generation graph: its name, distribution and values per image.
pub struct Latent {
    /// The blob name.
    pub name: String,
    /// Its distribution.
    pub dist: Distribution,
    /// Values per image (the number of classes of a categorical latent).
    pub width: usize,
}

/// Latent traversals (the book's figures 10-14 and 10-15) from the run in `run_dir`.
///
/// For a categorical latent: one row per category, the other latents shared down each column, so
/// each column shows one style drawn as every category. For a continuous latent: for each of its
/// dimensions, one picture sweeping it from −2 to 2 across the columns (its other dimensions 0),
/// one row per category of the first categorical latent, the noise shared by the whole picture.
/// Returns the pictures written, into `out_dir`.
pub fn traverse_run(
    run_dir: &Path,
    blob: &str,
    seed: u64,
    out_dir: &Path,
) -> Result<Vec<std::path::PathBuf>, TrainError> {
    let src = crate::error::SourceFile::read(&run_dir.join("graph.g").to_string_lossy()).map_err(TrainError::Data)?;
    let probe =
        crate::compile(&src, &crate::CompileOptions::default()).map_err(|d| TrainError::Data(d.render(&src)))?;
    let latents = latents_of(&probe)?;
    let traversed = latents
        .iter()
        .position(|l| l.name == blob)
        .ok_or_else(|| TrainError::Data(format!("\"{blob}\" is not a latent of the `generate` block")))?;
    let categorical = |l: &Latent| l.dist == Distribution::Categorical;
    let rows = match latents.iter().find(|l| categorical(l)) {
        _ if categorical(&latents[traversed]) => latents[traversed].width,
        Some(code) => code.width,
        None => TRAVERSAL_COLUMNS,
    };
    let (columns, batch) = (TRAVERSAL_COLUMNS, rows * TRAVERSAL_COLUMNS);
    let copts = crate::CompileOptions { batch_size: Some(batch), ..crate::CompileOptions::default() };
    let compiled = crate::compile(&src, &copts).map_err(|d| TrainError::Data(d.render(&src)))?;
    let test = super::trainer::build_phase(&compiled, crate::schema::NetPhase::Test)?;
    let names: Vec<&str> = latents.iter().map(|l| l.name.as_str()).collect();
    let mut generator = Generator::new(&compiled, &test, &names)?;
    let (mut state, _) = super::checkpoint::load(&run_dir.join("checkpoint.safetensors"))?;
    let sweeps = if categorical(&latents[traversed]) { 1 } else { latents[traversed].width };
    let mut written = Vec::new();
    for dim in 0..sweeps {
        let mut feeds: HashMap<&str, Vec<f32>> = HashMap::new();
        for (i, latent) in latents.iter().enumerate() {
            let mut values = Vec::with_capacity(batch * latent.width);
            for image in 0..batch {
                let (row, col) = (image / columns, image % columns);
                values.extend(if i == traversed && categorical(latent) {
                    one_hot(row, latent.width)
                } else if i == traversed {
                    let v = -2.0 + 4.0 * col as f32 / (columns - 1) as f32;
                    (0..latent.width).map(|d| if d == dim { v } else { 0.0 }).collect()
                } else if categorical(latent) && !categorical(&latents[traversed]) {
                    one_hot(row % latent.width, latent.width)
                } else {
                    // Shared down a column (categorical traversal) or by the whole picture.
                    let draw = if categorical(&latents[traversed]) { col as u64 } else { 0 };
                    draw_latent(latent, seed, draw)
                });
            }
            feeds.insert(latent.name.as_str(), values);
        }
        let suffix = if sweeps > 1 { format!("_{dim}") } else { String::new() };
        let path = out_dir.join(format!("traverse_{blob}{suffix}.png"));
        generator.write_png(&mut state, seed, &path, &feeds)?;
        written.push(path);
    }
    Ok(written)
}

/// `classes` values, 1 at `class` and 0 elsewhere.
pub(crate) fn one_hot(class: usize, classes: usize) -> Vec<f32> {
    (0..classes).map(|c| if c == class { 1.0 } else { 0.0 }).collect()
}

/// One image's values of `latent`, drawn from its distribution (draw number `draw`).
pub(crate) fn draw_latent(latent: &Latent, seed: u64, draw: u64) -> Vec<f32> {
    let mut rng = graphc_runtime::rng::Rng::keyed(seed, super::init::name_stream(&latent.name), draw);
    match latent.dist {
        Distribution::Uniform { min, max } => (0..latent.width).map(|_| rng.uniform_in(min.get(), max.get())).collect(),
        Distribution::Gaussian { mean, std } => {
            (0..latent.width).map(|_| mean.get() + std.get() * rng.normal()).collect()
        }
        Distribution::Categorical => one_hot(rng.below(latent.width), latent.width),
    }
}

/// The generation block's latents, with their distributions and widths.
pub fn latents_of(compiled: &Compiled) -> Result<Vec<Latent>, TrainError> {
    let block =
        compiled.generate.as_ref().ok_or_else(|| TrainError::Data("the graph has no `generate` block".into()))?;
    let test = super::trainer::build_phase(compiled, crate::schema::NetPhase::Test)?;
    block
        .latents
        .iter()
        .map(|(name, _)| {
            let node = test.blob(name).expect("checked by the compiler");
            let crate::ir::Op::Sample { dist, .. } = test.node(node).op else {
                unreachable!("latents are noise sources")
            };
            let width = test.shape(node).0.iter().skip(1).product();
            Ok(Latent { name: name.clone(), dist, width })
        })
        .collect()
}
