//! What the training benchmarks share: a model file's training programs (every solver phase at
//! the default passes) on a backend, a filled state and synthetic feeds, one training iteration,
//! and the model's generator.

use graphc::error::SourceFile;
use graphc::schema::NetPhase;
use graphc::{build, compile, train::init, CompileOptions};
use graphc_runtime::backend::{Backend, Cpu};
use graphc_runtime::cpu::NoiseKey;
use graphc_runtime::exec::State;

/// Feeds by name.
type Feeds = std::collections::HashMap<&'static str, Vec<f32>>;

/// A model ready to train on backend `B`: per phase its program, steps per iteration and feeds.
pub struct Model<B: Backend = Cpu> {
    backend: B,
    phases: Vec<(B::Program, usize, Feeds)>,
    /// The parameters and optimizer state.
    pub state: B::State,
    draw: u64,
    compiled: graphc::Compiled,
    batch: Option<usize>,
}

impl Model<Cpu> {
    /// The model file at `path`, at its own batch size or `batch`, on the CPU.
    pub fn load(path: &str, batch: Option<usize>) -> Self {
        Model::load_on(Cpu::default(), path, batch)
    }
}

impl<B: Backend> Model<B> {
    /// The model file at `path`, at its own batch size or `batch`, on `backend`.
    pub fn load_on(mut backend: B, path: &str, batch: Option<usize>) -> Self {
        let src = SourceFile::read(path).expect("model file");
        let compiled =
            compile(&src, &CompileOptions { batch_size: batch, ..CompileOptions::default() }).expect("compiles");
        let train = build::build(&compiled.net, &build::BuildOptions { phase: NetPhase::Train, batch_size: batch })
            .expect("builds");
        let plans: Vec<(graphc_runtime::Plan, usize)> =
            compiled.phases.iter().map(|p| (graphc::training_plan(&train, p, &compiled.passes), p.steps)).collect();
        let mut state = State::default();
        let refs: Vec<&graphc_runtime::Plan> = plans.iter().map(|(p, _)| p).collect();
        init::fill_state(&mut state, &train.params, &refs, 1);
        let phases = plans
            .into_iter()
            .map(|(plan, steps)| {
                let feeds = init::synthetic_feeds(&plan);
                (backend.program(plan).expect("the backend takes the plan"), steps, feeds)
            })
            .collect();
        let state = backend.upload(state).expect("the backend takes the state");
        Model { backend, phases, state, draw: 0, compiled, batch }
    }

    /// Images read from the data per iteration (for GANs, the discriminator's real batches).
    pub fn images_per_iteration(&self) -> usize {
        self.phases.iter().map(|(_, steps, feeds)| feeds.get("image").map_or(0, |i| i.len() / 784) * steps).sum()
    }

    /// One training iteration: every phase, its steps each.
    pub fn iteration(&mut self) {
        for (program, steps, feeds) in &mut self.phases {
            for _ in 0..*steps {
                self.draw += 1;
                let noise = NoiseKey { seed: 1, draw: self.draw };
                self.backend.compute(program, &self.state, feeds, &noise).expect("runs");
                B::commit(program, &mut self.state);
            }
        }
    }

    /// Waits for the device to finish the work issued (reads the last phase's first output).
    #[allow(dead_code)] // Used by peer_step only; each bench compiles this module on its own.
    pub fn finish(&mut self) {
        let (program, _, _) = self.phases.last().expect("a model has a phase");
        if let Some((_, id)) = B::plan(program).outputs.first() {
            self.backend.first_value(program, &self.state, *id).expect("reads a loss");
        }
    }

    /// What the model runs on.
    #[allow(dead_code)] // Used by peer_step only.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }
}

impl Model<Cpu> {
    /// The generation program of the model's `generate` block (its TEST graph, with the file's
    /// batch or the one this model was loaded with), reading this model's state.
    #[allow(dead_code)] // Used by peer_step only; each bench compiles this module on its own.
    pub fn generator(&self) -> graphc::train::sample::Generator {
        let test =
            build::build(&self.compiled.net, &build::BuildOptions { phase: NetPhase::Test, batch_size: self.batch })
                .expect("builds the TEST graph");
        graphc::train::sample::Generator::new(&self.compiled, &test, &[]).expect("the model generates images")
    }
}
