//! Buffer planning: temporaries whose lifetimes do not overlap share storage.
//!
//! Requires: a lowered plan (steps in execution order). Ensures: each temporary lives in a slot
//! from the step that computes it to the last step that reads it; a slot is reused only by a
//! value computed after that last read, so no step's output shares storage with its inputs.
//! Write-back sources get slots of their own, exactly their size (the runtime swaps them with
//! the state), and the outputs named in `keep` live to the end of the run; the plan's other
//! outputs are dropped, since their storage may be reused. Slots are chosen best-fit, in step
//! order, so the result depends only on the plan. Preserves: what every step computes (each
//! kernel overwrites its whole output, so leftovers of a slot's earlier value are never read).

use graphc_runtime::{BufferRole, MemoryPlan, Plan};

/// Memory of a plan, in elements (f32): what planning saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    /// Number of temporaries.
    pub temps: usize,
    /// Their total size: the storage without planning.
    pub unplanned: usize,
    /// The total size of the planned slots (equal to `unplanned` without a memory plan).
    pub planned: usize,
    /// State read or written (parameters, running statistics, optimizer state).
    pub state: usize,
    /// Fed values (data batch, step counter).
    pub feeds: usize,
}

/// Plans the storage of `plan`'s temporaries, keeping the outputs named in `keep` readable after
/// a run.
pub fn plan_memory(plan: &mut Plan, keep: &[&str]) {
    plan.outputs.retain(|(name, _)| keep.contains(&name.as_str()));
    let count = plan.buffers.len();
    let is_temp = |b: usize| plan.buffers[b].role == BufferRole::Temp;
    // The last step reading each buffer; `usize::MAX` for values read after the run.
    let mut last_use: Vec<Option<usize>> = vec![None; count];
    for (index, step) in plan.steps.iter().enumerate() {
        for input in &step.inputs {
            last_use[input.0 as usize] = Some(index);
        }
    }
    let mut dedicated = vec![false; count];
    for (source, _) in &plan.writebacks {
        dedicated[source.0 as usize] = true;
    }
    for (_, id) in &plan.outputs {
        last_use[id.0 as usize] = Some(usize::MAX);
    }
    let mut memory = MemoryPlan { slot_of: vec![None; count], slot_len: Vec::new() };
    let mut free: Vec<u32> = Vec::new();
    for (index, step) in plan.steps.iter().enumerate() {
        let out = step.output.0 as usize;
        if is_temp(out) && memory.slot_of[out].is_none() {
            let numel = plan.buffers[out].numel();
            let slot = if dedicated[out] { None } else { take_best_fit(&mut free, &mut memory.slot_len, numel) };
            memory.slot_of[out] = Some(slot.unwrap_or_else(|| {
                memory.slot_len.push(numel);
                (memory.slot_len.len() - 1) as u32
            }));
        }
        // Free what this step read for the last time, and its output if nothing reads it.
        let done = step.inputs.iter().map(|b| b.0 as usize).chain([out]);
        for buffer in done {
            let last = last_use[buffer].unwrap_or(index);
            if last == index && is_temp(buffer) && !dedicated[buffer] {
                if let Some(slot) = memory.slot_of[buffer].filter(|s| !free.contains(s)) {
                    free.push(slot);
                }
            }
        }
    }
    plan.memory = Some(memory);
}

/// A free slot for `numel` elements: the smallest that is large enough, else the largest, grown
/// to fit; `None` when no slot is free.
fn take_best_fit(free: &mut Vec<u32>, slot_len: &mut [usize], numel: usize) -> Option<u32> {
    let len = |s: &u32| slot_len[*s as usize];
    let fits = free.iter().enumerate().filter(|(_, s)| len(s) >= numel).min_by_key(|(_, s)| (len(s), **s));
    let largest = || free.iter().enumerate().max_by_key(|(_, s)| (len(s), std::cmp::Reverse(**s)));
    let (position, slot) = fits.or_else(largest).map(|(i, s)| (i, *s))?;
    free.swap_remove(position);
    slot_len[slot as usize] = slot_len[slot as usize].max(numel);
    Some(slot)
}

/// The memory of `plan`, planned or not.
pub fn report(plan: &Plan) -> MemoryReport {
    let sum = |f: &dyn Fn(&BufferRole) -> bool| plan.buffers.iter().filter(|b| f(&b.role)).map(|b| b.numel()).sum();
    let unplanned = sum(&|r| *r == BufferRole::Temp);
    MemoryReport {
        temps: plan.buffers.iter().filter(|b| b.role == BufferRole::Temp).count(),
        unplanned,
        planned: plan.memory.as_ref().map_or(unplanned, |m| m.slot_len.iter().sum()),
        state: sum(&|r| matches!(r, BufferRole::State(_))),
        feeds: sum(&|r| matches!(r, BufferRole::Feed(_))),
    }
}
