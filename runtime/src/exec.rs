//! Runs a plan on the CPU: buffers for the plan's intermediate values, persistent state shared
//! between plans by name (so a GAN's two phase programs update the same parameters), and the
//! kernels of [`crate::cpu`].

use std::collections::HashMap;
use std::fmt;

use crate::cpu::{execute, NoiseKey, View};
use crate::{BufId, BufferRole, Plan};

/// Persistent values by name: parameters, running statistics, optimizer state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// Each value, row-major.
    pub values: HashMap<String, Vec<f32>>,
}

/// What went wrong running a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum ExecError {
    /// A state value the plan reads is absent or has the wrong size.
    State { name: String, expected: usize, found: Option<usize> },
    /// A feed is absent or has the wrong size.
    Feed { name: String, expected: usize, found: Option<usize> },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (what, name, expected, found) = match self {
            ExecError::State { name, expected, found } => ("state", name, expected, found),
            ExecError::Feed { name, expected, found } => ("input", name, expected, found),
        };
        match found {
            Some(n) => write!(f, "{what} \"{name}\" has {n} values, the program needs {expected}"),
            None => write!(f, "{what} \"{name}\" is missing"),
        }
    }
}

impl std::error::Error for ExecError {}

/// Time spent per kind of step (the op named in the step's label), when profiling.
pub type Profile = HashMap<String, (std::time::Duration, u64)>;

/// A plan ready to run on the CPU, with its intermediate buffers.
pub struct CpuProgram {
    plan: Plan,
    temps: Vec<Vec<f32>>,
    profile: Option<Profile>,
}

impl CpuProgram {
    /// Allocates the buffers of `plan`.
    pub fn new(plan: Plan) -> Self {
        let temps = plan
            .buffers
            .iter()
            .map(|b| if b.role == BufferRole::Temp { vec![0.0; b.numel()] } else { Vec::new() })
            .collect();
        CpuProgram { plan, temps, profile: None }
    }

    /// Starts recording the time spent per kind of step.
    pub fn enable_profile(&mut self) {
        self.profile = Some(Profile::new());
    }

    /// The time recorded per kind of step since profiling was enabled.
    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs every step, then writes the updated state back. `feeds` holds the data batch and the
    /// step counter by name.
    pub fn run(
        &mut self,
        state: &mut State,
        feeds: &HashMap<&str, Vec<f32>>,
        noise: &NoiseKey,
    ) -> Result<(), ExecError> {
        self.check(state, feeds)?;
        let CpuProgram { plan, temps, profile } = self;
        for step in &plan.steps {
            let started = profile.as_ref().map(|_| std::time::Instant::now());
            let out_id = step.output.0 as usize;
            let mut out = std::mem::take(&mut temps[out_id]);
            {
                let views: Vec<View> = step
                    .inputs
                    .iter()
                    .map(|b| View { data: read(plan, temps, state, feeds, *b), shape: plan.shape(*b) })
                    .collect();
                execute(&step.kernel, &views, &mut out, plan.shape(step.output), noise);
            }
            temps[out_id] = out;
            if let (Some(profile), Some(started)) = (profile.as_mut(), started) {
                let kind = step.label.rsplit('(').next().unwrap_or("").trim_end_matches(')').to_string();
                let entry = profile.entry(kind).or_default();
                entry.0 += started.elapsed();
                entry.1 += 1;
            }
        }
        for (source, target) in &plan.writebacks {
            let BufferRole::State(name) = &plan.buffers[target.0 as usize].role else { continue };
            let value = state.values.get_mut(name).expect("checked before the run");
            // Swap rather than copy: the temporary is recomputed by the next run before it is
            // read, so its new contents (the old state) do not matter. This saves a copy of every
            // updated parameter and optimizer state per step.
            std::mem::swap(value, &mut temps[source.0 as usize]);
        }
        Ok(())
    }

    /// The values of buffer `id` after the last run (a temp, or a state or feed read by it).
    pub fn value<'a>(&'a self, state: &'a State, id: BufId) -> &'a [f32] {
        match &self.plan.buffers[id.0 as usize].role {
            BufferRole::State(name) => state.values.get(name).map_or(&[][..], Vec::as_slice),
            _ => &self.temps[id.0 as usize],
        }
    }

    fn check(&self, state: &State, feeds: &HashMap<&str, Vec<f32>>) -> Result<(), ExecError> {
        for buffer in &self.plan.buffers {
            let expected = buffer.numel();
            match &buffer.role {
                BufferRole::State(name) => {
                    let found = state.values.get(name).map(Vec::len);
                    if found != Some(expected) {
                        return Err(ExecError::State { name: name.clone(), expected, found });
                    }
                }
                BufferRole::Feed(name) => {
                    let found = feeds.get(name.as_str()).map(Vec::len);
                    if found != Some(expected) {
                        return Err(ExecError::Feed { name: name.clone(), expected, found });
                    }
                }
                BufferRole::Temp => {}
            }
        }
        Ok(())
    }
}

fn read<'a>(
    plan: &Plan,
    temps: &'a [Vec<f32>],
    state: &'a State,
    feeds: &'a HashMap<&str, Vec<f32>>,
    id: BufId,
) -> &'a [f32] {
    match &plan.buffers[id.0 as usize].role {
        BufferRole::State(name) => &state.values[name],
        BufferRole::Feed(name) => &feeds[name.as_str()],
        BufferRole::Temp => &temps[id.0 as usize],
    }
}
