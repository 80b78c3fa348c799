//! The `graphc` command line: `check` and `compile`.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use graphc::error::SourceFile;
use graphc::{compile, emit, CompileOptions, PhaseSelect};

/// A declarative model-graph compiler for Caffe-style graph files.
#[derive(Parser)]
#[command(name = "graphc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// Override the batch size.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        batch_size: Option<u32>,
    },
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
        Command::Compile { file, emit: what, phase, batch_size } => {
            let opts = CompileOptions { phase: PhaseSelect::parse(&phase), batch_size: batch_size.map(|b| b as usize) };
            let result = load(&file).and_then(|src| match compile(&src, &opts) {
                Ok(compiled) => Ok(match what {
                    Emit::Ir => graphc::ir::print_graph(&compiled.graph, &src),
                    Emit::Yaml => emit::yaml(&compiled, &src),
                    Emit::Dot => emit::dot(&compiled),
                    Emit::Summary => emit::summary(&compiled),
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

fn load(path: &str) -> Result<SourceFile, String> {
    SourceFile::read(path).map_err(|e| format!("{e}\n"))
}
