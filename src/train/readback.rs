//! When the trainer reads a step's losses back from the device. After every step, a non-finite
//! loss is caught before the update and traced to its op (the CPU's default: a read there is
//! free). At log intervals, the losses of every step since the last read come back in one copy,
//! so the host never waits for the device between steps (the GPU's default).

use graphc_runtime::backend::Backend;
use graphc_runtime::exec::ExecError;
use graphc_runtime::BufId;

use crate::phases::PhaseInfo;

/// When losses come back to the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReadback {
    /// After every step, before the update is committed (`step`).
    EveryStep,
    /// At log intervals, checkpoints and the end of the run, after the updates (`log`).
    AtLogs,
}

impl std::str::FromStr for LossReadback {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "step" => Ok(LossReadback::EveryStep),
            "log" => Ok(LossReadback::AtLogs),
            _ => Err(format!("`{s}` is not a read-back mode: step or log")),
        }
    }
}

/// One step's losses, with what the trainer needs to judge them.
#[derive(Clone, Debug)]
pub struct StepLosses {
    /// The iteration the step belongs to.
    pub iteration: u64,
    /// The index of its phase in the solver.
    pub phase: usize,
    /// Whether it is the phase's last step in its iteration (the one that is logged).
    pub last_of_phase: bool,
    /// Each loss read and its value.
    pub losses: Vec<(String, f32)>,
    /// The loss weights of the phase's stage at that step.
    pub weights: Vec<f32>,
    /// Whether the values are staged on the device, to be filled in when read.
    staged: bool,
}

impl StepLosses {
    /// A step of phase `info` (index `phase`) whose values are still to be filled in.
    pub fn new(info: &PhaseInfo, phase: usize, iteration: u64, last_of_phase: bool) -> Self {
        StepLosses {
            iteration,
            phase,
            last_of_phase,
            losses: Vec::with_capacity(info.losses.len()),
            weights: info.losses.iter().map(|l| l.weight).collect(),
            staged: false,
        }
    }

    /// The first loss that is NaN or infinite.
    pub fn non_finite(&self) -> Option<&str> {
        self.losses.iter().find(|(_, v)| !v.is_finite()).map(|(name, _)| name.as_str())
    }
}

/// Steps whose losses were read or staged and not yet handed to the trainer, oldest first.
#[derive(Default)]
pub struct LossQueue {
    steps: Vec<StepLosses>,
    /// How many of the queued losses are staged on the device.
    staged: usize,
    /// The staged values as read back (kept to reuse its storage).
    values: Vec<f32>,
}

impl LossQueue {
    /// Queues the losses of the step `program` has just run, their values read now.
    pub fn push_read<B: Backend>(
        &mut self,
        backend: &mut B,
        (program, state): (&B::Program, &B::State),
        mut step: StepLosses,
        info: &PhaseInfo,
    ) -> Result<&StepLosses, ExecError> {
        for (blob, id) in loss_outputs::<B>(program, info) {
            step.losses.push((blob.to_string(), backend.first_value(program, state, id)?));
        }
        self.steps.push(step);
        Ok(self.steps.last().expect("just pushed"))
    }

    /// Queues the losses of the step `program` has just run, staged on the device to be read
    /// by [`LossQueue::take`].
    pub fn push_staged<B: Backend>(
        &mut self,
        backend: &mut B,
        (program, state): (&B::Program, &B::State),
        mut step: StepLosses,
        info: &PhaseInfo,
    ) -> Result<(), ExecError> {
        for (blob, id) in loss_outputs::<B>(program, info) {
            backend.stage_first(program, state, id)?;
            step.losses.push((blob.to_string(), f32::NAN));
            self.staged += 1;
        }
        step.staged = true;
        self.steps.push(step);
        Ok(())
    }

    /// Every queued step with its values, oldest first; reads the staged ones back in one copy.
    pub fn take<B: Backend>(&mut self, backend: &mut B) -> Result<Vec<StepLosses>, ExecError> {
        if self.staged > 0 {
            backend.read_staged(&mut self.values)?;
            if self.values.len() != self.staged {
                return Err(ExecError::Device(format!(
                    "{} losses were staged on the device and {} came back",
                    self.staged,
                    self.values.len()
                )));
            }
            let staged = self.steps.iter_mut().filter(|s| s.staged).flat_map(|s| s.losses.iter_mut());
            for ((_, value), read) in staged.zip(&self.values) {
                *value = *read;
            }
            self.staged = 0;
        }
        Ok(std::mem::take(&mut self.steps))
    }
}

/// The losses of phase `info` that `program` outputs, with their buffers.
fn loss_outputs<'a, B: Backend>(
    program: &'a B::Program,
    info: &'a PhaseInfo,
) -> impl Iterator<Item = (&'a str, BufId)> {
    info.losses.iter().filter_map(|loss| Some((loss.blob.as_str(), B::plan(program).output(&loss.blob)?)))
}
