//! Runs lowered plans on an NVIDIA GPU through cudarc: one stream, cuBLAS for the matrix
//! products, the kernels compiled by NVRTC for the device's architecture. Parameters, optimizer
//! state, temporaries (one allocation per slot of the memory plan) and the workspace stay on the
//! device; a step copies its data batch in, and values come back only when read: one at a time,
//! or staged on the device step by step and read back together.
//!
//! A program's steps are captured once into a CUDA graph per set of buffer addresses it meets
//! (state values alternate with the temporaries that hold their updates, so a program meets a
//! few) and replayed with one launch, so the host issues one call per step instead of one per
//! kernel. Noise drawn on the host is copied in before the graph, which copies it into place.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::cublas::{sys as blas_sys, CudaBlas};
use cudarc::driver::{
    result, sys, CudaContext, CudaEvent, CudaFunction, CudaGraph, CudaSlice, CudaStream, DevicePtr, DeviceRepr,
    PushKernelArg,
};
use smallvec::SmallVec;

use super::launch::{launch_config, ConvGeometry, KernelCache, PoolGeometry, View};
use super::lowering::{lower, Arg, Base, DeviceOp, Gemm, Lowered, Place, Scheduled};
use crate::cpu::NoiseKey;
use crate::device::CudaUnavailable;
use crate::exec::{check_inputs, ExecError, Profile, State};
use crate::{BufferRole, Plan, Step};

// SAFETY: each is `#[repr(C)]` plain data (integers and arrays of integers) laid out as the
// struct of the same name in prelude.cuh / kernels.cu, so it can be passed by value to a kernel.
unsafe impl DeviceRepr for View {}
// SAFETY: as above (kernels.cu's `struct Pool`).
unsafe impl DeviceRepr for PoolGeometry {}
// SAFETY: as above (kernels.cu's `struct Conv`).
unsafe impl DeviceRepr for ConvGeometry {}

/// A CUDA device ready to run programs: its context, stream, cuBLAS handle and loaded kernels.
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    /// cuBLAS's workspace (declared after `blas`, so dropped after it).
    _blas_workspace: CudaSlice<u8>,
    multiprocessors: u32,
    arch: Option<&'static str>,
    kernels: KernelCache<CudaFunction>,
    description: String,
    /// Wait for the device after every step, so that an asynchronous fault (an illegal address,
    /// say) is reported with the step that caused it (`GRAPHC_CUDA_SYNC=1`; slower).
    sync_each_step: bool,
    /// Run programs as CUDA graphs (unless `GRAPHC_CUDA_GRAPHS=0`).
    graphs: bool,
    /// Values staged on the device by [`CudaDevice::stage_first`] and not read back yet: the
    /// first `staged_len` of [`STAGED_SLOTS`].
    staged: CudaSlice<f32>,
    staged_len: usize,
    /// Staged values already copied to the host, when the slots filled up between two reads.
    staged_host: Vec<f32>,
}

/// Bytes of cuBLAS's workspace.
const BLAS_WORKSPACE: usize = 32 << 20;

/// Values [`CudaDevice::stage_first`] keeps on the device before it copies them to the host:
/// hundreds of steps of losses.
const STAGED_SLOTS: usize = 4096;

/// Persistent values by name, on the device.
#[derive(Default)]
pub struct DeviceState {
    values: HashMap<String, CudaSlice<f32>>,
}

fn device_error(what: &str) -> impl Fn(result::DriverError) -> ExecError + '_ {
    move |e| ExecError::Device(format!("CUDA {what} failed: {e:?}"))
}

impl CudaDevice {
    /// Opens CUDA device `ordinal`, after probing (without a call that could panic) that the
    /// driver, NVRTC and cuBLAS libraries are present, and compiles the hand-written kernels.
    pub fn open(ordinal: usize) -> Result<Self, CudaUnavailable> {
        crate::device::probe_libraries(ordinal)?;
        let unavailable =
            |what: &str, e: &dyn std::fmt::Debug| CudaUnavailable(format!("CUDA device {ordinal}: {what}: {e:?}"));
        let ctx = CudaContext::new(ordinal).map_err(|e| unavailable("no context", &e))?;
        // SAFETY: every operation runs on one stream, in order, so cudarc's cross-stream event
        // tracking is not needed; it is turned off before anything is allocated.
        unsafe { ctx.disable_event_tracking() };
        // A stream of its own: the legacy default stream cannot be captured into a graph.
        let stream = ctx.new_stream().map_err(|e| unavailable("no stream", &e))?;
        let blas = CudaBlas::new(stream.clone()).map_err(|e| unavailable("cuBLAS did not start", &e))?;
        // A workspace of cuBLAS's own, allocated now: a product captured into a graph must not
        // allocate one (32 MiB, what NVIDIA advises for Hopper).
        let blas_workspace = stream.alloc_zeros::<u8>(BLAS_WORKSPACE).map_err(|e| unavailable("no memory", &e))?;
        let (workspace_at, _) = blas_workspace.device_ptr(&stream);
        // SAFETY: the handle is this device's; the allocation lives as long as the device (it is
        // kept in `CudaDevice`, dropped after `blas`).
        unsafe { blas_sys::cublasSetWorkspace_v2(*blas.handle(), workspace_at as *mut _, BLAS_WORKSPACE) }
            .result()
            .map_err(|e| unavailable("no cuBLAS workspace", &e))?;
        let sms = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| unavailable("no multiprocessor count", &e))?;
        let capability = ctx.compute_capability().map_err(|e| unavailable("no compute capability", &e))?;
        let arch = match capability {
            (8, 0) => Some("compute_80"),
            (8, 6) => Some("compute_86"),
            (8, 9) => Some("compute_89"),
            (9, 0) => Some("compute_90"),
            _ => None,
        };
        let staged = stream.alloc_zeros::<f32>(STAGED_SLOTS).map_err(|e| unavailable("no memory", &e))?;
        let name = ctx.name().unwrap_or_else(|_| "CUDA device".into());
        let description =
            format!("{name} (cuda:{ordinal}, sm_{}{}, {sms} multiprocessors)", capability.0, capability.1);
        let mut device = CudaDevice {
            ctx,
            stream,
            blas,
            _blas_workspace: blas_workspace,
            multiprocessors: sms as u32,
            arch,
            kernels: KernelCache::default(),
            description,
            sync_each_step: std::env::var_os("GRAPHC_CUDA_SYNC").is_some_and(|v| v == "1"),
            graphs: std::env::var_os("GRAPHC_CUDA_GRAPHS").is_none_or(|v| v != "0"),
            staged,
            staged_len: 0,
            staged_host: Vec::new(),
        };
        let (ctx, arch) = (device.ctx.clone(), device.arch);
        device
            .kernels
            .load_unit(&super::hand_written(), |unit, names| load_module(&ctx, arch, unit, names))
            .map_err(|e| CudaUnavailable(format!("CUDA device {ordinal}: the hand-written kernels: {e}")))?;
        Ok(device)
    }

    /// Whether programs built from now on run as CUDA graphs (on unless `GRAPHC_CUDA_GRAPHS=0`).
    pub fn set_graphs(&mut self, on: bool) {
        self.graphs = on;
    }

    /// The device's name, number, architecture and size, for logs.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Lowers `plan`, compiles the kernels it needs that are not loaded yet, and allocates its
    /// temporaries, feeds and workspace on the device.
    pub fn program(&mut self, plan: Plan) -> Result<CudaProgram, ExecError> {
        let lowered = lower(&plan);
        let generated: Vec<_> = lowered.generated.values().map(|g| g.source()).collect();
        let (ctx, arch) = (self.ctx.clone(), self.arch);
        self.kernels.load(&generated, |unit, names| load_module(&ctx, arch, unit, names))?;
        let memory = plan.memory_or_unshared();
        let alloc = |n: usize| self.stream.alloc_zeros::<f32>(n.max(1)).map_err(device_error("allocation"));
        let slots = memory.slot_len.iter().map(|&n| alloc(n)).collect::<Result<Vec<_>, _>>()?;
        let home = memory.homes();
        let feeds = plan
            .buffers
            .iter()
            .map(|b| matches!(b.role, BufferRole::Feed(_)).then(|| alloc(b.numel())).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let own = (0..plan.buffers.len())
            .map(|b| {
                lowered
                    .own_storage
                    .contains(&crate::BufId(b as u32))
                    .then(|| alloc(plan.buffers[b].numel()))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let workspace = alloc(lowered.workspace)?;
        let addresses = vec![0; plan.buffers.len()];
        let noise_len = samples(&lowered).map(|(_, len)| len).sum();
        let staged_noise = alloc(noise_len)?;
        let noise_at = noise_offsets(&lowered);
        let graphs = Graphs { captured: Vec::new(), unavailable: !self.graphs };
        Ok(CudaProgram {
            plan,
            lowered,
            slots,
            home,
            feeds,
            own,
            workspace,
            addresses,
            noise: Vec::new(),
            staged_noise,
            noise_at,
            graphs,
            timing: None,
        })
    }

    /// Copies `state` to the device.
    pub fn upload(&self, state: &State) -> Result<DeviceState, ExecError> {
        let mut values = HashMap::new();
        for (name, value) in &state.values {
            values.insert(name.clone(), self.stream.clone_htod(value).map_err(device_error("copy to the device"))?);
        }
        Ok(DeviceState { values })
    }

    /// Copies `state` back to the host.
    pub fn download(&self, state: &DeviceState) -> Result<State, ExecError> {
        let mut host = State::default();
        for (name, value) in &state.values {
            host.values.insert(name.clone(), self.stream.clone_dtoh(value).map_err(device_error("copy to the host"))?);
        }
        Ok(host)
    }

    /// Overwrites the device values of `state` with those of `host` (same names and sizes).
    pub fn overwrite(&self, state: &mut DeviceState, host: &State) -> Result<(), ExecError> {
        for (name, value) in &host.values {
            if let Some(slice) = state.values.get_mut(name) {
                self.stream.memcpy_htod(value, slice).map_err(device_error("copy to the device"))?;
            }
        }
        Ok(())
    }

    /// Runs every step of `program`, leaving `state` as it was (see [`CudaProgram::commit`]).
    pub fn compute(
        &self,
        program: &mut CudaProgram,
        state: &DeviceState,
        feeds: &HashMap<&str, Vec<f32>>,
        noise: &NoiseKey,
    ) -> Result<(), ExecError> {
        self.prepare(program, state, feeds)?;
        if program.timing.is_none() && !self.sync_each_step && !program.graphs.unavailable {
            return self.compute_as_graph(program, noise);
        }
        if let Some(timing) = &mut program.timing {
            timing.record(0, &self.ctx, &self.stream)?;
        }
        for unit in 0..program.lowered.schedule.len() {
            let last = match &program.lowered.schedule[unit] {
                Scheduled::Step(index) => *index,
                Scheduled::Group { members, .. } => *members.last().expect("a group has members"),
            };
            self.run(program, Ops::Unit(unit), Noise::Draw(noise))?;
            if let Some(timing) = &mut program.timing {
                timing.record(unit + 1, &self.ctx, &self.stream)?;
            }
            if self.sync_each_step {
                self.stream.synchronize().map_err(|e| {
                    ExecError::Device(format!("CUDA failed in {}: {e:?}", program.plan.steps[last].label))
                })?;
            }
        }
        if let Some(timing) = &mut program.timing {
            timing.collect(&program.plan, &program.lowered)?;
        }
        Ok(())
    }

    /// Runs the program's schedule as a CUDA graph: the one captured for the current buffer
    /// addresses, or captured now (up to [`GRAPHS_PER_PROGRAM`]; beyond, the schedule is issued
    /// kernel by kernel). The noise is drawn and copied in first. Where capture fails, the
    /// program runs kernel by kernel from then on, with a one-line note.
    fn compute_as_graph(&self, program: &mut CudaProgram, noise: &NoiseKey) -> Result<(), ExecError> {
        self.stage_noise(program, noise)?;
        if let Some(graph) = program.graphs.find(&program.addresses) {
            return graph.launch().map_err(device_error("a graph launch"));
        }
        if program.graphs.captured.len() < GRAPHS_PER_PROGRAM {
            match self.capture(program) {
                Ok(graph) => {
                    graph.launch().map_err(device_error("a graph launch"))?;
                    program.graphs.captured.push((program.addresses.clone(), graph));
                    return Ok(());
                }
                Err(why) => {
                    eprintln!("note: CUDA graphs unavailable ({why}); launching kernels one by one");
                    program.graphs.unavailable = true;
                }
            }
        }
        for unit in 0..program.lowered.schedule.len() {
            self.run(program, Ops::Unit(unit), Noise::Staged)?;
        }
        Ok(())
    }

    /// The program's schedule captured into a graph (not launched), reading staged noise.
    fn capture(&self, program: &mut CudaProgram) -> Result<CudaGraph, String> {
        let mode = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
        self.stream.begin_capture(mode).map_err(|e| format!("{e:?}"))?;
        let issued =
            (0..program.lowered.schedule.len()).try_for_each(|unit| self.run(program, Ops::Unit(unit), Noise::Staged));
        // Ended whatever happened, so that the stream leaves capture mode.
        let ended = self.stream.end_capture(sys::CUgraphInstantiate_flags(0));
        issued.map_err(|e| e.to_string())?;
        ended.map_err(|e| format!("{e:?}"))?.ok_or_else(|| "the capture recorded nothing".to_string())
    }

    /// Draws the program's noise on the host and copies it to its staging allocation, where the
    /// graph's copies read it.
    fn stage_noise(&self, program: &mut CudaProgram, noise: &NoiseKey) -> Result<(), ExecError> {
        let CudaProgram { lowered, noise: host, staged_noise, .. } = program;
        host.clear();
        for (op, len) in samples(lowered) {
            let DeviceOp::Sample { dist, stream, row_len, .. } = op else { unreachable!("samples yields Sample ops") };
            let start = host.len();
            host.resize(start + len, 0.0);
            crate::cpu::sample::sample(*dist, *stream, noise, &mut host[start..], *row_len);
        }
        if host.is_empty() {
            return Ok(());
        }
        self.stream
            .memcpy_htod(&host[..], &mut staged_noise.slice_mut(..host.len()))
            .map_err(device_error("copy to the device"))
    }

    /// Runs the steps again one by one, in the plan's order and without groups, and returns the
    /// first whose output holds a NaN or an infinity, or `None`.
    pub fn first_non_finite<'p>(
        &self,
        program: &'p mut CudaProgram,
        state: &DeviceState,
        feeds: &HashMap<&str, Vec<f32>>,
        noise: &NoiseKey,
    ) -> Result<Option<&'p Step>, ExecError> {
        self.prepare(program, state, feeds)?;
        for index in 0..program.plan.steps.len() {
            if program.lowered.elided.contains(&index) {
                continue;
            }
            self.run(program, Ops::Step(index), Noise::Draw(noise))?;
            let output = program.plan.steps[index].output;
            if self.read(program, state, output)?.iter().any(|v| !v.is_finite()) {
                return Ok(Some(&program.plan.steps[index]));
            }
        }
        Ok(None)
    }

    /// The values of buffer `id` after the last run (waits for the device).
    pub fn read(&self, program: &CudaProgram, state: &DeviceState, id: crate::BufId) -> Result<Vec<f32>, ExecError> {
        let mut host = vec![0.0; program.plan.buffers[id.0 as usize].numel()];
        self.copy_out(program, state, id, &mut host)?;
        Ok(host)
    }

    /// The first value of buffer `id` after the last run (a loss), without allocating.
    pub fn read_first(&self, program: &CudaProgram, state: &DeviceState, id: crate::BufId) -> Result<f32, ExecError> {
        let mut first = [0.0];
        self.copy_out(program, state, id, &mut first)?;
        Ok(first[0])
    }

    /// Copies the first value of buffer `id` after the last run to the next staging slot, in
    /// stream order, without waiting for the device (see [`CudaDevice::read_staged`]).
    pub fn stage_first(
        &mut self,
        program: &CudaProgram,
        state: &DeviceState,
        id: crate::BufId,
    ) -> Result<(), ExecError> {
        if self.staged_len == STAGED_SLOTS {
            self.drain_staged()?;
        }
        let at = self.staged_len;
        let source = program.storage(state, id).slice(..1);
        self.stream
            .memcpy_dtod(&source, &mut self.staged.slice_mut(at..at + 1))
            .map_err(device_error("a device copy"))?;
        self.staged_len += 1;
        Ok(())
    }

    /// Replaces `values` with the values staged since the last call, oldest first: one copy to
    /// the host and one wait for the device.
    pub fn read_staged(&mut self, values: &mut Vec<f32>) -> Result<(), ExecError> {
        self.drain_staged()?;
        values.clear();
        values.append(&mut self.staged_host);
        Ok(())
    }

    /// Appends the staged values on the device to `staged_host` and frees their slots.
    fn drain_staged(&mut self) -> Result<(), ExecError> {
        if self.staged_len == 0 {
            return Ok(());
        }
        let start = self.staged_host.len();
        self.staged_host.resize(start + self.staged_len, 0.0);
        self.stream
            .memcpy_dtoh(&self.staged.slice(..self.staged_len), &mut self.staged_host[start..])
            .map_err(device_error("copy to the host"))?;
        self.stream.synchronize().map_err(device_error("a step"))?;
        self.staged_len = 0;
        Ok(())
    }

    /// Copies the first `host.len()` values of buffer `id` to `host` and waits for the device.
    fn copy_out(
        &self,
        program: &CudaProgram,
        state: &DeviceState,
        id: crate::BufId,
        host: &mut [f32],
    ) -> Result<(), ExecError> {
        let source = program.storage(state, id);
        self.stream.memcpy_dtoh(&source.slice(..host.len()), host).map_err(device_error("copy to the host"))?;
        self.stream.synchronize().map_err(device_error("a step"))
    }

    /// Checks the inputs, copies the feeds in and records every buffer's device address.
    fn prepare(
        &self,
        program: &mut CudaProgram,
        state: &DeviceState,
        feeds: &HashMap<&str, Vec<f32>>,
    ) -> Result<(), ExecError> {
        check_inputs(&program.plan, |name| state.values.get(name).map(CudaSlice::len), feeds)?;
        let CudaProgram { plan, slots, home, feeds: fed, own, addresses, .. } = program;
        for (index, buffer) in plan.buffers.iter().enumerate() {
            let slice = match &buffer.role {
                BufferRole::State(name) => &state.values[name],
                BufferRole::Feed(name) => {
                    let target = fed[index].as_mut().expect("feeds are allocated");
                    self.stream
                        .memcpy_htod(&feeds[name.as_str()], target)
                        .map_err(device_error("copy to the device"))?;
                    &*target
                }
                BufferRole::Temp => own[index].as_ref().unwrap_or(&slots[home[index]]),
            };
            addresses[index] = slice.device_ptr(&self.stream).0;
        }
        Ok(())
    }

    /// Issues the operations of a step, or of a unit of the program's schedule.
    fn run(&self, program: &mut CudaProgram, which: Ops, noise: Noise) -> Result<(), ExecError> {
        let workspace = program.workspace.device_ptr(&self.stream).0;
        let staged_noise = program.staged_noise.device_ptr(&self.stream).0;
        let CudaProgram { lowered, addresses, noise: host_noise, noise_at, .. } = program;
        let address = |place: Place| {
            let base = match place.base {
                Base::Buffer(id) => addresses[id.0 as usize],
                Base::Workspace => workspace,
            };
            base + (place.offset * std::mem::size_of::<f32>()) as u64
        };
        let ops = match which {
            Ops::Step(index) => &lowered.steps[index][..],
            Ops::Unit(unit) => match &lowered.schedule[unit] {
                Scheduled::Step(index) => &lowered.steps[*index][..],
                Scheduled::Group { launch, .. } => std::slice::from_ref(launch),
            },
        };
        for op in ops {
            match op {
                DeviceOp::Launch { kernel, threads, args } => self.launch(kernel, *threads, args, &address)?,
                DeviceOp::Gemm(gemm) => self.gemm(gemm, &address)?,
                DeviceOp::Copy { from, to, len } => {
                    // SAFETY: both places lie inside allocations of this context, `len` elements
                    // long (the lowering's sizes), and the stream orders the copy after the
                    // operations that wrote the source.
                    unsafe {
                        result::memcpy_dtod_async(address(*to), address(*from), len * 4, self.stream.cu_stream())
                    }
                    .map_err(device_error("a device copy"))?;
                }
                DeviceOp::Sample { dist, stream, out, len, row_len } => match noise {
                    Noise::Draw(key) => {
                        host_noise.resize(*len, 0.0);
                        crate::cpu::sample::sample(*dist, *stream, key, host_noise, *row_len);
                        // SAFETY: the output buffer holds `len` elements; the host values are
                        // copied to staging memory before the call returns (pageable memory),
                        // so reusing `host_noise` afterwards is sound.
                        unsafe {
                            result::memcpy_htod_async(address(Place::buffer(*out)), host_noise, self.stream.cu_stream())
                        }
                        .map_err(device_error("a copy of noise to the device"))?;
                    }
                    Noise::Staged => {
                        let from = staged_noise + (noise_at[out] * std::mem::size_of::<f32>()) as u64;
                        // SAFETY: the staging allocation holds every sample's values at its
                        // offset (`stage_noise`), the output buffer `len` elements.
                        unsafe {
                            result::memcpy_dtod_async(
                                address(Place::buffer(*out)),
                                from,
                                len * 4,
                                self.stream.cu_stream(),
                            )
                        }
                        .map_err(device_error("a device copy of noise"))?;
                    }
                },
            }
        }
        Ok(())
    }

    fn launch(
        &self,
        kernel: &str,
        threads: u64,
        args: &[Arg],
        address: &dyn Fn(Place) -> u64,
    ) -> Result<(), ExecError> {
        let function = self.kernels.get(kernel).expect("the program's kernels were loaded when it was built");
        let pointers: SmallVec<[u64; 8]> =
            args.iter().filter_map(|a| if let Arg::Ptr(p) = a { Some(address(*p)) } else { None }).collect();
        let mut builder = self.stream.launch_builder(function);
        let mut next_pointer = pointers.iter();
        for arg in args {
            match arg {
                Arg::Ptr(_) => builder.arg(next_pointer.next().expect("one address per pointer")),
                Arg::U64(v) => builder.arg(v),
                Arg::I64(v) => builder.arg(v),
                Arg::I32(v) => builder.arg(v),
                Arg::F32(v) => builder.arg(v),
                Arg::F64(v) => builder.arg(v),
                Arg::View(v) => builder.arg(v),
                Arg::Pool(v) => builder.arg(v),
                Arg::Conv(v) => builder.arg(v),
            };
        }
        let (grid, block) = launch_config(threads, self.multiprocessors);
        let config =
            cudarc::driver::LaunchConfig { grid_dim: (grid, 1, 1), block_dim: (block, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: the arguments follow the kernel's parameter list (checked against the sources
        // by tests/cuda_lowering.rs) and every pointer addresses an allocation of the size the
        // lowering computed; the values live until `launch` returns, which copies them.
        unsafe { builder.launch(config) }.map(|_| ()).map_err(device_error(kernel))
    }

    fn gemm(&self, g: &Gemm, address: &dyn Fn(Place) -> u64) -> Result<(), ExecError> {
        let op = |t: bool| {
            if t {
                blas_sys::cublasOperation_t::CUBLAS_OP_T
            } else {
                blas_sys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let (alpha, beta) = (1.0f32, 0.0f32);
        let int = |v: usize| v as std::ffi::c_int;
        // SAFETY: the dimensions and leading dimensions come from the plan's shapes (bounds
        // checked by tests/cuda_lowering.rs), the pointers address device allocations of this
        // context, and the handle runs on this program's stream.
        unsafe {
            cudarc::cublas::result::sgemm(
                *self.blas.handle(),
                op(g.trans_a),
                op(g.trans_b),
                int(g.m),
                int(g.n),
                int(g.k),
                &alpha,
                address(g.a.0) as *const f32,
                int(g.a.1),
                address(g.b.0) as *const f32,
                int(g.b.1),
                &beta,
                address(g.c.0) as *mut f32,
                int(g.c.1),
            )
        }
        .map_err(|e| ExecError::Device(format!("cuBLAS sgemm failed: {e:?}")))
    }
}

/// Where [`CudaDevice::run`] takes a sample's noise from.
#[derive(Clone, Copy)]
enum Noise<'a> {
    /// Drawn on the host with this key and copied in.
    Draw(&'a NoiseKey),
    /// Already drawn into the program's staging allocation ([`CudaDevice::stage_noise`]).
    Staged,
}

/// The most graphs a program keeps, one per set of buffer addresses: the VAE meets 2 (its
/// parameters alternate with their updates), a GAN's phases up to 4.
const GRAPHS_PER_PROGRAM: usize = 8;

/// A program's CUDA graphs, by the buffer addresses they were captured with.
struct Graphs {
    captured: Vec<(Vec<u64>, CudaGraph)>,
    /// Capture failed once (or graphs are off): the program runs kernel by kernel.
    unavailable: bool,
}

impl Graphs {
    fn find(&self, addresses: &[u64]) -> Option<&CudaGraph> {
        self.captured.iter().find(|(at, _)| at == addresses).map(|(_, graph)| graph)
    }
}

/// The program's noise samples, in schedule order, with their lengths.
fn samples(lowered: &Lowered) -> impl Iterator<Item = (&DeviceOp, usize)> {
    lowered.steps.iter().flatten().filter_map(|op| match op {
        DeviceOp::Sample { len, .. } => Some((op, *len)),
        _ => None,
    })
}

/// Each sample's output buffer with the offset of its values in the staged noise.
fn noise_offsets(lowered: &Lowered) -> HashMap<crate::BufId, usize> {
    let mut at = 0;
    samples(lowered)
        .map(|(op, len)| {
            let DeviceOp::Sample { out, .. } = op else { unreachable!("samples yields Sample ops") };
            at += len;
            (*out, at - len)
        })
        .collect()
}

/// Which operations [`CudaDevice::run`] issues.
#[derive(Clone, Copy)]
enum Ops {
    /// Those of one step of the plan.
    Step(usize),
    /// Those of one unit of the lowered schedule.
    Unit(usize),
}

/// Compiles `unit` for `arch` with NVRTC, loads it, and returns the functions `names`.
fn load_module(
    ctx: &Arc<CudaContext>,
    arch: Option<&'static str>,
    unit: &str,
    names: &[&str],
) -> Result<Vec<CudaFunction>, ExecError> {
    let options = cudarc::nvrtc::CompileOptions { arch, ..Default::default() };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(unit, options)
        .map_err(|e| ExecError::Device(format!("NVRTC rejected a kernel: {e:?}")))?;
    let module = ctx.load_module(ptx).map_err(device_error("loading a module"))?;
    names.iter().map(|n| module.load_function(n).map_err(device_error("loading a kernel"))).collect()
}

/// A plan ready to run on a CUDA device.
pub struct CudaProgram {
    plan: Plan,
    lowered: Lowered,
    /// Storage of the temporaries: one allocation per slot of the memory plan.
    slots: Vec<CudaSlice<f32>>,
    /// For each buffer, its slot (temporaries only).
    home: Vec<usize>,
    /// For each buffer, its device copy when it is a feed.
    feeds: Vec<Option<CudaSlice<f32>>>,
    /// For each buffer, its own storage when it is a temporary that must not share a slot
    /// ([`Lowered::own_storage`]).
    own: Vec<Option<CudaSlice<f32>>>,
    workspace: CudaSlice<f32>,
    /// Every buffer's device address for the current run.
    addresses: Vec<u64>,
    /// Host staging for noise drawn on the host.
    noise: Vec<f32>,
    /// Every sample's noise, copied in before a graph runs ([`CudaDevice::stage_noise`]).
    staged_noise: CudaSlice<f32>,
    /// Each sample's output buffer with the offset of its values in `staged_noise`.
    noise_at: HashMap<crate::BufId, usize>,
    /// The program captured as CUDA graphs.
    graphs: Graphs,
    /// Device time per kind of op, when profiling.
    timing: Option<Timing>,
}

/// Device time per kind of op, measured with an event after each unit of the schedule (so a
/// profiled run waits for the device once per run).
#[derive(Default)]
struct Timing {
    /// One event before the first unit, then one after each.
    events: Vec<CudaEvent>,
    profile: Profile,
}

impl Timing {
    /// Records event `done` on `stream`: the work issued once `done` units have been.
    fn record(&mut self, done: usize, ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>) -> Result<(), ExecError> {
        while self.events.len() <= done {
            let event = ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT)).map_err(device_error("an event"))?;
            self.events.push(event);
        }
        self.events[done].record(stream).map_err(device_error("recording an event"))
    }

    /// Adds the time between consecutive events to each unit's kind of op (waits for the device).
    fn collect(&mut self, plan: &Plan, lowered: &Lowered) -> Result<(), ExecError> {
        for (unit, scheduled) in lowered.schedule.iter().enumerate() {
            let ms = self.events[unit].elapsed_ms(&self.events[unit + 1]).map_err(device_error("timing"))?;
            let kind = match scheduled {
                Scheduled::Step(index) => crate::exec::op_kind(&plan.steps[*index].label).to_string(),
                Scheduled::Group { members, .. } => crate::exec::group_kind(members.len()),
            };
            let entry = self.profile.entry(kind).or_default();
            entry.0 += std::time::Duration::from_secs_f64(f64::from(ms.max(0.0)) / 1e3);
            entry.1 += 1;
        }
        Ok(())
    }
}

impl CudaProgram {
    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Whether step `index` is left out on the device (a broadcast its readers read in place), so
    /// that its output is never written.
    pub fn elides(&self, index: usize) -> bool {
        self.lowered.elided.contains(&index)
    }

    /// The CUDA graphs captured so far (one per set of buffer addresses met).
    pub fn graphs_captured(&self) -> usize {
        self.graphs.captured.len()
    }

    /// Starts measuring the device time per kind of op (`GRAPHC_PROFILE`).
    pub fn enable_profile(&mut self) {
        self.timing = Some(Timing::default());
    }

    /// The device time per kind of op since profiling was enabled.
    pub fn profile(&self) -> Option<&Profile> {
        self.timing.as_ref().map(|t| &t.profile)
    }

    /// The device storage of buffer `id` (its state value, feed copy or temporary slot).
    fn storage<'a>(&'a self, state: &'a DeviceState, id: crate::BufId) -> &'a CudaSlice<f32> {
        match &self.plan.buffers[id.0 as usize].role {
            BufferRole::State(name) => &state.values[name],
            BufferRole::Feed(_) => self.feeds[id.0 as usize].as_ref().expect("feeds are allocated"),
            BufferRole::Temp => self.own[id.0 as usize].as_ref().unwrap_or(&self.slots[self.home[id.0 as usize]]),
        }
    }

    /// Writes the state updates computed by the last run back into `state`: each updated value
    /// swaps storage with the temporary holding its new value.
    pub fn commit(&mut self, state: &mut DeviceState) {
        for (source, target) in &self.plan.writebacks {
            let BufferRole::State(name) = &self.plan.buffers[target.0 as usize].role else { continue };
            let value = state.values.get_mut(name).expect("checked before the run");
            std::mem::swap(value, &mut self.slots[self.home[source.0 as usize]]);
        }
    }
}
