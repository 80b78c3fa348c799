//! The training loop, as the book's pseudo-code runs it: each iteration runs the solver's phases
//! in order, each phase `steps` times (K discriminator steps, then one generator step), each step
//! with a fresh data batch and fresh noise. It logs metrics, writes checkpoints and sample grids,
//! stops on a non-finite loss (naming the op that produced it when losses are read after every
//! step), and can resume bit-identically.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use graphc_runtime::backend::{Backend, Cpu};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::{CpuProgram, ExecError, State};
use graphc_runtime::{BufferRole, Plan};

use super::batches::{Batches, Cursor};
use super::checkpoint::{self, CheckpointError, Position};
use super::readback::{LossQueue, LossReadback, StepLosses};
use super::sample::Generator;
use crate::data::{load_split, resolve_source, DataError, Dataset, Split};
use crate::ir::Graph;
use crate::phases::PhaseInfo;
use crate::schema::{Duration, NetPhase};
use crate::{build, lower, Compiled};

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The run directory.
    pub out: PathBuf,
    /// Stop after this many iterations (counted from the start of training).
    pub max_steps: Option<u64>,
    /// Train for this many epochs (overrides the file).
    pub epochs: Option<u64>,
    /// The seed (overrides the file's `random_seed`).
    pub seed: Option<u64>,
    /// `mnist`, `fashion` or a directory of IDX files.
    pub data: String,
    /// Continue from the run directory's checkpoint.
    pub resume: bool,
    /// Set (by a Ctrl-C handler, say) to stop after the current iteration with a checkpoint.
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Where the training programs run.
    pub device: TrainDevice,
    /// When losses come back to the host (default: after every step on the CPU, at log
    /// intervals on a GPU).
    pub loss_readback: Option<LossReadback>,
}

/// Where a run's training programs run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrainDevice {
    /// The CPU backend.
    #[default]
    Cpu,
    /// CUDA device `ordinal`; when it cannot be opened, `fallback` runs on the CPU with a note
    /// (`--device auto`) instead of failing (`--device cuda:N`).
    Cuda { ordinal: usize, fallback: bool },
}

/// Why a run stopped early.
#[derive(Debug)]
pub enum TrainError {
    /// The graph file has no solver.
    NoSolver,
    /// The data could not be read or does not fit the graph.
    Data(String),
    /// A checkpoint could not be read or written.
    Checkpoint(CheckpointError),
    /// The run directory could not be written.
    Io(PathBuf, std::io::Error),
    /// A program could not run.
    Exec(ExecError),
    /// The run was interrupted; a checkpoint was written.
    Interrupted { iteration: u64, checkpoint: PathBuf },
    /// One phase drove its losses to about zero and kept them there (a GAN's discriminator wins).
    PhaseWins { iteration: u64, phase: String, losses: Vec<String> },
    /// A loss became NaN or infinite; `origin` is the op that first produced such a value, when
    /// the loss was read back before its update (`--loss-readback step`) and the step rerun.
    NonFinite { iteration: u64, phase: String, loss: String, origin: Option<String> },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            TrainError::NoSolver => write!(f, "the graph has no `solver` block, so there is nothing to train"),
            TrainError::Data(why) => f.write_str(why),
            TrainError::Checkpoint(e) => write!(f, "{e}"),
            TrainError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            TrainError::Exec(e) => write!(f, "{e}"),
            TrainError::Interrupted { iteration, checkpoint } => write!(
                f,
                "interrupted after iteration {iteration}; checkpoint written to {} (continue with --resume)",
                checkpoint.display()
            ),
            TrainError::PhaseWins { iteration, phase, losses } => write!(
                f,
                "phase \"{phase}\" has kept {} below {} for {} iterations (until iteration {iteration}): it wins \
                 completely and the other phases get no useful gradient (a GAN whose discriminator wins). The \
                 last good checkpoint is kept; try a lower learning rate for this phase or fewer steps per iteration.",
                losses.join(", "),
                super::collapse::WON_BELOW,
                super::collapse::PATIENCE
            ),
            TrainError::NonFinite { iteration, phase, loss, origin: Some(origin) } => write!(
                f,
                "loss \"{loss}\" of phase \"{phase}\" is not finite at iteration {iteration}; the first non-finite value \
                 came from {origin}. The last good checkpoint is kept."
            ),
            TrainError::NonFinite { iteration, phase, loss, origin: None } => write!(
                f,
                "loss \"{loss}\" of phase \"{phase}\" is not finite at iteration {iteration}. It was read back at a log \
                 interval, after its update; the last good checkpoint is kept. Rerunning with `--loss-readback \
                 step` (from that checkpoint with `--resume`) names the op that produced the first non-finite value."
            ),
        }
    }
}

impl std::error::Error for TrainError {}

impl From<DataError> for TrainError {
    fn from(e: DataError) -> Self {
        TrainError::Data(e.to_string())
    }
}

impl From<CheckpointError> for TrainError {
    fn from(e: CheckpointError) -> Self {
        TrainError::Checkpoint(e)
    }
}

impl From<ExecError> for TrainError {
    fn from(e: ExecError) -> Self {
        TrainError::Exec(e)
    }
}

/// What a finished run reports.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// Iterations completed.
    pub iterations: u64,
    /// Per phase, the mean weighted loss over the held-out split.
    pub held_out: Vec<(String, f64)>,
}

/// One phase's compiled training program for its current stage: a loss with a `start_iter`
/// weighs 0 before it ([`PhaseInfo::at_iteration`]), so the program is rebuilt when a stage
/// starts, and only the current stage's program exists.
struct PhaseRun<P> {
    /// The first iteration of the stage the program trains ([`PhaseInfo::stage_start`]).
    stage: u64,
    /// The phase as it trains in that stage.
    active: PhaseInfo,
    program: P,
    /// Images per step, when the phase reads data.
    batch: Option<usize>,
}

/// The program of phase `info` for the stage that contains `iteration`, profiled when `profile`.
fn phase_run<B: Backend>(
    backend: &mut B,
    (train, passes): (&Graph, &[&str]),
    info: &PhaseInfo,
    iteration: u64,
    profile: bool,
) -> Result<PhaseRun<B::Program>, ExecError> {
    let stage = info.stage_start(iteration);
    let active = info.at_iteration(stage);
    let mut program = backend.program(crate::training_plan(train, &active, passes))?;
    if profile {
        B::enable_profile(&mut program);
    }
    let batch = batch_size(B::plan(&program));
    Ok(PhaseRun { stage, active, program, batch })
}

/// Refills the feeds a phase program reads, keeping their storage: a data batch when it has an
/// image input, and the step.
fn refill_feeds(plan: &Plan, batches: &mut Batches, step: u64, feeds: &mut HashMap<&'static str, Vec<f32>>) {
    let step_feed = feeds.entry("step").or_default();
    step_feed.clear();
    step_feed.push(step as f32);
    if let Some(batch) = batch_size(plan) {
        let mut images = feeds.remove("image").unwrap_or_default();
        let mut labels = feeds.remove("label").unwrap_or_default();
        batches.next_batch_into(batch, &mut images, &mut labels);
        feeds.insert("image", images);
        feeds.insert("label", labels);
    }
}

fn batch_size(plan: &Plan) -> Option<usize> {
    plan.buffers.iter().find(|b| b.role == BufferRole::Feed("image".into())).map(|b| b.shape[0])
}

/// Trains `compiled` as its solver says, on the device `opts` names.
pub fn run(compiled: &Compiled, opts: &RunOptions, log: &mut dyn FnMut(&str)) -> Result<RunSummary, TrainError> {
    match opts.device {
        TrainDevice::Cpu => train_on(&mut Cpu::default(), LossReadback::EveryStep, compiled, opts, log),
        TrainDevice::Cuda { ordinal, fallback } => run_on_cuda(ordinal, fallback, compiled, opts, log),
    }
}

#[cfg(feature = "cuda")]
fn run_on_cuda(
    ordinal: usize,
    fallback: bool,
    compiled: &Compiled,
    opts: &RunOptions,
    log: &mut dyn FnMut(&str),
) -> Result<RunSummary, TrainError> {
    match graphc_runtime::cuda::exec::CudaDevice::open(ordinal) {
        Ok(mut device) => {
            log(&format!("device: {}", device.describe()));
            train_on(&mut device, LossReadback::AtLogs, compiled, opts, log)
        }
        Err(why) if fallback => {
            log(&format!("note: running on the CPU ({why})"));
            train_on(&mut Cpu::default(), LossReadback::EveryStep, compiled, opts, log)
        }
        Err(why) => Err(TrainError::Exec(ExecError::Device(why.to_string()))),
    }
}

#[cfg(not(feature = "cuda"))]
fn run_on_cuda(
    _ordinal: usize,
    fallback: bool,
    compiled: &Compiled,
    opts: &RunOptions,
    log: &mut dyn FnMut(&str),
) -> Result<RunSummary, TrainError> {
    let why = graphc_runtime::device::probe_device_count().err().map_or_else(String::new, |e| e.to_string());
    if !fallback {
        return Err(TrainError::Exec(ExecError::Device(why)));
    }
    log(&format!("note: running on the CPU ({why})"));
    train_on(&mut Cpu::default(), LossReadback::EveryStep, compiled, opts, log)
}

/// The training loop on `backend`: its state lives on the device, and comes to the host only for
/// checkpoints, sample grids and the held-out losses; its losses come back as `opts` says, else
/// as `default_readback` does.
fn train_on<B: Backend>(
    backend: &mut B,
    default_readback: LossReadback,
    compiled: &Compiled,
    opts: &RunOptions,
    log: &mut dyn FnMut(&str),
) -> Result<RunSummary, TrainError> {
    let solver = compiled.net.solver.as_ref().ok_or(TrainError::NoSolver)?;
    let seed = opts.seed.unwrap_or(solver.random_seed);
    let train_graph = build_phase(compiled, NetPhase::Train)?;
    let test_graph = build_phase(compiled, NetPhase::Test)?;
    let profile = std::env::var_os("GRAPHC_PROFILE").is_some();
    let train_inputs = (&train_graph, &compiled.passes[..]);
    let mut phases: Vec<PhaseRun<B::Program>> = compiled
        .phases
        .iter()
        .map(|info| phase_run(backend, train_inputs, info, 0, profile))
        .collect::<Result<_, _>>()?;
    // Every stage of a phase has the same state: the stages differ only in loss weights.
    let plans: Vec<&Plan> = phases.iter().map(|p| B::plan(&p.program)).collect();
    let shapes = state_shapes(&train_graph, &test_graph, &plans);
    let data_dir = resolve_source(&opts.data);
    let train_data = load_split(&data_dir, Split::Train)?;
    check_image_size(&train_data, &data_dir)?;
    std::fs::create_dir_all(opts.out.join("samples")).map_err(|e| TrainError::Io(opts.out.clone(), e))?;
    let checkpoint_path = opts.out.join("checkpoint.safetensors");

    let (state, mut position) = if opts.resume {
        let (state, position) = checkpoint::load(&checkpoint_path)?;
        checkpoint::check_fits(&checkpoint_path, &state, &shapes)?;
        log(&format!("resuming from {} at iteration {}", checkpoint_path.display(), position.iteration));
        (state, position)
    } else {
        (initial_state(&train_graph, &test_graph, &plans, seed), Position { seed, ..Position::default() })
    };
    let mut state = backend.upload(state)?;
    let images_per_iteration: usize = phases.iter().map(|p| p.batch.unwrap_or(0) * p.active.steps).sum();
    let total = total_iterations(solver.duration, opts, train_data.count, images_per_iteration);
    let cursor = Cursor { epoch: position.epoch, position: position.data_position };
    let mut batches = Batches::new(train_data, seed, cursor);
    let mut sampler = Generator::new(compiled, &test_graph, &[]).ok();
    let mut metrics = open_metrics(&opts.out, opts.resume)?;
    let references = entropy_references(compiled);
    let samples_at = |iteration: u64| opts.out.join("samples").join(format!("step_{iteration:06}.png"));
    if let (Some(sampler), 0) = (&mut sampler, position.iteration) {
        backend.with_host(&mut state, |host| sampler.write_png(host, seed, &samples_at(0), &HashMap::new()))?;
    }
    let progress = super::progress::Progress::new(total, position.iteration);
    let mut window = (Instant::now(), 0usize);
    let mut watch = super::collapse::WinWatch::new(phases.len());
    let readback = opts.loss_readback.unwrap_or(default_readback);
    let mut queue = LossQueue::default();
    // Per phase, the losses of its last step read back: what the next log line reports.
    let mut logged: Vec<(String, Vec<(String, f32)>)> =
        compiled.phases.iter().map(|info| (info.name.clone(), Vec::new())).collect();
    // Refilled each step in place: the data batches allocate nothing after the first.
    let mut feeds = HashMap::new();
    while position.iteration < total {
        let iteration = position.iteration;
        for (index, (phase, info)) in phases.iter_mut().zip(&compiled.phases).enumerate() {
            if info.stage_start(iteration) != phase.stage {
                *phase = phase_run(backend, train_inputs, info, iteration, profile)?;
            }
            let PhaseRun { active: info, program, batch, .. } = phase;
            for k in 0..info.steps {
                let step = iteration * info.steps as u64 + k as u64 + 1;
                refill_feeds(B::plan(program), &mut batches, step, &mut feeds);
                let noise = NoiseKey { seed, draw: position.draw };
                backend.compute(program, &state, &feeds, &noise)?;
                let losses = StepLosses::new(info, index, iteration, k + 1 == info.steps);
                match readback {
                    LossReadback::EveryStep => {
                        if let Err(e) = read_now(backend, &mut queue, (program, &state), (&feeds, &noise), losses, info)
                        {
                            progress.finish();
                            return Err(e);
                        }
                    }
                    LossReadback::AtLogs => queue.push_staged(backend, (&*program, &state), losses, info)?,
                }
                B::commit(program, &mut state);
                position.draw += 1;
            }
            window.1 += batch.unwrap_or(0) * info.steps;
        }
        position.iteration += 1;
        let cursor = batches.cursor();
        (position.epoch, position.data_position) = (cursor.epoch, cursor.position);
        let done = position.iteration;
        let log_now = done % solver.display as u64 == 0 || done == total;
        let interrupted = opts.interrupt.as_ref().is_some_and(|flag| flag.load(std::sync::atomic::Ordering::SeqCst));
        let snapshot_now = (solver.snapshot > 0 && done % solver.snapshot as u64 == 0) || done == total;
        // Every loss is judged before anything is logged or saved.
        if readback == LossReadback::EveryStep || log_now || interrupted || snapshot_now {
            if let Err(e) = judge(queue.take(backend)?, &compiled.phases, &mut watch, &mut logged) {
                progress.finish();
                return Err(e);
            }
        }
        if log_now {
            let rate = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
            let epochs = (batches.epochs_done() * 100.0).round() / 100.0;
            for (phase, losses) in &logged {
                write_metrics(&mut metrics, &opts.out, done, epochs, phase, losses, rate)?;
            }
            progress.log(done, epochs, &logged, rate, log);
            window = (Instant::now(), 0);
        }
        progress.tick(done);
        if interrupted && done < total {
            backend.with_host(&mut state, |host| {
                checkpoint::save(&checkpoint_path, host, &shapes, &position).map_err(TrainError::from)
            })?;
            progress.finish();
            return Err(TrainError::Interrupted { iteration: done, checkpoint: checkpoint_path });
        }
        if snapshot_now {
            backend.with_host(&mut state, |host| {
                checkpoint::save(&checkpoint_path, host, &shapes, &position)?;
                match &mut sampler {
                    Some(sampler) => sampler.write_png(host, seed, &samples_at(done), &HashMap::new()),
                    None => Ok(()),
                }
            })?;
            plot_losses(&opts.out, &references)?;
        }
    }
    progress.finish();
    log_profile(phases.iter().filter_map(|p| B::profile(&p.program)), log);
    let held_out =
        backend.with_host(&mut state, |host| held_out_losses(&train_graph, &compiled.phases, host, &data_dir, seed))?;
    for (phase, value) in &held_out {
        log(&format!("held-out loss of phase \"{phase}\": {value:.4}"));
        write_json(
            &mut metrics,
            &opts.out,
            &serde_json::json!({"step": position.iteration, "phase": phase, "held_out_loss": value}),
        )?;
    }
    Ok(RunSummary { iterations: position.iteration, held_out })
}

pub(crate) fn build_phase(compiled: &Compiled, phase: NetPhase) -> Result<Graph, TrainError> {
    build::build(&compiled.net, &build::BuildOptions { phase, batch_size: compiled.batch_size })
        .map_err(|d| TrainError::Data(format!("internal error rebuilding the graph: {}", d.message)))
}

fn check_image_size(data: &Dataset, dir: &Path) -> Result<(), TrainError> {
    if (data.height, data.width) != (28, 28) {
        return Err(TrainError::Data(format!(
            "{}: images are {}×{}, the graph's Data layer reads 28×28",
            dir.display(),
            data.height,
            data.width
        )));
    }
    Ok(())
}

/// Iterations to run: `--max-steps`, else `--epochs` or the solver's length.
fn total_iterations(duration: Duration, opts: &RunOptions, examples: usize, per_iteration: usize) -> u64 {
    if let Some(steps) = opts.max_steps {
        return steps;
    }
    let epochs = opts.epochs.or(match duration {
        Duration::Epochs(e) => Some(e as u64),
        Duration::Iterations(_) => None,
    });
    match (epochs, duration) {
        (Some(e), _) => (e * examples as u64).div_ceil(per_iteration.max(1) as u64),
        (None, Duration::Iterations(n)) => n as u64,
        (None, Duration::Epochs(_)) => unreachable!("epochs handled above"),
    }
}

/// Every state value of the run and its shape: parameters (TRAIN and TEST graphs), running
/// statistics and the optimizer state of every phase.
fn state_shapes(train: &Graph, test: &Graph, plans: &[&Plan]) -> HashMap<String, Vec<usize>> {
    let mut shapes: HashMap<String, Vec<usize>> = HashMap::new();
    for p in train.params.iter().chain(&test.params) {
        shapes.insert(p.name.clone(), p.shape.0.clone());
    }
    for plan in plans {
        for b in &plan.buffers {
            if let BufferRole::State(name) = &b.role {
                shapes.insert(name.clone(), b.shape.clone());
            }
        }
    }
    shapes
}

fn initial_state(train: &Graph, test: &Graph, plans: &[&Plan], seed: u64) -> State {
    let mut state = State::default();
    super::init::fill_state(&mut state, train.params.iter().chain(&test.params), plans, seed);
    state
}

/// The values of the phase's losses after its last step.
fn read_losses<B: Backend>(
    backend: &mut B,
    program: &B::Program,
    state: &B::State,
    info: &PhaseInfo,
) -> Result<Vec<(String, f32)>, ExecError> {
    let mut losses = Vec::new();
    for loss in &info.losses {
        if let Some(id) = B::plan(program).output(&loss.blob) {
            losses.push((loss.blob.clone(), backend.first_value(program, state, id)?));
        }
    }
    Ok(losses)
}

/// Reads the losses of the step `program` has just run into `queue`. A non-finite one stops the
/// run naming the first op whose output is not finite, found by running the step again and
/// checking each output as it is computed: the state has not been updated yet, so it keeps the
/// last good values.
fn read_now<B: Backend>(
    backend: &mut B,
    queue: &mut LossQueue,
    (program, state): (&mut B::Program, &B::State),
    (feeds, noise): (&HashMap<&str, Vec<f32>>, &NoiseKey),
    losses: StepLosses,
    info: &PhaseInfo,
) -> Result<(), TrainError> {
    let iteration = losses.iteration;
    let Some(loss) = queue.push_read(backend, (&*program, state), losses, info)?.non_finite().map(str::to_string)
    else {
        return Ok(());
    };
    let origin = backend
        .first_non_finite(program, state, feeds, noise)?
        .map_or_else(|| "an unknown op".to_string(), |step| step.label.clone());
    Err(TrainError::NonFinite { iteration, phase: info.name.clone(), loss, origin: Some(origin) })
}

/// Hands the losses read back to the run in step order: fails on the first that is not finite
/// (read back after its update, so not traced to its op) and when a phase has won, and keeps
/// each phase's last logged losses in `logged`.
fn judge(
    steps: Vec<StepLosses>,
    phases: &[PhaseInfo],
    watch: &mut super::collapse::WinWatch,
    logged: &mut [(String, Vec<(String, f32)>)],
) -> Result<(), TrainError> {
    for step in steps {
        let phase = || phases[step.phase].name.clone();
        if let Some(loss) = step.non_finite() {
            let (iteration, loss) = (step.iteration, loss.to_string());
            return Err(TrainError::NonFinite { iteration, phase: phase(), loss, origin: None });
        }
        if !step.last_of_phase {
            continue;
        }
        if watch.observe(step.phase, &step.losses, &step.weights) {
            let won = step.losses.iter().zip(&step.weights).filter(|(_, w)| **w > 0.0);
            let losses = won.map(|((name, _), _)| name.clone()).collect();
            return Err(TrainError::PhaseWins { iteration: step.iteration, phase: phase(), losses });
        }
        logged[step.phase].1 = step.losses;
    }
    Ok(())
}

/// The blobs of a phase's losses: the outputs the trainer reads after each step.
fn loss_blobs(info: &PhaseInfo) -> Vec<&str> {
    info.losses.iter().map(|l| l.blob.as_str()).collect()
}

/// With `GRAPHC_PROFILE` set: the time per kind of op over all phases, largest first (the
/// device's time on a GPU), and their total.
fn log_profile<'p>(profiles: impl Iterator<Item = &'p graphc_runtime::exec::Profile>, log: &mut dyn FnMut(&str)) {
    let mut total: HashMap<&str, (f64, u64)> = HashMap::new();
    for profile in profiles {
        for (kind, (time, count)) in profile {
            let entry = total.entry(kind.as_str()).or_default();
            entry.0 += time.as_secs_f64();
            entry.1 += count;
        }
    }
    let mut rows: Vec<_> = total.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    let sum: f64 = rows.iter().map(|r| r.1 .0).sum();
    for (kind, (secs, count)) in rows.iter().take(15) {
        log(&format!("profile: {kind:<22} {secs:8.2} s {:5.1}%  {count} calls", 100.0 * secs / sum.max(1e-12)));
    }
    if !rows.is_empty() {
        log(&format!("profile: {:<22} {sum:8.2} s", "total"));
    }
}

fn plot_losses(out: &Path, references: &[(String, f64)]) -> Result<(), TrainError> {
    let metrics = out.join("metrics.jsonl");
    let text = std::fs::read_to_string(&metrics).map_err(|e| TrainError::Io(metrics, e))?;
    let curves = super::plot::curves_from_metrics(&text);
    super::plot::write_loss_plot(&out.join("loss.png"), &curves, references).map_err(TrainError::Data)
}

/// The entropy H(c) = ln C of each categorical latent: the ceiling of its mutual-information
/// estimate, drawn on the loss chart.
fn entropy_references(compiled: &Compiled) -> Vec<(String, f64)> {
    let latents = super::sample::latents_of(compiled).unwrap_or_default();
    latents
        .iter()
        .filter(|l| l.dist == crate::ir::Distribution::Categorical)
        .map(|l| (format!("H({}) = ln {}", l.name, l.width), (l.width as f64).ln()))
        .collect()
}

fn open_metrics(out: &Path, append: bool) -> Result<std::fs::File, TrainError> {
    let path = out.join("metrics.jsonl");
    std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(&path)
        .map_err(|e| TrainError::Io(path, e))
}

fn write_metrics(
    file: &mut std::fs::File,
    out: &Path,
    step: u64,
    epoch: f64,
    phase: &str,
    losses: &[(String, f32)],
    rate: f64,
) -> Result<(), TrainError> {
    let mut record = serde_json::json!({"step": step, "epoch": epoch, "phase": phase});
    for (name, value) in losses {
        record[name] = serde_json::json!(value);
    }
    record["images_per_sec"] = serde_json::json!((rate * 10.0).round() / 10.0);
    write_json(file, out, &record)
}

fn write_json(file: &mut std::fs::File, out: &Path, record: &serde_json::Value) -> Result<(), TrainError> {
    writeln!(file, "{record}").map_err(|e| TrainError::Io(out.join("metrics.jsonl"), e))
}

/// Mean weighted loss of each data-reading phase over the held-out split, without updates.
pub(crate) fn held_out_losses(
    train: &Graph,
    phases: &[PhaseInfo],
    state: &mut State,
    dir: &Path,
    seed: u64,
) -> Result<Vec<(String, f64)>, TrainError> {
    let test = load_split(dir, Split::Test)?;
    let mut results = Vec::new();
    for info in phases {
        let mut plan = lower::to_plan(&crate::phases::restrict_to_phase(train.clone(), info), &[]);
        plan.writebacks.clear();
        lower::plan_memory(&mut plan, &loss_blobs(info));
        let mut program = CpuProgram::new(plan);
        let Some(batch) = batch_size(program.plan()) else { continue };
        let mut batches = Batches::new(test.clone(), seed, Cursor::default());
        let rounds = (test.count / batch).max(1);
        let (mut total, mut feeds) = (0.0, HashMap::new());
        for round in 0..rounds {
            refill_feeds(program.plan(), &mut batches, 1, &mut feeds);
            program.run(state, &feeds, &NoiseKey { seed, draw: u64::MAX - 1 - round as u64 })?;
            total += read_losses(&mut Cpu::default(), &program, state, info)?
                .iter()
                .zip(&info.losses)
                .map(|((_, v), l)| (l.weight * v) as f64)
                .sum::<f64>();
        }
        results.push((info.name.clone(), total / rounds as f64));
    }
    Ok(results)
}
