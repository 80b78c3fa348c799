//! What a training loop needs of a device, so that one loop drives the CPU and the CUDA backend:
//! programs built from plans, a persistent state where the device keeps it, steps computed and
//! committed, and values read back: one at a time, or staged on the device as steps run and
//! read back together, so that the host need not wait for the device between steps.

use std::collections::HashMap;

use crate::cpu::NoiseKey;
use crate::exec::{CpuProgram, ExecError, Profile, State};
use crate::{BufId, Plan, Step};

/// Feeds by name: the data batch and the step counter.
pub type Feeds<'a> = HashMap<&'a str, Vec<f32>>;

/// A device that runs plans over a state shared by its programs.
pub trait Backend {
    /// A plan ready to run on the device.
    type Program;
    /// Persistent values by name (parameters, running statistics, optimizer state), where the
    /// device keeps them.
    type State;

    /// What the device is, for logs.
    fn describe(&self) -> String;
    /// Prepares `plan` to run.
    fn program(&mut self, plan: Plan) -> Result<Self::Program, ExecError>;
    /// The plan a program runs.
    fn plan(program: &Self::Program) -> &Plan;
    /// Moves a host state to the device.
    fn upload(&mut self, state: State) -> Result<Self::State, ExecError>;
    /// Calls `f` with the state on the host (checkpoints, samples, held-out losses); changes
    /// `f` makes are kept.
    fn with_host<R, E: From<ExecError>>(
        &mut self,
        state: &mut Self::State,
        f: impl FnOnce(&mut State) -> Result<R, E>,
    ) -> Result<R, E>;
    /// Runs every step of `program`, leaving `state` as it was.
    fn compute(
        &mut self,
        program: &mut Self::Program,
        state: &Self::State,
        feeds: &Feeds,
        noise: &NoiseKey,
    ) -> Result<(), ExecError>;
    /// Writes the state updates of the last run into `state`.
    fn commit(program: &mut Self::Program, state: &mut Self::State);
    /// The first element of buffer `id` after the last run (a loss); waits for the device.
    fn first_value(&mut self, program: &Self::Program, state: &Self::State, id: BufId) -> Result<f32, ExecError>;
    /// Copies the first element of buffer `id` after the last run aside on the device, without
    /// waiting for it; [`Backend::read_staged`] returns the values in the order they were staged.
    fn stage_first(&mut self, program: &Self::Program, state: &Self::State, id: BufId) -> Result<(), ExecError>;
    /// Replaces `values` with the values staged since the last call, oldest first (one wait for
    /// the device).
    fn read_staged(&mut self, values: &mut Vec<f32>) -> Result<(), ExecError>;
    /// Runs the steps again one by one and returns the first whose output is not finite.
    fn first_non_finite<'p>(
        &mut self,
        program: &'p mut Self::Program,
        state: &Self::State,
        feeds: &Feeds,
        noise: &NoiseKey,
    ) -> Result<Option<&'p Step>, ExecError>;
    /// Starts recording time per kind of step, where the device can.
    fn enable_profile(program: &mut Self::Program);
    /// The time recorded per kind of step.
    fn profile(program: &Self::Program) -> Option<&Profile>;
}

/// The CPU backend: [`CpuProgram`]s over a host [`State`].
#[derive(Clone, Debug, Default)]
pub struct Cpu {
    /// Values staged by [`Backend::stage_first`] and not read yet.
    staged: Vec<f32>,
}

impl Backend for Cpu {
    type Program = CpuProgram;
    type State = State;

    fn describe(&self) -> String {
        format!("CPU, {} threads, {} kernels", rayon::current_num_threads(), crate::cpu::gemm::Isa::best().name())
    }

    fn program(&mut self, plan: Plan) -> Result<CpuProgram, ExecError> {
        Ok(CpuProgram::new(plan))
    }

    fn plan(program: &CpuProgram) -> &Plan {
        program.plan()
    }

    fn upload(&mut self, state: State) -> Result<State, ExecError> {
        Ok(state)
    }

    fn with_host<R, E: From<ExecError>>(
        &mut self,
        state: &mut State,
        f: impl FnOnce(&mut State) -> Result<R, E>,
    ) -> Result<R, E> {
        f(state)
    }

    fn compute(
        &mut self,
        program: &mut CpuProgram,
        state: &State,
        feeds: &Feeds,
        noise: &NoiseKey,
    ) -> Result<(), ExecError> {
        program.compute(state, feeds, noise)
    }

    fn commit(program: &mut CpuProgram, state: &mut State) {
        program.commit(state)
    }

    fn first_value(&mut self, program: &CpuProgram, state: &State, id: BufId) -> Result<f32, ExecError> {
        Ok(program.value(state, id)[0])
    }

    fn stage_first(&mut self, program: &CpuProgram, state: &State, id: BufId) -> Result<(), ExecError> {
        self.staged.push(program.value(state, id)[0]);
        Ok(())
    }

    fn read_staged(&mut self, values: &mut Vec<f32>) -> Result<(), ExecError> {
        values.clear();
        values.append(&mut self.staged);
        Ok(())
    }

    fn first_non_finite<'p>(
        &mut self,
        program: &'p mut CpuProgram,
        state: &State,
        feeds: &Feeds,
        noise: &NoiseKey,
    ) -> Result<Option<&'p Step>, ExecError> {
        program.first_non_finite(state, feeds, noise)
    }

    fn enable_profile(program: &mut CpuProgram) {
        program.enable_profile()
    }

    fn profile(program: &CpuProgram) -> Option<&Profile> {
        program.profile()
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::*;
    use crate::cuda::exec::{CudaDevice, CudaProgram, DeviceState};

    impl Backend for CudaDevice {
        type Program = CudaProgram;
        type State = DeviceState;

        fn describe(&self) -> String {
            self.description().to_string()
        }

        fn program(&mut self, plan: Plan) -> Result<CudaProgram, ExecError> {
            CudaDevice::program(self, plan)
        }

        fn plan(program: &CudaProgram) -> &Plan {
            program.plan()
        }

        fn upload(&mut self, state: State) -> Result<DeviceState, ExecError> {
            CudaDevice::upload(self, &state)
        }

        fn with_host<R, E: From<ExecError>>(
            &mut self,
            state: &mut DeviceState,
            f: impl FnOnce(&mut State) -> Result<R, E>,
        ) -> Result<R, E> {
            let mut host = self.download(state)?;
            let result = f(&mut host)?;
            self.overwrite(state, &host)?;
            Ok(result)
        }

        fn compute(
            &mut self,
            program: &mut CudaProgram,
            state: &DeviceState,
            feeds: &Feeds,
            noise: &NoiseKey,
        ) -> Result<(), ExecError> {
            CudaDevice::compute(self, program, state, feeds, noise)
        }

        fn commit(program: &mut CudaProgram, state: &mut DeviceState) {
            program.commit(state)
        }

        fn first_value(&mut self, program: &CudaProgram, state: &DeviceState, id: BufId) -> Result<f32, ExecError> {
            self.read_first(program, state, id)
        }

        fn stage_first(&mut self, program: &CudaProgram, state: &DeviceState, id: BufId) -> Result<(), ExecError> {
            CudaDevice::stage_first(self, program, state, id)
        }

        fn read_staged(&mut self, values: &mut Vec<f32>) -> Result<(), ExecError> {
            CudaDevice::read_staged(self, values)
        }

        fn first_non_finite<'p>(
            &mut self,
            program: &'p mut CudaProgram,
            state: &DeviceState,
            feeds: &Feeds,
            noise: &NoiseKey,
        ) -> Result<Option<&'p Step>, ExecError> {
            CudaDevice::first_non_finite(self, program, state, feeds, noise)
        }

        fn enable_profile(program: &mut CudaProgram) {
            program.enable_profile()
        }

        fn profile(program: &CudaProgram) -> Option<&Profile> {
            program.profile()
        }
    }
}
