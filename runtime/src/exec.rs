//! Runs a plan on the CPU: buffers for the plan's intermediate values, persistent state shared
//! between plans by name (so a GAN's two phase programs update the same parameters), and the
//! kernels of [`crate::cpu`].

use std::collections::HashMap;
use std::fmt;

use crate::cpu::fused::{fused_group, GroupInput, GroupOutput};
use crate::cpu::{execute, NoiseKey, View};
use crate::schedule::{is_temp, schedule, Unit, CPU_GROUP_MIN, MAX_GROUP};
use crate::{BufId, BufferRole, Kernel, Plan, Step};
use smallvec::SmallVec;

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
    /// The device failed (a CUDA call returned an error).
    Device(String),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (what, name, expected, found) = match self {
            ExecError::State { name, expected, found } => ("state", name, expected, found),
            ExecError::Feed { name, expected, found } => ("input", name, expected, found),
            ExecError::Device(why) => return f.write_str(why),
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

/// A plan ready to run on the CPU, with storage for its temporaries.
pub struct CpuProgram {
    plan: Plan,
    /// Storage of the temporaries: one vector per slot of the plan's memory plan (or of
    /// [`MemoryPlan::unshared`] when it has none).
    storage: Vec<Vec<f32>>,
    /// For each buffer, its index in `storage` (meaningful for temporaries only).
    home: Vec<usize>,
    /// The order [`Self::compute`] runs the steps in: the plan's, with runs of same-sized fused
    /// steps evaluated together ([`crate::schedule`]).
    schedule: Vec<Unit>,
    profile: Option<Profile>,
}

impl CpuProgram {
    /// Allocates the storage of `plan`: the slots of its memory plan, or one vector per
    /// temporary. Nothing is allocated for temporaries afterwards.
    pub fn new(plan: Plan) -> Self {
        let memory = plan.memory_or_unshared();
        let storage = memory.slot_len.iter().map(|&n| vec![0.0; n]).collect();
        let home = memory.homes();
        let schedule = schedule(&plan, &home, CPU_GROUP_MIN);
        CpuProgram { plan, storage, home, schedule, profile: None }
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

    /// Runs every step, then writes the updated state back ([`Self::compute`], then
    /// [`Self::commit`]). `feeds` holds the data batch and the step counter by name.
    pub fn run(
        &mut self,
        state: &mut State,
        feeds: &HashMap<&str, Vec<f32>>,
        noise: &NoiseKey,
    ) -> Result<(), ExecError> {
        self.compute(state, feeds, noise)?;
        self.commit(state);
        Ok(())
    }

    /// [`Self::run`] with the plan's steps one by one in the plan's order, no group evaluated
    /// together: the reference the grouped schedule is tested against.
    pub fn run_in_plan_order(
        &mut self,
        state: &mut State,
        feeds: &HashMap<&str, Vec<f32>>,
        noise: &NoiseKey,
    ) -> Result<(), ExecError> {
        self.compute_in_plan_order(state, feeds, noise)?;
        self.commit(state);
        Ok(())
    }

    /// [`Self::compute`] with the plan's steps one by one in the plan's order: every step's output
    /// can be read afterwards, including those a group keeps per chunk only.
    pub fn compute_in_plan_order(
        &mut self,
        state: &State,
        feeds: &HashMap<&str, Vec<f32>>,
        noise: &NoiseKey,
    ) -> Result<(), ExecError> {
        self.compute_as(false, state, feeds, noise)
    }

    /// How many steps run in groups of fused steps evaluated together.
    pub fn grouped_steps(&self) -> usize {
        self.schedule.iter().map(|u| if let Unit::Group(g, _) = u { g.len() } else { 0 }).sum()
    }

    /// How many grouped steps keep their output per chunk only ([`GroupOutput::Chunk`]).
    pub fn chunk_only_steps(&self) -> usize {
        let flags = self.schedule.iter().flat_map(|u| if let Unit::Group(_, only) = u { &only[..] } else { &[] });
        flags.filter(|&&only| only).count()
    }

    /// Runs every step, leaving the state as it was: the plan's outputs can be read (and
    /// checked) before [`Self::commit`] writes the updates back.
    pub fn compute(
        &mut self,
        state: &State,
        feeds: &HashMap<&str, Vec<f32>>,
        noise: &NoiseKey,
    ) -> Result<(), ExecError> {
        self.compute_as(true, state, feeds, noise)
    }

    /// [`Self::compute`], on the grouped schedule or step by step in the plan's order.
    fn compute_as(
        &mut self,
        grouped: bool,
        state: &State,
        feeds: &HashMap<&str, Vec<f32>>,
        noise: &NoiseKey,
    ) -> Result<(), ExecError> {
        self.check(state, feeds)?;
        // On a worker of the pool, so that each parallel kernel is split among the workers
        // directly: called from outside the pool, every one of them was handed over to it and
        // waited for (two thread switches per kernel).
        rayon::scope(|_| {
            if !grouped {
                (0..self.plan.steps.len()).for_each(|index| self.execute_step(index, state, feeds, noise));
                return;
            }
            for unit in 0..self.schedule.len() {
                match &self.schedule[unit] {
                    Unit::Step(index) => self.execute_step(*index, state, feeds, noise),
                    Unit::Group(..) => self.execute_group(unit, state, feeds),
                }
            }
        });
        Ok(())
    }

    /// Writes the state updates computed by the last [`Self::compute`] back into `state`.
    pub fn commit(&mut self, state: &mut State) {
        for (source, target) in &self.plan.writebacks {
            let BufferRole::State(name) = &self.plan.buffers[target.0 as usize].role else { continue };
            let value = state.values.get_mut(name).expect("checked before the run");
            let temp = &mut self.storage[self.home[source.0 as usize]];
            debug_assert_eq!(temp.len(), value.len(), "a write-back source has storage of its own, of its size");
            // Swap rather than copy: the temporary is recomputed by the next run before it is
            // read, so its new contents (the old state) do not matter. This saves a copy of every
            // updated parameter and optimizer state per step.
            std::mem::swap(value, temp);
        }
    }

    /// Runs the steps again one by one, as [`Self::compute`] does, and returns the first whose
    /// output holds a NaN or an infinity (checked as soon as it is computed, before any later
    /// step reuses its storage), or `None`.
    pub fn first_non_finite(
        &mut self,
        state: &State,
        feeds: &HashMap<&str, Vec<f32>>,
        noise: &NoiseKey,
    ) -> Result<Option<&Step>, ExecError> {
        self.check(state, feeds)?;
        for index in 0..self.plan.steps.len() {
            self.execute_step(index, state, feeds, noise);
            let output = self.plan.steps[index].output;
            if self.value(state, output).iter().any(|v| !v.is_finite()) {
                return Ok(Some(&self.plan.steps[index]));
            }
        }
        Ok(None)
    }

    /// Runs step `index`.
    fn execute_step(&mut self, index: usize, state: &State, feeds: &HashMap<&str, Vec<f32>>, noise: &NoiseKey) {
        let CpuProgram { plan, storage, home, profile, .. } = self;
        let step = &plan.steps[index];
        let started = profile.as_ref().map(|_| std::time::Instant::now());
        let out_home = home[step.output.0 as usize];
        debug_assert!(step.inputs.iter().all(|b| home[b.0 as usize] != out_home || !is_temp(plan, *b)));
        let mut out = std::mem::take(&mut storage[out_home]);
        {
            let views: SmallVec<[View; 8]> = step
                .inputs
                .iter()
                .map(|b| View { data: read(plan, storage, home, state, feeds, *b), shape: plan.shape(*b) })
                .collect();
            let numel = plan.buffers[step.output.0 as usize].numel();
            execute(&step.kernel, &views, &mut out[..numel], plan.shape(step.output), noise);
        }
        storage[out_home] = out;
        record(profile, started, || op_kind(&step.label).to_string());
    }

    /// Runs the fused steps of group `unit` together.
    fn execute_group(&mut self, unit: usize, state: &State, feeds: &HashMap<&str, Vec<f32>>) {
        let CpuProgram { plan, storage, home, schedule, profile } = self;
        let Unit::Group(members, chunk_only) = &schedule[unit] else { unreachable!("execute_group runs groups") };
        let started = profile.as_ref().map(|_| std::time::Instant::now());
        let numel = plan.buffers[plan.steps[members[0]].output.0 as usize].numel();
        let mut outs: SmallVec<[Vec<f32>; MAX_GROUP]> = members
            .iter()
            .zip(chunk_only)
            .map(|(&m, &only)| match only {
                true => Vec::new(),
                false => std::mem::take(&mut storage[home[plan.steps[m].output.0 as usize]]),
            })
            .collect();
        {
            let storage = &*storage;
            let inputs: SmallVec<[SmallVec<[GroupInput; 8]>; MAX_GROUP]> = members
                .iter()
                .map(|&m| {
                    let reads_member = |b: &BufId| members.iter().position(|&o| plan.steps[o].output == *b);
                    plan.steps[m]
                        .inputs
                        .iter()
                        .map(|b| match reads_member(b) {
                            Some(k) => GroupInput::Member(k),
                            None => GroupInput::Data(read(plan, storage, home, state, feeds, *b)),
                        })
                        .collect()
                })
                .collect();
            let exprs: SmallVec<[(&crate::fused::FusedExpr, &[GroupInput]); MAX_GROUP]> = members
                .iter()
                .zip(&inputs)
                .map(|(&m, inputs)| match &plan.steps[m].kernel {
                    Kernel::Fused(expr) => (expr, &inputs[..]),
                    other => unreachable!("a group holds fused steps, not {other:?}"),
                })
                .collect();
            let mut out_slices: SmallVec<[GroupOutput; MAX_GROUP]> = outs
                .iter_mut()
                .zip(chunk_only)
                .map(|(o, &only)| if only { GroupOutput::Chunk } else { GroupOutput::Buffer(&mut o[..numel]) })
                .collect();
            fused_group(&exprs, &mut out_slices, numel);
        }
        for ((&m, out), &only) in members.iter().zip(outs).zip(chunk_only) {
            if !only {
                storage[home[plan.steps[m].output.0 as usize]] = out;
            }
        }
        record(profile, started, || group_kind(members.len()));
    }

    /// The values of buffer `id` after the last run (a temp, or a state or feed read by it). A temp
    /// that only its group's later members read is not kept by [`Self::compute`] (see
    /// [`Self::compute_in_plan_order`]); the plan's outputs always are.
    pub fn value<'a>(&'a self, state: &'a State, id: BufId) -> &'a [f32] {
        match &self.plan.buffers[id.0 as usize].role {
            BufferRole::State(name) => state.values.get(name).map_or(&[][..], Vec::as_slice),
            BufferRole::Temp => &self.storage[self.home[id.0 as usize]][..self.plan.buffers[id.0 as usize].numel()],
            BufferRole::Feed(_) => &[],
        }
    }

    fn check(&self, state: &State, feeds: &HashMap<&str, Vec<f32>>) -> Result<(), ExecError> {
        check_inputs(&self.plan, |name| state.values.get(name).map(Vec::len), feeds)
    }
}

/// Checks that every state value and feed `plan` reads is present with its size; `state_len`
/// gives a state value's length by name.
pub(crate) fn check_inputs(
    plan: &Plan,
    state_len: impl Fn(&str) -> Option<usize>,
    feeds: &HashMap<&str, Vec<f32>>,
) -> Result<(), ExecError> {
    for buffer in &plan.buffers {
        let expected = buffer.numel();
        match &buffer.role {
            BufferRole::State(name) => {
                let found = state_len(name);
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

/// The kind of op a step's label names (`conv2d` in `d_real/conv1 (conv2d)`): a profile's entry.
pub(crate) fn op_kind(label: &str) -> &str {
    label.rsplit('(').next().unwrap_or("").trim_end_matches(')')
}

/// A profile's entry for a group of `members` fused steps run together.
pub(crate) fn group_kind(members: usize) -> String {
    format!("fused group of {members}")
}

/// Adds the time since `started` to the profile's entry `kind` (when profiling).
fn record(profile: &mut Option<Profile>, started: Option<std::time::Instant>, kind: impl FnOnce() -> String) {
    if let (Some(profile), Some(started)) = (profile.as_mut(), started) {
        let entry = profile.entry(kind()).or_default();
        entry.0 += started.elapsed();
        entry.1 += 1;
    }
}

/// The elements of buffer `id`: its state value, its feed, or its part of its storage.
fn read<'a>(
    plan: &Plan,
    storage: &'a [Vec<f32>],
    home: &[usize],
    state: &'a State,
    feeds: &'a HashMap<&str, Vec<f32>>,
    id: BufId,
) -> &'a [f32] {
    let buffer = &plan.buffers[id.0 as usize];
    match &buffer.role {
        BufferRole::State(name) => &state.values[name],
        BufferRole::Feed(name) => &feeds[name.as_str()],
        BufferRole::Temp => &storage[home[id.0 as usize]][..buffer.numel()],
    }
}
