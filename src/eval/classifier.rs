//! The MNIST classifier `eval` scores images with: `graphs/lenet.g` (built into the binary),
//! trained by the same trainer as every other graph. It gives class probabilities (softmax of
//! `ip2`) and features (the 500 ReLU outputs of `ip1`) for images given as pixel values.

use std::path::Path;

use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, State};
use graphc_runtime::BufId;

use crate::error::SourceFile;
use crate::schema::NetPhase;
use crate::train::{self, checkpoint, RunOptions, TrainError};
use crate::{compile, lower, CompileOptions};

/// The classifier's graph file.
pub const LENET: &str = include_str!("../../graphs/lenet.g");
/// Images classified per program run.
const BATCH: usize = 100;
/// The blobs read: logits and features.
const LOGITS: &str = "ip2";
const FEATURES: &str = "ip1";

/// A trained classifier ready to run.
pub struct Classifier {
    program: CpuProgram,
    state: State,
    logits: BufId,
    features: BufId,
    /// Pixels per image.
    image_len: usize,
}

impl Classifier {
    /// The classifier of the run in `dir` (its `graph.g`, which must have blobs `ip1` and
    /// `ip2`, and its checkpoint).
    pub fn load(dir: &Path) -> Result<Self, TrainError> {
        let src = SourceFile::read(&dir.join("graph.g").to_string_lossy()).map_err(TrainError::Data)?;
        let opts = CompileOptions { batch_size: Some(BATCH), ..CompileOptions::default() };
        let compiled = compile(&src, &opts).map_err(|d| TrainError::Data(d.render(&src)))?;
        let mut graph = train::build_phase(&compiled, NetPhase::Test)?;
        let blob = |name: &str| {
            graph.blob(name).ok_or_else(|| {
                TrainError::Data(format!("{}: a classifier needs a blob \"{name}\"", dir.join("graph.g").display()))
            })
        };
        let (logits, features) = (blob(LOGITS)?, blob(FEATURES)?);
        let keep = graph.ancestors(&[logits, features]);
        graph.retain(&keep);
        graph.updates.clear();
        let outputs = [(LOGITS.to_string(), logits), (FEATURES.to_string(), features)];
        let mut plan = lower::to_plan(&graph, &outputs);
        lower::plan_memory(&mut plan, &[LOGITS, FEATURES]);
        let image_len = plan
            .buffers
            .iter()
            .find(|b| b.role == graphc_runtime::BufferRole::Feed("image".into()))
            .map(|b| b.numel() / BATCH)
            .ok_or_else(|| TrainError::Data("the classifier reads no images".into()))?;
        let (logits, features) = (plan.output(LOGITS).expect("kept"), plan.output(FEATURES).expect("kept"));
        let (state, _) = checkpoint::load(&dir.join("checkpoint.safetensors"))?;
        Ok(Classifier { program: CpuProgram::new(plan), state, logits, features, image_len })
    }

    /// Trains `graphs/lenet.g` into `dir` on `data` (the trainer's progress bar shows), unless
    /// `dir` already holds a checkpoint; then loads it.
    pub fn load_or_train(dir: &Path, data: &str, log: &mut dyn FnMut(&str)) -> Result<Self, TrainError> {
        if !dir.join("checkpoint.safetensors").exists() {
            log(&format!("no classifier checkpoint in {}: training graphs/lenet.g there first", dir.display()));
            std::fs::create_dir_all(dir).map_err(|e| TrainError::Io(dir.to_path_buf(), e))?;
            let graph = dir.join("graph.g");
            std::fs::write(&graph, LENET).map_err(|e| TrainError::Io(graph.clone(), e))?;
            let src = SourceFile::new("lenet.g", LENET);
            let compiled = compile(&src, &CompileOptions::default()).map_err(|d| TrainError::Data(d.render(&src)))?;
            let opts = RunOptions {
                out: dir.to_path_buf(),
                max_steps: None,
                epochs: None,
                seed: None,
                data: data.to_string(),
                resume: false,
                interrupt: None,
                device: crate::train::TrainDevice::Cpu,
                loss_readback: None,
            };
            train::run(&compiled, &opts, log)?;
        }
        Self::load(dir)
    }

    /// Class probabilities (row-major, 10 per image, f64) and features (row-major) of `images`,
    /// given as pixel values 0..=255, `image_len` per image.
    pub fn classify(&mut self, images: &[f32]) -> Result<(Vec<f64>, Vec<f32>), TrainError> {
        let count = images.len() / self.image_len;
        let (mut probs, mut features) = (Vec::new(), Vec::new());
        for first in (0..count).step_by(BATCH) {
            let take = BATCH.min(count - first);
            let mut batch = images[first * self.image_len..(first + take) * self.image_len].to_vec();
            batch.resize(BATCH * self.image_len, 0.0);
            let feeds = [("image", batch), ("label", vec![0.0; BATCH]), ("step", vec![1.0])].into_iter().collect();
            self.program.run(&mut self.state, &feeds, &NoiseKey { seed: 0, draw: 0 })?;
            let logits = self.program.value(&self.state, self.logits);
            let classes = logits.len() / BATCH;
            probs.extend(logits.chunks(classes).take(take).flat_map(softmax));
            let values = self.program.value(&self.state, self.features);
            features.extend_from_slice(&values[..take * (values.len() / BATCH)]);
        }
        Ok((probs, features))
    }
}

/// softmax of one row of logits, in f64.
fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v)) as f64;
    let exps: Vec<f64> = logits.iter().map(|v| (*v as f64 - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}
