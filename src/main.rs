//! The `graphc` command line: `check` and `compile`.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

use graphc::error::SourceFile;
use graphc::train::{self, RunOptions, TrainDevice};
use graphc::{compile, emit, CompileOptions, PhaseSelect};
use graphc_runtime::device::{DeviceRequest, Selected};

/// A declarative model-graph compiler for Caffe-style graph files.
#[derive(Parser)]
#[command(name = "graphc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a graph as its solver says, writing metrics, samples and checkpoints.
    Run {
        /// The graph file.
        file: String,
        /// The run directory (default: runs/<graph name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Train for this many epochs (overrides the file).
        #[arg(long)]
        epochs: Option<u64>,
        /// Stop after this many iterations, counted from the start of training.
        #[arg(long)]
        max_steps: Option<u64>,
        /// The random seed (overrides the file's random_seed).
        #[arg(long)]
        seed: Option<u64>,
        /// The data: mnist (bundled), fashion, or a directory of IDX files.
        #[arg(long, default_value = "mnist")]
        data: String,
        /// auto (a GPU when one can run the program, else the CPU), cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: DeviceRequest,
        /// Continue the run in --out from its checkpoint.
        #[arg(long)]
        resume: bool,
        /// When losses come back from the device: `step` (after every step, so that a NaN is
        /// traced to its op before the update; the CPU's default) or `log` (at log intervals, in
        /// one copy; a GPU's default).
        #[arg(long)]
        loss_readback: Option<graphc::train::LossReadback>,
        /// Worker threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Generate images from a trained run's checkpoint.
    Sample {
        /// The run directory (holding graph.g and checkpoint.safetensors).
        run: PathBuf,
        /// Number of images.
        #[arg(long, default_value_t = 64)]
        n: usize,
        /// Lay a 2-D latent blob out as an evenly spaced grid over the plane.
        #[arg(long, conflicts_with = "traverse")]
        grid: Option<String>,
        /// Traverse a latent: one row per category of a categorical latent; for a continuous
        /// one, a sweep from -2 to 2 per dimension, one row per category.
        #[arg(long)]
        traverse: Option<String>,
        /// The PNG to write (default: RUN/sample.png or RUN/grid_<BLOB>.png); with --traverse,
        /// the directory for traverse_<BLOB>*.png (default: RUN).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seed of the latent batch.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// auto, cpu, cuda or cuda:N (as for `run`).
        #[arg(long, default_value = "auto")]
        device: DeviceRequest,
    },
    /// Score a trained generator: classifier score, Fréchet distance, class histogram, and the
    /// categorical code's accuracy, against held-out real images.
    Eval {
        /// The run directory (holding graph.g and checkpoint.safetensors).
        run: PathBuf,
        /// Number of images to generate.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(2..))]
        n: u64,
        /// The MNIST classifier's run directory; trained there from graphs/lenet.g when it has no
        /// checkpoint.
        #[arg(long, default_value = "runs/LeNet")]
        classifier: PathBuf,
        /// Real images: `mnist` (bundled), `fashion`, or a directory of IDX files.
        #[arg(long, default_value = "mnist")]
        data: String,
        /// Seed of the generated latents.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
        /// auto, cpu, cuda or cuda:N (as for `run`).
        #[arg(long, default_value = "auto")]
        device: DeviceRequest,
    },
    /// Parse and validate graph files; prints `ok` per file or its errors.
    Check {
        /// Graph files.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Compile a graph file and print what the compiler made of it.
    Compile {
        /// The graph file.
        file: String,
        /// What to print.
        #[arg(long, value_enum, default_value = "ir")]
        emit: Emit,
        /// TRAIN, TEST, or the name of a solver phase.
        #[arg(long, default_value = "TRAIN")]
        phase: String,
        /// With --phase NAME: print the phase's training program (gradients, optimizer updates).
        #[arg(long)]
        train: bool,
        #[command(flatten)]
        build: BuildArgs,
    },
}

/// How `run` and `compile` build training programs.
#[derive(Args)]
struct BuildArgs {
    /// Optimization level of training programs: 0 (none), 1 (simplification, CSE, dead-code
    /// elimination) or 2 (and fusion).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2))]
    opt_level: u8,
    /// Run exactly these passes (comma-separated, e.g. cse,dce) instead of the level's.
    #[arg(long, value_delimiter = ',')]
    passes: Option<Vec<String>>,
    /// Override the batch size.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: Option<u32>,
}

impl BuildArgs {
    /// `base` with these arguments applied; an unknown pass name is reported and fails.
    fn apply(self, base: CompileOptions) -> Result<CompileOptions, ExitCode> {
        let passes = self.passes.map(|names| graphc::passes::select(&names)).transpose().map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        })?;
        Ok(CompileOptions {
            batch_size: self.batch_size.map(|b| b as usize),
            opt_level: self.opt_level,
            passes,
            ..base
        })
    }
}

/// Output formats of `compile`.
#[derive(Clone, Copy, ValueEnum)]
enum Emit {
    /// A readable listing of the IR.
    Ir,
    /// The IR as YAML, for tools.
    Yaml,
    /// A Graphviz drawing of layers and blobs.
    Dot,
    /// A per-layer table of shapes, parameters and FLOPs.
    Summary,
    /// Per solver phase: nodes, kernel calls and memory of a training step, with and without
    /// buffer planning.
    Memory,
    /// Per solver phase: what each optimization pass changed, the nodes left and its time.
    Passes,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            file,
            out,
            epochs,
            max_steps,
            seed,
            data,
            device: request,
            resume,
            loss_readback,
            threads,
            build,
        } => {
            let device = match choose_device(request) {
                Ok(Selected::Cpu(_)) => TrainDevice::Cpu,
                Ok(Selected::Cuda(ordinal)) => TrainDevice::Cuda { ordinal, fallback: request == DeviceRequest::Auto },
                Err(code) => return code,
            };
            if let Err(code) = start_threads(threads) {
                return code;
            }
            let opts = match build.apply(CompileOptions::default()) {
                Ok(opts) => opts,
                Err(code) => return code,
            };
            let compiled = match load(&file).and_then(|src| compile(&src, &opts).map_err(|d| d.render(&src))) {
                Ok(c) => c,
                Err(message) => {
                    eprint!("{message}");
                    return ExitCode::FAILURE;
                }
            };
            let name = compiled.net.name.clone().unwrap_or_else(|| stem(&file));
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&name));
            let interrupt = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = interrupt.clone();
            if let Err(e) = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)) {
                eprintln!("note: Ctrl-C will not save a checkpoint ({e})");
            }
            let interrupt = Some(interrupt);
            let run_opts = RunOptions {
                out: out.clone(),
                max_steps,
                epochs,
                seed,
                data,
                resume,
                interrupt,
                device,
                loss_readback,
            };
            if let Err(e) = std::fs::create_dir_all(&out).and_then(|_| std::fs::copy(&file, out.join("graph.g"))) {
                eprintln!("error: cannot write the run directory {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
            eprintln!(
                "training {file} into {} (threads: {}; passes: {})",
                out.display(),
                rayon::current_num_threads(),
                if compiled.passes.is_empty() { "none".to_string() } else { compiled.passes.join(", ") }
            );
            finish(train::run(&compiled, &run_opts, &mut |line| eprintln!("{line}")), |summary| {
                eprintln!(
                    "done: {} iterations; metrics, samples and checkpoint in {}",
                    summary.iterations,
                    out.display()
                )
            })
        }
        Command::Eval { run, n, classifier, data, seed, json, device } => {
            if let Err(code) = choose_device(device).map(on_the_cpu) {
                return code;
            }
            if let Err(code) = start_threads(None) {
                return code;
            }
            let opts = graphc::eval::EvalOptions { n: n as usize, classifier, data, seed };
            let text = graphc::eval::eval_run(&run, &opts, &mut |line| eprintln!("{line}"))
                .map_err(|e| e.to_string())
                .and_then(|report| match json {
                    true => serde_json::to_string_pretty(&report).map(|t| t + "\n").map_err(|e| e.to_string()),
                    false => Ok(report.to_string()),
                });
            finish(text, |text| print!("{text}"))
        }
        Command::Sample { run, n, grid, traverse, out, seed, device } => {
            if let Err(code) = choose_device(device).map(on_the_cpu) {
                return code;
            }
            graphc_runtime::cpu::denormals::flush_denormals_on_this_thread();
            if let Some(blob) = traverse {
                let dir = out.unwrap_or_else(|| run.clone());
                return finish(train::sample::traverse_run(&run, &blob, seed, &dir), |paths| {
                    paths.iter().for_each(|p| println!("{}", p.display()))
                });
            }
            let out = out.unwrap_or_else(|| {
                run.join(grid.as_ref().map_or("sample.png".to_string(), |g| format!("grid_{g}.png")))
            });
            finish(train::sample::sample_run(&run, &train::sample::SampleOptions { n, grid, seed }, &out), |()| {
                println!("{}", out.display())
            })
        }
        Command::Check { files } => {
            let mut failed = false;
            for file in &files {
                match load(file)
                    .and_then(|src| compile(&src, &CompileOptions::default()).map(|_| ()).map_err(|d| d.render(&src)))
                {
                    Ok(()) => println!("{file}: ok"),
                    Err(message) => {
                        eprint!("{message}");
                        failed = true;
                    }
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Compile { file, emit: what, phase, train, build } => {
            let base = CompileOptions { phase: PhaseSelect::parse(&phase), train, ..CompileOptions::default() };
            let opts = match build.apply(base) {
                Ok(opts) => opts,
                Err(code) => return code,
            };
            let result = load(&file).and_then(|src| match compile(&src, &opts) {
                Ok(compiled) => Ok(match what {
                    Emit::Ir => graphc::ir::print_graph(&compiled.graph, &src),
                    Emit::Yaml => emit::yaml(&compiled, &src),
                    Emit::Dot => emit::dot(&compiled),
                    Emit::Summary => emit::summary(&compiled),
                    Emit::Memory => emit::memory(&compiled),
                    Emit::Passes => emit::passes(&compiled),
                }),
                Err(d) => Err(d.render(&src)),
            });
            match result {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprint!("{message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `on_ok` with a success's value, or the error on one line; the exit code either way.
fn finish<T, E: std::fmt::Display>(result: Result<T, E>, on_ok: impl FnOnce(T)) -> ExitCode {
    match result {
        Ok(value) => {
            on_ok(value);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the worker threads (every core, or `threads`), flushing subnormals on each.
fn start_threads(threads: Option<usize>) -> Result<(), ExitCode> {
    graphc_runtime::cpu::denormals::init_threads(threads).map_err(|e| {
        eprintln!("error: cannot start the worker threads: {e}");
        ExitCode::FAILURE
    })
}

/// Settles the device: prints a note when `auto` falls back to the CPU, fails with one line when
/// a CUDA device was asked for and cannot be used.
fn choose_device(request: DeviceRequest) -> Result<Selected, ExitCode> {
    match graphc_runtime::device::select(request) {
        Ok(selected) => {
            if let Selected::Cpu(Some(note)) = &selected {
                eprintln!("{note}");
            }
            Ok(selected)
        }
        Err(why) => {
            eprintln!("error: --device {}: {why}", request_name(request));
            Err(ExitCode::FAILURE)
        }
    }
}

/// `eval` and `sample` run on the CPU backend: on a usable GPU they say so in one line.
fn on_the_cpu(selected: Selected) {
    if let Selected::Cuda(ordinal) = selected {
        eprintln!("note: cuda:{ordinal} is present, but this command runs on the CPU (the CUDA backend trains)");
    }
}

/// The request as the user wrote it.
fn request_name(request: DeviceRequest) -> String {
    match request {
        DeviceRequest::Auto => "auto".into(),
        DeviceRequest::Cpu => "cpu".into(),
        DeviceRequest::Cuda(n) => format!("cuda:{n}"),
    }
}

fn stem(path: &str) -> String {
    std::path::Path::new(path).file_stem().map_or_else(|| "run".to_string(), |s| s.to_string_lossy().into_owned())
}

fn load(path: &str) -> Result<SourceFile, String> {
    SourceFile::read(path).map_err(|e| format!("error: {e}\n"))
}
